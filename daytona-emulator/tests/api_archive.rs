//! Archive and recover, and the auto-archive / auto-delete intervals on the emulated clock
//! (one emulated minute = a few milliseconds here).

#![allow(clippy::unwrap_used)]

mod api_support;

use std::time::{Duration, Instant};

use api_support::{API_KEY, Api, assert_api_error};
use daytona_emulator::Emulator;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const MINUTE: Duration = Duration::from_millis(50);

async fn clock_api() -> Api {
    Api::start_with(Emulator::builder().api_key(API_KEY).auto_stop_unit(MINUTE)).await
}

async fn exec(api: &Api, id: &str, command: &str) -> (StatusCode, Value) {
    let resp = api
        .http
        .post(format!(
            "{}/{id}/process/execute",
            api.emu.toolbox_proxy_url()
        ))
        .bearer_auth(API_KEY)
        .json(&json!({"command": command}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn id_of(sb: &Value) -> String {
    sb["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn auto_archive_then_auto_delete_count_from_the_stop() {
    let api = clock_api().await;
    let id = id_of(
        &api.create(
            json!({"autoArchiveInterval": 3, "autoDeleteInterval": 10, "autoStopInterval": 0}),
        )
        .await,
    );
    let stopped_at = Instant::now();
    let (status, _) = api
        .call(Method::POST, &format!("/sandbox/{id}/stop"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    api.wait_state(&id, "archived").await;
    let archived_after = stopped_at.elapsed();
    assert!(
        archived_after >= MINUTE * 3,
        "archived too early: {archived_after:?}"
    );
    api.wait_gone(&id).await;
    let deleted_after = stopped_at.elapsed();
    assert!(
        deleted_after >= MINUTE * 10,
        "auto-delete counts from the stop, not from the archive: {deleted_after:?}"
    );
    api.emu.shutdown().await;
}

#[tokio::test]
async fn auto_delete_zero_removes_an_already_stopped_sandbox() {
    let api = clock_api().await;
    let id = id_of(&api.create(json!({"autoStopInterval": 0})).await);
    api.call(Method::POST, &format!("/sandbox/{id}/stop"), None)
        .await;
    tokio::time::sleep(MINUTE * 4).await;
    assert_eq!(
        api.state_of(&id).await,
        "stopped",
        "auto-delete is off by default"
    );
    let (status, sb) = api
        .call(Method::POST, &format!("/sandbox/{id}/autodelete/0"), None)
        .await;
    assert_eq!(
        (status, sb["autoDeleteInterval"].clone()),
        (StatusCode::OK, json!(0))
    );
    api.wait_gone(&id).await;
    api.emu.shutdown().await;
}

#[tokio::test]
async fn archived_sandboxes_keep_their_files_and_restore_on_start() {
    let api = Api::start_with(
        Emulator::builder()
            .api_key(API_KEY)
            .transition_delay(Duration::from_millis(150)),
    )
    .await;
    let id = id_of(&api.create(json!({})).await);
    api.wait_state(&id, "started").await;
    let (status, _) = exec(&api, &id, "echo kept > keep.txt").await;
    assert_eq!(status, StatusCode::OK);
    let (_, sb) = api
        .call(Method::POST, &format!("/sandbox/{id}/archive"), None)
        .await;
    assert!(
        assert_api_error(&sb, 400, "/api/sandbox").contains("not stopped"),
        "a started sandbox cannot be archived"
    );
    api.call(Method::POST, &format!("/sandbox/{id}/stop"), None)
        .await;
    api.wait_state(&id, "stopped").await;
    let (status, sb) = api
        .call(Method::POST, &format!("/sandbox/{id}/archive"), None)
        .await;
    assert_eq!(
        (status, sb["state"].clone()),
        (StatusCode::OK, json!("archiving"))
    );
    let sb = api.wait_state(&id, "archived").await;
    assert_eq!(sb["desiredState"], "archived");
    let (status, _) = exec(&api, &id, "true").await;
    assert_eq!(
        status,
        StatusCode::BAD_GATEWAY,
        "an archived sandbox has no toolbox"
    );
    let (status, _) = api
        .call(Method::POST, &format!("/sandbox/{id}/archive"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, sb) = api
        .call(Method::POST, &format!("/sandbox/{id}/start"), None)
        .await;
    assert_eq!(
        (status, sb["state"].clone()),
        (StatusCode::OK, json!("restoring"))
    );
    api.wait_state(&id, "started").await;
    let (_, out) = exec(&api, &id, "cat keep.txt").await;
    assert_eq!(out["result"], "kept\n");
    api.emu.shutdown().await;
}

#[tokio::test]
async fn recover_brings_errored_sandboxes_back() {
    let api = Api::start().await;
    let id = id_of(&api.create(json!({})).await);
    exec(&api, &id, "echo before > state.txt").await;
    let (status, body) = api
        .call(Method::POST, &format!("/sandbox/{id}/recover"), None)
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "nothing to recover from: {body}"
    );

    let failed = api
        .emu
        .fail_sandbox(&id, "disk exploded", true)
        .await
        .unwrap();
    assert_eq!(failed.error_reason.as_deref(), Some("disk exploded"));
    let (_, sb) = api.get(&id).await;
    assert_eq!(
        (sb["state"].clone(), sb["recoverable"].clone()),
        (json!("error"), json!(true))
    );
    let (status, sb) = api
        .call(Method::POST, &format!("/sandbox/{id}/recover"), None)
        .await;
    assert_eq!(
        (status, sb["state"].clone()),
        (StatusCode::OK, json!("started"))
    );
    assert!(sb.get("errorReason").is_none_or(Value::is_null), "{sb}");
    let (_, out) = exec(&api, &id, "cat state.txt").await;
    assert_eq!(out["result"], "before\n", "files survive the error");

    api.emu.fail_sandbox(&id, "again", true).await.unwrap();
    let (status, sb) = api
        .call(
            Method::POST,
            &format!("/sandbox/{id}/recover?skipStart=true"),
            None,
        )
        .await;
    assert_eq!(
        (status, sb["state"].clone()),
        (StatusCode::OK, json!("stopped"))
    );

    let (_, other) = api.call(Method::POST, "/sandbox", Some(json!({}))).await;
    let other = id_of(&other);
    api.emu.fail_sandbox(&other, "fatal", false).await.unwrap();
    let (status, body) = api
        .call(Method::POST, &format!("/sandbox/{other}/recover"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(assert_api_error(&body, 400, "/api/sandbox").contains("not recoverable"));
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/sandbox/{other}/recover?skipStart=perhaps"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    api.emu.shutdown().await;
}
