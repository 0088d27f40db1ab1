//! A minimal socket.io v4 server (engine.io protocol 4, WebSocket transport only) at
//! `/api/socket.io/`, enough for the TypeScript SDK's event subscription:
//!
//! 1. On upgrade the server sends the engine.io open packet
//!    `0{"sid","upgrades":[],"pingInterval","pingTimeout","maxPayload"}`.
//! 2. The client sends `40{"token":"<apiKey>"}` (socket.io CONNECT to `/` with its auth).
//!    A good token (or any, without an API key) gets `40{"sid"}`; a bad one gets the
//!    CONNECT_ERROR `44{"message":"Unauthorized"}`, as the NestJS gateway answers.
//! 3. The server pings (`2`) every ping interval and closes when no pong (`3`) arrives within the
//!    ping timeout. Client pings (`2`, older clients) get a pong.
//! 4. Sandbox events are pushed as `42["sandbox.state.updated",{sandbox,oldState,newState}]`,
//!    `42["sandbox.created",<Sandbox>]` and `42["sandbox.desired-state.updated",{...}]`.
//!
//! Polling transport is refused (`400 {"code":0,"message":"Transport unknown"}`), as upstream
//! where the gateway allows only WebSocket.

use std::time::Duration;

use axum::Extension;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::conn::ConnHandle;
use crate::faults::WsDrop;
use crate::state::AppState;

/// Largest message the server announces it accepts.
const MAX_PAYLOAD: usize = 1_000_000;

/// The path socket.io clients use (`<apiUrl path>/socket.io/`).
pub(crate) const PATH: &str = "/api/socket.io/";

fn engine_error(code: u8, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({"code": code, "message": message})),
    )
        .into_response()
}

fn random_sid() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub(crate) async fn handshake(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    conn: Option<Extension<ConnHandle>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let mut eio = None;
    let mut transport = None;
    for (k, v) in url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "EIO" => eio = Some(v.into_owned()),
            "transport" => transport = Some(v.into_owned()),
            _ => {}
        }
    }
    if transport.as_deref() != Some("websocket") {
        return engine_error(0, "Transport unknown");
    }
    if eio.as_deref() != Some("4") {
        return engine_error(5, "Unsupported protocol version");
    }
    let Ok(upgrade) = upgrade else {
        return engine_error(3, "Bad request");
    };
    let cut = state.ws_drop_after(PATH);
    let conn = conn.map(|Extension(c)| c);
    upgrade
        .max_message_size(MAX_PAYLOAD)
        .on_upgrade(move |socket| session(state, socket, cut, conn))
}

/// Counts what the server sent, for `dropWebSocket` faults.
struct Outbox {
    frames: usize,
    bytes: usize,
    cut: Option<WsDrop>,
}

impl Outbox {
    fn must_cut(&self) -> bool {
        self.cut.is_some_and(|c| c.reached(self.frames, self.bytes))
    }
}

async fn session(
    state: AppState,
    socket: WebSocket,
    cut: Option<WsDrop>,
    conn: Option<ConnHandle>,
) {
    let (mut tx, mut rx) = socket.split();
    let mut out = Outbox {
        frames: 0,
        bytes: 0,
        cut,
    };
    let cut_now = |conn: &Option<ConnHandle>| {
        if let Some(c) = conn {
            c.abort();
        }
    };
    if out.must_cut() {
        cut_now(&conn);
        return;
    }
    let config = state.config();
    let ping_interval = config.ping_interval;
    let ping_timeout = config.ping_timeout;
    let open = serde_json::json!({
        "sid": random_sid(),
        "upgrades": [],
        "pingInterval": millis(ping_interval),
        "pingTimeout": millis(ping_timeout),
        "maxPayload": MAX_PAYLOAD,
    });
    let mut pending = vec![format!("0{open}")];
    let mut events = state.subscribe_events();
    let mut connected = false;
    let shutdown = state.shutdown_token();
    let mut next_ping = Instant::now() + ping_interval;
    let mut pong_deadline: Option<Instant> = None;
    loop {
        for packet in pending.drain(..) {
            let len = packet.len();
            if tx.send(Message::Text(packet.into())).await.is_err() {
                return;
            }
            out.frames += 1;
            out.bytes += len;
            if out.must_cut() {
                tracing::debug!("socket.io connection cut by fault rule");
                cut_now(&conn);
                return;
            }
        }
        let deadline = pong_deadline.unwrap_or(next_ping);
        tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = tx.send(Message::Close(None)).await;
                return;
            }
            _ = tokio::time::sleep_until(deadline) => {
                if pong_deadline.is_some() {
                    tracing::debug!("socket.io client missed a pong; closing");
                    return;
                }
                pending.push("2".to_string());
                pong_deadline = Some(Instant::now() + ping_timeout);
                next_ping = Instant::now() + ping_interval;
            }
            event = events.recv(), if connected => match event {
                Ok(packet) => pending.push(packet.to_string()),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "socket.io client too slow; events dropped");
                }
                Err(RecvError::Closed) => return,
            },
            incoming = rx.next() => {
                let text = match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                };
                match handle_packet(&state, text.as_str(), &mut connected) {
                    Reply::Send(packet) => pending.push(packet),
                    Reply::Pong => pong_deadline = None,
                    Reply::Close => return,
                    Reply::Nothing => {}
                }
            }
        }
    }
}

/// What to do with one client packet.
enum Reply {
    Send(String),
    Pong,
    Close,
    Nothing,
}

fn handle_packet(state: &AppState, packet: &str, connected: &mut bool) -> Reply {
    match packet {
        "3" => return Reply::Pong,
        "2" => return Reply::Send("3".into()),
        "2probe" => return Reply::Send("3probe".into()),
        "1" => return Reply::Close,
        _ => {}
    }
    let Some(message) = packet.strip_prefix('4') else {
        return Reply::Nothing;
    };
    if let Some(connect) = message.strip_prefix('0') {
        if let Some(ns) = connect.strip_prefix('/') {
            let ns = ns.split(',').next().unwrap_or(ns);
            return Reply::Send(format!(
                "44/{ns},{}",
                serde_json::json!({"message": "Invalid namespace"})
            ));
        }
        let token = serde_json::from_str::<serde_json::Value>(connect)
            .ok()
            .and_then(|auth| {
                auth.get("token")
                    .and_then(|t| t.as_str())
                    .map(str::to_string)
            });
        if !state.api_key_matches(token.as_deref()) {
            return Reply::Send(format!(
                "44{}",
                serde_json::json!({"message": "Unauthorized"})
            ));
        }
        *connected = true;
        return Reply::Send(format!("40{}", serde_json::json!({"sid": random_sid()})));
    }
    if message.starts_with('1') {
        *connected = false;
    }
    // Client events (`42...`) and acks are not used by the SDKs; ignored.
    Reply::Nothing
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
