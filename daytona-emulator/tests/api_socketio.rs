//! socket.io at `/api/socket.io/`: the engine.io 4 handshake the TypeScript SDK performs,
//! token auth in the CONNECT packet, pings, and `sandbox.*` events.

#![allow(clippy::unwrap_used)]

mod api_support;

use std::time::Duration;

use api_support::{API_KEY, Api};
use daytona_emulator::Emulator;
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn socket_url(api: &Api) -> String {
    format!(
        "{}/api/socket.io/?source=sdk-typescript&sdkVersion=0.218.0&EIO=4&transport=websocket",
        api.emu.base_url().replacen("http", "ws", 1)
    )
}

/// The next text frame, or `None` when the socket closed or nothing came within `wait`.
async fn next_text(ws: &mut Ws, wait: Duration) -> Option<String> {
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Err(_) => return None,
            Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(Message::Text(t)))) => return Some(t.to_string()),
            Ok(Some(Ok(Message::Close(_)))) => return None,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Opens a socket and completes the engine.io open; returns the socket and the open payload.
async fn open(api: &Api) -> (Ws, Value) {
    let (mut ws, _) = tokio_tungstenite::connect_async(socket_url(api))
        .await
        .expect("upgrade");
    let first = next_text(&mut ws, Duration::from_secs(5))
        .await
        .expect("open packet");
    let payload = first.strip_prefix('0').expect("engine.io open packet");
    (
        ws,
        serde_json::from_str(payload).expect("open payload JSON"),
    )
}

async fn connect(api: &Api, token: &str) -> (Ws, String) {
    let (mut ws, _) = open(api).await;
    ws.send(Message::Text(
        format!("40{}", json!({"token": token})).into(),
    ))
    .await
    .unwrap();
    let reply = next_text(&mut ws, Duration::from_secs(5))
        .await
        .expect("CONNECT reply");
    (ws, reply)
}

/// Reads events until one named `name` arrives (pongs pings on the way).
async fn wait_event(ws: &mut Ws, name: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        let Some(text) = next_text(ws, Duration::from_secs(5)).await else {
            break;
        };
        if text == "2" {
            ws.send(Message::Text("3".into())).await.unwrap();
            continue;
        }
        if let Some(event) = text.strip_prefix("42") {
            let event: Value = serde_json::from_str(event).unwrap();
            if event[0] == name {
                return event[1].clone();
            }
        }
    }
    panic!("no {name} event");
}

#[tokio::test]
async fn the_sdk_handshake_succeeds_and_events_flow() {
    let api = Api::start().await;
    let (_, open_payload) = open(&api).await;
    assert!(open_payload["sid"].is_string());
    assert_eq!(open_payload["upgrades"], json!([]));
    assert_eq!(open_payload["pingInterval"], 25000);
    assert_eq!(open_payload["pingTimeout"], 20000);
    assert!(open_payload["maxPayload"].is_u64());

    let (mut ws, reply) = connect(&api, API_KEY).await;
    let sid: Value = serde_json::from_str(reply.strip_prefix("40").expect("CONNECT ok")).unwrap();
    assert!(sid["sid"].is_string());

    let sb = api.create_default().await;
    let id = sb["id"].as_str().unwrap().to_string();
    let created = wait_event(&mut ws, "sandbox.created").await;
    assert_eq!(created["id"], id.as_str());
    let started = wait_event(&mut ws, "sandbox.state.updated").await;
    assert_eq!(started["sandbox"]["id"], id.as_str());
    assert_eq!(started["oldState"], "creating");
    assert_eq!(started["newState"], "started");
    assert_eq!(started["sandbox"]["state"], "started");

    api.call(Method::POST, &format!("/sandbox/{id}/stop"), None)
        .await;
    let desired = wait_event(&mut ws, "sandbox.desired-state.updated").await;
    assert_eq!(desired["newDesiredState"], "stopped");
    let stopping = wait_event(&mut ws, "sandbox.state.updated").await;
    assert_eq!(stopping["newState"], "stopping");
    let stopped = wait_event(&mut ws, "sandbox.state.updated").await;
    assert_eq!(stopped["oldState"], "stopping");
    assert_eq!(stopped["newState"], "stopped");

    api.call(Method::DELETE, &format!("/sandbox/{id}"), None)
        .await;
    loop {
        let ev = wait_event(&mut ws, "sandbox.state.updated").await;
        if ev["newState"] == "destroyed" {
            assert_eq!(ev["sandbox"]["id"], id.as_str());
            break;
        }
    }
    // A client ping (older engine.io) gets a pong; a clean close is accepted.
    ws.send(Message::Text("2".into())).await.unwrap();
    assert_eq!(
        next_text(&mut ws, Duration::from_secs(5)).await.as_deref(),
        Some("3")
    );
    ws.send(Message::Text("41".into())).await.unwrap();
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn a_bad_token_gets_connect_error_and_no_events() {
    let api = Api::start().await;
    let (mut ws, reply) = connect(&api, "wrong").await;
    let err: Value =
        serde_json::from_str(reply.strip_prefix("44").expect("CONNECT_ERROR")).unwrap();
    assert_eq!(err["message"], "Unauthorized");
    api.create_default().await;
    assert_eq!(next_text(&mut ws, Duration::from_millis(300)).await, None);

    // Other namespaces do not exist.
    let (mut ws, _) = open(&api).await;
    ws.send(Message::Text("40/admin,{}".into())).await.unwrap();
    let reply = next_text(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert!(reply.starts_with("44/admin,"), "{reply}");
}

#[tokio::test]
async fn the_server_pings_and_drops_silent_clients() {
    let api = Api::start_with(
        Emulator::builder()
            .api_key(API_KEY)
            .socketio_ping(Duration::from_millis(100), Duration::from_millis(150)),
    )
    .await;
    let (mut ws, open_payload) = open(&api).await;
    assert_eq!(open_payload["pingInterval"], 100);
    // Answer two pings: the connection stays.
    for _ in 0..2 {
        assert_eq!(
            next_text(&mut ws, Duration::from_secs(2)).await.as_deref(),
            Some("2")
        );
        ws.send(Message::Text("3".into())).await.unwrap();
    }
    // Ignore the next one: the server closes.
    assert_eq!(
        next_text(&mut ws, Duration::from_secs(2)).await.as_deref(),
        Some("2")
    );
    let started = tokio::time::Instant::now();
    assert_eq!(next_text(&mut ws, Duration::from_secs(2)).await, None);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn polling_and_old_protocols_are_refused() {
    let api = Api::start().await;
    let base = format!("{}/api/socket.io/", api.emu.base_url());
    let resp = api
        .http
        .get(&base)
        .query(&[("EIO", "4"), ("transport", "polling")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"code": 0, "message": "Transport unknown"})
    );
    let resp = api
        .http
        .get(&base)
        .query(&[("EIO", "3"), ("transport", "websocket")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], 5);
    // A plain GET (no upgrade) with the right query.
    let resp = api
        .http
        .get(&base)
        .query(&[("EIO", "4"), ("transport", "websocket")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}
