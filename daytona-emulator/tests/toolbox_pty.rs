//! PTY sessions over real HTTP and WebSocket: a real pseudo-terminal (`tty`, `stty size`,
//! resize), the exit-control protocol the TypeScript SDK speaks, kill on delete, and bad input.

#![allow(clippy::unwrap_used)]

mod toolbox_support;

use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use toolbox_support::{API_KEY, Fixture, wait_process_appears, wait_process_gone};

const EXIT_CONTROL: &str = "X-Daytona-Pty-Exit-Control";

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a client saw on a PTY socket.
#[derive(Debug, Default)]
struct Seen {
    output: String,
    controls: Vec<Value>,
    close: Option<(u16, String)>,
}

async fn open(fx: &Fixture, path: &str, protocols: &[&str]) -> (Socket, Option<String>) {
    let url = fx.url(path).replacen("http", "ws", 1);
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {API_KEY}")).unwrap(),
    );
    if !protocols.is_empty() {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(&protocols.join(", ")).unwrap(),
        );
    }
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket handshake");
    let selected = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_string());
    (socket, selected)
}

/// Reads frames until `done(seen)` holds or the socket closes; panics after 20 s.
async fn read_until(socket: &mut Socket, seen: &mut Seen, done: impl Fn(&Seen) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(seen) {
        let next = tokio::time::timeout_at(deadline, socket.next())
            .await
            .unwrap_or_else(|_| panic!("timed out; seen so far: {seen:?}"));
        match next {
            Some(Ok(Message::Binary(b))) => seen.output.push_str(&String::from_utf8_lossy(&b)),
            Some(Ok(Message::Text(t))) => seen.controls.push(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                let frame = frame.expect("close frames carry a code");
                seen.close = Some((u16::from(frame.code), frame.reason.to_string()));
                return;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("socket error {e}; seen {seen:?}"),
            None => return,
        }
    }
}

async fn send(socket: &mut Socket, text: &str) {
    socket
        .send(Message::Binary(text.as_bytes().to_vec().into()))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_connect_gives_a_real_terminal_with_resize_and_exit_codes() {
    let fx = Fixture::start().await;
    let envs = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"GREETING":"hello from envs"}"#);
    let envs_token = format!("X-Daytona-Pty-Envs~{envs}");
    let (mut ws, selected) = open(
        &fx,
        "/process/pty/create-connect?id=term1&cols=80&rows=24",
        &[&envs_token, EXIT_CONTROL],
    )
    .await;
    assert_eq!(selected.as_deref(), Some(EXIT_CONTROL));
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| !s.controls.is_empty()).await;
    assert_eq!(
        seen.controls[0],
        json!({"type": "control", "status": "connected"})
    );

    send(&mut ws, "tty; stty size; echo \"$GREETING\"\n").await;
    read_until(&mut ws, &mut seen, |s| {
        s.output.contains("24 80\r\n") && s.output.contains("hello from envs\r\n")
    })
    .await;
    assert!(
        seen.output.contains("/dev/pts/"),
        "tty names a terminal: {:?}",
        seen.output
    );
    assert!(!seen.output.contains("not a tty"), "{:?}", seen.output);

    let info: Value = fx
        .post("/process/pty/term1/resize")
        .json(&json!({"cols": 100, "rows": 30}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (info["cols"].clone(), info["rows"].clone()),
        (json!(100), json!(30))
    );
    send(&mut ws, "stty size\n").await;
    read_until(&mut ws, &mut seen, |s| s.output.contains("30 100\r\n")).await;

    let listed: Value = fx
        .get("/process/pty")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], "term1");
    assert_eq!(sessions[0]["active"], true);
    assert_eq!(sessions[0]["envs"]["GREETING"], "hello from envs");

    send(&mut ws, "echo hi; exit 3\n").await;
    read_until(&mut ws, &mut seen, |s| s.close.is_some()).await;
    assert!(seen.output.contains("hi\r\n"), "{:?}", seen.output);
    assert_eq!(
        seen.controls.last().unwrap(),
        &json!({"type": "control", "status": "exited", "exitCode": 3, "exitReason": "non-zero exit"})
    );
    let (code, reason) = seen.close.clone().unwrap();
    assert_eq!(code, 1011);
    assert_eq!(
        serde_json::from_str::<Value>(&reason).unwrap(),
        json!({"exitCode": 3, "exitReason": "non-zero exit"})
    );

    // `process/pty/session.go` deletes a session once its shell exits: it is not listed, not
    // found, and resizing or deleting it is what an unknown id gets.
    let info = fx.get("/process/pty/term1").send().await.unwrap();
    assert_eq!(info.status(), 404);
    assert_eq!(
        info.json::<Value>().await.unwrap(),
        json!({"error": "PTY session not found"})
    );
    let list: Value = fx
        .get("/process/pty")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!({"sessions": []}));
    let gone = fx
        .post("/process/pty/term1/resize")
        .json(&json!({"cols": 90, "rows": 20}))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 410);
    assert_eq!(
        gone.json::<Value>().await.unwrap(),
        json!({"error": "PTY session term1 not found"})
    );
    let resp = fx.delete("/process/pty/term1").send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(fx.settle_processes().await, 0);
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_zero_closes_normally() {
    let fx = Fixture::start().await;
    let (mut ws, _) = open(&fx, "/process/pty/create-connect?id=zero", &[EXIT_CONTROL]).await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| !s.controls.is_empty()).await;
    send(&mut ws, "exit\n").await;
    read_until(&mut ws, &mut seen, |s| s.close.is_some()).await;
    assert_eq!(
        seen.controls.last().unwrap(),
        &json!({"type": "control", "status": "exited", "exitCode": 0})
    );
    assert_eq!(seen.close, Some((1000, r#"{"exitCode":0}"#.to_string())));
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_create_then_connect_and_delete_kills_everything() {
    let fx = Fixture::start().await;
    let created = fx
        .post("/process/pty")
        .json(&json!({"id": "rest1", "cols": 120, "rows": 40, "envs": {"SECRET_TOKEN": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(
        created.json::<Value>().await.unwrap(),
        json!({"sessionId": "rest1"})
    );
    let dup = fx
        .post("/process/pty")
        .json(&json!({"id": "rest1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);
    let (mut ws, selected) = open(&fx, "/process/pty/rest1/connect", &[EXIT_CONTROL]).await;
    assert_eq!(selected.as_deref(), Some(EXIT_CONTROL));
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| !s.controls.is_empty()).await;
    send(&mut ws, "sleep 4242 & stty size\n").await;
    read_until(&mut ws, &mut seen, |s| s.output.contains("40 120\r\n")).await;
    assert!(wait_process_appears("sleep 4242").await);
    assert_eq!(fx.snapshot().ptys, vec!["rest1".to_string()]);

    let resp = fx.delete("/process/pty/rest1").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    read_until(&mut ws, &mut seen, |s| s.close.is_some()).await;
    let exited = seen.controls.last().unwrap();
    assert_eq!(exited["status"], "exited");
    assert_eq!(exited["exitReason"], "SIGKILL");
    assert_eq!(seen.close.as_ref().unwrap().0, 1011);
    assert!(
        wait_process_gone("sleep 4242").await,
        "background job killed"
    );
    assert_eq!(
        fx.get("/process/pty/rest1").send().await.unwrap().status(),
        404
    );
    assert_eq!(fx.settle_processes().await, 0);
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_sessions_start_on_first_attach() {
    let fx = Fixture::start().await;
    let created = fx
        .post("/process/pty")
        .json(&json!({"id": "lazy", "lazyStart": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let info: Value = fx
        .get("/process/pty/lazy")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["active"], false);
    assert_eq!(info["lazyStart"], true);
    let (mut ws, _) = open(&fx, "/process/pty/lazy/connect", &[EXIT_CONTROL]).await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| !s.controls.is_empty()).await;
    send(&mut ws, "echo started-$((6*7))\n").await;
    read_until(&mut ws, &mut seen, |s| s.output.contains("started-42")).await;
    let info: Value = fx
        .get("/process/pty/lazy")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["active"], true);
    // A second client sees the scrollback, then live output.
    drop(ws);
    let (mut again, _) = open(&fx, "/process/pty/lazy/connect", &[EXIT_CONTROL]).await;
    let mut seen2 = Seen::default();
    read_until(&mut again, &mut seen2, |s| s.output.contains("started-42")).await;
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_typed_errors() {
    let fx = Fixture::start().await;
    let created = fx
        .post("/process/pty")
        .json(&json!({"id": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // process/pty/controller.go: bare `{"error"}` bodies; only values above 1000 are refused
    // (the `binding` range tags are not what the daemon's validator reads).
    let resize = |id: &'static str, body: Value| {
        let fx = &fx;
        async move {
            let resp = fx
                .post(&format!("/process/pty/{id}/resize"))
                .json(&body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(
        resize("b", json!({"cols": 80, "rows": 1001})).await,
        (400, json!({"error": "rows must be less than 1000"}))
    );
    assert_eq!(
        resize("b", json!({"cols": 1001, "rows": 5})).await,
        (400, json!({"error": "cols must be less than 1000"}))
    );
    let (status, info) = resize("b", json!({"cols": 0, "rows": 0})).await;
    assert_eq!((status, info["cols"].clone()), (200, json!(0)));
    let (status, err) = resize("b", json!({"cols": -1, "rows": 5})).await;
    assert_eq!(status, 400);
    assert!(err["error"].is_string(), "{err}");
    assert_eq!(
        resize("nope", json!({"cols": 80, "rows": 24})).await,
        (410, json!({"error": "PTY session nope not found"}))
    );
    let missing = fx.get("/process/pty/nope").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({"error": "PTY session not found"})
    );
    let missing = fx.delete("/process/pty/nope").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({"error": "PTY session not found"})
    );
    let create = |body: Value| {
        let fx = &fx;
        async move {
            let resp = fx.post("/process/pty").json(&body).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(
        create(json!({"cols": 80})).await,
        (400, json!({"error": "session ID is required"}))
    );
    assert_eq!(
        create(json!({"id": "b"})).await,
        (
            409,
            json!({"error": "PTY session with ID 'b' already exists"})
        )
    );
    assert_eq!(
        create(json!({"id": "w", "cols": 1001})).await,
        (
            400,
            json!({"error": "invalid value for cols - must be less than 1000"})
        )
    );
    // The daemon keeps its TERM default in the session's envs.
    let info: Value = fx
        .get("/process/pty/b")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["envs"]["TERM"], "xterm-256color");
    let resp = fx
        .post("/process/pty")
        .json(&json!({"id": "c", "cwd": "/etc"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "a cwd outside the sandbox is refused");
    let resp = fx
        .post("/process/pty")
        .json(&json!({"id": "d", "cwd": format!("{}/missing", fx.home())}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": "failed to start PTY session"})
    );
    // A lazy session is not started at create, so its cwd is only looked at on the first
    // attach (`manager.go` `VerifyPTYSessionReady`), which fails; the session stays and a
    // later attach, once the directory exists, starts it.
    let missing = format!("{}/later", fx.home());
    let resp = fx
        .post("/process/pty")
        .json(&json!({"id": "lz", "cwd": missing, "lazyStart": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let (mut ws, _) = open(&fx, "/process/pty/lz/connect", &[EXIT_CONTROL]).await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| s.close.is_some()).await;
    assert_eq!(seen.controls[0]["status"], "error");
    assert_eq!(
        seen.controls[0]["error"],
        format!(
            "Failed to connect to PTY session: failed to start PTY session: \
             pty.StartWithSize: chdir {missing}: no such file or directory"
        )
    );
    assert_eq!(
        fx.get("/process/pty/lz").send().await.unwrap().status(),
        200
    );
    fx.exec(&format!("mkdir -p {missing}")).await;
    let (mut ws, _) = open(&fx, "/process/pty/lz/connect", &[EXIT_CONTROL]).await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| !s.controls.is_empty()).await;
    assert_eq!(seen.controls[0]["status"], "connected");
    send(&mut ws, "pwd\n").await;
    read_until(&mut ws, &mut seen, |s| s.output.contains("/later\r\n")).await;
    drop(ws);
    // Plain HTTP on a WebSocket route, and create-connect without an id.
    assert_eq!(
        fx.get("/process/pty/b/connect")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let url = fx
        .url("/process/pty/create-connect")
        .replacen("http", "ws", 1);
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {API_KEY}")).unwrap(),
    );
    let refused = tokio_tungstenite::connect_async(request).await;
    assert!(refused.is_err(), "create-connect without an id is refused");
    // Attaching to a session that does not exist: upgrade, then an error close the SDKs read.
    let (mut ws, _) = open(&fx, "/process/pty/nope/connect", &[EXIT_CONTROL]).await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| s.close.is_some()).await;
    assert_eq!(seen.controls[0]["status"], "error");
    // process/pty/controller.go's text for an unknown session.
    assert_eq!(
        seen.controls[0]["error"],
        "Failed to connect to PTY session: PTY session nope not found"
    );
    let (code, reason) = seen.close.unwrap();
    assert_eq!(code, u16::from(CloseCode::Error));
    assert_eq!(
        serde_json::from_str::<Value>(&reason).unwrap(),
        json!({"error": "Failed to connect to PTY session: PTY session nope not found"})
    );
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_shutdown_kills_pty_shells() {
    let fx = Fixture::start().await;
    let (mut ws, _) = open(&fx, "/process/pty/create-connect?id=s", &[EXIT_CONTROL]).await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| !s.controls.is_empty()).await;
    send(&mut ws, "sleep 5151 & echo bg-started\n").await;
    read_until(&mut ws, &mut seen, |s| s.output.contains("bg-started\r\n")).await;
    assert!(wait_process_appears("sleep 5151").await);
    fx.shutdown().await;
    assert!(wait_process_gone("sleep 5151").await);
    let _ = ws.send(Message::Text(Utf8Bytes::from_static("x"))).await;
}
