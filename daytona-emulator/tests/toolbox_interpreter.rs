//! The stateful code interpreter over real HTTP and WebSocket, held to the v0.190.0 daemon
//! (`apps/daemon/pkg/toolbox/process/interpreter/`): context CRUD with `AbortWithError`'s empty
//! error bodies (`controller.go`, `manager.go`), execution over a WebSocket with the daemon's
//! chunks and close codes (`controller.go`, `websocket.go`, `repl_client.go`, `types.go`), state
//! carried between executions, FIFO order, the timeout's interrupt and kill, and no worker left
//! behind by a delete, a sandbox stop or delete, or the emulator's shutdown.

#![allow(clippy::unwrap_used)]

mod toolbox_support;

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use toolbox_support::{API_KEY, Fixture, wait_process_appears, wait_process_gone};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a client saw of one execution.
#[derive(Debug, Default)]
struct Seen {
    chunks: Vec<Value>,
    close: Option<(u16, String)>,
}

impl Seen {
    fn text_of(&self, kind: &str) -> String {
        self.chunks
            .iter()
            .filter(|c| c["type"] == kind)
            .map(|c| c["text"].as_str().unwrap())
            .collect()
    }

    fn stdout(&self) -> String {
        self.text_of("stdout")
    }

    fn controls(&self) -> Vec<&str> {
        self.chunks
            .iter()
            .filter(|c| c["type"] == "control")
            .map(|c| c["text"].as_str().unwrap())
            .collect()
    }

    fn errors(&self) -> Vec<&Value> {
        self.chunks
            .iter()
            .filter(|c| c["type"] == "error")
            .collect()
    }

    fn close_code(&self) -> u16 {
        self.close.as_ref().expect("the socket was closed").0
    }
}

async fn open(fx: &Fixture) -> Socket {
    let url = fx
        .url("/process/interpreter/execute")
        .replacen("http", "ws", 1);
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {API_KEY}")).unwrap(),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket handshake");
    socket
}

/// Reads until the close frame (or the end of the stream); panics after 30 s.
async fn read_to_close(socket: &mut Socket) -> Seen {
    let mut seen = Seen::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let next = tokio::time::timeout_at(deadline, socket.next())
            .await
            .unwrap_or_else(|_| panic!("no close within 30 s; seen so far: {seen:?}"));
        match next {
            Some(Ok(Message::Text(t))) => seen.chunks.push(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                let frame = frame.expect("close frames carry a code");
                seen.close = Some((u16::from(frame.code), frame.reason.to_string()));
                return seen;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("socket error {e}; seen {seen:?}"),
            None => return seen,
        }
    }
}

/// Opens a socket and sends `request` as its first message.
async fn start(fx: &Fixture, request: &Value) -> Socket {
    let mut socket = open(fx).await;
    socket
        .send(Message::Text(request.to_string().into()))
        .await
        .unwrap();
    socket
}

/// One execution from request to close.
async fn run(fx: &Fixture, request: Value) -> Seen {
    let mut socket = start(fx, &request).await;
    read_to_close(&mut socket).await
}

/// `code` in `context` (the default one when `None`), asserting it completed normally.
async fn run_ok(fx: &Fixture, context: Option<&str>, code: &str) -> Seen {
    let mut request = json!({"code": code});
    if let Some(id) = context {
        request["contextId"] = json!(id);
    }
    let seen = run(fx, request).await;
    assert_eq!(seen.controls(), ["completed"], "{code:?}: {seen:?}");
    assert_eq!(
        seen.close,
        Some((1000, String::new())),
        "{code:?}: {seen:?}"
    );
    seen
}

async fn create_context(fx: &Fixture, body: Value) -> Value {
    let resp = fx
        .post("/process/interpreter/context")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "create {body}");
    resp.json().await.unwrap()
}

