//! Shared helpers for the control-plane tests: an emulator on a free port and a small JSON
//! client for its `/api`.

#![allow(dead_code)]

use std::time::Duration;

use daytona_emulator::{Emulator, EmulatorBuilder, EmulatorHandle};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const API_KEY: &str = "api-test-key";

/// An emulator plus a client that sends the SDK's headers and the API key.
pub struct Api {
    pub emu: EmulatorHandle,
    pub http: reqwest::Client,
}

impl Api {
    /// An emulator with [`API_KEY`].
    pub async fn start() -> Api {
        Self::start_with(Emulator::builder().api_key(API_KEY)).await
    }

    pub async fn start_with(builder: EmulatorBuilder) -> Api {
        let emu = builder.start().await.expect("emulator starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Api { emu, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.emu.api_url(), path)
    }

    /// A request to `/api{path}` with the API key.
    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(API_KEY)
            .header("X-Daytona-Source", "sdk-rust-test")
    }

    /// Sends and returns status and JSON body (`Value::Null` for an empty body).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.expect("request reaches the emulator");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("non-JSON body ({e}): {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, body)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.req(method, path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.send(req).await
    }

    /// Creates a sandbox; panics unless 200.
    pub async fn create(&self, body: Value) -> Value {
        let (status, sandbox) = self.call(Method::POST, "/sandbox", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "create failed: {sandbox}");
        sandbox
    }

    pub async fn create_default(&self) -> Value {
        self.create(json!({"env": {}, "labels": {"code-toolbox-language": "python"}}))
            .await
    }

    pub async fn get(&self, id: &str) -> (StatusCode, Value) {
        self.call(Method::GET, &format!("/sandbox/{id}"), None)
            .await
    }

    pub async fn state_of(&self, id: &str) -> String {
        let (status, body) = self.get(id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["state"].as_str().expect("state").to_string()
    }

    /// Polls until the sandbox reaches `state` (or panics after 10 s).
    pub async fn wait_state(&self, id: &str, state: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = self.get(id).await;
            if status == StatusCode::OK && body["state"] == state {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "sandbox {id} never reached {state}; last: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until `GET` is 404 (or panics after 10 s).
    pub async fn wait_gone(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = self.get(id).await;
            if status == StatusCode::NOT_FOUND {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "sandbox {id} never went away; last: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Asserts the NestJS error shape and returns the message.
pub fn assert_api_error(body: &Value, status: u16, path_prefix: &str) -> String {
    assert_eq!(body["statusCode"], status, "{body}");
    assert!(body["error"].is_string(), "error text missing: {body}");
    assert!(
        body["path"]
            .as_str()
            .is_some_and(|p| p.starts_with(path_prefix)),
        "path {} does not start with {path_prefix}",
        body["path"]
    );
    assert!(
        body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );
    assert!(
        body.get("source").is_none(),
        "API errors carry no source: {body}"
    );
    body["message"].as_str().expect("message").to_string()
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}
