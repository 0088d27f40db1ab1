//! Protocol corners the emulator does not produce, served by a scripted axum server over real
//! HTTP and WebSocket: a DTO without `toolboxProxyUrl`, an old daemon's plain-text logs and
//! `code` field, WebSocket frames cut at every byte, close codes other than 1000, a connection
//! dropped without a close frame, an HTTP-date `Retry-After`, and a list cursor that never
//! advances.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use workspace_daytona::api::toolbox::SessionExecuteRequest;
use workspace_daytona::{
    DaytonaClient, DaytonaConfig, DaytonaError, ExecuteOptions, FollowEnd, LogEvent, RetryConfig,
};

const LOG: &[u8] =
    "\u{1}\u{1}\u{1}héllo ☃ out\n\u{2}\u{2}\u{2}err 𝄞\n\u{1}\u{1}\u{1}second\n".as_bytes();

#[derive(Clone)]
struct Mock {
    base: String,
    ratelimited: Arc<AtomicUsize>,
    proxy_lookups: Arc<AtomicUsize>,
}

fn sandbox_json(id: &str) -> serde_json::Value {
    json!({"id": id, "name": id, "state": "started", "toolboxProxyUrl": "", "labels": {}})
}

async fn get_sandbox(
    State(m): State<Mock>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    assert_eq!(headers["authorization"], "Bearer k");
    if id == "ratelimited" && m.ratelimited.fetch_add(1, Ordering::SeqCst) == 0 {
        let when = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc2822();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, when)],
            axum::Json(json!({"statusCode": 429, "message": "slow down"})),
        )
            .into_response();
    }
    axum::Json(sandbox_json(&id)).into_response()
}

async fn proxy_url(State(m): State<Mock>) -> Response {
    m.proxy_lookups.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({"url": format!("{}/tb/", m.base)})).into_response()
}

async fn list(Query(q): Query<Vec<(String, String)>>) -> Response {
    let _ = q;
    axum::Json(json!({"items": [sandbox_json("a")], "nextCursor": "same"})).into_response()
}

async fn execute() -> Response {
    axum::Json(json!({"code": 5, "result": "old daemon"})).into_response()
}

async fn session_exec() -> Response {
    axum::Json(json!({"cmdId": "c1", "output": String::from_utf8_lossy(LOG), "exitCode": 0}))
        .into_response()
}

async fn logs(
    Path((_id, _sid, cid)): Path<(String, String, String)>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    assert_eq!(headers["authorization"], "Bearer k");
    assert_eq!(headers["x-daytona-source"], "sdk-rust");
    let Ok(ws) = ws else {
        // An old daemon: the raw log as text.
        return ([(header::CONTENT_TYPE, "text/plain")], LOG.to_vec()).into_response();
    };
    ws.on_upgrade(move |mut socket| async move {
        let (chunk, ending) = cid.split_once('-').unwrap_or(("1", "close1000"));
        let chunk: usize = chunk.parse().unwrap_or(1);
        for frame in LOG.chunks(chunk) {
            if socket
                .send(Message::Binary(frame.to_vec().into()))
                .await
                .is_err()
            {
                return;
            }
        }
        match ending {
            "close1000" => {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: 1000,
                        reason: "".into(),
                    })))
                    .await;
            }
            "close1011" => {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: 1011,
                        reason: "daemon crashed".into(),
                    })))
                    .await;
            }
            // "drop": return without a close frame; the TCP connection just ends.
            _ => {}
        }
    })
}

async fn start_mock() -> (Mock, DaytonaClient) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mock = Mock {
        base: base.clone(),
        ratelimited: Arc::default(),
        proxy_lookups: Arc::default(),
    };
    let app = Router::new()
        .route("/api/sandbox", get(list))
        .route("/api/sandbox/{id}", get(get_sandbox))
        .route("/api/sandbox/{id}/toolbox-proxy-url", get(proxy_url))
        .route("/tb/{id}/process/execute", post(execute))
        .route("/tb/{id}/process/session/{sid}/exec", post(session_exec))
        .route(
            "/tb/{id}/process/session/{sid}/command/{cid}/logs",
            get(logs),
        )
        .with_state(mock.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let client = DaytonaClient::new(
        DaytonaConfig::with_api_key("k")
            .api_url(&format!("{base}/api"))
            .unwrap()
            .retry(RetryConfig {
                initial_backoff: Duration::from_millis(5),
                ..RetryConfig::default()
            }),
    )
    .unwrap();
    (mock, client)
}

