//! Volumes: CRUD and states, mounting into sandboxes (data shared between sandboxes, through
//! commands and the file API), subpaths, refused mount paths, and deletion rules.

#![allow(clippy::unwrap_used)]

mod api_support;

use std::time::Duration;

use api_support::{API_KEY, Api, assert_api_error};
use daytona_emulator::Emulator;
use daytona_emulator::layout::{Isolation, detect_isolation};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn exec(api: &Api, id: &str, command: &str) -> Value {
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
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn volumes_are_created_listed_found_and_deleted() {
    let api = Api::start().await;
    let (status, vol) = api
        .call(Method::POST, "/volumes", Some(json!({"name": "data"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{vol}");
    assert_eq!(vol["state"], "ready");
    assert_eq!(vol["name"], "data");
    assert!(vol.get("errorReason").is_some_and(Value::is_null), "{vol}");
    assert!(vol["organizationId"].is_string());
    let id = vol["id"].as_str().unwrap().to_string();

    let (status, body) = api
        .call(Method::POST, "/volumes", Some(json!({"name": "data"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    for bad in [
        json!({"name": ""}),
        json!({"name": "a/b"}),
        json!({}),
        json!({"name": 5}),
    ] {
        let (status, _) = api.call(Method::POST, "/volumes", Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }

    let (_, list) = api.call(Method::GET, "/volumes", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, by_name) = api.call(Method::GET, "/volumes/by-name/data", None).await;
    assert_eq!(
        (status, by_name["id"].clone()),
        (StatusCode::OK, json!(id.as_str()))
    );
    let (status, by_id) = api.call(Method::GET, &format!("/volumes/{id}"), None).await;
    assert_eq!(
        (status, by_id["name"].clone()),
        (StatusCode::OK, json!("data"))
    );
    let (status, _) = api.call(Method::GET, "/volumes/by-name/other", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = api
        .call(Method::DELETE, &format!("/volumes/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = api.call(Method::GET, "/volumes", None).await;
    assert_eq!(list, json!([]));
    let (_, list) = api
        .call(Method::GET, "/volumes?includeDeleted=true", None)
        .await;
    assert_eq!(list[0]["state"], "deleted");
    let (_, by_id) = api.call(Method::GET, &format!("/volumes/{id}"), None).await;
    assert_eq!(by_id["state"], "deleted");
    let (status, _) = api.call(Method::GET, "/volumes/by-name/data", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The name is free again.
    let (status, _) = api
        .call(Method::POST, "/volumes", Some(json!({"name": "data"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    api.emu.shutdown().await;
}

#[tokio::test]
async fn volume_states_pass_through_pending_with_a_transition_delay() {
    let api = Api::start_with(
        Emulator::builder()
            .api_key(API_KEY)
            .transition_delay(Duration::from_millis(200)),
    )
    .await;
    let (_, vol) = api
        .call(Method::POST, "/volumes", Some(json!({"name": "slow"})))
        .await;
    assert_eq!(vol["state"], "pending_create");
    let id = vol["id"].as_str().unwrap().to_string();
    let (status, body) = api
        .call(Method::DELETE, &format!("/volumes/{id}"), None)
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "not deletable while pending: {body}"
    );
    wait_volume(&api, &id, "ready").await;
    let (status, _) = api
        .call(Method::DELETE, &format!("/volumes/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, vol) = api.call(Method::GET, &format!("/volumes/{id}"), None).await;
    assert_eq!(vol["state"], "pending_delete");
    wait_volume(&api, &id, "deleted").await;
    api.emu.shutdown().await;
}

async fn wait_volume(api: &Api, id: &str, state: &str) {
    for _ in 0..200 {
        let (_, vol) = api.call(Method::GET, &format!("/volumes/{id}"), None).await;
        if vol["state"] == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("volume {id} never reached {state}");
}

#[tokio::test]
async fn mounted_volumes_share_data_between_sandboxes() {
    let api = Api::start().await;
    let (_, vol) = api
        .call(Method::POST, "/volumes", Some(json!({"name": "shared"})))
        .await;
    let vol_id = vol["id"].as_str().unwrap().to_string();

    let a = api
        .create(json!({"volumes": [
            {"volumeId": "shared", "mountPath": "/home/daytona/shared"},
            {"volumeId": vol_id, "mountPath": "/workspace/part", "subpath": "sub/dir"},
        ]}))
        .await;
    let a_id = a["id"].as_str().unwrap().to_string();
    assert_eq!(a["volumes"][0]["volumeId"], vol_id.as_str());
    assert_eq!(a["volumes"][1]["subpath"], "sub/dir");
    let part = match detect_isolation() {
        Isolation::Bubblewrap => "/workspace/part".to_string(),
        Isolation::Host => format!(
            "{}/part",
            api.emu
                .state()
                .layout(&a_id)
                .unwrap()
                .workspace_host()
                .display()
        ),
    };
    let out = exec(
        &api,
        &a_id,
        &format!("echo written-by-a > ~/shared/f.txt && echo part > {part}/p.txt && echo ok"),
    )
    .await;
    assert_eq!(out["result"], "ok\n", "{out}");
    // The file API sees the volume at the same path.
    let info = api
        .http
        .get(format!(
            "{}/{a_id}/files/info?path=shared/f.txt",
            api.emu.toolbox_proxy_url()
        ))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    // The volume's mount point cannot be deleted through the file API.
    let del = api
        .http
        .delete(format!(
            "{}/{a_id}/files?path=shared&recursive=true",
            api.emu.toolbox_proxy_url()
        ))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert!(del.status().is_client_error(), "{}", del.status());

    let b = api
        .create(json!({"volumes": [{"volumeId": vol_id, "mountPath": "/home/daytona/other"}]}))
        .await;
    let b_id = b["id"].as_str().unwrap().to_string();
    let out = exec(&api, &b_id, "cat ~/other/f.txt ~/other/sub/dir/p.txt").await;
    assert_eq!(out["result"], "written-by-a\npart\n");

    // Data outlives the sandboxes; a volume in use cannot be deleted.
    let (status, body) = api
        .call(Method::DELETE, &format!("/volumes/{vol_id}"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(assert_api_error(&body, 409, "/api/volumes").contains("in use"));
    for id in [&a_id, &b_id] {
        api.call(Method::DELETE, &format!("/sandbox/{id}"), None)
            .await;
        api.wait_gone(id).await;
    }
    let c = api
        .create(json!({"volumes": [{"volumeId": "shared", "mountPath": "/tmp/again"}]}))
        .await;
    let c_id = c["id"].as_str().unwrap().to_string();
    let again = match detect_isolation() {
        Isolation::Bubblewrap => "/tmp/again".to_string(),
        Isolation::Host => format!(
            "{}/again",
            api.emu.state().layout(&c_id).unwrap().tmp_host().display()
        ),
    };
    let out = exec(&api, &c_id, &format!("cat {again}/f.txt")).await;
    assert_eq!(out["result"], "written-by-a\n");
    api.call(Method::DELETE, &format!("/sandbox/{c_id}"), None)
        .await;
    api.wait_gone(&c_id).await;
    let (status, _) = api
        .call(Method::DELETE, &format!("/volumes/{vol_id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api
        .call(
            Method::POST,
            "/sandbox",
            Some(json!({"volumes": [{"volumeId": vol_id, "mountPath": "/tmp/x"}]})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a deleted volume cannot be mounted: {body}"
    );
    api.emu.shutdown().await;
}

#[tokio::test]
async fn top_level_mounts_need_bubblewrap() {
    let api = Api::start().await;
    api.call(Method::POST, "/volumes", Some(json!({"name": "top"})))
        .await;
    let (status, body) = api
        .call(
            Method::POST,
            "/sandbox",
            Some(json!({"volumes": [{"volumeId": "top", "mountPath": "/data"}]})),
        )
        .await;
    match detect_isolation() {
        Isolation::Bubblewrap => {
            assert_eq!(status, StatusCode::OK, "{body}");
            let id = body["id"].as_str().unwrap();
            let out = exec(&api, id, "echo hi > /data/x && cat /data/x && ls -d /data").await;
            assert_eq!(out["result"], "hi\n/data\n");
        }
        Isolation::Host => {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(
                body["message"].as_str().unwrap().contains("bubblewrap"),
                "{body}"
            );
        }
    }
    api.emu.shutdown().await;
}

#[tokio::test]
async fn bad_mounts_are_refused_and_leave_nothing_behind() {
    let api = Api::start().await;
    api.call(Method::POST, "/volumes", Some(json!({"name": "v"})))
        .await;
    api.call(Method::POST, "/volumes", Some(json!({"name": "w"})))
        .await;
    let cases = [
        (
            json!([{"volumeId": "v", "mountPath": "/etc/x"}]),
            400,
            "/etc",
        ),
        (
            json!([{"volumeId": "v", "mountPath": "relative/x"}]),
            400,
            "absolute",
        ),
        (json!([{"volumeId": "v", "mountPath": "/"}]), 400, ""),
        (
            json!([{"volumeId": "v", "mountPath": "/home/daytona"}]),
            400,
            "own directories",
        ),
        (
            json!([{"volumeId": "v", "mountPath": "/tmp/../etc"}]),
            400,
            "",
        ),
        (json!([{"volumeId": "v", "mountPath": "/proc/x"}]), 400, ""),
        (
            json!([{"volumeId": "v", "mountPath": "/tmp/a"}, {"volumeId": "w", "mountPath": "/tmp/a/b"}]),
            400,
            "overlaps",
        ),
        (
            json!([{"volumeId": "v", "mountPath": "/tmp/s", "subpath": "../x"}]),
            400,
            "subpath",
        ),
        (
            json!([{"volumeId": "nope", "mountPath": "/tmp/x"}]),
            404,
            "nope",
        ),
    ];
    for (volumes, status, needle) in cases {
        let (got, body) = api
            .call(Method::POST, "/sandbox", Some(json!({"volumes": volumes})))
            .await;
        assert_eq!(got.as_u16(), status, "{volumes}: {body}");
        let message = assert_api_error(&body, status, "/api/sandbox");
        assert!(message.contains(needle), "{volumes}: {message}");
    }
    assert!(api.emu.sandboxes().is_empty());
    assert!(!std::path::Path::new("/etc/x").exists());
    let sandboxes_dir = api.emu.state().data_dir().join("sandboxes");
    let left = std::fs::read_dir(&sandboxes_dir)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "refused creates leave no sandbox directory");
    api.emu.shutdown().await;
}
