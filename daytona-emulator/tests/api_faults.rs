//! Fault injection (each kind, through the Rust handle and the HTTP control API), sandboxes
//! stopped or deleted underneath a client, and the inspection endpoints.

#![allow(clippy::unwrap_used)]

mod api_support;

use std::time::{Duration, Instant};

use api_support::{API_KEY, Api, assert_api_error};
use daytona_emulator::{Emulator, FaultAction, FaultRule, WsDrop};
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn status_faults_answer_in_the_right_shape_and_count_down() {
    let api = Api::start().await;
    api.emu
        .add_fault(
            FaultRule::new(
                "/api/sandbox",
                FaultAction::Status {
                    status: 503,
                    message: None,
                    retry_after: Some(2),
                },
            )
            .method("POST")
            .times(1),
        )
        .unwrap();
    let resp = api
        .req(Method::POST, "/sandbox")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "2");
    let body: Value = resp.json().await.unwrap();
    assert!(assert_api_error(&body, 503, "/api/sandbox").contains("Injected fault"));
    assert!(
        api.emu.sandboxes().is_empty(),
        "a faulted request does not reach the handler"
    );
    // `times(1)`: the next create goes through; GETs never matched.
    let sb = api.create_default().await;
    assert_eq!(api.emu.faults()[0].hits, 1);

    // 429 gets the throttler's message; toolbox faults come in the daemon shape.
    let id = sb["id"].as_str().unwrap();
    api.emu
        .add_fault(FaultRule::status("/api/sandbox/*", 429).times(1))
        .unwrap();
    let (status, body) = api.get(id).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["message"], "ThrottlerException: Too Many Requests");
    api.emu
        .add_fault(FaultRule::status("/toolbox/*/version", 500).times(1))
        .unwrap();
    let resp = api
        .http
        .get(format!("{}/toolbox/{id}/version", api.emu.base_url()))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["source"], "DAYTONA_DAEMON");
    assert_eq!(body["code"], "INTERNAL_SERVER_ERROR");
}

