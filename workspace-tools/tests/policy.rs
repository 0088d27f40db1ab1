//! Approval policies and result hooks on a real local sandbox: deny (nothing runs), modify
//! (the new arguments run, checked against the schema), a panicking or hanging policy (denied,
//! bounded), a redacting hook, a failing hook (answer withheld).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;
use workspace_core::WorkspaceSandbox;
use workspace_local::{Isolation, LocalSandbox};
use workspace_tools::{
    PolicyDecision, ToolCall, ToolErrorKind, ToolHook, ToolKind, ToolOutput, ToolPolicy, Workspace,
    WorkspaceToolsOptions,
};

fn sandbox() -> Arc<dyn WorkspaceSandbox> {
    Arc::new(
        LocalSandbox::builder()
            .isolation(Isolation::None)
            .build()
            .unwrap_or_else(|e| panic!("sandbox: {e}")),
    )
}

/// Denies writes, rewrites `echo` commands, panics on `mkdir`, never answers for `delete`.
struct Rules {
    asked: AtomicUsize,
}

#[async_trait]
impl ToolPolicy for Rules {
    async fn check(&self, call: &ToolCall) -> PolicyDecision {
        self.asked.fetch_add(1, Ordering::SeqCst);
        match call.kind {
            ToolKind::WriteFile => PolicyDecision::deny("writes need a ticket number"),
            ToolKind::ExecuteCommand => {
                let command = call.arguments["command"].as_str().unwrap_or_default();
                if let Some(rest) = command.strip_prefix("echo ") {
                    PolicyDecision::Modify(json!({"command": format!("echo checked {rest}")}))
                } else if command == "bad-modify" {
                    PolicyDecision::Modify(json!({"command": 5}))
                } else {
                    PolicyDecision::Allow
                }
            }
            ToolKind::Mkdir => panic!("policy bug"),
            ToolKind::Delete => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                PolicyDecision::Allow
            }
            _ => PolicyDecision::Allow,
        }
    }
}

struct Redact;

#[async_trait]
impl ToolHook for Redact {
    async fn after(&self, call: &ToolCall, output: &mut ToolOutput) {
        if call.kind == ToolKind::ReadFile && output.text.contains("panic-please") {
            panic!("hook bug");
        }
        output.text = output.text.replace("s3cr3t", "[redacted]");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_and_hooks_decide_and_stay_bounded() {
    let sb = sandbox();
    let options = WorkspaceToolsOptions::new().policy_timeout(Duration::from_secs(1));
    let ws = Workspace::with_options(sb.clone(), options).unwrap_or_else(|e| panic!("{e}"));
    let rules = Arc::new(Rules {
        asked: AtomicUsize::new(0),
    });
    ws.set_policy(rules.clone());
    ws.add_hook(Arc::new(Redact));

    let out = ws
        .call("write_file", json!({"path": "x.txt", "content": "hi"}))
        .await;
    assert!(out.is_error);
    assert_eq!(out.error, Some(ToolErrorKind::Denied));
    assert!(
        out.text.contains("writes need a ticket number"),
        "{}",
        out.text
    );
    let check = ws
        .call(
            "execute_command",
            json!({"command": "test -e x.txt; echo $?"}),
        )
        .await;
    assert_eq!(
        check.text, "exit code: 0\n1",
        "nothing was written: {}",
        check.text
    );

    let out = ws
        .call("execute_command", json!({"command": "echo hi"}))
        .await;
    assert_eq!(out.text, "exit code: 0\nchecked hi");
    let out = ws
        .call("execute_command", json!({"command": "bad-modify"}))
        .await;
    assert_eq!(
        out.error,
        Some(ToolErrorKind::InvalidArguments),
        "{}",
        out.text
    );

    let out = ws.call("mkdir", json!({"path": "d"})).await;
    assert_eq!(out.error, Some(ToolErrorKind::Denied));
    assert!(
        out.text.contains("policy failed (it panicked)"),
        "{}",
        out.text
    );

    let started = Instant::now();
    let out = ws.call("delete", json!({"path": "d"})).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.error, Some(ToolErrorKind::Denied));
    assert!(out.text.contains("no approval within 1s"), "{}", out.text);

    let out = ws
        .call(
            "execute_command",
            json!({"command": "printf 'token=s3cr3t\\n' > f.txt; cat f.txt"}),
        )
        .await;
    assert_eq!(out.text, "exit code: 0\ntoken=[redacted]");
    let out = ws
        .call(
            "execute_command",
            json!({"command": "echo panic-please > p.txt"}),
        )
        .await;
    assert!(!out.is_error, "{}", out.text);
    let out = ws.call("read_file", json!({"path": "p.txt"})).await;
    assert_eq!(out.error, Some(ToolErrorKind::Denied));
    assert!(out.text.contains("answer is withheld"), "{}", out.text);
    assert!(!out.text.contains("panic-please"));

    // An unknown tool is answered without asking the policy.
    let before = rules.asked.load(Ordering::SeqCst);
    let out = ws.call("nope", json!({})).await;
    assert_eq!(out.error, Some(ToolErrorKind::UnknownTool));
    assert_eq!(rules.asked.load(Ordering::SeqCst), before);
    sb.destroy().await.unwrap_or_else(|e| panic!("{e}"));
}
