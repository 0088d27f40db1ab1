//! Background processes, where a provider supports them: output by offset, stdin, listing,
//! waiting, exit codes and killing the whole tree.

use std::time::{Duration, Instant};

use super::harness::skip;
use super::leaks::{assert_no_process_matching, unique_marker, wait_for_process_matching};
use super::probe::{exec_with, expect_not_found, opts, working_dir};
use super::random::{random_u64, unique_suffix};
use crate::command::EXIT_KILLED;
use crate::process::{
    OutputOffsets, ProcessId, ProcessInfo, ProcessManager, ProcessOutput, ProcessState,
    SpawnOptions,
};
use crate::sandbox::WorkspaceSandbox;

/// How long output or an exit may take to show up.
const SETTLE: Duration = Duration::from_secs(30);

fn processes<'a>(sandbox: &'a dyn WorkspaceSandbox, check: &str) -> Option<&'a dyn ProcessManager> {
    let pm = sandbox.processes();
    if pm.is_none() {
        skip(check, "the provider has no processes()");
    }
    pm
}

async fn spawn(pm: &dyn ProcessManager, command: &str, options: SpawnOptions) -> ProcessInfo {
    pm.spawn(command, &[], options)
        .await
        .unwrap_or_else(|e| panic!("spawn({command:?}): {e} [{e:?}]"))
}

