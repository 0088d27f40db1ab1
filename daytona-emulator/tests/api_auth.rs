//! Authentication: bearer API key on `/api` and `/toolbox`, preview tokens on the toolbox,
//! no auth for `/_emulator`, and an emulator without a key.

#![allow(clippy::unwrap_used)]

mod api_support;

use api_support::{API_KEY, Api, assert_api_error};
use daytona_emulator::Emulator;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn status_and_body(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn api_requires_the_bearer_key() {
    let api = Api::start().await;
    let url = api.url("/sandbox");
    for req in [
        api.http.get(&url),
        api.http.get(&url).bearer_auth("wrong"),
        api.http
            .get(&url)
            .header("Authorization", format!("Basic {API_KEY}")),
        api.http.get(&url).header("Authorization", "Bearer"),
        api.http.post(&url).json(&json!({})),
    ] {
        let (status, body) = status_and_body(req.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(assert_api_error(&body, 401, "/api/sandbox"), "Unauthorized");
        assert_eq!(body["error"], "Unauthorized");
    }
    assert!(
        api.emu.sandboxes().is_empty(),
        "an unauthorized create creates nothing"
    );
    let (status, _) = status_and_body(
        api.http
            .get(&url)
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Scheme names are case-insensitive.
    let resp = api
        .http
        .get(&url)
        .header("Authorization", format!("bearer {API_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn toolbox_takes_the_key_or_the_sandbox_preview_token() {
    let api = Api::start().await;
    let a = api.create_default().await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = api.create_default().await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, preview) = api
        .call(
            Method::GET,
            &format!("/sandbox/{a}/ports/1/preview-url"),
            None,
        )
        .await;
    let token = preview["token"].as_str().unwrap().to_string();
    let version = |id: &str| format!("{}/toolbox/{id}/version", api.emu.base_url());

    let resp = api.http.get(version(&a)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = api
        .http
        .get(version(&a))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = api
        .http
        .get(version(&a))
        .header("X-Daytona-Preview-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = api
        .http
        .get(version(&a))
        .query(&[("DAYTONA_SANDBOX_AUTH_KEY", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // A preview token opens only its own sandbox.
    let resp = api
        .http
        .get(version(&b))
        .header("X-Daytona-Preview-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // And never the control plane.
    let resp = api
        .http
        .get(api.url("/sandbox"))
        .header("X-Daytona-Preview-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn control_api_needs_no_key_and_no_key_means_no_auth() {
    let api = Api::start().await;
    let resp = api
        .http
        .get(format!("{}/_emulator/sandboxes", api.emu.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let open = Emulator::builder().start().await.unwrap();
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/sandbox", open.api_url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = http
        .get(format!("{}/toolbox/{id}/version", open.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    open.shutdown().await;
}

#[tokio::test]
async fn an_empty_api_key_is_refused_at_start() {
    let err = Emulator::builder().api_key("").start().await.unwrap_err();
    assert!(err.to_string().contains("api_key"), "{err}");
}
