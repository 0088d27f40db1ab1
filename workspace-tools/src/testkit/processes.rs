//! Checks of background processes through the tools.

use std::sync::Arc;

use serde_json::{Value, json};
use workspace_core::WorkspaceSandbox;

use super::support::{fails, ok, unique_name};
use crate::{ToolErrorKind, ToolOutput, Workspace};

fn process_workspace(sandbox: Arc<dyn WorkspaceSandbox>) -> Option<Workspace> {
    if sandbox.processes().is_none() {
        eprintln!("workspace-tools testkit: no processes(), skipping a process check");
        return None;
    }
    Some(Workspace::new(sandbox))
}

/// The `tick N` numbers in an answer, in order.
fn ticks(out: &ToolOutput) -> Vec<u32> {
    out.text
        .lines()
        .filter_map(|l| l.strip_prefix("tick "))
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

fn since(out: &ToolOutput) -> Value {
    let next = out.next.expect("a `next` offset in every output answer");
    json!({"stdout": next.stdout, "stderr": next.stderr})
}

/// Start a process that prints over time, follow it with `since` (no line twice, none lost),
/// kill it, and see it exited; a process that exits on its own reports its code.
pub async fn background_process_lifecycle(sandbox: Arc<dyn WorkspaceSandbox>) {
    let Some(ws) = process_workspace(sandbox) else {
        return;
    };
    let marker = unique_name("wt-proc");
    let command = format!(
        "echo {marker} >/dev/null; i=0; while [ $i -lt 600 ]; do echo \"tick $i\"; i=$((i+1)); sleep 0.05; done"
    );
    let started = ok(
        &ws,
        "execute_command",
        json!({"command": command, "background": true}),
    )
    .await;
    let id = started
        .process_id
        .clone()
        .expect("a background start returns the process id");
    assert!(
        started
            .text
            .starts_with(&format!("started background process {id}: ")),
        "{}",
        started.text
    );
    assert!(
        started.text.contains("`get_process_output`"),
        "{}",
        started.text
    );

    let first = ok(
        &ws,
        "get_process_output",
        json!({"id": id.0, "wait_seconds": 10}),
    )
    .await;
    assert!(
        first.text.starts_with(&format!("process {id}: running")),
        "{}",
        first.text
    );
    assert!(
        first.text.contains("\nnext: {\"stdout\": "),
        "{}",
        first.text
    );
    assert_eq!(first.exit_code, None);
    let mut seen = ticks(&first);
    assert_eq!(seen.first(), Some(&0), "{}", first.text);

    // Follow it twice more: each answer continues exactly where the previous one stopped.
    let mut last = first;
    for _ in 0..2 {
        let next = ok(
            &ws,
            "get_process_output",
            json!({"id": id.0, "since": since(&last), "wait_seconds": 10}),
        )
        .await;
        let more = ticks(&next);
        assert!(
            !more.is_empty(),
            "waiting should have brought new output: {}",
            next.text
        );
        seen.extend(more);
        last = next;
    }
    let expected: Vec<u32> = (0..seen.len() as u32).collect();
    assert_eq!(
        seen, expected,
        "no tick lost or repeated across `since` reads"
    );

    let killed = ok(&ws, "kill_process", json!({"id": id.0})).await;
    assert!(
        killed
            .text
            .starts_with(&format!("killed process {id} (exit code: ")),
        "{}",
        killed.text
    );
    let after = ok(
        &ws,
        "get_process_output",
        json!({"id": id.0, "since": since(&last)}),
    )
    .await;
    assert!(
        after
            .text
            .starts_with(&format!("process {id}: exited, exit code: ")),
        "{}",
        after.text
    );
    assert!(after.exit_code.is_some());
    let again = ok(&ws, "kill_process", json!({"id": id.0})).await;
    assert!(again.text.contains("had already exited"), "{}", again.text);

    // A process that ends by itself; `wait_seconds` returns as soon as it has.
    let quick = ok(
        &ws,
        "execute_command",
        json!({"command": "echo done; echo oops >&2; exit 3", "background": true}),
    )
    .await;
    let qid = quick.process_id.expect("id");
    let mut out = ok(
        &ws,
        "get_process_output",
        json!({"id": qid.0, "wait_seconds": 10}),
    )
    .await;
    // Output can arrive a moment before the exit is recorded.
    for _ in 0..50 {
        if out.exit_code.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        out = ok(&ws, "get_process_output", json!({"id": qid.0})).await;
    }
    assert_eq!(out.exit_code, Some(3), "{}", out.text);
    assert!(
        out.text.starts_with(&format!(
            "process {qid}: exited, exit code: 3\nstdout:\ndone\nstderr:\noops\nnext: "
        )),
        "{}",
        out.text
    );
    let out = ok(
        &ws,
        "get_process_output",
        json!({"id": qid.0, "since": since(&out)}),
    )
    .await;
    assert!(out.text.contains("\n(no new output)\n"), "{}", out.text);

    fails(
        &ws,
        "get_process_output",
        json!({"id": "proc-does-not-exist"}),
        ToolErrorKind::Sandbox,
        "not found",
    )
    .await;
    fails(
        &ws,
        "kill_process",
        json!({"id": "proc-does-not-exist"}),
        ToolErrorKind::Sandbox,
        "not found",
    )
    .await;
}

/// Missing, mistyped, unknown and out-of-range arguments of the process tools.
pub async fn process_tools_bad_arguments(sandbox: Arc<dyn WorkspaceSandbox>) {
    let Some(ws) = process_workspace(sandbox) else {
        return;
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "get_process_output",
            json!({}),
            "missing required argument `id` (a string)",
        ),
        (
            "get_process_output",
            json!({"id": 1}),
            "argument `id` must be a string",
        ),
        (
            "get_process_output",
            json!({"id": "p", "since": {"stdout": "1", "stderr": 0}}),
            "argument `since.stdout` must be an integer",
        ),
        (
            "get_process_output",
            json!({"id": "p", "since": {"stdout": 1}}),
            "missing required argument `since.stderr`",
        ),
        (
            "get_process_output",
            json!({"id": "p", "since": {"stdout": 1, "stderr": 0, "pty": 0}}),
            "unknown argument `since.pty`",
        ),
        (
            "get_process_output",
            json!({"id": "p", "wait_seconds": 100000}),
            "must be at most 120",
        ),
        (
            "get_process_output",
            json!({"id": "p", "tail": 5}),
            "unknown argument `tail`",
        ),
        (
            "get_process_output",
            json!({"id": " "}),
            "argument `id` must not be empty",
        ),
        ("kill_process", json!({}), "missing required argument `id`"),
        (
            "kill_process",
            json!({"id": true}),
            "argument `id` must be a string, got boolean true",
        ),
        (
            "kill_process",
            json!({"id": "p", "signal": "TERM"}),
            "unknown argument `signal`",
        ),
        (
            "execute_command",
            json!({"command": "true", "background": "yes"}),
            "argument `background` must be true or false",
        ),
    ];
    for (tool, args, needle) in cases {
        fails(&ws, tool, args, ToolErrorKind::InvalidArguments, needle).await;
    }
}

