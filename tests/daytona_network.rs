//! Daytona over a (modelled) network: `daytona-emulator` behind `latency-proxy`, with its public
//! URL set to the proxy's address, driven by the Rust client and `DaytonaSandbox`. Every URL the
//! emulator hands out must name the proxy, and the proxy's counters must show the traffic
//! crossed it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use daytona_emulator::{Emulator, EmulatorHandle};
use latency_proxy::{Proxy, ProxyConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use workspace_core::{ExecuteCommandOptions, WorkspaceSandbox};
use workspace_daytona::{DaytonaClient, DaytonaConfig, DaytonaSandbox};

const API_KEY: &str = "network-test-key";

/// An emulator whose public URL is a proxy (RTT `rtt`) in front of it.
async fn emulator_behind_proxy(rtt: Duration) -> (EmulatorHandle, Proxy) {
    let bound = Proxy::bind(ProxyConfig::new(rtt)).await.unwrap();
    let emulator = Emulator::builder()
        .api_key(API_KEY)
        .public_url(format!("http://{}", bound.addr()))
        .start()
        .await
        .expect("emulator starts");
    let proxy = bound.forward_to(emulator.local_addr());
    (emulator, proxy)
}

/// A one-response HTTP server on the host (sandbox commands share the host's network, so the
/// preview proxy reaches it as a port of the sandbox).
async fn host_http_server(body: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    port
}

/// A command whose output arrives in two parts, streamed to `on_stdout` (over the log
/// WebSocket) and returned whole.
async fn streamed_command(sandbox: &DaytonaSandbox) {
    let streamed = Arc::new(Mutex::new(String::new()));
    let sink = streamed.clone();
    let result = sandbox
        .execute_command(
            "sh",
            &["-c".into(), "echo one; sleep 0.2; echo two".into()],
            ExecuteCommandOptions::new()
                .timeout(Duration::from_secs(30))
                .on_stdout(move |chunk| sink.lock().unwrap().push_str(chunk)),
        )
        .await
        .unwrap();
    assert_eq!(result.exit_code, 0, "{result:?}");
    assert_eq!(result.stdout, "one\ntwo\n");
    assert_eq!(*streamed.lock().unwrap(), "one\ntwo\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daytona_sandbox_works_through_the_proxy_and_every_url_names_it() {
    let (emulator, proxy) = emulator_behind_proxy(Duration::from_millis(5)).await;
    let public = format!("http://{}", proxy.addr());
    assert_eq!(emulator.base_url(), public);
    assert_ne!(emulator.listen_url(), public);

    let client = DaytonaClient::new(
        DaytonaConfig::with_api_key(API_KEY)
            .api_url(&format!("{public}/api"))
            .unwrap(),
    )
    .unwrap();
    let sandbox = DaytonaSandbox::builder()
        .client(client)
        .name("network-test")
        .build()
        .unwrap();

    streamed_command(&sandbox).await;

    let daytona = sandbox.daytona().unwrap();
    assert_eq!(
        daytona.data().toolbox_proxy_url,
        format!("{public}/toolbox"),
        "toolboxProxyUrl names the proxy"
    );
    assert_eq!(
        daytona.toolbox_url().await.unwrap().as_str(),
        format!("{public}/toolbox/{}", daytona.id()).as_str(),
    );

    let port = host_http_server("served behind the proxy").await;
    let link = daytona.get_preview_link(port).await.unwrap();
    assert!(link.url.starts_with(&format!("{public}/")), "{}", link.url);
    let (header, token) = link.auth_header();
    let page = reqwest::Client::new()
        .get(&link.url)
        .header(header, token)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().await.unwrap(), "served behind the proxy");
    let signed = daytona
        .get_signed_preview_url(port, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(
        signed.url.starts_with(&format!("{public}/")),
        "{}",
        signed.url
    );
    let page = reqwest::get(&signed.url).await.unwrap();
    assert_eq!(page.text().await.unwrap(), "served behind the proxy");

    sandbox.destroy().await.unwrap();

    let stats = proxy.stats();
    assert!(stats.requests_visible(), "{stats:?}");
    assert!(stats.connections_opened >= 1, "{stats:?}");
    assert!(stats.bytes_to_upstream > 0 && stats.bytes_to_client > 0);
    // The command's output came over a WebSocket (the log follow), through the proxy.
    assert!(stats.websocket_upgrades >= 1, "{stats:?}");
    // Every request the emulator served came through the proxy.
    let served = emulator.requests().len() as u64;
    assert!(served > 0);
    assert!(
        stats.http_requests >= served,
        "the proxy saw {} requests, the emulator served {served}",
        stats.http_requests
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_bad_public_url_is_a_typed_error_naming_it() {
    for bad in [
        "not a url",
        "ftp://127.0.0.1:9",
        "http://127.0.0.1:9/api",
        "http://127.0.0.1:9/?x=1",
    ] {
        let err = Emulator::builder()
            .public_url(bad)
            .start()
            .await
            .unwrap_err();
        assert!(
            matches!(err, daytona_emulator::EmulatorError::InvalidPublicUrl { ref url, .. } if url == bad),
            "{bad}: {err:?}"
        );
    }
    let err = Emulator::builder()
        .public_url("http://user:hunter2@127.0.0.1:9")
        .start()
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

/// A client of `emulator` (at `api_url`) trusting `ca_pem`.
fn client_trusting(api_url: &str, ca_pem: &str) -> DaytonaClient {
    DaytonaClient::new(
        DaytonaConfig::with_api_key(API_KEY)
            .api_url(api_url)
            .unwrap()
            .add_root_certificates_pem(ca_pem.as_bytes())
            .unwrap(),
    )
    .unwrap()
}

/// Create, a streamed command, files, destroy: the provider's paths over HTTP and WebSocket.
async fn exercise(client: DaytonaClient) {
    let sandbox = DaytonaSandbox::builder()
        .client(client)
        .name("tls-test")
        .build()
        .unwrap();
    streamed_command(&sandbox).await;
    let fs = sandbox.filesystem().expect("DaytonaSandbox has files");
    let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    fs.write_file("blob.bin", &data).await.unwrap();
    assert_eq!(fs.read_file("blob.bin").await.unwrap(), data);
    let listed = fs.list_dir(".").await.unwrap();
    assert!(listed.iter().any(|e| e.name == "blob.bin"), "{listed:?}");
    sandbox.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daytona_sandbox_over_https_and_wss_with_a_generated_ca() {
    let emulator = Emulator::builder()
        .api_key(API_KEY)
        .tls_self_signed()
        .start()
        .await
        .expect("emulator starts");
    assert!(emulator.base_url().starts_with("https://"));
    let sandbox_url = emulator.api_url();
    let ca = emulator.tls_ca_pem().expect("a generated CA").to_string();

    // Without the CA the client refuses the server: a typed connection error, no panic.
    let untrusting = DaytonaClient::new(
        DaytonaConfig::with_api_key(API_KEY)
            .api_url(&sandbox_url)
            .unwrap(),
    )
    .unwrap();
    let err = untrusting
        .create(Default::default(), Some(Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, workspace_daytona::DaytonaError::Connect { .. }),
        "{err:?}"
    );

    exercise(client_trusting(&sandbox_url, &ca)).await;
    // The output came over WSS (the log follow upgraded, status 101), trusting the same CA.
    assert!(
        emulator.requests().iter().any(|r| r.path.ends_with("/logs")
            && r.header("upgrade") == Some("websocket")
            && r.status == Some(101)),
        "the command's log was followed over a WebSocket"
    );
    emulator.shutdown().await;
}

/// A CA and a server certificate for `127.0.0.1` issued by it, as PEM files in `dir`:
/// `(ca.pem, server.pem, server.key)`.
fn issue_certificates(dir: &std::path::Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "network test CA");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &Issuer::from_params(&ca, &ca_key))
        .unwrap();
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    (ca_pem, cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_from_files_behind_the_proxy_is_opaque_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, cert, key) = issue_certificates(dir.path());
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();

    let bound = Proxy::bind(ProxyConfig::new(Duration::from_millis(2)))
        .await
        .unwrap();
    let public = format!("https://{}", bound.addr());
    let emulator = Emulator::builder()
        .api_key(API_KEY)
        .tls_files(&cert, &key)
        .public_url(&public)
        .start()
        .await
        .expect("emulator starts");
    let proxy = bound.forward_to(emulator.local_addr());
    assert_eq!(emulator.tls_ca_pem(), None);
    assert!(emulator.tls_certificate_pem().is_some());

    // The CA as a file, as DAYTONA_EXTRA_CA_CERTS names it.
    let config = DaytonaConfig::from_lookup(|name| match name {
        "DAYTONA_API_KEY" => Some(API_KEY.to_string()),
        "DAYTONA_API_URL" => Some(format!("{public}/api")),
        "DAYTONA_EXTRA_CA_CERTS" => Some(ca_file.to_str().unwrap().to_string()),
        _ => None,
    })
    .unwrap();
    assert_eq!(config.extra_root_certificates(), 1);
    exercise(DaytonaClient::new(config).unwrap()).await;

    let stats = proxy.stats();
    assert!(stats.connections_opened >= 1, "{stats:?}");
    assert_eq!(stats.tls_connections, stats.connections_opened, "{stats:?}");
    assert!(!stats.requests_visible());
    assert_eq!(stats.http_requests, 0);
    assert!(
        stats.bytes_to_client > 300_000,
        "the file came back through the proxy"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_warm_command_opens_no_connection_counted_at_the_proxy() {
    let (emulator, proxy) = emulator_behind_proxy(Duration::from_millis(2)).await;
    let public = format!("http://{}", proxy.addr());
    let sandbox = DaytonaSandbox::builder()
        .api_key(API_KEY)
        .api_url(format!("{public}/api"))
        .build()
        .unwrap();
    // The first commands make the resident shell (in the background) and fill the pool.
    for _ in 0..3 {
        streamed_command(&sandbox).await;
    }
    let settled = async {
        loop {
            let before = proxy.stats();
            streamed_command(&sandbox).await;
            let after = proxy.stats();
            if after.connections_opened == before.connections_opened {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), settled)
        .await
        .expect("the handle never got to commands that open no connection");
    // Now ten warm commands: no new connection, one request each (the input line).
    let before = proxy.stats();
    for _ in 0..10 {
        streamed_command(&sandbox).await;
    }
    let used = proxy.stats().since(&before);
    assert_eq!(used.connections_opened, 0, "{used:?}");
    assert!(used.requests_visible(), "{used:?}");
    assert_eq!(used.http_requests, 10, "{used:?}");
    assert_eq!(used.websocket_upgrades, 0, "{used:?}");
    sandbox.destroy().await.unwrap();
    emulator.shutdown().await;
}
