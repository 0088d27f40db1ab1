//! `WorkspaceSandbox::port_url` end to end: a Python HTTP server started in the sandbox answers
//! through the URL (with its headers) on the local provider and on Daytona (the emulator's
//! preview proxy); an isolated local sandbox without network refuses with the reason.

use std::sync::Arc;
use std::time::Duration;

use daytona_emulator::Emulator;
use workspace_sandbox::daytona::DaytonaSandbox;
use workspace_sandbox::{
    Isolation, LocalSandbox, OutputOffsets, ProcessManagerExt, SandboxError, SpawnOptions,
    WorkspaceSandbox,
};

const KEY: &str = "ports-test-key";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("a free port: {e}"))
}

/// Serve a page on `port` in the sandbox and fetch it through `port_url`; the status.
async fn serve_and_fetch(sandbox: &dyn WorkspaceSandbox, port: u16) -> u16 {
    let processes = sandbox.processes().unwrap_or_else(|| panic!("processes"));
    let args: Vec<String> = [
        "-u",
        "-m",
        "http.server",
        &port.to_string(),
        "--bind",
        "0.0.0.0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let info = processes
        .spawn("python3", &args, SpawnOptions::default())
        .await
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let ready = regex::Regex::new("Serving HTTP").unwrap_or_else(|e| panic!("{e}"));
    let seen = processes
        .wait_for_output(
            &info.id,
            OutputOffsets::default(),
            &ready,
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|e| panic!("wait_for_output: {e}"));
    assert!(seen.matched, "the server did not start: {seen:?}");
    let url = sandbox
        .port_url(port)
        .await
        .unwrap_or_else(|e| panic!("port_url: {e}"));
    assert_eq!(url.port, port);
    let debug = format!("{url:?}");
    for (_, value) in &url.headers {
        assert!(
            !debug.contains(value.as_str()),
            "Debug prints a header value: {debug}"
        );
    }
    let client = reqwest::Client::new();
    let mut request = client.get(&url.url).timeout(Duration::from_secs(10));
    for (name, value) in &url.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let status = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {}: {e}", url.url))
        .status()
        .as_u16();
    processes
        .kill(&info.id)
        .await
        .unwrap_or_else(|e| panic!("kill: {e}"));
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_port_url_reaches_a_server() {
    let sandbox = LocalSandbox::builder()
        .isolation(Isolation::None)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(sandbox.capabilities().ports);
    let port = free_port();
    assert_eq!(serve_and_fetch(&sandbox, port).await, 200);
    assert_eq!(
        sandbox.port_url(port).await.map(|u| u.url).ok(),
        Some(format!("http://127.0.0.1:{port}"))
    );
    assert!(matches!(
        sandbox.port_url(0).await,
        Err(SandboxError::InvalidArgument { .. })
    ));
    sandbox.destroy().await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_local_sandbox_without_network_says_why() {
    let sandbox = LocalSandbox::builder()
        .isolation(Isolation::Auto)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    if !sandbox.capabilities().isolated {
        eprintln!("bubblewrap unavailable here: the isolated case is not exercised");
        return;
    }
    assert!(!sandbox.capabilities().ports);
    match sandbox.port_url(8080).await {
        Err(SandboxError::PermissionDenied { message }) => {
            assert!(message.contains(".network(true)"), "{message}")
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    sandbox.destroy().await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daytona_port_url_is_the_preview_link() {
    let emulator = Emulator::builder()
        .api_key(KEY)
        .start()
        .await
        .unwrap_or_else(|e| panic!("emulator: {e}"));
    let sandbox: Arc<dyn WorkspaceSandbox> = Arc::new(
        DaytonaSandbox::builder()
            .api_key(KEY)
            .api_url(emulator.api_url())
            .build()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    assert!(sandbox.capabilities().ports);
    let port = free_port();
    assert_eq!(serve_and_fetch(sandbox.as_ref(), port).await, 200);
    sandbox.destroy().await.unwrap_or_else(|e| panic!("{e}"));
    emulator.shutdown().await;
}
