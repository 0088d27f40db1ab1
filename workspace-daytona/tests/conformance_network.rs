//! The shared conformance suite against `DaytonaSandbox` over a network: once through
//! `latency-proxy` (2 ms RTT, the emulator's public URL set to the proxy's, so the toolbox and
//! log WebSockets cross it too), once over HTTPS/WSS with the emulator's generated CA trusted
//! by the client.
//!
//! Each check runs on a runtime of its own, so the emulators and the proxy serve from a thread
//! and runtime of their own for the life of the test binary.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use daytona_emulator::{Emulator, process_data_dir};
use latency_proxy::{Proxy, ProxyConfig};
use workspace_core::WorkspaceSandbox;
use workspace_daytona::{DaytonaClient, DaytonaConfig, DaytonaSandbox};

const API_KEY: &str = "network-conformance-key";

/// Runs `serve` on a thread and runtime of its own; it sends what the tests need on the channel
/// once serving, then must keep its handles alive (pend) for as long as the process lives.
fn detached<T, F>(serve: impl FnOnce(std::sync::mpsc::Sender<T>) -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: Future<Output = ()>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("a runtime for the emulator: {e}"));
        runtime.block_on(serve(tx));
    });
    rx.recv()
        .unwrap_or_else(|_| panic!("the emulator's thread ended before serving"))
}

fn data_dir(prefix: &str) -> std::path::PathBuf {
    process_data_dir(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")), prefix)
}

/// The API URL of an emulator behind a proxy with a 2 ms RTT.
static PROXIED: LazyLock<String> = LazyLock::new(|| {
    detached(|tx| async move {
        let bound = Proxy::bind(ProxyConfig::new(Duration::from_millis(2)))
            .await
            .unwrap_or_else(|e| panic!("the proxy binds: {e}"));
        let emulator = Emulator::builder()
            .api_key(API_KEY)
            .data_dir(data_dir("daytona-conformance-proxied-"))
            .public_url(format!("http://{}", bound.addr()))
            .start()
            .await
            .unwrap_or_else(|e| panic!("the emulator starts: {e}"));
        let proxy = bound.forward_to(emulator.local_addr());
        let _ = tx.send(emulator.api_url());
        std::future::pending::<()>().await;
        drop((emulator, proxy));
    })
});

/// The API URL and generated CA of an emulator serving HTTPS/WSS.
static TLS: LazyLock<(String, String)> = LazyLock::new(|| {
    detached(|tx| async move {
        let emulator = Emulator::builder()
            .api_key(API_KEY)
            .data_dir(data_dir("daytona-conformance-tls-"))
            .tls_self_signed()
            .start()
            .await
            .unwrap_or_else(|e| panic!("the emulator starts: {e}"));
        let ca = emulator.tls_ca_pem().unwrap_or_default().to_string();
        let _ = tx.send((emulator.api_url(), ca));
        std::future::pending::<()>().await;
        drop(emulator);
    })
});

async fn through_proxy() -> Arc<dyn WorkspaceSandbox> {
    let sandbox = DaytonaSandbox::builder()
        .api_key(API_KEY)
        .api_url(PROXIED.as_str())
        .build()
        .unwrap_or_else(|e| panic!("building a DaytonaSandbox: {e}"));
    Arc::new(sandbox)
}

async fn over_tls() -> Arc<dyn WorkspaceSandbox> {
    let (api_url, ca) = &*TLS;
    assert!(api_url.starts_with("https://"), "{api_url}");
    let config = DaytonaConfig::with_api_key(API_KEY)
        .api_url(api_url)
        .and_then(|c| c.add_root_certificates_pem(ca.as_bytes()))
        .unwrap_or_else(|e| panic!("the client config: {e}"));
    let client = DaytonaClient::new(config).unwrap_or_else(|e| panic!("the client: {e}"));
    let sandbox = DaytonaSandbox::builder()
        .client(client)
        .build()
        .unwrap_or_else(|e| panic!("building a DaytonaSandbox: {e}"));
    Arc::new(sandbox)
}

workspace_core::conformance_tests!(proxied, through_proxy);
workspace_core::conformance_tests!(tls, over_tls);
