//! Snapshots: create from an image or a Dockerfile, states, build logs, list/get/delete,
//! activate/deactivate, and sandboxes created from them.

#![allow(clippy::unwrap_used)]

mod api_support;

use std::time::Duration;

use api_support::{API_KEY, Api, assert_api_error};
use daytona_emulator::Emulator;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn snapshot_api() -> Api {
    Api::start_with(
        Emulator::builder()
            .api_key(API_KEY)
            .build_step_delay(Duration::from_millis(50)),
    )
    .await
}

/// Polls `GET /snapshots/{name}` until `state`; returns the states seen and the final DTO.
async fn wait_snapshot(api: &Api, name: &str, state: &str) -> (Vec<String>, Value) {
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..500 {
        let (status, dto) = api
            .call(Method::GET, &format!("/snapshots/{name}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{dto}");
        let now = dto["state"].as_str().unwrap().to_string();
        if seen.last() != Some(&now) {
            seen.push(now.clone());
        }
        if now == state {
            return (seen, dto);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("snapshot {name} never reached {state}; saw {seen:?}");
}

#[tokio::test]
async fn image_snapshots_become_active_and_give_sandboxes_their_resources() {
    let api = snapshot_api().await;
    let (status, dto) = api
        .call(
            Method::POST,
            "/snapshots",
            Some(json!({"name": "py", "imageName": "python:3.12-slim", "cpu": 2, "memory": 4, "disk": 10})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{dto}");
    assert_eq!(dto["state"], "pending");
    assert_eq!(dto["imageName"], "python:3.12-slim");
    assert_eq!(
        (dto["cpu"].clone(), dto["mem"].clone(), dto["disk"].clone()),
        (json!(2), json!(4), json!(10))
    );
    for nullable in [
        "size",
        "entrypoint",
        "errorReason",
        "lastUsedAt",
        "sourceSandboxId",
    ] {
        assert!(
            dto.get(nullable).is_some_and(Value::is_null),
            "{nullable}: {dto}"
        );
    }
    let (states, active) = wait_snapshot(&api, "py", "active").await;
    assert_eq!(states, ["pending", "pulling", "active"]);
    let id = active["id"].as_str().unwrap().to_string();
    // By id as well as by name.
    let (status, by_id) = api
        .call(Method::GET, &format!("/snapshots/{id}"), None)
        .await;
    assert_eq!(
        (status, by_id["name"].clone()),
        (StatusCode::OK, json!("py"))
    );

    let sb = api.create(json!({"snapshot": "py"})).await;
    assert_eq!(sb["snapshot"], "py");
    assert_eq!(
        (sb["cpu"].clone(), sb["memory"].clone(), sb["disk"].clone()),
        (json!(2), json!(4), json!(10))
    );
    let (_, used) = api.call(Method::GET, "/snapshots/py", None).await;
    assert!(used["lastUsedAt"].is_string(), "{used}");

    // Deactivated snapshots cannot be used until activated again.
    let (status, _) = api
        .call(Method::POST, "/snapshots/py/deactivate", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api
        .call(Method::POST, "/sandbox", Some(json!({"snapshot": "py"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(assert_api_error(&body, 400, "/api/sandbox").contains("not active"));
    let (status, body) = api
        .call(Method::POST, &format!("/snapshots/{id}/activate"), None)
        .await;
    assert_eq!(
        (status, body["state"].clone()),
        (StatusCode::OK, json!("active"))
    );
    let (status, _) = api.call(Method::POST, "/snapshots/py/activate", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "already active");
    api.emu.shutdown().await;
}

#[tokio::test]
async fn dockerfile_snapshots_build_with_logs_and_pass_their_env_on() {
    let api = snapshot_api().await;
    let (status, dto) = api
        .call(
            Method::POST,
            "/snapshots",
            Some(json!({"name": "built", "buildInfo": {"dockerfileContent": "FROM python:3.12\nENV FROM_SNAPSHOT=yes\nRUN pip install x\n"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{dto}");
    assert!(
        dto["buildInfo"]["snapshotRef"]
            .as_str()
            .unwrap()
            .starts_with("daytona-")
    );
    assert_eq!(dto["ref"], dto["buildInfo"]["snapshotRef"]);
    let (_, url) = api
        .call(Method::GET, "/snapshots/built/build-logs-url", None)
        .await;
    let url = url["url"].as_str().unwrap().to_string();
    let log = api
        .http
        .get(format!("{url}?follow=true"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(log.contains("Step 1/3 : FROM python:3.12\n"), "{log}");
    assert!(log.contains("Step 3/3 : RUN pip install x\n"), "{log}");
    let (states, _) = wait_snapshot(&api, "built", "active").await;
    assert_eq!(states.last().unwrap(), "active");
    let sb = api.create(json!({"snapshot": "built"})).await;
    assert_eq!(sb["env"]["FROM_SNAPSHOT"], "yes");

    let (_, failing) = api
        .call(
            Method::POST,
            "/snapshots",
            Some(json!({"name": "broken", "buildInfo": {"dockerfileContent": "RUN make\n"}})),
        )
        .await;
    assert_eq!(failing["state"], "pending");
    let (_, failed) = wait_snapshot(&api, "broken", "build_failed").await;
    assert!(
        failed["errorReason"]
            .as_str()
            .unwrap()
            .contains("first instruction must be FROM"),
        "{failed}"
    );
    api.emu.shutdown().await;
}

#[tokio::test]
async fn listing_paging_deleting_and_bad_input() {
    let api = snapshot_api().await;
    for name in ["b-snap", "a-snap", "c-other"] {
        let (status, _) = api
            .call(
                Method::POST,
                "/snapshots",
                Some(json!({"name": name, "imageName": "alpine:3.20"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, all) = api
        .call(Method::GET, "/snapshots?sort=name&order=asc", None)
        .await;
    let names: Vec<_> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, [json!("a-snap"), json!("b-snap"), json!("c-other")]);
    assert_eq!(
        (
            all["total"].clone(),
            all["page"].clone(),
            all["totalPages"].clone()
        ),
        (json!(3), json!(1), json!(1))
    );
    let (_, page) = api
        .call(
            Method::GET,
            "/snapshots?sort=name&order=asc&page=2&limit=2",
            None,
        )
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["name"], "c-other");
    assert_eq!(page["totalPages"], 2);
    let (_, filtered) = api.call(Method::GET, "/snapshots?name=SNAP", None).await;
    assert_eq!(filtered["total"], 2);

    let (status, body) = api
        .call(
            Method::POST,
            "/snapshots",
            Some(json!({"name": "a-snap", "imageName": "alpine:3.20"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = api
        .call(Method::POST, "/snapshots", Some(json!({"name": "x"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(assert_api_error(&body, 400, "/api/snapshots").contains("imageName or buildInfo"));
    let (status, body) = api
        .call(
            Method::POST,
            "/snapshots",
            Some(json!({"imageName": "alpine", "cpu": "two"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = assert_api_error(&body, 400, "/api/snapshots");
    assert!(
        message.contains("name must be a string")
            && message.contains("cpu must be an integer number"),
        "{message}"
    );
    for query in [
        "limit=0",
        "limit=201",
        "page=0",
        "sort=size",
        "order=sideways",
    ] {
        let (status, _) = api
            .call(Method::GET, &format!("/snapshots?{query}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
    }
    let (status, _) = api.call(Method::GET, "/snapshots/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = api.call(Method::DELETE, "/snapshots/a-snap", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api.call(Method::GET, "/snapshots/a-snap", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.call(Method::DELETE, "/snapshots/a-snap", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Unknown snapshot names stay accepted for sandboxes (the emulator runs on the host's
    // system whatever the snapshot).
    let sb = api.create(json!({"snapshot": "someone/else:1.0"})).await;
    assert_eq!(sb["snapshot"], "someone/else:1.0");
    api.emu.shutdown().await;
}
