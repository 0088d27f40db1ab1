//! DaytonaSandbox when the sandbox stops underneath: one restart and one retry for work that
//! had not started, an error (and no re-run) for a command that had, two failures surfacing,
//! and the keepalive that stops auto-stop from striking mid-command.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_support;

use std::time::Duration;

use daytona_api::sandbox::SandboxState;
use daytona_emulator::FaultRule;
use provider_support::{builder_for, emulator, emulator_with_minute, eventually, requests};
use workspace_core::{
    ExecuteCommandOptions, SandboxError, SandboxStatus, SpawnOptions, StartOutcome,
    WorkspaceSandbox, WorkspaceSandboxExt,
};

fn starts(emu: &daytona_emulator::EmulatorHandle) -> usize {
    requests(emu, "POST", |p| p.ends_with("/start")).len()
}

/// Commands submitted: execs in sessions of their own, and input lines sent to a resident
/// shell (whose own exec, the loop, runs no command).
fn execs(emu: &daytona_emulator::EmulatorHandle) -> usize {
    let resident = format!("/session/{}", provider_support::RESIDENT_PREFIX);
    requests(emu, "POST", |p| {
        (p.ends_with("/exec") && !p.contains(&resident))
            || (p.ends_with("/input") && p.contains(&resident))
    })
    .len()
}

