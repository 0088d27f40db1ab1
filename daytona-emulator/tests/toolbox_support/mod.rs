//! Shared fixture for the toolbox tests: a real emulator on a free port, one started sandbox,
//! and a reqwest client that talks to its toolbox the way the TypeScript SDK does.

#![allow(dead_code)]

use std::time::Duration;

use daytona_emulator::layout::Isolation;
use daytona_emulator::server::{Emulator, EmulatorHandle};
use daytona_emulator::state::ToolboxTarget;
use daytona_emulator::toolbox::RuntimeSnapshot;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

/// The SDK version the current TypeScript SDK sends.
pub const SDK_VERSION: &str = "0.218.0";
pub const API_KEY: &str = "toolbox-test-key";

pub struct Fixture {
    pub emu: EmulatorHandle,
    pub http: reqwest::Client,
    pub sandbox_id: String,
    /// `{toolboxProxyUrl}/{sandboxId}`.
    pub base: String,
}

impl Fixture {
    /// An emulator with one started sandbox (env `SANDBOX_VAR=from-sandbox`).
    pub async fn start() -> Fixture {
        let emu = Emulator::builder()
            .api_key(API_KEY)
            .start()
            .await
            .expect("emulator starts");
        let http = reqwest::Client::new();
        let created: Value = http
            .post(format!("{}/sandbox", emu.api_url()))
            .bearer_auth(API_KEY)
            .json(&json!({"env": {"SANDBOX_VAR": "from-sandbox"}, "labels": {}}))
            .send()
            .await
            .expect("create request")
            .error_for_status()
            .expect("create succeeds")
            .json()
            .await
            .expect("sandbox json");
        let sandbox_id = created["id"].as_str().expect("id").to_string();
        let toolbox = created["toolboxProxyUrl"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| emu.toolbox_proxy_url());
        let base = format!("{}/{}", toolbox.trim_end_matches('/'), sandbox_id);
        let fixture = Fixture {
            emu,
            http,
            sandbox_id,
            base,
        };
        fixture.wait_started().await;
        fixture
    }

    async fn wait_started(&self) {
        for _ in 0..200 {
            let sb: Value = self
                .http
                .get(format!(
                    "{}/sandbox/{}",
                    self.emu.api_url(),
                    self.sandbox_id
                ))
                .bearer_auth(API_KEY)
                .send()
                .await
                .expect("get sandbox")
                .json()
                .await
                .expect("sandbox json");
            if sb["state"] == "started" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("sandbox never started");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A toolbox request with the SDK's headers.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(API_KEY)
            .header("X-Daytona-SDK-Version", SDK_VERSION)
            .header("X-Daytona-Source", "sdk-typescript")
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.req(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.req(Method::POST, path)
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.req(Method::DELETE, path)
    }

    /// Sends `method path` with an optional raw JSON body; the status and the JSON answer.
    pub async fn call_json(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (reqwest::StatusCode, Value) {
        let mut req = self.req(method, path);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        (status, resp.json().await.expect("a JSON body"))
    }

    pub fn target(&self) -> ToolboxTarget {
        self.emu
            .state()
            .toolbox_target(&self.sandbox_id)
            .expect("sandbox is a toolbox target")
    }

    pub fn snapshot(&self) -> RuntimeSnapshot {
        self.target().runtime.snapshot()
    }

    pub fn isolation(&self) -> Isolation {
        self.target().layout.isolation()
    }

    /// The sandbox path of the home dir (`/home/daytona`, or the host path without bwrap).
    pub fn home(&self) -> String {
        self.target().layout.home_dir().to_string()
    }

    /// The sandbox path of `/tmp` (the host path without bwrap).
    pub fn tmp(&self) -> String {
        match self.isolation() {
            Isolation::Bubblewrap => "/tmp".to_string(),
            Isolation::Host => self.target().layout.tmp_host().display().to_string(),
        }
    }

    /// `POST /process/execute` and the JSON answer (asserting 200).
    pub async fn exec(&self, command: &str) -> Value {
        let resp = self
            .post("/process/execute")
            .json(&json!({"command": command}))
            .send()
            .await
            .expect("execute request");
        assert_eq!(resp.status(), 200, "execute {command:?}");
        resp.json().await.expect("execute json")
    }

    /// Wait until no process of the sandbox is alive (up to 10 s); the final count.
    pub async fn settle_processes(&self) -> usize {
        for _ in 0..200 {
            if self.snapshot().live_processes == 0 {
                return 0;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.snapshot().live_processes
    }

    pub async fn shutdown(self) {
        self.emu.shutdown().await;
    }
}

/// Whether any process on the machine has `needle` in its command line.
pub fn process_with_arg_exists(needle: &str) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    let me = std::process::id().to_string();
    dir.flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me {
            return false;
        }
        // Zombies have an empty cmdline; only live processes count.
        std::fs::read(e.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(needle)
            })
            .unwrap_or(false)
    })
}

/// Wait (up to 10 s) for a process with `needle` in its command line: a job started in the
/// background may not have exec'd yet when the command that started it has answered.
pub async fn wait_process_appears(needle: &str) -> bool {
    for _ in 0..200 {
        if process_with_arg_exists(needle) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Wait (up to 10 s) until no process has `needle` in its command line.
pub async fn wait_process_gone(needle: &str) -> bool {
    for _ in 0..200 {
        if !process_with_arg_exists(needle) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
