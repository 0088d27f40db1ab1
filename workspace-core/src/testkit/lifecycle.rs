//! Lifecycle checks, each on fresh sandboxes from the factory: start coalescing, info and
//! instructions, stop and lazy restart with files intact, and destroy being final.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::harness::skip;
use super::leaks::{assert_no_process_matching, unique_marker, wait_for_process_matching};
use super::probe::{exec_with, expect_not_ready, opts, sh_ok};
use super::random::unique_suffix;
use crate::error::SandboxError;
use crate::process::SpawnOptions;
use crate::sandbox::{SandboxStatus, StartOutcome, WorkspaceSandbox};

/// Start, info, instructions, stop, lazy restart, destroy — in order, on one fresh sandbox.
///
/// Five concurrent `start()` calls must all succeed and share one start: at most one reports
/// `Created` (the caller whose call did the work), so one-time setup keyed on `Created` runs once.
///
/// Before the first start the status must be `Pending` or `Stopped`; `Running` is accepted for
/// providers that start eagerly (a note is printed). After `destroy`, `execute_command`,
/// `start`, `stop`, and the file and process APIs must fail with `NotReady`; `get_info` may
/// either fail with `NotReady` or report `Destroyed`.
pub async fn lifecycle<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn WorkspaceSandbox>>,
{
    let sandbox = make().await;
    let sb = &*sandbox;
    match sb.status() {
        SandboxStatus::Pending | SandboxStatus::Stopped => {}
        SandboxStatus::Running => {
            eprintln!(
                "lifecycle: {} starts eagerly (Running before start())",
                sb.provider()
            );
        }
        other => panic!("a new sandbox should be Pending or Stopped, is {other}"),
    }

    let starts = futures::future::join_all((0..5).map(|_| sb.start())).await;
    let outcomes: Vec<StartOutcome> = starts
        .into_iter()
        .enumerate()
        .map(|(i, s)| s.unwrap_or_else(|e| panic!("concurrent start #{i} failed: {e} [{e:?}]")))
        .collect();
    // One start ran; only its caller hears `Created`, the callers that joined it hear
    // `Connected`. More than one `Created` means the starts did not coalesce.
    let created = outcomes
        .iter()
        .filter(|o| **o == StartOutcome::Created)
        .count();
    assert!(
        created <= 1,
        "concurrent starts did not share one start: {outcomes:?}"
    );
    assert_eq!(sb.status(), SandboxStatus::Running);
    assert_eq!(
        sb.start().await.ok(),
        Some(StartOutcome::Connected),
        "start() on a running sandbox reports Connected"
    );

    let info = sb
        .get_info()
        .await
        .unwrap_or_else(|e| panic!("get_info: {e} [{e:?}]"));
    assert_eq!(info.id, sb.id());
    assert_eq!(info.name, sb.name());
    assert_eq!(info.provider, sb.provider());
    assert_eq!(info.status, SandboxStatus::Running);
    assert!(!sb.id().is_empty() && !sb.provider().is_empty());

    let instructions = sb.get_instructions();
    assert!(
        !instructions.trim().is_empty(),
        "get_instructions() is empty"
    );
    assert_eq!(
        instructions,
        sb.get_instructions(),
        "get_instructions() must be deterministic"
    );

    let file = format!("ct-lifecycle-{}.txt", unique_suffix());
    match sb.filesystem() {
        Some(fs) => fs
            .write_file(&file, b"persisted")
            .await
            .unwrap_or_else(|e| panic!("write_file before stop: {e}")),
        None => {
            sh_ok(sb, &format!("printf persisted > {file}")).await;
        }
    }

    sb.stop()
        .await
        .unwrap_or_else(|e| panic!("stop: {e} [{e:?}]"));
    assert_eq!(sb.status(), SandboxStatus::Stopped);
    sb.stop()
        .await
        .unwrap_or_else(|e| panic!("stop on a stopped sandbox must be fine: {e}"));

    // A command after stop restarts the sandbox lazily, and the file is still there.
    let r = exec_with(sb, "cat", &[&file], opts()).await;
    assert!(
        r.success,
        "cat after stop: exit {} {}",
        r.exit_code, r.stderr
    );
    assert_eq!(r.stdout, "persisted", "files must survive stop/start");
    assert_eq!(
        sb.status(),
        SandboxStatus::Running,
        "a command restarts the sandbox"
    );
    if let Some(fs) = sb.filesystem() {
        let back = fs
            .read_file(&file)
            .await
            .unwrap_or_else(|e| panic!("read_file after restart: {e}"));
        assert_eq!(back, b"persisted");
    }

    sb.destroy()
        .await
        .unwrap_or_else(|e| panic!("destroy: {e} [{e:?}]"));
    assert_eq!(sb.status(), SandboxStatus::Destroyed);
    sb.destroy()
        .await
        .unwrap_or_else(|e| panic!("a second destroy must be Ok: {e}"));

    expect_not_ready(
        "execute_command after destroy",
        sb.execute_command("true", &[], opts()).await,
    );
    expect_not_ready("start after destroy", sb.start().await);
    expect_not_ready("stop after destroy", sb.stop().await);
    match sb.get_info().await {
        Err(SandboxError::NotReady { .. }) => {}
        Ok(info) if info.status == SandboxStatus::Destroyed => {}
        other => panic!("get_info after destroy: want NotReady or Destroyed, got {other:?}"),
    }
    if let Some(fs) = sb.filesystem() {
        expect_not_ready("read_file after destroy", fs.read_file(&file).await);
    }
    if let Some(pm) = sb.processes() {
        expect_not_ready("processes().list() after destroy", pm.list().await);
    }
    assert_eq!(sb.status(), SandboxStatus::Destroyed, "destroy is final");
}