/// `get_process_output` with `wait_for`: one call returns once a dev-server-style banner
/// appears (long before the process ends), says so when the pattern does not come in time, and
/// rejects an invalid pattern by name.
pub async fn process_wait_for(sandbox: Arc<dyn WorkspaceSandbox>) {
    let Some(ws) = process_workspace(sandbox) else {
        return;
    };
    let started = ok(
        &ws,
        "execute_command",
        json!({"command": "echo booting; sleep 1; echo 'Listening on :3000'; sleep 60", "background": true}),
    )
    .await;
    let id = started.process_id.clone().expect("a process id");
    let t0 = std::time::Instant::now();
    let out = ok(
        &ws,
        "get_process_output",
        json!({"id": id.0, "wait_for": "Listening on :\\d+", "wait_seconds": 30}),
    )
    .await;
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        t0.elapsed()
    );
    assert!(
        out.text
            .starts_with("`wait_for` matched `Listening on :\\d+`\nprocess "),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("booting\nListening on :3000"),
        "{}",
        out.text
    );
    let next = out.next.expect("offsets");
    let out = ok(
        &ws,
        "get_process_output",
        json!({"id": id.0, "since": {"stdout": next.stdout, "stderr": next.stderr},
               "wait_for": "never", "wait_seconds": 1}),
    )
    .await;
    assert!(
        out.text.starts_with(
            "`wait_for`: no match for `never` within 1s; the process is still running"
        ),
        "{}",
        out.text
    );
    fails(
        &ws,
        "get_process_output",
        json!({"id": id.0, "wait_for": "(unclosed"}),
        ToolErrorKind::InvalidArguments,
        "`wait_for`",
    )
    .await;
    ok(&ws, "kill_process", json!({"id": id.0})).await;
}

/// `port_url` is offered exactly when the sandbox can give port URLs; it answers with the
/// outside address and the inside one, never a credential, and the instructions point to it.
pub async fn port_url_tool(sandbox: Arc<dyn WorkspaceSandbox>) {
    let offered = sandbox.capabilities().ports;
    let ws = Workspace::new(sandbox);
    assert_eq!(ws.tool("port_url").is_some(), offered);
    if !offered {
        assert!(!ws.instructions().contains("`port_url`"));
        return;
    }
    assert!(
        ws.instructions().contains("call `port_url` with its port"),
        "{}",
        ws.instructions()
    );
    let out = ok(&ws, "port_url", json!({"port": 3000})).await;
    assert!(
        out.text
            .starts_with("port 3000 of the sandbox is reachable from outside at "),
        "{}",
        out.text
    );
    assert!(
        out.text
            .ends_with("inside the sandbox, use http://localhost:3000"),
        "{}",
        out.text
    );
    fails(
        &ws,
        "port_url",
        json!({"port": 0}),
        ToolErrorKind::InvalidArguments,
        "`port`",
    )
    .await;
}
