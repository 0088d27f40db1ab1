//! Commands and sessions against the emulator's toolbox, over real HTTP and WebSocket.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use workspace_daytona::api::toolbox::SessionExecuteRequest;
use workspace_daytona::{DaytonaError, ExecuteOptions, FollowEnd, LogEvent};

fn sync(cmd: &str) -> SessionExecuteRequest {
    SessionExecuteRequest {
        command: cmd.to_string(),
        ..Default::default()
    }
}

fn run_async(cmd: &str) -> SessionExecuteRequest {
    SessionExecuteRequest {
        command: cmd.to_string(),
        run_async: Some(true),
        ..Default::default()
    }
}

#[tokio::test]
async fn execute_with_cwd_env_and_exit_code() {
    let (emu, _client, sandbox) = setup().await;
    let p = sandbox.process();
    let out = p.execute("echo hi", &ExecuteOptions::new()).await.unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(out.result, "hi\n");

    let home = sandbox.user_home_dir().await.unwrap();
    let out = p
        .execute(
            "pwd; echo \"$GREETING\"; echo oops >&2; exit 3",
            &ExecuteOptions::new()
                .cwd(home.clone())
                .env("GREETING", "bonjour")
                .timeout(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 3);
    assert!(out.result.contains(&home), "{}", out.result);
    assert!(out.result.contains("bonjour"));
    assert!(
        out.result.contains("oops"),
        "stderr is merged: {}",
        out.result
    );

    let req = hits(&emu, "POST", "/process/execute").pop().unwrap();
    let body = req.body.unwrap();
    assert_eq!(body["timeout"], 10);
    assert_eq!(body["envs"]["GREETING"], "bonjour");
    assert_eq!(body["cwd"], home.as_str());
}

#[tokio::test]
async fn execute_timeout_is_a_typed_408() {
    let (_emu, _client, sandbox) = setup().await;
    let started = Instant::now();
    let err = sandbox
        .process()
        .execute(
            "sleep 30",
            &ExecuteOptions::new().timeout(Duration::from_secs(1)),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    match &err {
        DaytonaError::Timeout(d) => assert_eq!(d.status, 408),
        other => panic!("{other:?}"),
    }
    assert!(err.is_timeout());
}

#[tokio::test]
async fn invalid_arguments_never_reach_the_server() {
    let (emu, _client, sandbox) = setup().await;
    emu.clear_requests();
    let p = sandbox.process();
    assert!(matches!(
        p.execute("  ", &ExecuteOptions::new()).await,
        Err(DaytonaError::InvalidArgument { .. })
    ));
    assert!(matches!(
        p.execute("true", &ExecuteOptions::new().timeout(Duration::ZERO))
            .await,
        Err(DaytonaError::InvalidArgument { .. })
    ));
    assert!(matches!(
        p.create_session("").await,
        Err(DaytonaError::InvalidArgument { .. })
    ));
    assert!(emu.requests().is_empty());
}

#[tokio::test]
async fn session_sync_exec_splits_stdout_and_stderr() {
    let (_emu, _client, sandbox) = setup().await;
    let p = sandbox.process();
    p.create_session("s1").await.unwrap();
    let err = p.create_session("s1").await.unwrap_err();
    assert!(matches!(err, DaytonaError::Conflict(_)), "{err:?}");

    let r = p
        .execute_session_command("s1", &sync("export X=42; echo out; echo err >&2"), None)
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(0));
    assert_eq!(r.stdout.as_deref(), Some("out\n"));
    assert_eq!(r.stderr.as_deref(), Some("err\n"));
    assert!(r.output.as_deref().unwrap().contains("\u{1}\u{1}\u{1}out"));

    // State persists in the session.
    let r = p
        .execute_session_command(
            "s1",
            &sync("echo $X; (exit 7)"),
            Some(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    assert_eq!(r.stdout.as_deref(), Some("42\n"));
    assert_eq!(r.exit_code, Some(7));

    let session = p.get_session("s1").await.unwrap();
    assert_eq!(session.commands.len(), 2);
    assert_eq!(session.commands[1].exit_code, Some(7));
    let all = p.list_sessions().await.unwrap();
    assert!(all.iter().any(|s| s.session_id == "s1"));

    p.delete_session("s1").await.unwrap();
    let err = p.get_session("s1").await.unwrap_err();
    assert!(matches!(err, DaytonaError::NotFound(_)), "{err:?}");
    // The daemon's exec route answers an unknown session with a wrapped 500; the client
    // reports it as what it is.
    let err = p
        .execute_session_command("s1", &sync("true"), Some(Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DaytonaError::NotFound(ref d) if d.status == 500),
        "{err:?}"
    );
}

#[tokio::test]
async fn async_command_exit_code_is_absent_while_running() {
    let (_emu, _client, sandbox) = setup().await;
    let p = sandbox.process();
    p.create_session("bg").await.unwrap();
    let r = p
        .execute_session_command("bg", &run_async("echo start; sleep 1; echo done >&2"), None)
        .await
        .unwrap();
    assert!(!r.cmd_id.is_empty());
    assert_eq!(r.exit_code, None);
    let cmd = p.get_session_command("bg", &r.cmd_id).await.unwrap();
    assert_eq!(cmd.exit_code, None, "still running");

    let deadline = Instant::now() + Duration::from_secs(15);
    let finished = loop {
        let cmd = p.get_session_command("bg", &r.cmd_id).await.unwrap();
        if let Some(code) = cmd.exit_code {
            break code;
        }
        assert!(Instant::now() < deadline, "command never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(finished, 0);
    let logs = p.get_session_command_logs("bg", &r.cmd_id).await.unwrap();
    assert_eq!(logs.stdout, "start\n");
    assert_eq!(logs.stderr, "done\n");
}

#[tokio::test]
async fn follow_logs_as_a_stream_ends_with_close_1000() {
    let (_emu, _client, sandbox) = setup().await;
    let p = sandbox.process();
    p.create_session("f").await.unwrap();
    let script = "for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.2; done; printf 'snow ☃ no newline'";
    let r = p
        .execute_session_command("f", &run_async(script), None)
        .await
        .unwrap();
    let mut stream = p.follow_session_command_logs("f", &r.cmd_id).await.unwrap();
    let (mut out, mut err, mut end) = (String::new(), String::new(), None);
    while let Some(ev) = stream.next().await {
        match ev {
            LogEvent::Stdout(t) => out.push_str(&t),
            LogEvent::Stderr(t) => err.push_str(&t),
            LogEvent::End(e) => end = Some(e),
        }
    }
    let end = end.expect("an end event");
    assert!(end.is_complete(), "{end:?}");
    assert_eq!(out, "out1\nout2\nout3\nsnow ☃ no newline\n");
    assert_eq!(err, "err1\nerr2\nerr3\n");
    // The stream ends with the command; its exit code is asked separately.
    let mut code = None;
    for _ in 0..50 {
        code = p
            .get_session_command("f", &r.cmd_id)
            .await
            .unwrap()
            .exit_code;
        if code.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn follow_logs_with_callbacks_and_send_input() {
    let (emu, _client, sandbox) = setup().await;
    let p = sandbox.process();
    p.create_session("in").await.unwrap();
    let r = p
        .execute_session_command("in", &run_async("read line; echo got:$line"), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    p.send_session_command_input("in", &r.cmd_id, "hello\n")
        .await
        .unwrap();
    let mut out = String::new();
    let mut err = String::new();
    let end = p
        .follow_session_command_logs_with("in", &r.cmd_id, |t| out.push_str(t), |t| err.push_str(t))
        .await
        .unwrap();
    assert!(end.is_complete(), "{end:?}");
    assert!(out.contains("got:hello"), "{out:?}");

    // The WebSocket upgrade carried the SDK headers.
    let ws = hits(&emu, "GET", "/logs").pop().unwrap();
    assert_eq!(ws.query.as_deref(), Some("follow=true"));
    assert_eq!(ws.header("authorization"), Some("Bearer <redacted>"));
    assert_eq!(ws.header("x-daytona-source"), Some("sdk-rust"));

    // Input to a finished command is refused as gone.
    let err = p
        .send_session_command_input("in", &r.cmd_id, "late\n")
        .await
        .unwrap_err();
    assert!(matches!(err, DaytonaError::Gone(_)), "{err:?}");
}

#[tokio::test]
async fn follow_unknown_command_is_not_found() {
    let (_emu, _client, sandbox) = setup().await;
    let p = sandbox.process();
    p.create_session("nf").await.unwrap();
    let err = p
        .follow_session_command_logs("nf", "no-such-command")
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn follow_a_finished_command_replays_its_log() {
    let (_emu, _client, sandbox) = setup().await;
    let p = sandbox.process();
    p.create_session("done").await.unwrap();
    let r = p
        .execute_session_command("done", &sync("echo a; echo b >&2"), None)
        .await
        .unwrap();
    let mut out = String::new();
    let mut err = String::new();
    let end = p
        .follow_session_command_logs_with(
            "done",
            &r.cmd_id,
            |t| out.push_str(t),
            |t| err.push_str(t),
        )
        .await
        .unwrap();
    assert_eq!(
        end,
        FollowEnd::Closed {
            code: 1000,
            reason: end_reason(&end)
        }
    );
    assert_eq!((out.as_str(), err.as_str()), ("a\n", "b\n"));
}

fn end_reason(end: &FollowEnd) -> String {
    match end {
        FollowEnd::Closed { reason, .. } => reason.clone(),
        FollowEnd::Dropped { reason } => reason.clone(),
    }
}