#[tokio::test]
async fn reset_faults_close_the_connection_with_an_rst() {
    let api = Api::start().await;
    api.emu
        .add_fault(FaultRule::reset("/api/sandbox").method("GET").times(2))
        .unwrap();

    // Raw TCP: no response bytes, and the read fails with ECONNRESET.
    let mut tcp = tokio::net::TcpStream::connect(api.emu.local_addr())
        .await
        .unwrap();
    let request =
        format!("GET /api/sandbox HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("the server acts promptly");
    match read {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        Ok(n) => panic!(
            "expected a reset, got {n} bytes: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
    }

    // reqwest sees a failed request that is neither a timeout nor an HTTP status.
    let err = api.req(Method::GET, "/sandbox").send().await.unwrap_err();
    assert!(!err.is_timeout() && err.status().is_none(), "{err:?}");
    // Rules are used up; the server is fine.
    let (status, _) = api.call(Method::GET, "/sandbox", None).await;
    assert_eq!(status, StatusCode::OK);
    let log = api.emu.requests();
    assert_eq!(
        log.iter().filter(|r| r.status.is_none()).count(),
        2,
        "reset requests have no status"
    );
}

#[tokio::test]
async fn delay_and_hang_faults() {
    let api = Api::start().await;
    api.emu
        .add_fault(FaultRule::delay("/api/sandbox", Duration::from_millis(300)).times(1))
        .unwrap();
    let started = Instant::now();
    let (status, _) = api.call(Method::GET, "/sandbox", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));

    api.emu
        .add_fault(FaultRule::hang("/api/sandbox/**"))
        .unwrap();
    let err = api
        .req(Method::GET, "/sandbox/anything")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    api.emu.clear_faults();
    let (status, _) = api.call(Method::GET, "/sandbox/anything", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn websocket_drop_cuts_after_n_frames_without_a_close_frame() {
    let api = Api::start().await;
    api.emu
        .add_fault(FaultRule::drop_websocket("/api/socket.io/", WsDrop::AfterFrames(2)).times(1))
        .unwrap();
    let url = format!(
        "{}/api/socket.io/?EIO=4&transport=websocket",
        api.emu.base_url().replacen("http", "ws", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let open = ws.next().await.unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with('0'));
    ws.send(Message::Text(
        format!("40{}", json!({"token": API_KEY})).into(),
    ))
    .await
    .unwrap();
    let connected = ws.next().await.unwrap().unwrap();
    assert!(connected.to_text().unwrap().starts_with("40"));
    // Frame budget spent: the next read is an abrupt end, never a close frame.
    match tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("cut promptly")
    {
        Some(Ok(Message::Close(frame))) => panic!("got a clean close: {frame:?}"),
        Some(Ok(other)) => panic!("got another frame: {other:?}"),
        Some(Err(_)) | None => {}
    }
    // The rule fired once; the next socket is normal.
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.next().await.unwrap().unwrap();
    ws.send(Message::Text(
        format!("40{}", json!({"token": API_KEY})).into(),
    ))
    .await
    .unwrap();
    ws.next().await.unwrap().unwrap();
    api.create_default().await;
    let event = ws.next().await.unwrap().unwrap();
    assert!(event.to_text().unwrap().starts_with("42"));
    // The toolbox handlers ask the same state for their own sockets.
    api.emu
        .add_fault(FaultRule::drop_websocket(
            "/toolbox/*/process/**",
            WsDrop::AfterBytes(10),
        ))
        .unwrap();
    assert_eq!(
        api.emu
            .state()
            .ws_drop_after("/toolbox/x/process/session/s/command/c/logs"),
        Some(WsDrop::AfterBytes(10))
    );
    assert_eq!(api.emu.state().ws_drop_after("/toolbox/x/files"), None);
}

#[tokio::test]
async fn faults_via_the_http_control_api() {
    let api = Api::start().await;
    let control = format!("{}/_emulator/faults", api.emu.base_url());
    let resp = api
        .http
        .post(&control)
        .json(&json!({"method": "GET", "path": "/api/sandbox", "times": 1,
                      "action": {"kind": "status", "status": 429, "retryAfter": 7}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = resp.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    let resp = api.req(Method::GET, "/sandbox").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "7");
    let rules: Value = api
        .http
        .get(&control)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rules[0]["id"], id);
    assert_eq!(rules[0]["hits"], 1);
    assert_eq!(rules[0]["rule"]["action"]["kind"], "status");
    let resp = api
        .http
        .delete(format!("{control}/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = api
        .http
        .delete(format!("{control}/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    for bad in [
        json!({"path": "/x", "action": {"kind": "status", "status": 200}}),
        json!({"path": "no-slash", "action": {"kind": "reset"}}),
        json!({"path": "/x", "action": {"kind": "explode"}}),
        json!({"action": {"kind": "reset"}}),
    ] {
        let resp = api.http.post(&control).json(&bad).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("invalid fault rule"),
            "{body}"
        );
    }
    // Control routes are never subject to faults.
    api.emu.add_fault(FaultRule::status("/**", 500)).unwrap();
    let resp = api.http.get(&control).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = api.http.delete(&control).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, _) = api.call(Method::GET, "/sandbox", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn faults_from_the_builder_and_bad_rules_at_start() {
    let api = Api::start_with(
        Emulator::builder()
            .api_key(API_KEY)
            .fault(FaultRule::status("/api/sandbox", 502).times(1)),
    )
    .await;
    let (status, _) = api.call(Method::GET, "/sandbox", None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let err = Emulator::builder()
        .fault(FaultRule::status("/x", 99))
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("status"), "{err}");
}

#[tokio::test]
async fn sandboxes_stopped_or_deleted_underneath_the_client() {
    let api = Api::start().await;
    let a = api.create_default().await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = api.create_default().await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let c = api.create_default().await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let stopped = api.emu.stop_sandbox(&a).await.unwrap();
    assert_eq!(stopped.state.unwrap().as_str(), "stopped");
    assert_eq!(api.state_of(&a).await, "stopped");
    let resp = api
        .http
        .get(format!("{}/toolbox/{a}/version", api.emu.base_url()))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);

    api.emu.delete_sandbox(&b).await.unwrap();
    assert_eq!(api.get(&b).await.0, StatusCode::NOT_FOUND);
    let resp = api
        .http
        .get(format!("{}/toolbox/{b}/version", api.emu.base_url()))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // The same through the control API.
    let base = format!("{}/_emulator/sandboxes", api.emu.base_url());
    let resp = api
        .http
        .post(format!("{base}/{c}/fail"))
        .json(&json!({"reason": "boom"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(api.get(&c).await.1["errorReason"], "boom");
    let resp = api.http.delete(format!("{base}/{c}")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(api.get(&c).await.0, StatusCode::NOT_FOUND);
    let resp = api
        .http
        .post(format!("{base}/{c}/stop"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let all: Value = api
        .http
        .get(&base)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_request_log_records_what_clients_sent() {
    let api = Api::start().await;
    let sb = api
        .create(json!({"name": "logged", "env": {"K": "v"}, "labels": {"a": "b"}}))
        .await;
    let id = sb["id"].as_str().unwrap();
    api.send(
        api.req(Method::GET, "/sandbox")
            .query(&[("labels", r#"{"a":"b"}"#)]),
    )
    .await;
    api.http.get(api.url("/sandbox")).send().await.unwrap();
    api.http
        .get(format!("{}/_emulator/sandboxes", api.emu.base_url()))
        .send()
        .await
        .unwrap();

    let log = api.emu.requests();
    assert_eq!(log.len(), 3, "control requests are not logged: {log:?}");
    let create = &log[0];
    assert_eq!(create.method, "POST");
    assert_eq!(create.path, "/api/sandbox");
    assert_eq!(create.status, Some(200));
    assert_eq!(create.body.as_ref().unwrap()["labels"], json!({"a": "b"}));
    assert_eq!(create.header("authorization"), Some("Bearer <redacted>"));
    assert_eq!(create.header("x-daytona-source"), Some("sdk-rust-test"));
    assert!(
        !format!("{log:?}").contains(API_KEY),
        "the key never appears"
    );
    assert_eq!(
        log[1].query.as_deref(),
        Some("labels=%7B%22a%22%3A%22b%22%7D")
    );
    assert_eq!(log[2].status, Some(401));

    let over_http: Value = api
        .http
        .get(format!("{}/_emulator/requests", api.emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http.as_array().unwrap().len(), 3);
    assert_eq!(
        over_http[0]["receivedAt"]
            .as_str()
            .map(|s| s.ends_with('Z')),
        Some(true)
    );
    api.http
        .delete(format!("{}/_emulator/requests", api.emu.base_url()))
        .send()
        .await
        .unwrap();
    assert!(api.emu.requests().is_empty());

    // Runtime inspection: sessions show up.
    let toolbox = format!("{}/toolbox/{id}", api.emu.base_url());
    let resp = api
        .http
        .post(format!("{toolbox}/process/session"))
        .bearer_auth(API_KEY)
        .json(&json!({"sessionId": "inspect-me"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let runtime: Value = api
        .http
        .get(format!(
            "{}/_emulator/sandboxes/logged/runtime",
            api.emu.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runtime["sessions"][0]["id"], "inspect-me");
    assert!(runtime["liveProcesses"].is_u64());
}
