//! Checks of `grep` and `glob` as the model sees them.

use std::sync::Arc;

use serde_json::json;
use workspace_core::WorkspaceSandbox;

use super::support::{fails, ok, unique_name};
use crate::{ToolErrorKind, Workspace};

/// Output modes, context, the cap with its "N more" note, `.gitignore` and `include_ignored`,
/// `glob` orders and caps, and bad input (invalid regex or glob, a missing path, `context`
/// without content) as errors the model can act on.
pub async fn search_tools(sandbox: Arc<dyn WorkspaceSandbox>) {
    if sandbox.filesystem().is_none() {
        eprintln!("workspace-tools testkit: no filesystem(), skipping search_tools");
        return;
    }
    let ws = Workspace::new(sandbox);
    let dir = unique_name("wt-search");
    let write = |path: &str, content: String| {
        let ws = ws.clone();
        let path = format!("{dir}/{path}");
        async move { ok(&ws, "write_file", json!({"path": path, "content": content})).await }
    };
    write(".gitignore", "build/\n".into()).await;
    write("src/a.rs", "fn a() {}\n// TODO one\n".into()).await;
    write("src/b.rs", "fn b() {}\nfn c() {}\n".into()).await;
    write("build/out.rs", "fn built() {}\n".into()).await;
    write(
        "many.txt",
        (1..=30).map(|i| format!("item {i}\n")).collect(),
    )
    .await;

    let out = ok(&ws, "grep", json!({"pattern": "fn \\w+", "path": dir})).await;
    assert_eq!(
        out.text,
        format!(
            "3 matching lines in 2 files for `fn \\w+` under `{dir}`:\nsrc/a.rs (1 match)\nsrc/b.rs (2 matches)"
        ),
    );
    let out = ok(
        &ws,
        "grep",
        json!({"pattern": "fn", "path": dir, "output_mode": "count", "include_ignored": true}),
    )
    .await;
    assert!(
        out.text.ends_with("build/out.rs:1\nsrc/a.rs:1\nsrc/b.rs:2"),
        "{}",
        out.text
    );
    let out = ok(
        &ws,
        "grep",
        json!({"pattern": "TODO", "path": dir, "output_mode": "content", "context": 1}),
    )
    .await;
    assert!(
        out.text
            .ends_with("src/a.rs-1-fn a() {}\nsrc/a.rs:2:// TODO one"),
        "{}",
        out.text
    );
    let out = ok(
        &ws,
        "grep",
        json!({"pattern": "item", "path": dir, "output_mode": "content", "head_limit": 5}),
    )
    .await;
    assert!(out.truncated, "{}", out.text);
    assert!(
        out.text.starts_with(&format!(
            "30 matching lines in 1 file for `item` under `{dir}`:\nmany.txt:1:item 1\n"
        )),
        "{}",
        out.text
    );
    assert!(
        out.text.ends_with("many.txt:5:item 5\n[... 25 more matching lines not shown; narrow `pattern`, `path` or `include`, or raise `head_limit`]"),
        "{}",
        out.text
    );
    let out = ok(&ws, "grep", json!({"pattern": "built", "path": dir})).await;
    assert!(out.text.starts_with("no matches"), "{}", out.text);
    assert!(out.text.contains("include_ignored"), "{}", out.text);

    fails(
        &ws,
        "grep",
        json!({"pattern": "fn (", "path": dir}),
        ToolErrorKind::Sandbox,
        "`pattern`",
    )
    .await;
    fails(
        &ws,
        "grep",
        json!({"pattern": "x", "path": format!("{dir}/missing")}),
        ToolErrorKind::Sandbox,
        "not found",
    )
    .await;
    fails(
        &ws,
        "grep",
        json!({"pattern": "x", "context": 2}),
        ToolErrorKind::InvalidArguments,
        "`context`",
    )
    .await;

    let out = ok(&ws, "glob", json!({"pattern": "**/*.rs", "path": dir})).await;
    assert_eq!(
        out.text,
        format!("2 files under `{dir}` match `**/*.rs`:\nsrc/a.rs\nsrc/b.rs")
    );
    let out = ok(
        &ws,
        "glob",
        json!({"pattern": "**/*.rs", "path": dir, "include_ignored": true, "head_limit": 1}),
    )
    .await;
    assert!(out.truncated);
    assert!(
        out.text.ends_with("build/out.rs\n[... 2 more files not shown; narrow `pattern` or `path`, or raise `head_limit`]"),
        "{}",
        out.text
    );
    let out = ok(&ws, "glob", json!({"pattern": "*.rs", "path": dir})).await;
    assert!(out.text.contains("try `**/`"), "{}", out.text);
    fails(
        &ws,
        "glob",
        json!({"pattern": "src/[z-", "path": dir}),
        ToolErrorKind::Sandbox,
        "not a valid glob",
    )
    .await;
    fails(
        &ws,
        "glob",
        json!({"pattern": "*", "path": format!("{dir}/src/a.rs")}),
        ToolErrorKind::Sandbox,
        "not a directory",
    )
    .await;
}
