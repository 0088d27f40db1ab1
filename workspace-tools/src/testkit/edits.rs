//! Checks of edit safety: read before change, refusal after a change underneath, serialised
//! edits, all-or-nothing `multi_edit`, and the switch that turns the checks off.

use std::sync::Arc;

use serde_json::json;
use workspace_core::WorkspaceSandbox;

use super::support::{fails, ok, unique_name};
use crate::{ToolErrorKind, Workspace, WorkspaceToolsOptions};

async fn cat(ws: &Workspace, file: &str) -> String {
    let out = ok(
        ws,
        "execute_command",
        json!({"command": format!("cat {file}")}),
    )
    .await;
    out.text
        .strip_prefix("exit code: 0\n")
        .unwrap_or(&out.text)
        .to_string()
}

/// A file written by a command must be read before `edit_file`/`write_file` change it; a
/// change underneath (by a command) is refused with "file changed since you read it" until it
/// is read again; `multi_edit` applies all or none; concurrent edits of one file all land;
/// a directory given to a file tool is refused; `edit_safety(false)` skips the checks.
pub async fn edit_safety(sandbox: Arc<dyn WorkspaceSandbox>) {
    if sandbox.filesystem().is_none() {
        eprintln!("workspace-tools testkit: no filesystem(), skipping edit_safety");
        return;
    }
    let ws = Workspace::new(sandbox.clone());
    let dir = unique_name("wt-safe");
    let file = format!("{dir}/app.txt");
    ok(
        &ws,
        "execute_command",
        json!({"command": format!("mkdir -p {dir} && printf 'alpha\\nbeta\\ngamma\\n' > {file}")}),
    )
    .await;

    let out = fails(
        &ws,
        "edit_file",
        json!({"path": file, "old_string": "beta", "new_string": "BETA"}),
        ToolErrorKind::Rejected,
        "have not read it",
    )
    .await;
    assert!(out.text.contains("`read_file`"), "{}", out.text);
    fails(
        &ws,
        "write_file",
        json!({"path": file, "content": "x"}),
        ToolErrorKind::Rejected,
        "have not read it",
    )
    .await;
    assert_eq!(cat(&ws, &file).await, "alpha\nbeta\ngamma");

    ok(&ws, "read_file", json!({"path": file})).await;
    ok(
        &ws,
        "edit_file",
        json!({"path": file, "old_string": "beta", "new_string": "BETA"}),
    )
    .await;
    // Its own edit keeps the file known: a second edit needs no new read.
    ok(
        &ws,
        "edit_file",
        json!({"path": file, "old_string": "gamma", "new_string": "GAMMA"}),
    )
    .await;

    ok(
        &ws,
        "execute_command",
        json!({"command": format!("printf 'delta\\n' >> {file}")}),
    )
    .await;
    fails(
        &ws,
        "edit_file",
        json!({"path": file, "old_string": "alpha", "new_string": "ALPHA"}),
        ToolErrorKind::Rejected,
        "file changed since you read it",
    )
    .await;
    fails(
        &ws,
        "write_file",
        json!({"path": file, "content": "x"}),
        ToolErrorKind::Rejected,
        "file changed since you read it",
    )
    .await;
    ok(&ws, "read_file", json!({"path": file})).await;

    // All or nothing: the second edit does not match, so the first is not applied either.
    let out = fails(
        &ws,
        "multi_edit",
        json!({"path": file, "edits": [
            {"old_string": "alpha", "new_string": "ALPHA"},
            {"old_string": "omega", "new_string": "OMEGA"},
        ]}),
        ToolErrorKind::Rejected,
        "edit 2 of 2 failed, so none was applied",
    )
    .await;
    assert!(out.text.contains("was not found"), "{}", out.text);
    assert_eq!(cat(&ws, &file).await, "alpha\nBETA\nGAMMA\ndelta");
    let out = ok(
        &ws,
        "multi_edit",
        json!({"path": file, "edits": [
            {"old_string": "alpha", "new_string": "one"},
            {"old_string": "one\nBETA", "new_string": "one\ntwo"},
            {"old_string": "a", "new_string": "A", "replace_all": true},
        ]}),
    )
    .await;
    assert!(out.text.starts_with("applied 3 edits"), "{}", out.text);
    assert_eq!(cat(&ws, &file).await, "one\ntwo\nGAMMA\ndeltA");

    // Concurrent edits of one file are serialised: none is lost.
    let many = format!("{dir}/many.txt");
    let content: String = (0..8).map(|i| format!("line {i}\n")).collect();
    ok(&ws, "write_file", json!({"path": many, "content": content})).await;
    let edits = (0..8).map(|i| {
        let ws = ws.clone();
        let many = many.clone();
        async move {
            ws.call(
                "edit_file",
                json!({"path": many, "old_string": format!("line {i}\n"), "new_string": format!("edited {i}\n")}),
            )
            .await
        }
    });
    for out in futures::future::join_all(edits).await {
        assert!(!out.is_error, "a concurrent edit failed: {}", out.text);
    }
    let want: String = (0..8).map(|i| format!("edited {i}\n")).collect();
    assert_eq!(cat(&ws, &many).await, want.trim_end());

    fails(
        &ws,
        "write_file",
        json!({"path": dir, "content": "x"}),
        ToolErrorKind::Rejected,
        "is a directory",
    )
    .await;
    fails(
        &ws,
        "edit_file",
        json!({"path": dir, "old_string": "a", "new_string": "b"}),
        ToolErrorKind::Rejected,
        "is a directory",
    )
    .await;

    // Off: an application that does its own bookkeeping.
    let trusting =
        Workspace::with_options(sandbox, WorkspaceToolsOptions::new().edit_safety(false))
            .unwrap_or_else(|e| panic!("options: {e}"));
    ok(
        &trusting,
        "edit_file",
        json!({"path": file, "old_string": "GAMMA", "new_string": "three"}),
    )
    .await;
    assert_eq!(cat(&ws, &file).await, "one\ntwo\nthree\ndeltA");
}
