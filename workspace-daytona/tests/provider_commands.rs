//! DaytonaSandbox commands against the emulator: log streams that drop, timeouts, cancels and
//! dropped futures leaving nothing behind, a thousand commands leaving no session, env values
//! kept out of the stored command text, and exit codes that are never made up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use daytona_emulator::{FaultRule, WsDrop};
use futures::StreamExt;
use provider_support::{builder_for, emulator, eventually, requests, runtime_load};
use workspace_core::{
    CancellationToken, EXIT_KILLED, EXIT_TIMEOUT, ExecuteCommandOptions, SandboxError,
    WorkspaceSandbox, WorkspaceSandboxExt,
};
use workspace_daytona::DaytonaSandbox;

const LOGS: &str = "/toolbox/*/process/session/*/command/*/logs";

fn opts() -> ExecuteCommandOptions {
    ExecuteCommandOptions::new().timeout(Duration::from_secs(60))
}

async fn started(url: &str) -> DaytonaSandbox {
    let sb = builder_for(url).build().unwrap();
    sb.start().await.unwrap();
    sb
}

/// A started handle whose every command takes a session of its own (no resident shell).
async fn started_per_command(url: &str) -> DaytonaSandbox {
    let sb = builder_for(url).resident_shell(false).build().unwrap();
    sb.start().await.unwrap();
    sb
}

fn follow_connects(emu: &daytona_emulator::EmulatorHandle) -> usize {
    requests(emu, "GET", |p| p.ends_with("/logs")).len()
}

/// Lines 1..=n on stdout and every tenth on stderr, with a pause in the middle.
const WRITER: &str = r#"i=1; while [ $i -le 400 ]; do echo "line $i"; [ $((i % 10)) -eq 0 ] && echo "err $i" >&2; [ $i -eq 200 ] && sleep 0.3; i=$((i+1)); done; exit 3"#;

fn expected_writer() -> (String, String) {
    let out: String = (1..=400).map(|i| format!("line {i}\n")).collect();
    let err: String = (1..=400)
        .filter(|i| i % 10 == 0)
        .map(|i| format!("err {i}\n"))
        .collect();
    (out, err)
}

