//! The resident shell of `DaytonaSandbox` against the emulator: a warm command is one request
//! and no new connection; output, exit codes, timeouts, cancels and dropped futures come out as
//! on the per-command path, and nothing a command started outlives it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use daytona_emulator::{FaultRule, WsDrop};
use provider_support::{
    RESIDENT_PREFIX, builder_for, emulator, eventually, requests, resident_sessions, runtime_load,
};
use workspace_core::{
    CancellationToken, EXIT_KILLED, EXIT_TIMEOUT, ExecuteCommandOptions, WorkspaceSandbox,
    WorkspaceSandboxExt,
};
use workspace_daytona::DaytonaSandbox;

fn opts() -> ExecuteCommandOptions {
    ExecuteCommandOptions::new().timeout(Duration::from_secs(60))
}

fn resident_follows(emu: &daytona_emulator::EmulatorHandle) -> usize {
    requests(emu, "GET", |p| {
        p.contains(&format!("/session/{RESIDENT_PREFIX}")) && p.ends_with("/logs")
    })
    .len()
}

/// A started handle whose resident shell is ready (its first command made it).
async fn warm(emu: &daytona_emulator::EmulatorHandle) -> DaytonaSandbox {
    let sb = builder_for(&emu.api_url()).build().unwrap();
    assert!(sb.run("true").await.unwrap().success);
    assert!(
        eventually(Duration::from_secs(10), || resident_follows(emu) >= 1).await,
        "the resident shell was never followed"
    );
    // The follow is open once the upgrade is answered; give the handle a moment to take it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    sb
}

/// Whether host process `pid` is gone (or a zombie nobody waits for).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn pid_in(text: &str) -> u32 {
    text.lines()
        .find_map(|l| l.strip_prefix("pid "))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid line in {text:?}"))
}

