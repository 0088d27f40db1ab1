//! Sandboxes created from an image: build states, the build log (plain and followed as a
//! chunked stream, as the TypeScript SDK reads it), the Dockerfile's ENV, and build failures.

#![allow(clippy::unwrap_used)]

mod api_support;

use std::time::{Duration, Instant};

use api_support::{API_KEY, Api};
use daytona_emulator::Emulator;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn build_api(step_ms: u64) -> Api {
    Api::start_with(
        Emulator::builder()
            .api_key(API_KEY)
            .build_step_delay(Duration::from_millis(step_ms)),
    )
    .await
}

/// Follows a build log: the chunks as they arrived, with when they arrived.
async fn follow(api: &Api, url: &str) -> Vec<(Instant, String)> {
    let resp = api
        .http
        .get(format!("{url}?follow=true"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let mut chunks = Vec::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        chunks.push((
            Instant::now(),
            String::from_utf8(chunk.unwrap().to_vec()).unwrap(),
        ));
    }
    chunks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_build_streams_its_log_and_starts_the_sandbox() {
    let api = build_api(150).await;
    let sb = api
        .create(json!({
            "buildInfo": {"dockerfileContent": "FROM node:20-slim\nENV GREETING=from-image PLACE=image\nRUN npm ci\n"},
            "env": {"PLACE": "request"},
        }))
        .await;
    assert_eq!(sb["state"], "pending_build");
    let id = sb["id"].as_str().unwrap().to_string();

    let (status, url) = api
        .call(Method::GET, &format!("/sandbox/{id}/build-logs-url"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let url = url["url"].as_str().unwrap().to_string();
    let poll = {
        let api_url = api.emu.api_url();
        let http = api.http.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let mut seen = Vec::<String>::new();
            for _ in 0..300 {
                let sb: Value = http
                    .get(format!("{api_url}/sandbox/{id}"))
                    .bearer_auth(API_KEY)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let state = sb["state"].as_str().unwrap().to_string();
                if seen.last() != Some(&state) {
                    seen.push(state.clone());
                }
                if state == "started" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        })
    };
    let chunks = follow(&api, &url).await;
    let text: String = chunks.iter().map(|(_, c)| c.as_str()).collect();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Step 1/3 : FROM node:20-slim", "{text}");
    assert!(
        lines.contains(&"Step 2/3 : ENV GREETING=from-image PLACE=image"),
        "{text}"
    );
    assert!(lines.contains(&"Step 3/3 : RUN npm ci"), "{text}");
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("Successfully built daytona-"),
        "{text}"
    );
    assert!(
        chunks.len() >= 3,
        "the log arrived as it was written, not in one piece: {chunks:?}"
    );
    let spread = chunks.last().unwrap().0 - chunks[0].0;
    assert!(spread >= Duration::from_millis(200), "{spread:?}");

    let states = poll.await.unwrap();
    assert_eq!(
        states,
        ["pending_build", "building_snapshot", "started"],
        "states seen while polling"
    );
    let sb = api.wait_state(&id, "started").await;
    assert_eq!(sb["env"]["GREETING"], "from-image");
    assert_eq!(sb["env"]["PLACE"], "request", "the request's env wins");
    let out: Value = api
        .http
        .post(format!(
            "{}/{id}/process/execute",
            api.emu.toolbox_proxy_url()
        ))
        .bearer_auth(API_KEY)
        .json(&json!({"command": "echo $GREETING"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(out["result"], "from-image\n");

    // Afterwards the whole log is there, with or without follow.
    let plain = api
        .http
        .get(&url)
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(plain, text);
    let (status, _) = api
        .call(
            Method::GET,
            &format!("/sandbox/{id}/build-logs?follow=maybe"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    api.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_dockerfiles_and_failing_steps_end_in_build_failed() {
    let api = build_api(20).await;
    let bad = api
        .create(json!({"buildInfo": {"dockerfileContent": "FORM node:20\n"}}))
        .await;
    let bad_id = bad["id"].as_str().unwrap().to_string();
    let failed = api.wait_state(&bad_id, "build_failed").await;
    assert_eq!(
        failed["errorReason"],
        "Dockerfile parse error on line 1: unknown instruction: FORM"
    );
    let log = api
        .http
        .get(format!(
            "{}/sandbox/{bad_id}/build-logs?follow=true",
            api.emu.api_url()
        ))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(log.contains("unknown instruction: FORM"), "{log}");

    let run = api
        .create(json!({"buildInfo": {"dockerfileContent": "FROM debian:12\nRUN apt-get update\nRUN exit 3\nRUN never-reached\n"}}))
        .await;
    let run_id = run["id"].as_str().unwrap().to_string();
    let failed = api.wait_state(&run_id, "build_failed").await;
    let reason = failed["errorReason"].as_str().unwrap();
    assert!(reason.contains("returned a non-zero code: 3"), "{reason}");
    let log = api
        .http
        .get(format!("{}/sandbox/{run_id}/build-logs", api.emu.api_url()))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(log.contains("Step 3/4 : RUN exit 3"), "{log}");
    assert!(!log.contains("never-reached"), "{log}");

    // A failed build is not a running sandbox, cannot be started, and can be deleted.
    let resp = api
        .http
        .post(format!(
            "{}/{run_id}/process/execute",
            api.emu.toolbox_proxy_url()
        ))
        .bearer_auth(API_KEY)
        .json(&json!({"command": "true"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let (status, _) = api
        .call(Method::POST, &format!("/sandbox/{run_id}/start"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api
        .call(Method::DELETE, &format!("/sandbox/{run_id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    api.wait_gone(&run_id).await;
    api.emu.shutdown().await;
}

#[tokio::test]
async fn deleting_during_a_build_and_sandboxes_without_builds() {
    let api = build_api(200).await;
    let sb = api
        .create(json!({"buildInfo": {"dockerfileContent": "FROM a\nRUN b\nRUN c\nRUN d\n"}}))
        .await;
    let id = sb["id"].as_str().unwrap().to_string();
    let (status, body) = api
        .call(Method::DELETE, &format!("/sandbox/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    api.wait_gone(&id).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        api.emu.sandboxes().is_empty(),
        "the build did not bring it back"
    );

    let plain = api.create_default().await;
    let plain_id = plain["id"].as_str().unwrap();
    let (status, body) = api
        .call(
            Method::GET,
            &format!("/sandbox/{plain_id}/build-logs-url"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not created from an image")
    );
    let (status, _) = api
        .call(Method::GET, "/sandbox/nope/build-logs-url", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    api.emu.shutdown().await;
}