#[tokio::test]
async fn a_sandbox_stopped_underneath_is_restarted_once() {
    let emu = emulator().await;
    let sb = builder_for(&emu.api_url()).build().unwrap();
    sb.run("echo kept > f.txt").await.unwrap();
    let id = sb.daytona_id().unwrap();

    emu.stop_sandbox(&id).await.unwrap();
    let before = starts(&emu);
    let r = sb.run("cat f.txt").await.unwrap();
    assert_eq!(r.stdout, "kept\n");
    assert_eq!(starts(&emu) - before, 1, "exactly one restart");
    assert_eq!(sb.status(), SandboxStatus::Running);
    assert_eq!(
        sb.daytona_id().as_deref(),
        Some(id.as_str()),
        "the same sandbox"
    );

    // File operations and processes take the same path.
    emu.stop_sandbox(&id).await.unwrap();
    let fs = sb.filesystem().unwrap();
    assert_eq!(fs.read_file("f.txt").await.unwrap(), b"kept\n");
    emu.stop_sandbox(&id).await.unwrap();
    let pm = sb.processes().unwrap();
    let p = pm.spawn("echo bg", &[], SpawnOptions::new()).await.unwrap();
    let done = pm.wait(&p.id, Some(Duration::from_secs(20))).await.unwrap();
    assert_eq!(done.exit_code(), Some(0));
    assert_eq!(starts(&emu) - before, 3);

    // Deleted underneath: recreated, and the command still runs.
    emu.delete_sandbox(&id).await.unwrap();
    let r = sb.run("test -e f.txt").await.unwrap();
    assert_eq!(r.exit_code, 1, "a new sandbox");
    assert_ne!(sb.daytona_id().unwrap(), id);
    assert_eq!(emu.sandboxes().len(), 1);
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn concurrent_operations_on_a_stopped_sandbox_share_one_restart() {
    let emu = emulator().await;
    let sb = builder_for(&emu.api_url()).build().unwrap();
    sb.run("echo shared > f.txt").await.unwrap();
    emu.stop_sandbox(&sb.daytona_id().unwrap()).await.unwrap();
    let before = starts(&emu);
    let fs = sb.filesystem().unwrap();
    let (a, b, c, d) = tokio::join!(
        sb.run("cat f.txt"),
        sb.run("echo two"),
        fs.read_file("f.txt"),
        sb.run("true"),
    );
    assert_eq!(a.unwrap().stdout, "shared\n");
    assert_eq!(b.unwrap().stdout, "two\n");
    assert_eq!(c.unwrap(), b"shared\n");
    assert!(d.unwrap().success);
    assert_eq!(starts(&emu) - before, 1, "one restart for all of them");
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn idle_auto_stop_is_survived() {
    // Long enough that the restarted sandbox is not idle-stopped again before the retried
    // request reaches it, even on a loaded machine.
    let minute = Duration::from_secs(1);
    let emu = emulator_with_minute(minute).await;
    let sb = builder_for(&emu.api_url())
        .auto_stop_interval(1)
        .interval_unit(minute)
        .build()
        .unwrap();
    assert!(sb.run("true").await.unwrap().success);
    let id = sb.daytona_id().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || {
            emu.sandbox(&id).and_then(|s| s.state) == Some(SandboxState::Stopped)
        })
        .await,
        "the idle sandbox should auto-stop"
    );
    let before = starts(&emu);
    let r = sb.run("echo back").await.unwrap();
    assert_eq!(r.stdout, "back\n");
    assert_eq!(starts(&emu) - before, 1);
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn two_failures_in_a_row_surface() {
    let emu = emulator().await;
    // No spare session (nor resident shell): the command's own session create is what must
    // fail twice.
    let sb = builder_for(&emu.api_url())
        .spare_session(false)
        .resident_shell(false)
        .build()
        .unwrap();
    // A first command, so that the work dir is known and the session create is what fails.
    sb.run("true").await.unwrap();
    emu.stop_sandbox(&sb.daytona_id().unwrap()).await.unwrap();
    let execs_before = execs(&emu);
    // The session create fails before and after the restart.
    emu.add_fault(
        FaultRule::status("/toolbox/*/process/session", 502)
            .method("POST")
            .times(2),
    )
    .unwrap();
    let before = starts(&emu);
    let err = sb.run("echo never").await.unwrap_err();
    assert!(
        matches!(
            err,
            SandboxError::Provider {
                status: Some(502),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(starts(&emu) - before, 1, "one restart, not a loop");
    assert_eq!(emu.faults()[0].hits, 2);
    assert_eq!(execs(&emu), execs_before, "nothing ran");
    // The rule is used up: the next command works.
    assert_eq!(sb.run("echo now").await.unwrap().stdout, "now\n");
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn a_command_already_running_is_never_rerun() {
    let emu = emulator().await;
    let sb = builder_for(&emu.api_url()).build().unwrap();
    sb.start().await.unwrap();
    // Twice: the handle's first command runs in a session of its own, a later one on the
    // resident shell.
    for round in 1..=2usize {
        if round == 2 {
            assert!(sb.run("true").await.unwrap().success);
            let ready = provider_support::eventually(Duration::from_secs(10), || {
                !requests(&emu, "GET", |p| {
                    p.contains(&format!("/session/{}", provider_support::RESIDENT_PREFIX))
                        && p.ends_with("/logs")
                })
                .is_empty()
            })
            .await;
            assert!(ready, "no resident shell was made");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let id = sb.daytona_id().unwrap();
        let execs_before = execs(&emu);
        let run = sb.execute_command(
            "echo ran >> runs.txt; sleep 30",
            &[],
            ExecuteCommandOptions::new().timeout(Duration::from_secs(60)),
        );
        let stop = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            emu.stop_sandbox(&id).await.unwrap();
        };
        let (r, ()) = tokio::join!(run, stop);
        match r {
            Err(SandboxError::Provider {
                code: Some(ref c),
                ref message,
                ..
            }) if c == "COMMAND_INTERRUPTED" => {
                assert!(
                    message.contains("not run again"),
                    "round {round}: {message}"
                );
            }
            other => panic!("round {round}: expected an interrupted-command error, got {other:?}"),
        }
        assert_eq!(
            execs(&emu) - execs_before,
            1,
            "round {round}: the command was submitted once"
        );
        // The next command restarts the sandbox, and shows the first ran exactly once.
        let r = sb.run("cat runs.txt").await.unwrap();
        assert_eq!(r.stdout, "ran\n".repeat(round), "round {round}");
    }
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn keepalive_holds_off_auto_stop_while_a_command_runs() {
    // Refreshes come every 200 ms against a 600 ms idle limit: margin for a loaded machine.
    let minute = Duration::from_millis(600);
    let emu = emulator_with_minute(minute).await;
    let sb = builder_for(&emu.api_url())
        .auto_stop_interval(1)
        .interval_unit(minute)
        .build()
        .unwrap();
    assert_eq!(sb.start().await.unwrap(), StartOutcome::Created);
    let id = sb.daytona_id().unwrap();

    // Over four auto-stop intervals with no traffic but the log stream and the keepalive.
    let r = sb
        .execute_command(
            "sleep 2.5; echo survived",
            &[],
            ExecuteCommandOptions::new().timeout(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    assert_eq!((r.exit_code, r.stdout.as_str()), (0, "survived\n"));
    let refreshes = requests(&emu, "POST", |p| p.ends_with("/last-activity")).len();
    assert!(refreshes >= 3, "activity refreshed {refreshes} times");

    // The control: a background process gets no keepalive, and the sandbox stops under it.
    let pm = sb.processes().unwrap();
    pm.spawn("sleep 8", &[], SpawnOptions::new()).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || {
            emu.sandbox(&id).and_then(|s| s.state) == Some(SandboxState::Stopped)
        })
        .await,
        "without a keepalive the sandbox auto-stops"
    );
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}
