//! Preview links reach a real server started inside a sandbox (`python3 -m http.server` in a
//! session), with the preview token, public sandboxes, signed URLs and their expiry, and
//! typed errors for closed ports and stopped sandboxes.

#![allow(clippy::unwrap_used)]

mod api_support;

use std::time::Duration;

use api_support::{API_KEY, Api, assert_api_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn toolbox(api: &Api, id: &str, path: &str) -> String {
    format!("{}/{id}{path}", api.emu.toolbox_proxy_url())
}

/// Starts `python3 -m http.server PORT` serving a `hello.txt` in a session of the sandbox.
async fn start_server(api: &Api, id: &str, port: u16) {
    let exec = api
        .http
        .post(toolbox(api, id, "/process/execute"))
        .bearer_auth(API_KEY)
        .json(&json!({"command": "mkdir -p site && printf 'hello preview' > site/hello.txt"}))
        .send()
        .await
        .unwrap();
    assert_eq!(exec.status(), 200);
    let created = api
        .http
        .post(toolbox(api, id, "/process/session"))
        .bearer_auth(API_KEY)
        .json(&json!({"sessionId": "web"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let run = api
        .http
        .post(toolbox(api, id, "/process/session/web/exec"))
        .bearer_auth(API_KEY)
        .json(&json!({
            "command": format!("cd site && exec python3 -m http.server {port} --bind 127.0.0.1"),
            "runAsync": true
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(run.status(), 202);
}

/// GETs `url` (with the token header when given) until the server answers, up to 15 s.
async fn get_when_up(http: &reqwest::Client, url: &str, token: Option<&str>) -> reqwest::Response {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let mut req = http.get(url);
        if let Some(t) = token {
            req = req.header("X-Daytona-Preview-Token", t);
        }
        let resp = req.send().await.unwrap();
        if resp.status() != StatusCode::BAD_GATEWAY {
            return resp;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server in the sandbox never came up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_urls_reach_a_server_in_the_sandbox() {
    let api = Api::start().await;
    let id = api.create_default().await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let port = free_port();
    start_server(&api, &id, port).await;

    let (status, link) = api
        .call(
            Method::GET,
            &format!("/sandbox/{id}/ports/{port}/preview-url"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{link}");
    assert_eq!(link["sandboxId"], id.as_str());
    let url = link["url"].as_str().unwrap().to_string();
    let token = link["token"].as_str().unwrap().to_string();
    assert!(url.starts_with(api.emu.base_url()), "{url}");

    let resp = get_when_up(&api.http, &format!("{url}hello.txt"), Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), "hello preview");
    // The server's own answers pass through, and the query reaches it.
    let resp = api
        .http
        .get(format!("{url}missing.txt?x=1"))
        .header("X-Daytona-Preview-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // The token may also travel in the query.
    let resp = api
        .http
        .get(format!("{url}hello.txt?DAYTONA_SANDBOX_AUTH_KEY={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // Without (or with a wrong) token a private sandbox's preview is 401.
    let resp = api
        .http
        .get(format!("{url}hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = api
        .http
        .get(format!("{url}hello.txt"))
        .header("X-Daytona-Preview-Token", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // A public sandbox needs none.
    let (status, _) = api
        .call(Method::POST, &format!("/sandbox/{id}/public/true"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let resp = api
        .http
        .get(format!("{url}hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    api.call(Method::POST, &format!("/sandbox/{id}/public/false"), None)
        .await;

    // Signed URLs carry their credential; expiring one ends it.
    let (status, signed) = api
        .call(
            Method::GET,
            &format!("/sandbox/{id}/ports/{port}/signed-preview-url?expiresInSeconds=120"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    assert_eq!(signed["port"], port);
    let signed_url = signed["url"].as_str().unwrap().to_string();
    let signed_token = signed["token"].as_str().unwrap().to_string();
    assert!(signed_url.contains(&signed_token));
    let resp = api
        .http
        .get(format!("{signed_url}hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), "hello preview");
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/sandbox/{id}/ports/{port}/signed-preview-url/{signed_token}/expire"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let resp = api
        .http
        .get(format!("{signed_url}hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // A short-lived one stops working on its own.
    let (_, short) = api
        .call(
            Method::GET,
            &format!("/sandbox/{id}/ports/{port}/signed-preview-url?expiresInSeconds=1"),
            None,
        )
        .await;
    let short_url = short["url"].as_str().unwrap().to_string();
    let resp = api
        .http
        .get(format!("{short_url}hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let resp = api
        .http
        .get(format!("{short_url}hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("expired"),
        "{body}"
    );

    // The server goes with its session: the port is closed now.
    let resp = api
        .http
        .delete(toolbox(&api, &id, "/process/session/web"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = api
        .http
        .get(format!("{url}hello.txt"))
        .header("X-Daytona-Preview-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    api.emu.shutdown().await;
}

#[tokio::test]
async fn closed_ports_stopped_sandboxes_and_bad_input_are_typed_errors() {
    let api = Api::start().await;
    let id = api.create_default().await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let port = free_port();
    let (_, link) = api
        .call(
            Method::GET,
            &format!("/sandbox/{id}/ports/{port}/preview-url"),
            None,
        )
        .await;
    let url = link["url"].as_str().unwrap().to_string();
    let token = link["token"].as_str().unwrap().to_string();
    let resp = api
        .http
        .get(&url)
        .header("X-Daytona-Preview-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let body: Value = resp.json().await.unwrap();
    let message = assert_api_error(&body, 502, "/_emulator/preview");
    assert!(message.contains(&format!("port {port}")), "{message}");
    assert!(message.contains("nothing is listening"), "{message}");

    for bad in ["0", "70000", "http"] {
        let (status, _) = api
            .call(
                Method::GET,
                &format!("/sandbox/{id}/ports/{bad}/preview-url"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "port {bad}");
    }
    for bad in ["0", "86401", "-5", "soon"] {
        let (status, body) = api
            .call(
                Method::GET,
                &format!("/sandbox/{id}/ports/3000/signed-preview-url?expiresInSeconds={bad}"),
                None,
            )
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "expiresInSeconds={bad}: {body}"
        );
    }
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/sandbox/{id}/ports/3000/signed-preview-url/nope/expire"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .call(Method::GET, "/sandbox/nope/ports/3000/preview-url", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let resp = api
        .http
        .get(format!(
            "{}/_emulator/preview/nope/3000/",
            api.emu.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = api
        .http
        .get(format!(
            "{}/_emulator/preview-signed/nope/",
            api.emu.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    api.call(Method::POST, &format!("/sandbox/{id}/stop"), None)
        .await;
    let resp = api
        .http
        .get(&url)
        .header("X-Daytona-Preview-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("not running"),
        "{body}"
    );
    api.emu.shutdown().await;
}
