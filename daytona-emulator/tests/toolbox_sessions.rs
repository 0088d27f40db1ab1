//! Session routes over real HTTP and WebSocket: sync/async exec, command status, logs with
//! markers and SDK-version gating, follow WebSocket, input, delete.

#![allow(clippy::unwrap_used)]

mod toolbox_support;

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use toolbox_support::{Fixture, SDK_VERSION, process_with_arg_exists, wait_process_gone};

async fn create_session(fx: &Fixture, id: &str) {
    let resp = fx
        .post("/process/session")
        .json(&json!({"sessionId": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}

async fn exec(fx: &Fixture, session: &str, body: Value) -> (StatusCode, Value) {
    let resp = fx
        .post(&format!("/process/session/{session}/exec"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

async fn get_json(fx: &Fixture, path: &str) -> Value {
    fx.get(path).send().await.unwrap().json().await.unwrap()
}

async fn command(fx: &Fixture, session: &str, cmd: &str) -> Value {
    fx.get(&format!("/process/session/{session}/command/{cmd}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_exit(fx: &Fixture, session: &str, cmd: &str) -> Value {
    for _ in 0..200 {
        let c = command(fx, session, cmd).await;
        if c.get("exitCode").is_some() {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("command {cmd} never finished");
}

#[tokio::test]
async fn session_lifecycle_status_codes() {
    let fx = Fixture::start().await;
    create_session(&fx, "s1").await;
    let dup = fx
        .post("/process/session")
        .json(&json!({"sessionId": "s1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), StatusCode::CONFLICT);

    let list: Value = fx
        .get("/process/session")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([{"sessionId": "s1", "commands": []}]));
    let one: Value = fx
        .get("/process/session/s1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one, json!({"sessionId": "s1", "commands": []}));

    let missing = fx.get("/process/session/nope").send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    // The exec handler wraps the service's error, so the middleware answers 500.
    let (status, _) = exec(&fx, "nope", json!({"command": "true"})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let (status, _) = exec(&fx, "s1", json!({"command": "  "})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let del = fx.delete("/process/session/s1").send().await.unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    let del = fx.delete("/process/session/s1").send().await.unwrap();
    assert_eq!(del.status(), StatusCode::NOT_FOUND);
    fx.shutdown().await;
}

#[tokio::test]
async fn sync_exec_returns_marked_output_and_split_streams() {
    let fx = Fixture::start().await;
    create_session(&fx, "s").await;
    let (status, body) = exec(
        &fx,
        "s",
        json!({"command": "echo out1; echo err1 >&2; printf 'no newline'"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["exitCode"], 0);
    let output = body["output"].as_str().unwrap();
    // Every line is labelled; the unterminated last line gets a newline.
    assert!(output.contains("\u{1}\u{1}\u{1}out1\n"), "{output:?}");
    assert!(output.contains("\u{2}\u{2}\u{2}err1\n"), "{output:?}");
    assert!(output.contains("\u{1}\u{1}\u{1}no newline\n"), "{output:?}");
    assert_eq!(body["stdout"], "out1\nno newline\n");
    assert_eq!(body["stderr"], "err1\n");
    let cmd_id = body["cmdId"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(cmd_id).unwrap().get_version_num(), 4);

    // In a subshell: `exit` itself would end the session's shell (see below).
    let (_, failed) = exec(&fx, "s", json!({"command": "(exit 7)"})).await;
    assert_eq!(failed["exitCode"], 7);
    assert_eq!(failed["stdout"], "");
    fx.shutdown().await;
}

#[tokio::test]
async fn session_keeps_cwd_and_exports_between_commands() {
    let fx = Fixture::start().await;
    let home = fx.home();
    create_session(&fx, "state").await;
    exec(
        &fx,
        "state",
        json!({"command": "mkdir -p proj && cd proj && export TOKEN=abc && PLAIN=1"}),
    )
    .await;
    let (_, body) = exec(
        &fx,
        "state",
        json!({"command": "pwd; echo \"$TOKEN|${PLAIN:-unset}|$SANDBOX_VAR\""}),
    )
    .await;
    assert_eq!(
        body["stdout"],
        format!("{home}/proj\nabc|unset|from-sandbox\n")
    );
    exec(&fx, "state", json!({"command": "unset TOKEN; cd .."})).await;
    let (_, body) = exec(
        &fx,
        "state",
        json!({"command": "pwd; echo \"[${TOKEN-gone}]\""}),
    )
    .await;
    assert_eq!(body["stdout"], format!("{home}\n[gone]\n"));
    fx.shutdown().await;
}

#[tokio::test]
async fn async_command_status_logs_and_version_gating() {
    let fx = Fixture::start().await;
    create_session(&fx, "a").await;
    let (status, body) = exec(
        &fx,
        "a",
        json!({"command": "echo first; sleep 0.2; echo oops >&2; sleep 1; echo second", "runAsync": true}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let cmd_id = body["cmdId"].as_str().unwrap().to_string();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");

    // While it runs, exitCode is absent (not null).
    let running = command(&fx, "a", &cmd_id).await;
    assert!(running.get("exitCode").is_none(), "{running}");
    assert_eq!(
        running["command"],
        "echo first; sleep 0.2; echo oops >&2; sleep 1; echo second"
    );

    let done = wait_exit(&fx, "a", &cmd_id).await;
    assert_eq!(done["exitCode"], 0);

    let logs_path = format!("/process/session/a/command/{cmd_id}/logs");
    // Current SDKs: JSON with markers in `output`, split streams.
    let resp = fx.get(&logs_path).send().await.unwrap();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("json")
    );
    let logs: Value = resp.json().await.unwrap();
    assert_eq!(
        logs["output"],
        "\u{1}\u{1}\u{1}first\n\u{2}\u{2}\u{2}oops\n\u{1}\u{1}\u{1}second\n"
    );
    assert_eq!(logs["stdout"], "first\nsecond\n");
    assert_eq!(logs["stderr"], "oops\n");

    // No version header: plain text, markers stripped.
    let plain = fx
        .http
        .get(fx.url(&logs_path))
        .bearer_auth(toolbox_support::API_KEY)
        .send()
        .await
        .unwrap();
    assert!(
        plain.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(plain.text().await.unwrap(), "first\noops\nsecond\n");

    // No version but split requested: JSON.
    let split: Value = fx
        .http
        .get(fx.url(&logs_path))
        .bearer_auth(toolbox_support::API_KEY)
        .header("X-Daytona-Split-Output", "true")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(split["stdout"], "first\nsecond\n");

    // SDKs below 0.167: text with the markers kept (they demux themselves).
    let old = fx
        .http
        .get(fx.url(&logs_path))
        .bearer_auth(toolbox_support::API_KEY)
        .header("X-Daytona-SDK-Version", "0.163.0")
        .send()
        .await
        .unwrap();
    assert!(
        old.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(
        old.text().await.unwrap(),
        "\u{1}\u{1}\u{1}first\n\u{2}\u{2}\u{2}oops\n\u{1}\u{1}\u{1}second\n"
    );

    // Sync exec for an old SDK: combined output without stdout/stderr.
    let resp = fx
        .http
        .post(fx.url("/process/session/a/exec"))
        .bearer_auth(toolbox_support::API_KEY)
        .header("X-Daytona-SDK-Version", "0.20.0")
        .json(&json!({"command": "echo x; sleep 0.2; echo y >&2"}))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["output"], "x\ny\n");
    assert!(body.get("stdout").is_none());

    // The command text is stored exactly as received.
    let snap = fx.snapshot();
    let session = snap.sessions.iter().find(|s| s.id == "a").unwrap();
    assert_eq!(
        session.commands[0].1,
        "echo first; sleep 0.2; echo oops >&2; sleep 1; echo second"
    );
    assert_eq!(session.commands[0].2, Some(0));
    fx.shutdown().await;
}

async fn follow(fx: &Fixture, session: &str, cmd_id: &str) -> (Vec<Vec<u8>>, Option<CloseCode>) {
    follow_url(&fx.url(&format!(
        "/process/session/{session}/command/{cmd_id}/logs?follow=true"
    )))
    .await
}

/// Follow a command's log at `url` (http form) until the socket closes.
async fn follow_url(url: &str) -> (Vec<Vec<u8>>, Option<CloseCode>) {
    let url = url.replacen("http", "ws", 1);
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "Authorization",
        format!("Bearer {}", toolbox_support::API_KEY)
            .parse()
            .unwrap(),
    );
    headers.insert("X-Daytona-SDK-Version", SDK_VERSION.parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    // No subprotocol offered, none selected.
    assert!(response.headers().get("sec-websocket-protocol").is_none());
    let mut frames = Vec::new();
    let mut close = None;
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(20), ws.next())
        .await
        .expect("the follow socket keeps moving")
    {
        match msg.unwrap() {
            Message::Binary(b) => frames.push(b.to_vec()),
            Message::Close(frame) => {
                close = frame.map(|f| f.code);
                break;
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    (frames, close)
}

#[tokio::test]
async fn follow_websocket_streams_everything_then_closes_1000() {
    let fx = Fixture::start().await;
    create_session(&fx, "f").await;
    // Over 1 KiB of output so it takes several frames, with stderr mixed in, arriving over time.
    let command = "for i in $(seq 1 60); do echo \"line $i of the stdout stream padded out\"; \
                   if [ $((i % 20)) = 0 ]; then echo \"err $i\" >&2; sleep 0.2; fi; done";
    let (_, body) = exec(&fx, "f", json!({"command": command, "runAsync": true})).await;
    let cmd_id = body["cmdId"].as_str().unwrap().to_string();
    let (frames, close) = follow(&fx, "f", &cmd_id).await;
    assert_eq!(close, Some(CloseCode::Normal));
    assert!(frames.len() > 1);
    assert!(frames.iter().all(|f| f.len() <= 1024));
    let all: Vec<u8> = frames.concat();
    let logs: Value = fx
        .get(&format!("/process/session/f/command/{cmd_id}/logs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(all).unwrap(),
        logs["output"].as_str().unwrap()
    );
    assert!(logs["stdout"].as_str().unwrap().contains("line 60 of"));
    assert_eq!(logs["stderr"], "err 20\nerr 40\nerr 60\n");

    // Following a finished command sends it all and closes at once.
    let (frames, close) = follow(&fx, "f", &cmd_id).await;
    assert_eq!(close, Some(CloseCode::Normal));
    assert_eq!(
        frames.concat().len(),
        logs["output"].as_str().unwrap().len()
    );
    fx.shutdown().await;
}

#[tokio::test]
async fn input_reaches_async_commands_and_is_gone_after_exit() {
    let fx = Fixture::start().await;
    create_session(&fx, "i").await;
    let (_, body) = exec(
        &fx,
        "i",
        json!({"command": "read a; read b; echo \"got $a and $b\"", "runAsync": true}),
    )
    .await;
    let cmd_id = body["cmdId"].as_str().unwrap().to_string();
    let input_path = format!("/process/session/i/command/{cmd_id}/input");
    for data in ["one\n", "two\n"] {
        let resp = fx
            .post(&input_path)
            .json(&json!({"data": data}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    }
    let done = wait_exit(&fx, "i", &cmd_id).await;
    assert_eq!(done["exitCode"], 0);
    let logs: Value = fx
        .get(&format!("/process/session/i/command/{cmd_id}/logs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Input is echoed into the log as stdout (session/input.go), before what it caused.
    assert_eq!(logs["stdout"], "one\ntwo\ngot one and two\n");

    let gone = fx
        .post(&input_path)
        .json(&json!({"data": "late\n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::GONE);
    let err: Value = gone.json().await.unwrap();
    assert_eq!(err["code"], "COMMAND_ALREADY_COMPLETED");
    assert_eq!(
        err["message"],
        "command has already completed with exit code 0"
    );
    fx.shutdown().await;
}

/// `session/input.go`: a newline is added to input that lacks one (so `read` returns), and
/// `suppressInputEcho` keeps the input out of the log; empty data fails the validator.
#[tokio::test]
async fn input_gets_a_newline_and_echo_can_be_suppressed() {
    let fx = Fixture::start().await;
    create_session(&fx, "q").await;
    let (_, body) = exec(
        &fx,
        "q",
        json!({"command": "read a; echo \"[$a]\"", "runAsync": true, "suppressInputEcho": true}),
    )
    .await;
    let cmd_id = body["cmdId"].as_str().unwrap().to_string();
    let input_path = format!("/process/session/q/command/{cmd_id}/input");
    let empty = fx
        .post(&input_path)
        .json(&json!({"data": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        empty.json::<Value>().await.unwrap()["code"],
        "INVALID_REQUEST_BODY"
    );
    let resp = fx
        .post(&input_path)
        .json(&json!({"data": "secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(wait_exit(&fx, "q", &cmd_id).await["exitCode"], 0);
    let logs: Value = fx
        .get(&format!("/process/session/q/command/{cmd_id}/logs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(logs["stdout"], "[secret]\n");
    let unknown = fx
        .post("/process/session/q/command/nope/input")
        .json(&json!({"data": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["message"],
        "command not found"
    );
    fx.shutdown().await;
}

/// `process/session/*.go` and `session/*.go`: the `entrypoint` id is reserved; bodies are
/// validated before the session is looked up; the daemon's messages.
#[tokio::test]
async fn reserved_ids_validation_order_and_messages() {
    let fx = Fixture::start().await;
    let message = |resp: reqwest::Response| async move {
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        (
            status,
            body["message"].as_str().unwrap_or_default().to_string(),
        )
    };
    let create = |id: &'static str| {
        let fx = &fx;
        async move {
            fx.post("/process/session")
                .json(&json!({"sessionId": id}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        message(create("entrypoint").await).await,
        (
            StatusCode::BAD_REQUEST,
            "provided session ID is reserved and cannot be created/overridden".to_string()
        )
    );
    let (status, text) = message(create("").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.contains("'SessionId' failed on the 'required' tag"),
        "{text}"
    );
    create_session(&fx, "s").await;
    assert_eq!(
        message(create("s").await).await,
        (StatusCode::CONFLICT, "session already exists".to_string())
    );
    let del = fx
        .delete("/process/session/entrypoint")
        .send()
        .await
        .unwrap();
    assert_eq!(
        message(del).await,
        (
            StatusCode::BAD_REQUEST,
            "can't delete entrypoint session".to_string()
        )
    );
    let (status, body) = exec(&fx, "entrypoint", json!({"command": "true"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "can't execute command in entrypoint session"
    );
    let input = fx
        .post("/process/session/entrypoint/command/c/input")
        .json(&json!({"data": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        message(input).await,
        (
            StatusCode::BAD_REQUEST,
            "can't send input to entrypoint session".to_string()
        )
    );
    // A bad body is a 400 even for an unknown session.
    let (status, body) = exec(&fx, "nope", json!({"command": ""})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "INVALID_REQUEST_BODY");
    let (status, body) = exec(&fx, "nope", json!({"command": " \t"})).await;
    assert_eq!(
        (status, body["message"].clone()),
        (StatusCode::BAD_REQUEST, json!("command cannot be empty"))
    );
    // `process/session/execute.go` wraps the service's NotFoundError with `%w`; the error
    // middleware switches on the outer type, so it is the default handler's 500.
    let (status, body) = exec(&fx, "nope", json!({"command": "true"})).await;
    assert_eq!(
        (status, body["message"].clone()),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!("failed to execute command: session not found")
        )
    );
    // With no entrypoint in an emulated sandbox, its session is as unknown as any other.
    let entry = fx.get("/process/session/entrypoint").send().await.unwrap();
    assert_eq!(
        message(entry).await,
        (StatusCode::NOT_FOUND, "session not found".to_string())
    );
    // `GetEntrypointLogs` reads the entrypoint session's log, so it answers the same.
    let logs = fx
        .get("/process/session/entrypoint/logs")
        .send()
        .await
        .unwrap();
    assert_eq!(
        message(logs).await,
        (StatusCode::NOT_FOUND, "session not found".to_string())
    );
    fx.shutdown().await;
}

#[tokio::test]
async fn commands_of_a_session_run_in_order_and_delete_kills_them() {
    let fx = Fixture::start().await;
    create_session(&fx, "k").await;
    let (_, first) = exec(
        &fx,
        "k",
        json!({"command": "sleep 31101 & sleep 31102", "runAsync": true}),
    )
    .await;
    let (_, second) = exec(&fx, "k", json!({"command": "echo never", "runAsync": true})).await;
    let first = first["cmdId"].as_str().unwrap().to_string();
    let second = second["cmdId"].as_str().unwrap().to_string();
    for _ in 0..100 {
        if process_with_arg_exists("sleep 31102") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(process_with_arg_exists("sleep 31101"));
    // The second command waits for the first, as in one shell.
    assert!(command(&fx, "k", &second).await.get("exitCode").is_none());
    assert!(command(&fx, "k", &first).await.get("exitCode").is_none());
    assert!(fx.snapshot().live_processes >= 1);

    let del = fx.delete("/process/session/k").send().await.unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    assert!(wait_process_gone("sleep 31101").await);
    assert!(wait_process_gone("sleep 31102").await);
    assert_eq!(fx.settle_processes().await, 0);
    assert!(fx.snapshot().sessions.is_empty());
    fx.shutdown().await;
}

#[tokio::test]
async fn a_websocket_follow_ends_when_its_session_is_deleted() {
    let fx = Fixture::start().await;
    create_session(&fx, "w").await;
    let (_, body) = exec(
        &fx,
        "w",
        json!({"command": "echo before; sleep 31201", "runAsync": true}),
    )
    .await;
    let cmd_id = body["cmdId"].as_str().unwrap().to_string();
    let follower = {
        let base = fx.base.clone();
        let cmd_id = cmd_id.clone();
        tokio::spawn(async move {
            let url = format!("{base}/process/session/w/command/{cmd_id}/logs?follow=true")
                .replacen("http", "ws", 1);
            let mut request = url.into_client_request().unwrap();
            request.headers_mut().insert(
                "Authorization",
                format!("Bearer {}", toolbox_support::API_KEY)
                    .parse()
                    .unwrap(),
            );
            let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
            let mut got = Vec::new();
            while let Some(Ok(msg)) = ws.next().await {
                match msg {
                    Message::Binary(b) => got.extend_from_slice(&b),
                    Message::Close(f) => return (got, f.map(|f| f.code)),
                    _ => {}
                }
            }
            (got, None)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    fx.delete("/process/session/w").send().await.unwrap();
    let (got, close) = tokio::time::timeout(Duration::from_secs(15), follower)
        .await
        .expect("follower ends")
        .unwrap();
    // No version header: combined mode, markers stripped on the stream too.
    assert_eq!(got, b"before\n");
    assert_eq!(close, Some(CloseCode::Normal));
    assert!(wait_process_gone("sleep 31201").await);
    fx.shutdown().await;
}

#[tokio::test]
async fn a_fault_rule_cuts_the_follow_socket_mid_stream() {
    let fx = Fixture::start().await;
    fx.emu
        .add_fault(
            daytona_emulator::FaultRule::drop_websocket(
                "/toolbox/*/process/session/*/command/*/logs",
                daytona_emulator::WsDrop::AfterFrames(1),
            )
            .times(1),
        )
        .unwrap();
    create_session(&fx, "d").await;
    let (_, body) = exec(
        &fx,
        "d",
        json!({"command": "for i in $(seq 1 100); do echo \"line $i padded to make several frames\"; done"}),
    )
    .await;
    let cmd_id = body["cmdId"].as_str().unwrap().to_string();
    let url = fx
        .url(&format!(
            "/process/session/d/command/{cmd_id}/logs?follow=true"
        ))
        .replacen("http", "ws", 1);
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", toolbox_support::API_KEY)
            .parse()
            .unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut frames = 0;
    let mut closed_cleanly = false;
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("the socket ends")
    {
        match msg {
            Ok(Message::Binary(_)) => frames += 1,
            Ok(Message::Close(_)) => closed_cleanly = true,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert_eq!(frames, 1);
    assert!(!closed_cleanly, "a dropped socket sends no close frame");

    // The rule was used up: the next follower gets everything.
    let (frames, close) = follow(&fx, "d", &cmd_id).await;
    assert!(frames.len() > 1);
    assert_eq!(close, Some(CloseCode::Normal));
    fx.shutdown().await;
}

#[tokio::test]
async fn an_offered_version_subprotocol_is_echoed() {
    let fx = Fixture::start().await;
    create_session(&fx, "p").await;
    let (_, body) = exec(&fx, "p", json!({"command": "echo hi; echo err >&2"})).await;
    let cmd_id = body["cmdId"].as_str().unwrap().to_string();
    let url = fx
        .url(&format!(
            "/process/session/p/command/{cmd_id}/logs?follow=true"
        ))
        .replacen("http", "ws", 1);
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "Authorization",
        format!("Bearer {}", toolbox_support::API_KEY)
            .parse()
            .unwrap(),
    );
    headers.insert(
        "Sec-WebSocket-Protocol",
        format!("X-Daytona-SDK-Version~{SDK_VERSION}")
            .parse()
            .unwrap(),
    );
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        format!("X-Daytona-SDK-Version~{SDK_VERSION}").as_str()
    );
    let mut got = Vec::new();
    while let Some(Ok(msg)) = ws.next().await {
        match msg {
            Message::Binary(b) => got.extend_from_slice(&b),
            Message::Close(_) => break,
            _ => {}
        }
    }
    // The version from the subprotocol counts: markers are kept.
    assert!(got.starts_with(b"\x01\x01\x01hi\n"), "{got:?}");
    fx.shutdown().await;
}

/// `pkg/session/execute.go`: every command is written into one shell's stdin and sourced there,
/// so `exit` ends that shell. The command never gets an exit code (the wrapper's exit-code
/// write never runs) and its follow stays open; a command queued behind it never runs; a new
/// one is listed but refused with the failed write; a sync request waits until the session is
/// deleted; input finds no pipe. Deleting the session ends it all.
#[tokio::test]
async fn exit_in_a_command_ends_the_session_shell() {
    let fx = Fixture::start().await;
    create_session(&fx, "x").await;
    let body = json!({"command": "echo before; sleep 1; exit 4", "runAsync": true});
    let (status, first) = exec(&fx, "x", body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let first = first["cmdId"].as_str().unwrap().to_string();
    // Queued behind it while the shell still lives: written, never read.
    let body = json!({"command": "echo never", "runAsync": true});
    let queued = exec(&fx, "x", body).await.1["cmdId"]
        .as_str()
        .unwrap()
        .to_string();
    let waiting = tokio::spawn(
        fx.post("/process/session/x/exec")
            .json(&json!({"command": "echo sync"}))
            .send(),
    );
    // Once the shell is gone a new command is listed but refused: the write into it fails.
    let mut refused = (StatusCode::OK, Value::Null);
    for _ in 0..100 {
        let body = json!({"command": "echo late", "runAsync": true});
        refused = exec(&fx, "x", body).await;
        if refused.0 != StatusCode::ACCEPTED {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(refused.0, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        refused.1["message"],
        "failed to execute command: failed to write command: write |1: broken pipe"
    );
    let session: Value = get_json(&fx, "/process/session/x").await;
    let commands = session["commands"].as_array().unwrap();
    assert!(commands.len() >= 4, "{session}");
    assert!(
        commands.iter().all(|c| c.get("exitCode").is_none()),
        "{session}"
    );
    let logs = |id: String| {
        let req = fx.get(&format!("/process/session/x/command/{id}/logs"));
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(logs(first.clone()).await["stdout"], "before\n");
    assert_eq!(logs(queued).await["stdout"], "");
    let input = fx
        .post(&format!("/process/session/x/command/{first}/input"))
        .json(&json!({"data": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(input.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // The follow of a command without an exit code and the sync request stay open until the
    // session is deleted.
    let follow_task = {
        let url = fx.url(&format!(
            "/process/session/x/command/{first}/logs?follow=true"
        ));
        tokio::spawn(async move { follow_url(&url).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a sync exec behind a dead shell answered"
    );
    assert!(
        !follow_task.is_finished(),
        "the follow closed without an exit code"
    );
    let deleted = fx.delete("/process/session/x").send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let answered = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(answered.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = answered.json().await.unwrap();
    assert_eq!(
        body["message"],
        "failed to execute command: session cancelled"
    );
    let (frames, close) = tokio::time::timeout(Duration::from_secs(10), follow_task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frames.concat(), b"\x01\x01\x01before\n");
    assert_eq!(close, Some(CloseCode::Normal));
    assert_eq!(fx.settle_processes().await, 0);
    fx.shutdown().await;
}

/// `pkg/session/execute.go` / `input.go`: a sync command's stdin is a FIFO whose first writer
/// closed at once, so it reads end-of-file, yet input sent while it runs is accepted (204),
/// echoed into the log and there for a later read.
#[tokio::test]
async fn input_reaches_a_sync_command_after_its_end_of_file() {
    let fx = Fixture::start().await;
    create_session(&fx, "y").await;
    let running = tokio::spawn(
        fx.post("/process/session/y/exec")
            .json(
                &json!({"command": "if read a; then echo \"early $a\"; else echo eof; fi; \
                           while ! read b; do sleep 0.05; done; echo \"got $b\""}),
            )
            .send(),
    );
    let mut cmd_id = None;
    for _ in 0..100 {
        let session: Value = get_json(&fx, "/process/session/y").await;
        if let Some(id) = session["commands"][0]["id"].as_str() {
            cmd_id = Some(id.to_string());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cmd_id = cmd_id.unwrap();
    let input = format!("/process/session/y/command/{cmd_id}/input");
    let mut status = StatusCode::OK;
    for _ in 0..100 {
        // Until the command's turn has come and its stdin is open (500 before that).
        status = fx
            .post(&input)
            .json(&json!({"data": "hello"}))
            .send()
            .await
            .unwrap()
            .status();
        if status == StatusCode::NO_CONTENT {
            break;
        }
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, StatusCode::NO_CONTENT);
    let done = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let body: Value = done.json().await.unwrap();
    assert_eq!(body["exitCode"], 0);
    let stdout = body["stdout"].as_str().unwrap();
    // The echo of the input lands where it was sent: after `eof`, before what it caused.
    assert_eq!(stdout, "eof\nhello\ngot hello\n");
    fx.shutdown().await;
}
