//! Preview links against the emulator: a real HTTP server started in the sandbox, reached
//! through the preview URL with reqwest.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use workspace_daytona::api::toolbox::SessionExecuteRequest;
use workspace_daytona::{DaytonaError, PREVIEW_TOKEN_HEADER};

/// A port nothing listens on right now (sandbox commands share the host's network).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn preview_link_reaches_a_server_in_the_sandbox() {
    let (_emu, _client, sandbox) = setup().await;
    let home = sandbox.user_home_dir().await.unwrap();
    sandbox
        .fs()
        .upload_bytes(
            b"<h1>hello preview</h1>".to_vec(),
            &format!("{home}/site/index.html"),
        )
        .await
        .unwrap();
    let port = free_port();
    let process = sandbox.process();
    process.create_session("web").await.unwrap();
    process
        .execute_session_command(
            "web",
            &SessionExecuteRequest {
                command: format!(
                    "python3 -m http.server {port} --bind 127.0.0.1 --directory {home}/site"
                ),
                run_async: Some(true),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();

    let link = sandbox.get_preview_link(port).await.unwrap();
    assert_eq!(link.sandbox_id, sandbox.id());
    assert_eq!(link.port, port);
    assert!(!format!("{link:?}").contains(link.token.expose()));
    let http = reqwest::Client::new();
    let (name, value) = link.auth_header();
    assert_eq!(name, PREVIEW_TOKEN_HEADER);

    // The server needs a moment to bind; until then the proxy answers 502.
    let started = Instant::now();
    let page = loop {
        let resp = http
            .get(&link.url)
            .header(name, value)
            .send()
            .await
            .unwrap();
        if resp.status().is_success() {
            break resp.text().await.unwrap();
        }
        assert_eq!(resp.status().as_u16(), 502, "unexpected {resp:?}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "server never came up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(page.contains("hello preview"), "{page}");

    // The token is what opens a private sandbox's preview.
    let denied = http.get(&link.url).send().await.unwrap();
    assert_eq!(denied.status().as_u16(), 401);

    // A signed URL works without any header.
    let signed = sandbox
        .get_signed_preview_url(port, Some(Duration::from_secs(120)))
        .await
        .unwrap();
    assert_eq!(signed.port, port);
    assert!(!format!("{signed:?}").contains(signed.token.expose()));
    let page = http
        .get(&signed.url)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("hello preview"), "{page}");

    process.delete_session("web").await.unwrap();
}

#[tokio::test]
async fn a_closed_port_answers_with_an_error_status() {
    let (_emu, _client, sandbox) = setup().await;
    let port = free_port();
    let link = sandbox.get_preview_link(port).await.unwrap();
    let (name, value) = link.auth_header();
    let resp = reqwest::Client::new()
        .get(&link.url)
        .header(name, value)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 502, "{resp:?}");
    assert!(resp.text().await.unwrap().contains(&port.to_string()));

    for err in [
        sandbox.get_preview_link(0).await.unwrap_err(),
        sandbox.get_signed_preview_url(0, None).await.unwrap_err(),
        sandbox
            .get_signed_preview_url(port, Some(Duration::ZERO))
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(err, DaytonaError::InvalidArgument { .. }),
            "{err:?}"
        );
    }
}