#[tokio::test]
async fn a_warm_command_is_one_request_and_no_new_connection() {
    let emu = emulator().await;
    let sb = warm(&emu).await;
    let follows = resident_follows(&emu);
    let before = emu.requests().len();
    for i in 0..5 {
        let r = sb
            .execute_command(
                &format!("printf 'out {i}'; printf 'err {i}\\n' >&2; exit {i}"),
                &[],
                opts(),
            )
            .await
            .unwrap();
        assert_eq!(
            (r.exit_code, r.stdout.as_str(), r.stderr.as_str()),
            (
                i,
                format!("out {i}").as_str(),
                format!("err {i}\n").as_str()
            )
        );
    }
    let made: Vec<String> = emu.requests()[before..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(made.len(), 5, "one input request per command: {made:#?}");
    assert!(
        made.iter()
            .all(|r| r.starts_with("POST") && r.ends_with("/input")),
        "{made:#?}"
    );
    assert_eq!(resident_follows(&emu), follows, "no new log stream");
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn output_env_cwd_and_streaming_match_the_per_command_path() {
    let emu = emulator().await;
    let sb = warm(&emu).await;
    let per_command = builder_for(&emu.api_url())
        .resident_shell(false)
        .build()
        .unwrap();
    let secret = "resident-secret-4b1d";
    let cases = [
        "printf 'a\\n\\nb'",
        "printf 'e1\\ne2' >&2; printf o",
        "echo \"$WS_VALUE\"; pwd",
        "for i in 1 2 3; do echo line $i; done; exit 3",
        "printf '\\377\\376\\n'; printf 'x\\n' >&2",
        "true",
        "exit 255",
        "echo $1 \"$#\"",
    ];
    for case in cases {
        let o = || opts().env("WS_VALUE", secret).cwd("/tmp");
        let a = sb.execute_command(case, &[], o()).await.unwrap();
        let b = per_command.execute_command(case, &[], o()).await.unwrap();
        assert_eq!(
            (a.exit_code, &a.stdout, &a.stderr),
            (b.exit_code, &b.stdout, &b.stderr),
            "{case}"
        );
    }
    // A per-command env value does not stay for the next command.
    let r = sb
        .execute_command("echo \"[${WS_VALUE:-}]\"", &[], opts())
        .await
        .unwrap();
    assert_eq!(r.stdout, "[]\n");
    // Streamed as it comes, in order.
    let seen = Arc::new(Mutex::new(String::new()));
    let s = seen.clone();
    let r = sb
        .execute_command(
            "for i in $(seq 1 300); do echo \"row $i\"; done",
            &[],
            opts().on_stdout(move |t| s.lock().unwrap().push_str(t)),
        )
        .await
        .unwrap();
    let want: String = (1..=300).map(|i| format!("row {i}\n")).collect();
    assert_eq!(r.stdout, want);
    assert_eq!(*seen.lock().unwrap(), want);
    // The value never travels or is stored in clear text.
    for record in emu.requests() {
        if let Some(body) = record.body {
            assert!(!body.to_string().contains(secret), "{}", record.path);
        }
    }
    let id = sb.daytona_id().unwrap();
    for s in emu.state().runtime(&id).unwrap().snapshot().sessions {
        for (_, text, _) in s.commands {
            assert!(!text.contains(secret));
        }
    }
    sb.destroy().await.unwrap();
    per_command.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn leftovers_are_killed_when_the_command_exits_and_do_not_leak_into_the_next() {
    let emu = emulator().await;
    let sb = warm(&emu).await;
    let r = sb
        .execute_command(
            "(while :; do echo noise; sleep 0.05; done) & echo \"pid $!\"",
            &[],
            opts(),
        )
        .await
        .unwrap();
    let pid = pid_in(&r.stdout);
    assert!(eventually(Duration::from_secs(10), || gone(pid)).await);
    let r = sb.execute_command("echo clean", &[], opts()).await.unwrap();
    assert_eq!(r.stdout, "clean\n");
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn timeouts_cancels_and_dropped_futures_kill_the_job_and_the_shell_goes_on() {
    let emu = emulator().await;
    let sb = warm(&emu).await;
    let id = sb.daytona_id().unwrap();

    let r = sb
        .execute_command(
            "sleep 60 & echo \"pid $!\"; echo err >&2; wait",
            &[],
            ExecuteCommandOptions::new().timeout(Duration::from_secs(2)),
        )
        .await
        .unwrap();
    assert_eq!((r.exit_code, r.timed_out), (EXIT_TIMEOUT, true));
    assert_eq!(r.stderr, "err\n");
    let pid = pid_in(&r.stdout);
    assert!(eventually(Duration::from_secs(10), || gone(pid)).await);
    let follows = resident_follows(&emu);
    assert_eq!(sb.run("echo next").await.unwrap().stdout, "next\n");
    assert_eq!(resident_follows(&emu), follows, "the same shell runs on");

    let token = CancellationToken::new();
    let cancel = token.clone();
    let r = sb
        .execute_command(
            "echo \"pid $$\"; sleep 60",
            &[],
            opts().cancel_token(token).on_stdout(move |t| {
                if t.contains("pid") {
                    cancel.cancel();
                }
            }),
        )
        .await
        .unwrap();
    assert_eq!((r.exit_code, r.killed), (EXIT_KILLED, true));
    let pid = pid_in(&r.stdout);
    assert!(eventually(Duration::from_secs(10), || gone(pid)).await);

    // A dropped future takes the shell with it; a new one is made.
    let seen = Arc::new(Mutex::new(String::new()));
    let s = seen.clone();
    let dropped = tokio::time::timeout(
        Duration::from_secs(2),
        sb.execute_command(
            "echo \"pid $$\"; sleep 60",
            &[],
            opts().on_stdout(move |t| s.lock().unwrap().push_str(t)),
        ),
    )
    .await;
    assert!(dropped.is_err());
    let pid = pid_in(&seen.lock().unwrap());
    assert!(eventually(Duration::from_secs(15), || gone(pid)).await);
    assert!(
        eventually(Duration::from_secs(15), || runtime_load(&emu, &id)
            == (0, 0))
        .await,
        "left behind: {:?} {:#?}",
        runtime_load(&emu, &id),
        emu.state().runtime(&id).map(|rt| rt.snapshot())
    );
    assert_eq!(sb.run("echo after").await.unwrap().stdout, "after\n");
    assert!(resident_sessions(&emu, &id) <= 1);
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn a_killed_job_shell_reports_its_signal_status() {
    let emu = emulator().await;
    let sb = warm(&emu).await;
    let r = sb
        .execute_command("echo done; kill -9 $$", &[], opts())
        .await
        .unwrap();
    assert_eq!((r.exit_code, r.stdout.as_str()), (137, "done\n"));
    assert_eq!(sb.run("echo fine").await.unwrap().stdout, "fine\n");
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn a_dropped_log_stream_is_followed_again_without_loss() {
    let emu = emulator().await;
    let sb = warm(&emu).await;
    emu.add_fault(
        FaultRule::drop_websocket(
            "/toolbox/*/process/session/*/command/*/logs",
            WsDrop::AfterBytes(1500),
        )
        .times(2),
    )
    .unwrap();
    // The rule applies to the next connections: make the open one drop by replacing it.
    let writer = "i=1; while [ $i -le 400 ]; do echo \"line $i\"; [ $((i % 10)) -eq 0 ] && echo \"err $i\" >&2; i=$((i+1)); done; exit 3";
    let want_out: String = (1..=400).map(|i| format!("line {i}\n")).collect();
    let want_err: String = (1..=400)
        .filter(|i| i % 10 == 0)
        .map(|i| format!("err {i}\n"))
        .collect();
    for _ in 0..3 {
        let r = sb.execute_command(writer, &[], opts()).await.unwrap();
        assert_eq!(r.exit_code, 3);
        assert!(r.stdout == want_out, "stdout: {} bytes", r.stdout.len());
        assert_eq!(r.stderr, want_err);
    }
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn concurrent_commands_and_stdin_take_the_per_command_path_correctly() {
    let emu = emulator().await;
    let sb = warm(&emu).await;
    let sb_ref = &sb;
    let runs = (0..8).map(|i| async move {
        let r = sb_ref
            .execute_command(&format!("sleep 0.2; echo {i}"), &[], opts())
            .await
            .unwrap();
        assert_eq!(r.stdout, format!("{i}\n"));
    });
    futures::future::join_all(runs).await;
    let r = sb
        .execute_command("cat", &[], opts().stdin(b"fed in".to_vec()))
        .await
        .unwrap();
    assert_eq!(r.stdout, "fed in");
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn dropping_the_handle_deletes_its_resident_shell() {
    let emu = emulator().await;
    let sb = warm(&emu).await;
    let id = sb.daytona_id().unwrap();
    assert_eq!(resident_sessions(&emu, &id), 1);
    drop(sb);
    assert!(
        eventually(Duration::from_secs(10), || resident_sessions(&emu, &id)
            == 0)
        .await,
        "the resident shell outlived its handle"
    );
    emu.shutdown().await;
}