#[tokio::test]
async fn dropped_log_streams_lose_and_repeat_nothing() {
    let emu = emulator().await;
    let sb = started_per_command(&emu.api_url()).await;
    let (want_out, want_err) = expected_writer();

    // Mid-stream drops, each later than the last: the follow resumes after what it has.
    emu.add_fault(FaultRule::drop_websocket(LOGS, WsDrop::AfterBytes(1500)).times(1))
        .unwrap();
    emu.add_fault(FaultRule::drop_websocket(LOGS, WsDrop::AfterBytes(4000)).times(1))
        .unwrap();
    let streamed = Arc::new(Mutex::new(String::new()));
    let s = streamed.clone();
    let before = follow_connects(&emu);
    let r = sb
        .execute_command(
            WRITER,
            &[],
            opts().on_stdout(move |t| s.lock().unwrap().push_str(t)),
        )
        .await
        .unwrap();
    assert_eq!(r.exit_code, 3);
    assert!(
        r.stdout == want_out,
        "stdout differs: {} bytes",
        r.stdout.len()
    );
    assert_eq!(r.stderr, want_err);
    assert!(
        *streamed.lock().unwrap() == want_out,
        "the callback saw a different text"
    );
    assert!(
        follow_connects(&emu) - before >= 3,
        "the stream was followed again"
    );

    // Every connection drops early: once the command is done, the rest comes over HTTP.
    let rule = emu
        .add_fault(FaultRule::drop_websocket(LOGS, WsDrop::AfterBytes(700)))
        .unwrap();
    let r = sb.execute_command(WRITER, &[], opts()).await.unwrap();
    assert_eq!(
        (r.exit_code, r.stdout == want_out, r.stderr == want_err),
        (3, true, true)
    );
    emu.remove_fault(rule);

    // No connection delivers anything: after a few tries the log is polled instead.
    let rule = emu
        .add_fault(FaultRule::drop_websocket(LOGS, WsDrop::AfterFrames(0)))
        .unwrap();
    let r = sb
        .execute_command("echo one; sleep 2; echo two >&2; exit 5", &[], opts())
        .await
        .unwrap();
    assert_eq!(
        (r.exit_code, r.stdout.as_str(), r.stderr.as_str()),
        (5, "one\n", "two\n")
    );
    emu.remove_fault(rule);

    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn a_missing_exit_code_is_an_error_not_zero() {
    let emu = emulator().await;
    let sb = started_per_command(&emu.api_url()).await;
    // The command record cannot be read.
    emu.add_fault(FaultRule::status("/toolbox/*/process/session/*/command/*", 404).method("GET"))
        .unwrap();
    // The wrapper's exit trailer carries the code: the record is not needed.
    assert_eq!(sb.run("echo done; exit 4").await.unwrap().exit_code, 4);
    // The session goes before the command could print the trailer (deleted underneath): the
    // log ends, but nothing says how the command did.
    let id = sb.daytona_id().unwrap();
    let delete_underneath = async {
        let mut victim = None;
        assert!(
            eventually(Duration::from_secs(10), || {
                victim = emu.state().runtime(&id).and_then(|rt| {
                    rt.snapshot()
                        .sessions
                        .into_iter()
                        .find(|s| s.commands.iter().any(|c| c.1.contains("sleep 30")))
                        .map(|s| s.id)
                });
                victim.is_some()
            })
            .await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let process = sb.daytona().unwrap().process();
        process.delete_session(&victim.unwrap()).await.unwrap();
    };
    let (r, ()) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(
            sb.execute_command("echo done; sleep 30", &[], opts()),
            delete_underneath
        )
    })
    .await
    .unwrap();
    assert!(
        r.is_err(),
        "without an exit code the result must be an error: {r:?}"
    );
    emu.clear_faults();
    // `$$` is the command's own shell, not the session's (which the daemon never lets go of
    // once killed): its signal status is the result, as on a local shell.
    let r = sb
        .execute_command("echo done; kill -9 $$", &[], opts())
        .await
        .unwrap();
    assert_eq!(
        (r.exit_code, r.stdout.as_str(), r.stderr.as_str()),
        (137, "done\n", "")
    );
    assert!(
        eventually(Duration::from_secs(10), || runtime_load(&emu, &id)
            == (0, 0))
        .await,
        "{:?}",
        runtime_load(&emu, &id)
    );
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn timeouts_cancels_and_dropped_futures_leave_no_session_or_process() {
    let emu = emulator().await;
    let sb = started(&emu.api_url()).await;
    let id = sb.daytona_id().unwrap();
    let idle = || runtime_load(&emu, &id) == (0, 0);

    let began = Instant::now();
    let r = sb
        .execute_command(
            "echo before; echo err >&2; sleep 30",
            &[],
            // Generous enough that a loaded machine still runs the echoes before the deadline.
            ExecuteCommandOptions::new().timeout(Duration::from_secs(3)),
        )
        .await
        .unwrap();
    assert_eq!((r.exit_code, r.timed_out), (EXIT_TIMEOUT, true));
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("before\n", "err\n")
    );
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );
    assert!(
        eventually(Duration::from_secs(15), idle).await,
        "after a timeout: {:?}",
        runtime_load(&emu, &id)
    );

    // Cancel once the command has visibly started, not after a fixed delay that a loaded
    // machine may spend still launching it.
    let token = CancellationToken::new();
    let cancel = token.clone();
    let r = sb
        .execute_command(
            "echo started; sleep 30",
            &[],
            opts().cancel_token(token).on_stdout(move |chunk| {
                if chunk.contains("started") {
                    cancel.cancel();
                }
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.exit_code, r.killed, r.stdout.as_str()),
        (EXIT_KILLED, true, "started\n")
    );
    assert!(
        eventually(Duration::from_secs(15), idle).await,
        "after a cancel: {:?}",
        runtime_load(&emu, &id)
    );

    let dropped = tokio::time::timeout(
        Duration::from_secs(1),
        sb.execute_command("sleep 30", &[], opts()),
    )
    .await;
    assert!(
        dropped.is_err(),
        "the command should still have been running"
    );
    assert!(
        eventually(Duration::from_secs(15), idle).await,
        "after a dropped future: {:?}",
        runtime_load(&emu, &id)
    );

    // A finished command's session goes too.
    assert!(sb.run("true").await.unwrap().success);
    assert!(eventually(Duration::from_secs(15), idle).await);
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn a_thousand_commands_leave_no_session() {
    let emu = emulator().await;
    let sb = started(&emu.api_url()).await;
    let id = sb.daytona_id().unwrap();
    let began = Instant::now();
    let sb_ref = &sb;
    let results: Vec<(usize, workspace_core::CommandResult)> = futures::stream::iter(0..1000usize)
        .map(|i| async move {
            let r = if i % 50 == 49 {
                sb_ref
                    .execute_command(
                        "sleep 5",
                        &[],
                        ExecuteCommandOptions::new().timeout(Duration::from_secs(1)),
                    )
                    .await
            } else {
                sb_ref
                    .execute_command("printf %s", &[i.to_string()], opts())
                    .await
            };
            (i, r.unwrap_or_else(|e| panic!("command {i}: {e}")))
        })
        .buffer_unordered(12)
        .collect()
        .await;
    let elapsed = began.elapsed();
    eprintln!("1000 commands took {elapsed:?}");
    assert_eq!(results.len(), 1000);
    for (i, r) in &results {
        if i % 50 == 49 {
            assert!(r.timed_out && r.exit_code == EXIT_TIMEOUT, "{i}: {r:?}");
        } else {
            assert_eq!(
                (r.exit_code, r.stdout.as_str()),
                (0, i.to_string().as_str()),
                "{i}"
            );
        }
    }
    assert!(
        eventually(Duration::from_secs(15), || runtime_load(&emu, &id)
            == (0, 0))
        .await,
        "sessions or processes left: {:?}",
        runtime_load(&emu, &id)
    );
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn env_values_never_appear_in_stored_command_text() {
    let emu = emulator().await;
    let sb = started_per_command(&emu.api_url()).await;
    let id = sb.daytona_id().unwrap();
    let secret = "tok-9f8e7d6c5b4a-very-secret";
    let run = sb.execute_command(
        r#"printf '%s' "$API_TOKEN"; sleep 1"#,
        &[],
        opts().env("API_TOKEN", secret).env("OTHER", "x y"),
    );
    let watch = async {
        // While it runs, the daemon's stored text is what listings show.
        let mut seen = Vec::new();
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(80)).await;
            if let Some(rt) = emu.state().runtime(&id) {
                for s in rt.snapshot().sessions {
                    seen.extend(s.commands.into_iter().map(|(_, text, _)| text));
                }
            }
        }
        seen
    };
    let (r, stored) = tokio::join!(run, watch);
    let r = r.unwrap();
    assert_eq!(r.stdout, secret, "the command sees the value");
    assert!(!stored.is_empty(), "the running command was observed");
    for text in &stored {
        assert!(
            !text.contains(secret),
            "stored command text leaks the value: {text}"
        );
        // In single quotes, as the argument of the command's own shell.
        assert!(
            text.contains(r#"printf '\''%s'\'' "$API_TOKEN"; sleep 1"#),
            "the command itself stays readable: {text}"
        );
    }
    for record in emu.requests() {
        if let Some(body) = record.body {
            assert!(
                !body.to_string().contains(secret),
                "{} {} leaks it",
                record.method,
                record.path
            );
        }
    }
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn working_directories() {
    let emu = emulator().await;
    let sb = started(&emu.api_url()).await;
    let home = sb.run("pwd").await.unwrap().stdout;
    let missing = format!("{}/no/such/dir", home.trim_end());
    let r = sb
        .execute_command("pwd", &[], opts().cwd(&missing))
        .await
        .unwrap_err();
    assert!(
        matches!(r, SandboxError::NotFound { ref what } if what.contains("cwd") && what.contains(&missing)),
        "{r:?}"
    );
    sb.run("mkdir -p sub && touch plain").await.unwrap();
    let dir = format!("{}/sub", home.trim_end());
    assert_eq!(
        sb.execute_command("pwd", &[], opts().cwd(&dir))
            .await
            .unwrap()
            .stdout,
        format!("{dir}\n")
    );
    let file = format!("{}/plain", home.trim_end());
    let r = sb
        .execute_command("pwd", &[], opts().cwd(&file))
        .await
        .unwrap_err();
    assert!(
        matches!(r, SandboxError::InvalidArgument { ref field, .. } if field == "cwd"),
        "{r:?}"
    );
    // A configured working directory is the default.
    let other = builder_for(&emu.api_url())
        .id(sb.daytona_id().unwrap())
        .working_directory(dir.clone())
        .build()
        .unwrap();
    assert_eq!(other.run("pwd").await.unwrap().stdout, format!("{dir}\n"));
    assert_eq!(
        other
            .filesystem()
            .unwrap()
            .read_file("../plain")
            .await
            .unwrap(),
        b""
    );
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn a_command_costs_four_requests_and_reads_no_record() {
    let emu = emulator().await;
    let sb = started_per_command(&emu.api_url()).await;
    sb.run("true").await.unwrap(); // the work dir is looked up once, by the first command
    let before = emu.requests().len();
    for i in 0..5 {
        let r = sb
            .execute_command("printf %s", &[i.to_string()], opts())
            .await
            .unwrap();
        assert_eq!((r.exit_code, r.stdout), (0, i.to_string()));
    }
    // Session deletes run in the background: wait until all five are in.
    assert!(
        eventually(Duration::from_secs(10), || {
            requests(&emu, "DELETE", |p| p.contains("/process/session/")).len() >= 5
        })
        .await
    );
    let made: Vec<String> = emu.requests()[before..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        made.len(),
        20,
        "create, exec, follow, delete per command: {made:#?}"
    );
    assert!(
        !made
            .iter()
            .any(|r| r.starts_with("GET") && r.contains("/command/") && !r.ends_with("/logs")),
        "the exit code comes from the log, not from the command record: {made:#?}"
    );
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn a_child_holding_the_output_does_not_hold_the_result() {
    let emu = emulator().await;
    let sb = started(&emu.api_url()).await;
    let id = sb.daytona_id().unwrap();
    let began = Instant::now();
    // The child keeps stdout open for 30 s; what it writes after the command exited is not
    // part of the command's result.
    let r = sb
        .execute_command(
            "(sleep 2; echo late; sleep 30) & echo early; exit 6",
            &[],
            opts(),
        )
        .await
        .unwrap();
    let took = began.elapsed();
    assert_eq!((r.exit_code, r.stdout.as_str()), (6, "early\n"));
    assert!(took < Duration::from_secs(2), "{took:?}");
    // The session delete stops what the command left behind.
    assert!(
        eventually(Duration::from_secs(15), || runtime_load(&emu, &id)
            == (0, 0))
        .await,
        "left behind: {:?}",
        runtime_load(&emu, &id)
    );
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn nul_bytes_need_byte_exact_output_everything_else_is_exact_either_way() {
    let emu = emulator().await;
    let plain = started(&emu.api_url()).await;
    let exact = builder_for(&emu.api_url())
        .byte_exact_output(true)
        .build()
        .unwrap();
    exact.start().await.unwrap();
    let line = r"printf 'a\000b\r\n\377no newline'; printf 'e\000rr' >&2";
    let r = plain.execute_command(line, &[], opts()).await.unwrap();
    // Daytona's line labellers drop NUL bytes, and the emulator does as they do.
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("ab\r\n\u{FFFD}no newline", "err")
    );
    let r = exact.execute_command(line, &[], opts()).await.unwrap();
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("a\0b\r\n\u{FFFD}no newline", "e\0rr")
    );
    let r = exact
        .execute_command("cat", &[], opts().stdin("in\0put"))
        .await
        .unwrap();
    assert_eq!((r.exit_code, r.stdout.as_str()), (0, "in\0put"));
    plain.destroy().await.unwrap();
    exact.destroy().await.unwrap();
    emu.shutdown().await;
}

/// The session id of every session exec the emulator received from request `from` on.
fn execs_since(emu: &daytona_emulator::EmulatorHandle, from: usize) -> Vec<String> {
    emu.requests()
        .into_iter()
        .skip(from)
        .filter(|r| r.method == "POST" && r.path.ends_with("/exec"))
        .filter_map(|r| {
            let rest = r.path.split("/process/session/").nth(1)?;
            Some(rest.split('/').next()?.to_string())
        })
        .collect()
}

/// The id of the one idle (spare) session of a sandbox, once there is one.
async fn spare_id(emu: &daytona_emulator::EmulatorHandle, id: &str) -> String {
    assert!(
        eventually(Duration::from_secs(10), || {
            provider_support::idle_sessions(emu, id) == 1
        })
        .await,
        "no spare session appeared"
    );
    let rt = emu.state().runtime(id).unwrap();
    let snap = rt.snapshot();
    let idle: Vec<_> = snap
        .sessions
        .iter()
        .filter(|s| s.commands.is_empty())
        .collect();
    assert_eq!(idle.len(), 1, "{:?}", snap.sessions);
    idle[0].id.clone()
}

fn session_creates_since(emu: &daytona_emulator::EmulatorHandle, from: usize) -> usize {
    emu.requests()
        .into_iter()
        .skip(from)
        .filter(|r| r.method == "POST" && r.path.ends_with("/process/session"))
        .count()
}

#[tokio::test]
async fn the_next_command_runs_in_the_spare_session_and_a_new_one_is_made() {
    let emu = emulator().await;
    let sb = started_per_command(&emu.api_url()).await;
    let id = sb.daytona_id().unwrap();
    assert_eq!(sb.run("echo one").await.unwrap().stdout, "one\n");
    let spare = spare_id(&emu, &id).await;

    let before = emu.requests().len();
    let r = sb.run("echo two").await.unwrap();
    assert_eq!((r.exit_code, r.stdout.as_str()), (0, "two\n"));
    // The command went straight to its exec, in the session made beforehand.
    assert_eq!(execs_since(&emu, before), vec![spare.clone()]);
    let next = spare_id(&emu, &id).await;
    assert_ne!(next, spare);
    // One create for the new spare, made off the command's path.
    assert_eq!(session_creates_since(&emu, before), 1);
    assert!(
        eventually(Duration::from_secs(10), || runtime_load(&emu, &id)
            == (0, 0))
        .await,
        "{:?}",
        runtime_load(&emu, &id)
    );
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn concurrent_commands_share_one_spare_and_make_their_own_sessions() {
    let emu = emulator().await;
    let sb = started_per_command(&emu.api_url()).await;
    let id = sb.daytona_id().unwrap();
    sb.run("true").await.unwrap();
    spare_id(&emu, &id).await;
    let sb_ref = &sb;
    let runs = (0..8).map(|i| async move {
        sb_ref
            .execute_command("printf %s", &[i.to_string()], opts())
            .await
    });
    let results = futures::future::join_all(runs).await;
    for (i, r) in results.into_iter().enumerate() {
        let r = r.unwrap();
        assert_eq!((r.exit_code, r.stdout), (0, i.to_string()));
    }
    // Eight distinct sessions ran them; afterwards one spare is left and nothing else.
    let execs = execs_since(&emu, 0);
    let mut distinct = execs.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), execs.len(), "a session ran two commands");
    spare_id(&emu, &id).await;
    assert!(
        eventually(Duration::from_secs(10), || runtime_load(&emu, &id)
            == (0, 0))
        .await
    );
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn a_spare_lost_to_a_restart_underneath_falls_back_to_a_fresh_session() {
    let emu = emulator().await;
    let sb = started_per_command(&emu.api_url()).await;
    let id = sb.daytona_id().unwrap();
    sb.run("true").await.unwrap();
    let spare = spare_id(&emu, &id).await;
    // Someone else restarts the sandbox: its sessions, the spare among them, are gone, but
    // this handle still sees it running.
    let mut other = sb.client().get(&id).await.unwrap();
    other.stop(None).await.unwrap();
    other.start(None).await.unwrap();
    assert_eq!(provider_support::idle_sessions(&emu, &id), 0);

    let before = emu.requests().len();
    let r = sb.run("echo after").await.unwrap();
    assert_eq!((r.exit_code, r.stdout.as_str()), (0, "after\n"), "{r:?}");
    let execs = execs_since(&emu, before);
    assert_eq!(execs.len(), 2, "{execs:?}");
    assert_eq!(execs[0], spare);
    assert_ne!(execs[1], spare);
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn dropping_the_handle_deletes_its_spare_and_the_option_turns_it_off() {
    let emu = emulator().await;
    let sb = started_per_command(&emu.api_url()).await;
    let id = sb.daytona_id().unwrap();
    sb.run("true").await.unwrap();
    spare_id(&emu, &id).await;
    drop(sb);
    assert!(
        eventually(Duration::from_secs(10), || {
            provider_support::idle_sessions(&emu, &id) == 0
        })
        .await,
        "the dropped handle's spare session is still there"
    );

    // Reattach with spares off: no session is left between commands.
    let sb = builder_for(&emu.api_url())
        .resident_shell(false)
        .id(id.clone())
        .spare_session(false)
        .build()
        .unwrap();
    for word in ["a", "b"] {
        assert_eq!(
            sb.run(&format!("echo {word}")).await.unwrap().stdout,
            format!("{word}\n")
        );
    }
    assert!(
        eventually(Duration::from_secs(10), || {
            emu.state()
                .runtime(&id)
                .is_some_and(|rt| rt.snapshot().sessions.is_empty())
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(provider_support::idle_sessions(&emu, &id), 0);
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn commands_right_after_restarts_underneath_run() {
    // The emulator once numbered session dirs per runtime, so a restarted sandbox reused the
    // names and a late delete of an old session removed a new command's files (exit 1, no
    // output).
    let emu = emulator().await;
    let sb = builder_for(&emu.api_url())
        .spare_session(false)
        .build()
        .unwrap();
    sb.run("true").await.unwrap();
    let id = sb.daytona_id().unwrap();
    for round in 0..10 {
        let mut other = sb.client().get(&id).await.unwrap();
        other.stop(None).await.unwrap();
        other.start(None).await.unwrap();
        let r = sb.run("echo after").await.unwrap();
        assert_eq!(
            (r.exit_code, r.stdout.as_str()),
            (0, "after\n"),
            "round {round}: {r:?}"
        );
    }
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}