/// Poll `output(since)` until `done` holds for the stdout read so far.
async fn output_until(
    pm: &dyn ProcessManager,
    id: &ProcessId,
    since: OutputOffsets,
    done: impl Fn(&str) -> bool,
) -> ProcessOutput {
    let deadline = Instant::now() + SETTLE;
    loop {
        let out = pm
            .output(id, since)
            .await
            .unwrap_or_else(|e| panic!("output({id}): {e} [{e:?}]"));
        if done(&out.stdout_text()) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "process {id}: the expected output did not appear within {SETTLE:?}; so far {:?} \
             (stderr {:?}, state {:?})",
            out.stdout_text(),
            out.stderr_text(),
            out.state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_exit(pm: &dyn ProcessManager, id: &ProcessId) -> i32 {
    let info = pm
        .wait(id, Some(SETTLE))
        .await
        .unwrap_or_else(|e| panic!("wait({id}): {e} [{e:?}]"));
    match info.state {
        ProcessState::Exited(code) => code,
        ProcessState::Running => panic!(
            "process {id} ({}) still runs after {SETTLE:?}",
            info.command
        ),
    }
}

/// A long-running process with stdin: output read by offsets, input written, listed, waited on
/// without exiting, then killed with its whole tree.
pub async fn background_process(sandbox: &dyn WorkspaceSandbox) {
    let Some(pm) = processes(sandbox, "background_process") else {
        return;
    };
    let m = unique_marker();
    let command = format!(r#"echo start; read line; echo "got:$line"; {m} & {m}"#);
    let info = spawn(pm, &command, SpawnOptions::new().with_stdin()).await;
    let id = info.id.clone();
    assert_eq!(info.state, ProcessState::Running);

    let first = output_until(pm, &id, OutputOffsets::default(), |s| s.contains("start\n")).await;
    assert_eq!(first.stdout_text(), "start\n");
    assert_eq!(
        first.next.stdout, 6,
        "the next stdout offset is the bytes read so far"
    );
    let again = pm
        .output(&id, first.next)
        .await
        .unwrap_or_else(|e| panic!("output since next: {e}"));
    assert!(
        again.stdout.is_empty(),
        "reading from `next` must return only new bytes, got {:?}",
        again.stdout_text()
    );
    assert_eq!(again.next, first.next);

    pm.write_stdin(&id, b"hello\n")
        .await
        .unwrap_or_else(|e| panic!("write_stdin: {e}"));
    let second = output_until(pm, &id, first.next, |s| s.contains("got:hello\n")).await;
    assert_eq!(
        second.stdout_text(),
        "got:hello\n",
        "only the bytes after the offset"
    );
    assert_eq!(second.next.stdout, 16);
    let all = pm
        .output(&id, OutputOffsets::default())
        .await
        .unwrap_or_else(|e| panic!("output from 0: {e}"));
    assert_eq!(all.stdout_text(), "start\ngot:hello\n");

    assert!(
        wait_for_process_matching(sandbox, &m, SETTLE).await,
        "the process's children never appeared in the /proc scan"
    );
    let listed = pm.list().await.unwrap_or_else(|e| panic!("list: {e}"));
    let entry = listed
        .iter()
        .find(|p| p.id == id)
        .unwrap_or_else(|| panic!("list() does not contain {id}: {listed:?}"));
    assert_eq!(entry.state, ProcessState::Running);
    assert_eq!(
        pm.get(&id).await.map(|p| p.state).ok(),
        Some(ProcessState::Running)
    );

    let started = Instant::now();
    let waited = pm
        .wait(&id, Some(Duration::from_millis(500)))
        .await
        .unwrap_or_else(|e| panic!("wait with a short timeout: {e}"));
    assert_eq!(
        waited.state,
        ProcessState::Running,
        "a short wait returns Running"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    let killed = pm.kill(&id).await.unwrap_or_else(|e| panic!("kill: {e}"));
    assert_eq!(
        killed.state,
        ProcessState::Exited(EXIT_KILLED),
        "kill reports the process exited with 137"
    );
    assert_eq!(
        pm.get(&id).await.map(|p| p.state).ok(),
        Some(ProcessState::Exited(EXIT_KILLED))
    );
    assert_no_process_matching(sandbox, &m).await;
    pm.kill(&id)
        .await
        .unwrap_or_else(|e| panic!("killing an exited process must be fine: {e}"));
}

/// Processes that end by themselves report their exit code and output; stdin is closed by
/// default and can be closed explicitly; env and cwd apply; unknown ids are `NotFound`.
pub async fn background_process_exit(sandbox: &dyn WorkspaceSandbox) {
    let Some(pm) = processes(sandbox, "background_process_exit") else {
        return;
    };
    let info = spawn(pm, "echo bye; echo err >&2; exit 7", SpawnOptions::new()).await;
    assert_eq!(wait_exit(pm, &info.id).await, 7);
    let out = pm
        .output(&info.id, OutputOffsets::default())
        .await
        .unwrap_or_else(|e| panic!("output of an exited process: {e}"));
    assert_eq!(out.stdout_text(), "bye\n");
    assert_eq!(out.stderr_text(), "err\n");
    assert_eq!(out.state, ProcessState::Exited(7));
    let got = pm
        .get(&info.id)
        .await
        .unwrap_or_else(|e| panic!("get: {e}"));
    assert_eq!(got.exit_code(), Some(7));

    let info = spawn(pm, "cat", SpawnOptions::new()).await;
    assert_eq!(
        wait_exit(pm, &info.id).await,
        0,
        "stdin is closed by default"
    );

    let info = spawn(pm, "cat; echo eof", SpawnOptions::new().with_stdin()).await;
    pm.write_stdin(&info.id, b"abc")
        .await
        .unwrap_or_else(|e| panic!("write_stdin: {e}"));
    pm.close_stdin(&info.id)
        .await
        .unwrap_or_else(|e| panic!("close_stdin: {e}"));
    assert_eq!(wait_exit(pm, &info.id).await, 0);
    let out = pm
        .output(&info.id, OutputOffsets::default())
        .await
        .unwrap_or_else(|e| panic!("output: {e}"));
    assert_eq!(out.stdout_text(), "abceof\n");

    let wd = working_dir(sandbox).await;
    let dir = format!("{wd}/ct-proc-{}", unique_suffix());
    let r = exec_with(sandbox, "mkdir -p", &[&dir], opts()).await;
    assert!(r.success, "mkdir: {}", r.stderr);
    let info = spawn(
        pm,
        r#"printf '%s|' "$WS_VAR"; pwd"#,
        SpawnOptions::new().cwd(&dir).env("WS_VAR", "v a 'l'"),
    )
    .await;
    assert_eq!(wait_exit(pm, &info.id).await, 0);
    let out = pm
        .output(&info.id, OutputOffsets::default())
        .await
        .unwrap_or_else(|e| panic!("output: {e}"));
    assert_eq!(out.stdout_text(), format!("v a 'l'|{dir}\n"));

    let unknown = ProcessId::from(format!("ws-conformance-unknown-{}", unique_suffix()));
    expect_not_found("get of an unknown process", pm.get(&unknown).await);
    expect_not_found(
        "output of an unknown process",
        pm.output(&unknown, OutputOffsets::default()).await,
    );
    expect_not_found("kill of an unknown process", pm.kill(&unknown).await);
    expect_not_found(
        "wait of an unknown process",
        pm.wait(&unknown, Some(Duration::from_secs(1))).await,
    );
}

/// `wait_for_port`: false while nothing listens (within its timeout), true once a server a
/// background process started answers on the sandbox's loopback.
pub async fn process_wait_for_port(sandbox: &dyn WorkspaceSandbox) {
    use crate::sandbox::WorkspaceSandboxExt;

    let Some(pm) = processes(sandbox, "process_wait_for_port") else {
        return;
    };
    let has_python = sandbox
        .execute_command("command -v python3", &[], opts())
        .await
        .is_ok_and(|r| r.exit_code == 0);
    if !has_python {
        skip(
            "process_wait_for_port",
            "no python3 in the sandbox to serve a port",
        );
        return;
    }
    // A port below Linux's ephemeral range (32768 up), so no client connection holds it; a
    // server that still cannot bind (another check took it) exits, and another port is tried.
    let mut served = None;
    for _ in 0..3 {
        let port = 20_000 + u16::try_from(random_u64() % 12_000).unwrap_or(0);
        let taken = sandbox
            .wait_for_port(port, Duration::from_millis(500))
            .await
            .unwrap_or_else(|e| panic!("wait_for_port: {e} [{e:?}]"));
        if taken {
            continue;
        }
        let server = spawn(
            pm,
            &format!("exec python3 -m http.server {port} --bind 127.0.0.1"),
            SpawnOptions::default(),
        )
        .await;
        let deadline = Instant::now() + SETTLE;
        let (open, exited) = loop {
            let open = sandbox
                .wait_for_port(port, Duration::from_secs(1))
                .await
                .unwrap_or_else(|e| panic!("wait_for_port: {e} [{e:?}]"));
            let exited = pm
                .get(&server.id)
                .await
                .is_ok_and(|i| matches!(i.state, ProcessState::Exited(_)));
            if open || exited || Instant::now() >= deadline {
                break (open, exited);
            }
        };
        let _ = pm.kill(&server.id).await;
        if open {
            served = Some(port);
            break;
        }
        // A server that exited without answering could not bind: taken after the check.
        assert!(exited, "the server on {port} should answer");
    }
    assert!(served.is_some(), "no free port for the server in 3 tries");
    assert!(
        matches!(
            sandbox.wait_for_port(0, Duration::from_secs(1)).await,
            Err(crate::SandboxError::InvalidArgument { .. })
        ),
        "port 0 is bad input"
    );
}

/// Pushed output: [`crate::ProcessManagerExt::subscribe`] yields stdout and stderr apart, in
/// full, then the exit code; [`crate::ProcessManagerExt::wait_for_output`] returns on a match
/// well before the process ends, and says when the pattern never came.
pub async fn process_output_stream(sandbox: &dyn WorkspaceSandbox) {
    use crate::process::{ProcessEvent, ProcessManagerExt};
    use futures::StreamExt;

    let Some(pm) = processes(sandbox, "process_output_stream") else {
        return;
    };
    let info = spawn(
        pm,
        "printf 'a\\n'; printf 'e\\n' >&2; sleep 1; printf 'ready\\n'; sleep 1; printf 'b\\n'; exit 3",
        SpawnOptions::default(),
    )
    .await;
    let ready = regex::Regex::new("(?m)^ready$").unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let seen = pm
        .wait_for_output(&info.id, OutputOffsets::default(), &ready, SETTLE)
        .await
        .unwrap_or_else(|e| panic!("wait_for_output: {e} [{e:?}]"));
    assert!(seen.matched, "`ready` should match: {seen:?}");
    assert_eq!(
        seen.output.state,
        ProcessState::Running,
        "matched before the end: {seen:?}"
    );
    assert!(started.elapsed() < SETTLE, "{:?}", started.elapsed());

    let mut events = pm.subscribe(&info.id, OutputOffsets::default());
    let (mut out, mut err, mut exit) = (Vec::new(), Vec::new(), None);
    let deadline = tokio::time::Instant::now() + SETTLE;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.next()).await {
        match event.unwrap_or_else(|e| panic!("subscribe: {e} [{e:?}]")) {
            ProcessEvent::Stdout(b) => out.extend(b),
            ProcessEvent::Stderr(b) => err.extend(b),
            ProcessEvent::Exited(code) => exit = Some(code),
        }
    }
    assert_eq!(String::from_utf8_lossy(&out), "a\nready\nb\n");
    assert_eq!(String::from_utf8_lossy(&err), "e\n");
    assert_eq!(exit, Some(3), "the stream ends with the exit code");

    let never = regex::Regex::new("never printed").unwrap_or_else(|e| panic!("{e}"));
    let missed = pm
        .wait_for_output(&info.id, OutputOffsets::default(), &never, SETTLE)
        .await
        .unwrap_or_else(|e| panic!("wait_for_output: {e} [{e:?}]"));
    assert!(!missed.matched);
    assert_eq!(missed.output.state, ProcessState::Exited(3));
}