/// The first commands on a never-started sandbox start it, once, even when they race.
pub async fn lazy_start<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn WorkspaceSandbox>>,
{
    let sandbox = make().await;
    let sb = &*sandbox;
    let runs = (0..4).map(|i| async move {
        exec_with(sb, "printf '%s' ", &[&format!("lazy-{i}")], opts()).await
    });
    let results = futures::future::join_all(runs).await;
    for (i, r) in results.iter().enumerate() {
        assert!(
            r.success,
            "racing first command {i}: exit {} {}",
            r.exit_code, r.stderr
        );
        assert_eq!(r.stdout, format!("lazy-{i}"));
    }
    assert_eq!(sb.status(), SandboxStatus::Running);
    let info = sb
        .get_info()
        .await
        .unwrap_or_else(|e| panic!("get_info after a lazy start: {e}"));
    assert_eq!(info.status, SandboxStatus::Running);
}

/// Destroying a sandbox kills its background processes.
///
/// The leak scan runs in a second sandbox from the factory, since the first is gone. It can see
/// the first one's processes only where both share a machine (the local provider); for isolated
/// providers the scan is trivially empty, and destroying the machine is the guarantee.
pub async fn destroy_kills_background_processes<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn WorkspaceSandbox>>,
{
    let sandbox = make().await;
    let Some(pm) = sandbox.processes() else {
        skip(
            "destroy_kills_background_processes",
            "the provider has no processes()",
        );
        return;
    };
    let m = unique_marker();
    pm.spawn(&format!("{m} & {m}"), &[], SpawnOptions::new())
        .await
        .unwrap_or_else(|e| panic!("spawn: {e} [{e:?}]"));
    assert!(
        wait_for_process_matching(&*sandbox, &m, Duration::from_secs(30)).await,
        "the spawned process never appeared in the /proc scan"
    );
    sandbox
        .destroy()
        .await
        .unwrap_or_else(|e| panic!("destroy: {e} [{e:?}]"));

    let observer = make().await;
    if observer.capabilities().isolated {
        eprintln!(
            "destroy_kills_background_processes: {} is isolated; the scan from a second sandbox \
             cannot see the first",
            observer.provider()
        );
    }
    assert_no_process_matching(&*observer, &m).await;
}