/// The status and the raw body of a request with a raw body.
async fn call_raw(
    fx: &Fixture,
    method: reqwest::Method,
    path: &str,
    body: &str,
) -> (StatusCode, String) {
    let resp = fx
        .req(method, path)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn list_contexts(fx: &Fixture) -> Vec<Value> {
    let resp = fx.get("/process/interpreter/context").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["contexts"].as_array().unwrap().clone()
}

/// The worker's pid, as the code in `context` sees it.
async fn worker_pid(fx: &Fixture, context: Option<&str>) -> i32 {
    run_ok(fx, context, "import os\nprint(os.getpid())")
        .await
        .stdout()
        .trim()
        .parse()
        .unwrap()
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

async fn dies(pid: i32) -> bool {
    for _ in 0..200 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Starts `sleep <seconds>` from the code of `context`, as a child the worker leaves running.
async fn leave_a_child(fx: &Fixture, context: Option<&str>, seconds: u32) {
    run_ok(
        fx,
        context,
        &format!("import subprocess\n_child = subprocess.Popen(['sleep', '{seconds}'])"),
    )
    .await;
    assert!(wait_process_appears(&format!("sleep {seconds}")).await);
}

async fn sandbox_action(fx: &Fixture, action: &str) {
    let resp = fx
        .http
        .post(format!(
            "{}/sandbox/{}/{action}",
            fx.emu.api_url(),
            fx.sandbox_id
        ))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{action}: {}", resp.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_are_created_listed_and_deleted_as_the_daemon_answers() {
    let fx = Fixture::start().await;
    // controller.go CreateContext: 200 InterpreterContext; the work dir when no cwd is given.
    let made = create_context(&fx, json!({})).await;
    let id = made["id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{made}");
    assert_eq!(made["cwd"], fx.home());
    assert_eq!(made["active"], true);
    assert_eq!(made["language"], "python");
    assert!(
        chrono::DateTime::parse_from_rfc3339(made["createdAt"].as_str().unwrap()).is_ok(),
        "{made}"
    );
    let in_tmp = create_context(&fx, json!({"cwd": fx.tmp(), "language": "python"})).await;
    assert_eq!(in_tmp["cwd"], fx.tmp());
    // gin binds `null` as an empty request.
    let (status, body) = call_raw(
        &fx,
        reqwest::Method::POST,
        "/process/interpreter/context",
        "null",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let from_null: Value = serde_json::from_str(&body).unwrap();

    // AbortWithError: the status, no body.
    for bad in [
        "",
        "{",
        r#"{"language":"javascript"}"#,
        r#"{"language":""}"#,
        r#"{"cwd":5}"#,
    ] {
        let (status, body) = call_raw(
            &fx,
            reqwest::Method::POST,
            "/process/interpreter/context",
            bad,
        )
        .await;
        assert_eq!(status, 400, "{bad:?}");
        assert_eq!(body, "", "{bad:?}");
    }
    // A directory that does not exist: the worker cannot start there (500, no body).
    let (status, body) = call_raw(
        &fx,
        reqwest::Method::POST,
        "/process/interpreter/context",
        &json!({"cwd": format!("{}/no-such-dir", fx.tmp())}).to_string(),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "")
    );
    // Outside the sandbox: refused as every path is, with a body that says so.
    let (status, body) = call_raw(
        &fx,
        reqwest::Method::POST,
        "/process/interpreter/context",
        r#"{"cwd": "/etc"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["code"],
        "FILE_ACCESS_DENIED"
    );

    // The default context exists once used, and is never listed.
    run_ok(&fx, None, "pass").await;
    let listed: Vec<String> = list_contexts(&fx)
        .await
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let mut expected = vec![
        id.clone(),
        in_tmp["id"].as_str().unwrap().to_string(),
        from_null["id"].as_str().unwrap().to_string(),
    ];
    expected.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    assert!(!listed.iter().any(|c| c == "default"));

    // DeleteContext: 400 for the default one, 404 for an unknown one, both without a body.
    let pid = worker_pid(&fx, Some(&id)).await;
    for (path, status) in [
        ("/process/interpreter/context/default", 400),
        ("/process/interpreter/context/no-such-context", 404),
    ] {
        let resp = fx.delete(path).send().await.unwrap();
        assert_eq!(resp.status(), status, "{path}");
        assert_eq!(resp.text().await.unwrap(), "", "{path}");
    }
    let resp = fx
        .delete(&format!("/process/interpreter/context/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"message": "Context deleted successfully"})
    );
    assert!(dies(pid).await, "the deleted context's worker is gone");
    let resp = fx
        .delete(&format!("/process/interpreter/context/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let seen = run(&fx, json!({"code": "pass", "contextId": id})).await;
    assert_eq!(seen.close, Some((1008, format!("context not found: {id}"))));
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_carries_over_and_output_streams_by_kind() {
    let fx = Fixture::start().await;
    let nothing = run_ok(&fx, None, "x = 41\nimport json").await;
    assert_eq!(
        nothing.chunks.len(),
        1,
        "only the control chunk: {nothing:?}"
    );
    // Every chunk carries every field (types.go OutputMessage has no omitempty).
    assert_eq!(
        nothing.chunks[0],
        json!({"type": "control", "text": "completed", "name": "", "value": "", "traceback": ""})
    );
    let seen = run_ok(
        &fx,
        None,
        "import sys\nprint(json.dumps([x + 1]))\nprint('oops', file=sys.stderr)\nsys.stdout.write('no newline')",
    )
    .await;
    assert_eq!(seen.stdout(), "[42]\nno newline");
    assert_eq!(seen.text_of("stderr"), "oops\n");
    assert_eq!(
        seen.chunks[0],
        json!({"type": "stdout", "text": "[42]\n", "name": "", "value": "", "traceback": ""})
    );
    // The working directory carries over too, and starts at the work dir.
    let cwd = run_ok(&fx, None, "import os\nprint(os.getcwd())\nos.chdir('/')").await;
    assert_eq!(cwd.stdout().trim(), fx.home());
    assert_eq!(
        run_ok(&fx, None, "print(os.getcwd())").await.stdout(),
        "/\n"
    );
    // SystemExit ends the code quietly (the daemon's worker treats it as completion).
    let exited = run_ok(
        &fx,
        None,
        "print('before')\nraise SystemExit(3)\nprint('after')",
    )
    .await;
    assert_eq!(exited.stdout(), "before\n");
    assert!(exited.errors().is_empty());
    // A context is separate from the default one.
    let other = create_context(&fx, json!({})).await;
    let other = other["id"].as_str().unwrap();
    let missing = run_ok(&fx, Some(other), "print('x' in globals())").await;
    assert_eq!(missing.stdout(), "False\n");
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceptions_give_an_error_chunk_with_the_users_traceback() {
    let fx = Fixture::start().await;
    let seen = run_ok(
        &fx,
        None,
        "print('first')\ndef f():\n    raise ValueError('bad value')\nf()",
    )
    .await;
    assert_eq!(seen.stdout(), "first\n");
    let errors = seen.errors();
    assert_eq!(errors.len(), 1, "{seen:?}");
    // Only the frames of the user's code, named <stdin>, and no source lines.
    assert_eq!(
        *errors[0],
        json!({
            "type": "error",
            "text": "",
            "name": "ValueError",
            "value": "bad value",
            "traceback": "Traceback (most recent call last):\n  File \"<stdin>\", line 4\n  \
                          File \"<stdin>\", line 3\nValueError: bad value\n",
        })
    );
    // The error comes before the control chunk, and the close is normal.
    assert_eq!(seen.chunks.last().unwrap()["type"], "control");
    // A syntax error has no frame of the user's code: the last line alone.
    let syntax = run_ok(&fx, None, "1 +").await;
    let error = syntax.errors()[0];
    assert_eq!(error["name"], "SyntaxError");
    let value = error["value"].as_str().unwrap();
    assert!(value.ends_with("(<string>, line 1)"), "{value}");
    assert_eq!(error["traceback"], format!("SyntaxError: {value}\n"));
    // input() reads nothing: the requests are not on the code's stdin.
    let input = run_ok(&fx, None, "input()").await;
    assert_eq!(input.errors()[0]["name"], "EOFError");
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envs_last_one_execution_and_the_sandbox_is_the_same_for_commands() {
    let fx = Fixture::start().await;
    let seen = run(
        &fx,
        json!({"code": "import os\nprint(os.environ['GREETING'], os.environ['SANDBOX_VAR'], os.environ['USER'])", "envs": {"GREETING": "hi there"}}),
    )
    .await;
    assert_eq!(seen.stdout(), "hi there from-sandbox daytona\n");
    let after = run_ok(&fx, None, "print(os.environ.get('GREETING'))").await;
    assert_eq!(after.stdout(), "None\n");
    // A file a command wrote is there for the code, in a context started in /tmp.
    let tmp_dir = fx.tmp();
    fx.exec(&format!("echo from-a-command > {tmp_dir}/shared.txt"))
        .await;
    let tmp = create_context(&fx, json!({"cwd": fx.tmp()})).await;
    let read = run_ok(
        &fx,
        tmp["id"].as_str(),
        "print(open('shared.txt').read().strip())\nopen('back.txt', 'w').write('from-python')",
    )
    .await;
    assert_eq!(read.stdout(), "from-a-command\n");
    assert_eq!(
        fx.exec(&format!("cat {tmp_dir}/back.txt")).await["result"],
        "from-python"
    );
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_of_a_context_run_one_at_a_time_in_arrival_order() {
    let fx = Fixture::start().await;
    run_ok(&fx, None, "import time\norder = []").await;
    let mut first = start(
        &fx,
        &json!({"code": "print('first starts', flush=True)\ntime.sleep(1)\norder.append('a')"}),
    )
    .await;
    // The first one is running once its output arrives.
    let started = first.next().await.unwrap().unwrap();
    assert!(started.to_text().unwrap().contains("first starts"));
    let mut second = start(&fx, &json!({"code": "order.append('b')\nprint(order)"})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = start(&fx, &json!({"code": "order.append('c')\nprint(order)"})).await;
    // A client that leaves does not take its execution along: the fourth still runs.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fourth = start(&fx, &json!({"code": "order.append('d')"})).await;
    drop(fourth);
    let first = read_to_close(&mut first).await;
    assert_eq!(first.close_code(), 1000);
    let second = read_to_close(&mut second).await;
    assert_eq!(second.stdout(), "['a', 'b']\n");
    let third = read_to_close(&mut third).await;
    assert_eq!(third.stdout(), "['a', 'b', 'c']\n");
    let last = run_ok(&fx, None, "print(order)").await;
    assert_eq!(last.stdout(), "['a', 'b', 'c', 'd']\n");
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_interrupts_the_code_and_the_context_keeps_its_state() {
    let fx = Fixture::start().await;
    let pid = worker_pid(&fx, None).await;
    run_ok(&fx, None, "kept = 'still here'").await;
    let t0 = Instant::now();
    let seen = run(
        &fx,
        json!({"code": "import time\nprint('sleeping', flush=True)\ntime.sleep(30)\nprint('woke')", "timeout": 1}),
    )
    .await;
    let took = t0.elapsed();
    // repl_client.go: SIGINT at the timeout; the worker reports `interrupted`, then 4008.
    assert_eq!(seen.stdout(), "sleeping\n");
    assert_eq!(seen.controls(), ["interrupted"]);
    assert!(seen.errors().is_empty(), "{seen:?}");
    assert_eq!(seen.close, Some((4008, String::new())));
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // Same worker, same state.
    assert_eq!(worker_pid(&fx, None).await, pid);
    assert_eq!(
        run_ok(&fx, None, "print(kept)").await.stdout(),
        "still here\n"
    );
    // Code that raises KeyboardInterrupt itself ends the same way (the daemon reads the
    // `interrupted` control as a timeout).
    let own = run(&fx, json!({"code": "raise KeyboardInterrupt"})).await;
    assert_eq!(own.controls(), ["interrupted"]);
    assert_eq!(own.close_code(), 4008);
    // timeout 0: no limit (a short sleep runs to its end).
    let unlimited = run(
        &fx,
        json!({"code": "time.sleep(1.2)\nprint('done')", "timeout": 0}),
    )
    .await;
    assert_eq!(unlimited.stdout(), "done\n");
    assert_eq!(unlimited.close_code(), 1000);
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_deaf_to_the_interrupt_is_killed_and_the_context_starts_afresh() {
    let fx = Fixture::start().await;
    let made = create_context(&fx, json!({})).await;
    let id = made["id"].as_str().unwrap();
    run_ok(&fx, Some(id), "lost = 1").await;
    let pid = worker_pid(&fx, Some(id)).await;
    leave_a_child(&fx, Some(id), 47113).await;
    let t0 = Instant::now();
    let seen = run(
        &fx,
        json!({
            "contextId": id,
            "timeout": 1,
            "code": "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass",
        }),
    )
    .await;
    let took = t0.elapsed();
    // No answer within the 2 s grace (types.go gracePeriod): killed, closed 4008.
    assert!(seen.controls().is_empty(), "{seen:?}");
    assert_eq!(seen.close, Some((4008, String::new())));
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(8),
        "took {took:?}"
    );
    assert!(dies(pid).await, "the deaf worker was killed");
    assert!(
        wait_process_gone("sleep 47113").await,
        "with what it started"
    );
    let listed = list_contexts(&fx).await;
    assert_eq!(listed[0]["active"], false, "{listed:?}");
    // manager.go GetContext restarts the worker: the context works again, its state gone.
    let fresh = run_ok(&fx, Some(id), "print('lost' in globals())").await;
    assert_eq!(fresh.stdout(), "False\n");
    assert_ne!(worker_pid(&fx, Some(id)).await, pid);
    assert_eq!(list_contexts(&fx).await[0]["active"], true);
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_close_with_the_daemons_codes_and_reasons() {
    let fx = Fixture::start().await;
    for (payload, code, reason) in [
        ("{not json", 1002, "invalid JSON payload"),
        (
            r#"{"code": "x", "timeout": 1.5}"#,
            1002,
            "invalid JSON payload",
        ),
        (r#"{"code": ""}"#, 1008, "code is required"),
        ("{}", 1008, "code is required"),
        (
            r#"{"code": "x", "timeout": -1}"#,
            1008,
            "timeout must be greater than or equal to 0",
        ),
        (
            r#"{"code": "x", "contextId": "nope"}"#,
            1008,
            "context not found: nope",
        ),
        (
            r#"{"code": "x", "contextId": "default"}"#,
            1008,
            "context not found: default",
        ),
    ] {
        let mut socket = open(&fx).await;
        socket.send(Message::Text(payload.into())).await.unwrap();
        let seen = read_to_close(&mut socket).await;
        assert!(seen.chunks.is_empty(), "{payload}: {seen:?}");
        assert_eq!(seen.close, Some((code, reason.to_string())), "{payload}");
    }
    // A browser's SDK-version subprotocol is echoed (internal/util/websocket.go).
    let url = fx
        .url("/process/interpreter/execute")
        .replacen("http", "ws", 1);
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {API_KEY}")).unwrap(),
    );
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("X-Daytona-SDK-Version~0.218.0"),
    );
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "X-Daytona-SDK-Version~0.218.0"
    );
    socket
        .send(Message::Text(r#"{"code": "print(1)"}"#.into()))
        .await
        .unwrap();
    assert_eq!(read_to_close(&mut socket).await.stdout(), "1\n");
    // A request without a WebSocket handshake: gorilla's 400.
    let resp = fx.get("/process/interpreter/execute").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.text().await.unwrap(), "Bad Request\n");
    // A client that leaves before its request: nothing runs, nothing breaks.
    let mut socket = open(&fx).await;
    socket.close(None).await.unwrap();
    run_ok(&fx, None, "pass").await;
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_die_with_their_sandbox_and_a_restarted_one_starts_clean() {
    let fx = Fixture::start().await;
    let made = create_context(&fx, json!({})).await;
    let id = made["id"].as_str().unwrap().to_string();
    let pid = worker_pid(&fx, Some(&id)).await;
    let default_pid = worker_pid(&fx, None).await;
    leave_a_child(&fx, Some(&id), 47114).await;
    sandbox_action(&fx, "stop").await;
    assert!(
        dies(pid).await && dies(default_pid).await,
        "stop kills the workers"
    );
    assert!(wait_process_gone("sleep 47114").await);
    sandbox_action(&fx, "start").await;
    assert!(
        list_contexts(&fx).await.is_empty(),
        "a started sandbox has no contexts"
    );
    let seen = run(&fx, json!({"code": "pass", "contextId": id})).await;
    assert_eq!(seen.close_code(), 1008);
    run_ok(&fx, None, "print('default again')").await;
    // Delete kills them too.
    let again = worker_pid(&fx, None).await;
    let resp = fx
        .http
        .delete(format!("{}/sandbox/{}", fx.emu.api_url(), fx.sandbox_id))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert!(dies(again).await, "delete kills the workers");
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_shutdown_kills_workers_mid_execution() {
    let fx = Fixture::start().await;
    let pid = worker_pid(&fx, None).await;
    leave_a_child(&fx, None, 47115).await;
    let mut busy = start(
        &fx,
        &json!({"code": "import time\nprint('busy', flush=True)\ntime.sleep(60)"}),
    )
    .await;
    let started = busy.next().await.unwrap().unwrap();
    assert!(started.to_text().unwrap().contains("busy"));
    fx.shutdown().await;
    assert!(dies(pid).await, "shutdown kills the worker");
    assert!(
        wait_process_gone("sleep 47115").await,
        "with what it started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_context_ends_its_running_and_queued_executions() {
    let fx = Fixture::start().await;
    let made = create_context(&fx, json!({})).await;
    let id = made["id"].as_str().unwrap().to_string();
    let mut running = start(
        &fx,
        &json!({"contextId": id, "code": "import time\nprint('running', flush=True)\ntime.sleep(60)"}),
    )
    .await;
    let started = running.next().await.unwrap().unwrap();
    assert!(started.to_text().unwrap().contains("running"));
    let mut queued = start(&fx, &json!({"contextId": id, "code": "print('never')"})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resp = fx
        .delete(&format!("/process/interpreter/context/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for socket in [&mut running, &mut queued] {
        let seen = read_to_close(socket).await;
        assert!(seen.stdout().is_empty(), "{seen:?}");
        assert_eq!(seen.close, Some((1001, "context shutdown".to_string())));
    }
    fx.shutdown().await;
}