fn expected() -> (String, String) {
    ("héllo ☃ out\nsecond\n".to_string(), "err 𝄞\n".to_string())
}

#[tokio::test]
async fn missing_toolbox_proxy_url_is_looked_up_once() {
    let (mock, client) = start_mock().await;
    let sandbox = client.get("sb").await.unwrap();
    let url = sandbox.toolbox_url().await.unwrap();
    assert_eq!(url.as_str(), format!("{}/tb/sb", mock.base));
    let p = sandbox.process();
    p.execute("x", &ExecuteOptions::new()).await.unwrap();
    p.execute("x", &ExecuteOptions::new()).await.unwrap();
    assert_eq!(mock.proxy_lookups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn old_daemon_shapes_are_understood() {
    let (_mock, client) = start_mock().await;
    let sandbox = client.get("sb").await.unwrap();
    let p = sandbox.process();
    let r = p.execute("x", &ExecuteOptions::new()).await.unwrap();
    assert_eq!((r.exit_code, r.result.as_str()), (5, "old daemon"));

    let r = p
        .execute_session_command(
            "s",
            &SessionExecuteRequest {
                command: "x".into(),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    let (out, err) = expected();
    assert_eq!(r.stdout.as_deref(), Some(out.as_str()));
    assert_eq!(r.stderr.as_deref(), Some(err.as_str()));

    let logs = p.get_session_command_logs("s", "c1").await.unwrap();
    assert_eq!((logs.stdout, logs.stderr), expected());
}

#[tokio::test]
async fn websocket_frames_cut_at_every_size_demux_exactly() {
    let (_mock, client) = start_mock().await;
    let sandbox = client.get("sb").await.unwrap();
    let p = sandbox.process();
    for chunk in 1..=LOG.len() {
        let mut out = String::new();
        let mut err = String::new();
        let end = p
            .follow_session_command_logs_with(
                "s",
                &format!("{chunk}-close1000"),
                |t| out.push_str(t),
                |t| err.push_str(t),
            )
            .await
            .unwrap();
        assert!(end.is_complete(), "chunk {chunk}: {end:?}");
        assert_eq!((out, err), expected(), "chunk {chunk}");
    }
}

#[tokio::test]
async fn other_close_codes_and_drops_are_reported() {
    let (_mock, client) = start_mock().await;
    let sandbox = client.get("sb").await.unwrap();
    let p = sandbox.process();

    let events: Vec<LogEvent> = p
        .follow_session_command_logs("s", "3-close1011")
        .await
        .unwrap()
        .collect()
        .await;
    match events.last().unwrap() {
        LogEvent::End(FollowEnd::Closed { code, reason }) => {
            assert_eq!(*code, 1011);
            assert_eq!(reason, "daemon crashed");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, LogEvent::End(_)))
            .count(),
        1
    );

    let mut out = String::new();
    let end = p
        .follow_session_command_logs_with("s", "4-drop", |t| out.push_str(t), |_| {})
        .await
        .unwrap();
    assert!(matches!(end, FollowEnd::Dropped { .. }), "{end:?}");
    assert!(!end.is_complete());
    assert_eq!(
        out,
        expected().0,
        "everything sent before the drop is delivered"
    );
}

#[tokio::test]
async fn http_date_retry_after_is_honoured() {
    let (mock, client) = start_mock().await;
    let started = Instant::now();
    client.get("ratelimited").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(mock.ratelimited.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_cursor_that_never_advances_is_an_error_not_a_loop() {
    let (_mock, client) = start_mock().await;
    let results: Vec<Result<_, _>> = client.list([("a", "b")]).collect().await;
    assert!(results.len() <= 3, "{}", results.len());
    assert!(matches!(
        results.last(),
        Some(Err(DaytonaError::Decode { .. }))
    ));
    let err = client
        .list(Vec::<(String, String)>::new())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(err, DaytonaError::Decode { .. }));
}
