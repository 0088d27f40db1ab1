//! Checks of the file tools.

use std::sync::Arc;

use serde_json::{Value, json};
use workspace_core::WorkspaceSandbox;

use super::support::{fails, ok, unique_name};
use crate::{ToolErrorKind, Workspace};

fn file_workspace(sandbox: Arc<dyn WorkspaceSandbox>) -> Option<Workspace> {
    if sandbox.filesystem().is_none() {
        eprintln!("workspace-tools testkit: no filesystem(), skipping a file check");
        return None;
    }
    Some(Workspace::new(sandbox))
}

/// write → read → stat → mkdir → list → delete, and commands see the same files.
pub async fn file_tools_round_trip(sandbox: Arc<dyn WorkspaceSandbox>) {
    let Some(ws) = file_workspace(sandbox) else {
        return;
    };
    let dir = unique_name("wt-files");
    let file = format!("{dir}/sub/a.txt");
    let out = ok(
        &ws,
        "write_file",
        json!({"path": file, "content": "one\ntwo\nthree\n"}),
    )
    .await;
    assert_eq!(out.text, format!("wrote 14 bytes (3 lines) to `{file}`"));
    let out = ok(&ws, "read_file", json!({"path": file})).await;
    assert_eq!(out.text, "     1\tone\n     2\ttwo\n     3\tthree");
    assert!(!out.truncated);
    let out = ok(
        &ws,
        "execute_command",
        json!({"command": format!("cat {file}")}),
    )
    .await;
    assert_eq!(out.text, "exit code: 0\none\ntwo\nthree");

    let out = ok(&ws, "file_stat", json!({"path": file})).await;
    assert!(
        out.text.starts_with(&format!("{file}: file, 14 bytes")),
        "{}",
        out.text
    );
    let out = ok(&ws, "file_stat", json!({"path": format!("{dir}/sub")})).await;
    assert!(out.text.contains(": directory, "), "{}", out.text);

    let deep = format!("{dir}/new/deeper");
    ok(&ws, "mkdir", json!({"path": deep})).await;
    ok(&ws, "mkdir", json!({"path": deep})).await;
    let out = ok(&ws, "list_files", json!({"path": dir, "depth": 3})).await;
    assert_eq!(
        out.text,
        format!(
            "{dir}/\n  new/\n    deeper/\n  sub/\n    a.txt  (14 bytes)\n3 directories, 1 files"
        )
    );

    ok(&ws, "delete", json!({"path": file})).await;
    fails(
        &ws,
        "read_file",
        json!({"path": file}),
        ToolErrorKind::Sandbox,
        "not found",
    )
    .await;
    ok(&ws, "write_file", json!({"path": file, "content": "again"})).await;
    fails(
        &ws,
        "delete",
        json!({"path": format!("{dir}/sub")}),
        ToolErrorKind::Sandbox,
        "`delete` failed",
    )
    .await;
    ok(&ws, "delete", json!({"path": dir, "recursive": true})).await;
    fails(
        &ws,
        "file_stat",
        json!({"path": dir}),
        ToolErrorKind::Sandbox,
        "not found",
    )
    .await;
}

/// Missing, mistyped and unknown arguments for every file tool.
pub async fn file_tools_bad_arguments(sandbox: Arc<dyn WorkspaceSandbox>) {
    let Some(ws) = file_workspace(sandbox) else {
        return;
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "read_file",
            json!({}),
            "missing required argument `path` (a string)",
        ),
        (
            "read_file",
            json!({"path": 1}),
            "argument `path` must be a string, got integer 1",
        ),
        (
            "read_file",
            json!({"path": "x", "encoding": "utf8"}),
            "unknown argument `encoding`",
        ),
        (
            "read_file",
            json!({"path": "x", "offset": 0}),
            "argument `offset` must be at least 1",
        ),
        (
            "write_file",
            json!({"path": "x"}),
            "missing required argument `content` (a string)",
        ),
        (
            "write_file",
            json!({"path": "x", "content": 5}),
            "argument `content` must be a string",
        ),
        (
            "write_file",
            json!({"path": "x", "content": "", "overwrite": true}),
            "unknown argument `overwrite`",
        ),
        (
            "write_file",
            json!({"path": "", "content": "x"}),
            "argument `path` must not be empty",
        ),
        (
            "edit_file",
            json!({"path": "x", "old_string": "a"}),
            "missing required argument `new_string`",
        ),
        (
            "edit_file",
            json!({"path": "x", "old_string": "a", "new_string": "b", "replace_all": "yes"}),
            "argument `replace_all` must be true or false, got string \"yes\"",
        ),
        (
            "edit_file",
            json!({"path": "x", "old_string": "a", "new_string": "b", "count": 2}),
            "unknown argument `count`",
        ),
        (
            "edit_file",
            json!({"path": "x", "old_string": "", "new_string": "b"}),
            "argument `old_string` must not be empty",
        ),
        (
            "list_files",
            json!({"depth": "2"}),
            "argument `depth` must be an integer",
        ),
        (
            "list_files",
            json!({"depth": 0}),
            "argument `depth` must be at least 1",
        ),
        (
            "list_files",
            json!({"recursive": true}),
            "unknown argument `recursive`",
        ),
        (
            "list_files",
            json!({"glob": "[abc"}),
            "argument `glob` is not valid: `[abc` is not a valid glob: unclosed character class",
        ),
        ("delete", json!({}), "missing required argument `path`"),
        (
            "delete",
            json!({"path": "x", "recursive": 1}),
            "argument `recursive` must be true or false",
        ),
        (
            "delete",
            json!({"path": "x", "force": true}),
            "unknown argument `force`",
        ),
        ("mkdir", json!({}), "missing required argument `path`"),
        (
            "mkdir",
            json!({"path": ["a"]}),
            "argument `path` must be a string, got an array",
        ),
        (
            "mkdir",
            json!({"path": "x", "parents": true}),
            "unknown argument `parents`",
        ),
        ("file_stat", json!({}), "missing required argument `path`"),
        (
            "file_stat",
            json!({"path": {}}),
            "argument `path` must be a string, got an object",
        ),
        (
            "file_stat",
            json!({"path": "x", "follow": true}),
            "unknown argument `follow`",
        ),
    ];
    for (tool, args, needle) in cases {
        let out = fails(&ws, tool, args, ToolErrorKind::InvalidArguments, needle).await;
        assert!(
            out.text
                .starts_with(&format!("error: invalid arguments for `{tool}`: ")),
            "{}",
            out.text
        );
    }
}

/// `offset`/`limit` in lines, the note that says how to read on, offsets past the end, empty,
/// binary, CRLF and long files, and directories.
pub async fn read_file_ranges(sandbox: Arc<dyn WorkspaceSandbox>) {
    let Some(ws) = file_workspace(sandbox) else {
        return;
    };
    let dir = unique_name("wt-read");
    let file = format!("{dir}/fifty.txt");
    let content: String = (1..=50).map(|i| format!("line {i}\n")).collect();
    ok(&ws, "write_file", json!({"path": file, "content": content})).await;

    let out = ok(
        &ws,
        "read_file",
        json!({"path": file, "offset": 10, "limit": 3}),
    )
    .await;
    assert_eq!(
        out.text,
        "    10\tline 10\n    11\tline 11\n    12\tline 12\n\
         [showing lines 10-12 of 50; to read on, call `read_file` with offset=13]"
    );
    assert!(out.truncated);
    let out = ok(
        &ws,
        "read_file",
        json!({"path": file, "offset": 49, "limit": u64::MAX}),
    )
    .await;
    assert_eq!(out.text, "    49\tline 49\n    50\tline 50");
    fails(
        &ws,
        "read_file",
        json!({"path": file, "offset": 51}),
        ToolErrorKind::Rejected,
        "offset 51 is past the end of",
    )
    .await;
    let out = fails(
        &ws,
        "read_file",
        json!({"path": file, "offset": 500}),
        ToolErrorKind::Rejected,
        "which has 50 lines",
    )
    .await;
    assert!(out.text.contains(&file), "{}", out.text);

    let empty = format!("{dir}/empty.txt");
    ok(&ws, "write_file", json!({"path": empty, "content": ""})).await;
    let out = ok(&ws, "read_file", json!({"path": empty})).await;
    assert_eq!(out.text, "(empty file)");

    let crlf = format!("{dir}/crlf.txt");
    ok(
        &ws,
        "write_file",
        json!({"path": crlf, "content": "a\r\nb\r\n"}),
    )
    .await;
    let out = ok(&ws, "read_file", json!({"path": crlf})).await;
    assert_eq!(out.text, "     1\ta\n     2\tb");

    let binary = format!("{dir}/blob.bin");
    ok(
        &ws,
        "execute_command",
        json!({"command": format!("printf 'ab\\000cd' > {binary}")}),
    )
    .await;
    fails(
        &ws,
        "read_file",
        json!({"path": binary}),
        ToolErrorKind::Rejected,
        "looks binary",
    )
    .await;
    fails(
        &ws,
        "read_file",
        json!({"path": dir}),
        ToolErrorKind::Rejected,
        "is a directory",
    )
    .await;

    // A file far over the budget: whole lines up to the budget, then how to read on.
    let big = format!("{dir}/big.txt");
    let line = "x".repeat(99);
    let content: String = (0..5000).map(|_| format!("{line}\n")).collect();
    ok(&ws, "write_file", json!({"path": big, "content": content})).await;
    let out = ok(&ws, "read_file", json!({"path": big})).await;
    let budget = ws.options().output_budget;
    assert!(out.text.len() <= budget, "{} > {budget}", out.text.len());
    assert!(out.truncated);
    let last = out.text.lines().last().expect("a note");
    let shown = out.text.lines().count() - 1;
    assert_eq!(
        last,
        format!(
            "[showing lines 1-{shown} of 5000; to read on, call `read_file` with offset={}]",
            shown + 1
        )
    );
    let out = ok(
        &ws,
        "read_file",
        json!({"path": big, "offset": shown + 1, "limit": 1}),
    )
    .await;
    assert!(
        out.text.starts_with(&format!("{:>6}\t{line}", shown + 1)),
        "{}",
        out.text
    );

    // One enormous line is cut, with the count of what was left out.
    let long = format!("{dir}/long.txt");
    ok(
        &ws,
        "write_file",
        json!({"path": long, "content": "y".repeat(5000)}),
    )
    .await;
    let out = ok(&ws, "read_file", json!({"path": long})).await;
    assert!(
        out.text.ends_with("… [line cut: 3000 more bytes]"),
        "{}",
        &out.text[out.text.len() - 60..]
    );
    ok(&ws, "delete", json!({"path": dir, "recursive": true})).await;
}

/// `edit_file`: exactly one match replaces; zero or several say how many matched and change
/// nothing; `replace_all` replaces all.
pub async fn edit_file_matches(sandbox: Arc<dyn WorkspaceSandbox>) {
    let Some(ws) = file_workspace(sandbox) else {
        return;
    };
    let dir = unique_name("wt-edit");
    let file = format!("{dir}/code.rs");
    let original = "fn a() {}\nfn b() {}\nfn a() {}\n";
    ok(
        &ws,
        "write_file",
        json!({"path": file, "content": original}),
    )
    .await;

    fails(
        &ws,
        "edit_file",
        json!({"path": file, "old_string": "fn c() {}", "new_string": "x"}),
        ToolErrorKind::Rejected,
        "was not found in",
    )
    .await;
    let out = fails(
        &ws,
        "edit_file",
        json!({"path": file, "old_string": "fn a() {}", "new_string": "fn z() {}"}),
        ToolErrorKind::Rejected,
        "matches 2 times",
    )
    .await;
    assert!(out.text.contains("(at lines 1, 3)"), "{}", out.text);
    assert!(out.text.contains("replace_all"), "{}", out.text);
    let unchanged = ok(
        &ws,
        "execute_command",
        json!({"command": format!("cat {file}")}),
    )
    .await;
    assert_eq!(
        unchanged.text,
        format!("exit code: 0\n{}", original.trim_end())
    );
    fails(
        &ws,
        "edit_file",
        json!({"path": file, "old_string": "fn b() {}", "new_string": "fn b() {}"}),
        ToolErrorKind::Rejected,
        "are the same",
    )
    .await;

    let out = ok(
        &ws,
        "edit_file",
        json!({"path": file, "old_string": "fn b() {}", "new_string": "fn b() { 1 }"}),
    )
    .await;
    assert!(
        out.text
            .starts_with(&format!("replaced 1 occurrence in `{file}`")),
        "{}",
        out.text
    );
    assert!(out.text.contains("     2\tfn b() { 1 }"), "{}", out.text);

    let out = ok(
        &ws,
        "edit_file",
        json!({"path": file, "old_string": "fn a()", "new_string": "fn q()", "replace_all": true}),
    )
    .await;
    assert!(
        out.text.starts_with("replaced 2 occurrences"),
        "{}",
        out.text
    );
    let out = ok(&ws, "read_file", json!({"path": file})).await;
    assert_eq!(
        out.text,
        "     1\tfn q() {}\n     2\tfn b() { 1 }\n     3\tfn q() {}"
    );

    fails(
        &ws,
        "edit_file",
        json!({"path": format!("{dir}/missing.rs"), "old_string": "a", "new_string": "b"}),
        ToolErrorKind::Sandbox,
        "not found",
    )
    .await;
    ok(&ws, "delete", json!({"path": dir, "recursive": true})).await;
}

/// Depth limits, `.git` left unexpanded, glob filtering, and a file given as the directory.
pub async fn list_files_glob_and_depth(sandbox: Arc<dyn WorkspaceSandbox>) {
    let Some(ws) = file_workspace(sandbox) else {
        return;
    };
    let dir = unique_name("wt-list");
    for (path, content) in [
        ("a.rs", "a"),
        ("src/b.rs", "bb"),
        ("src/deep/c.rs", "ccc"),
        ("src/deep/d.txt", "dddd"),
        (".git/HEAD", "ref"),
    ] {
        ok(
            &ws,
            "write_file",
            json!({"path": format!("{dir}/{path}"), "content": content}),
        )
        .await;
    }
    let out = ok(&ws, "list_files", json!({"path": dir, "depth": 1})).await;
    assert_eq!(
        out.text,
        format!(
            "{dir}/\n  .git/  (not expanded)\n  a.rs  (1 bytes)\n  src/\n\
             2 directories, 1 files\n\
             directories 1 levels down are not expanded; raise `depth` to see inside"
        )
    );
    let out = ok(&ws, "list_files", json!({"path": dir})).await;
    assert!(
        out.text
            .contains("\n  src/\n    b.rs  (2 bytes)\n    deep/\n"),
        "{}",
        out.text
    );
    assert!(!out.text.contains("HEAD"), "{}", out.text);

    let out = ok(&ws, "list_files", json!({"path": dir, "glob": "**/*.rs"})).await;
    assert_eq!(
        out.text,
        format!(
            "files under {dir}/ matching the pattern:\na.rs  (1 bytes)\nsrc/b.rs  (2 bytes)\n\
             src/deep/c.rs  (3 bytes)\n3 files match `**/*.rs`"
        )
    );
    let out = ok(
        &ws,
        "list_files",
        json!({"path": dir, "glob": "src/*/*.{txt,md}"}),
    )
    .await;
    assert!(
        out.text
            .contains("\nsrc/deep/d.txt  (4 bytes)\n1 files match"),
        "{}",
        out.text
    );
    let out = ok(&ws, "list_files", json!({"path": dir, "glob": "*.md"})).await;
    assert!(
        out.text.ends_with(&format!(
            "no files under `{dir}` match `*.md` (searched 8 levels deep)"
        )),
        "{}",
        out.text
    );

    // The default is the working directory, where this check's directory lives.
    let out = ok(&ws, "list_files", json!({})).await;
    assert!(out.text.contains(&format!("\n  {dir}/\n")), "{}", out.text);
    fails(
        &ws,
        "list_files",
        json!({"path": format!("{dir}/a.rs")}),
        ToolErrorKind::Rejected,
        "is not a directory",
    )
    .await;
    fails(
        &ws,
        "list_files",
        json!({"path": format!("{dir}/nope")}),
        ToolErrorKind::Sandbox,
        "not found",
    )
    .await;
    ok(&ws, "delete", json!({"path": dir, "recursive": true})).await;
}

/// A path outside what the sandbox's file API may touch comes back as the sandbox's
/// `PermissionDenied`, as text. `outside` is such a path for the provider under test (for
/// `LocalSandbox`, anything escaping its root, e.g. `../x`).
pub async fn path_outside_root_is_denied(sandbox: Arc<dyn WorkspaceSandbox>, outside: &str) {
    let Some(ws) = file_workspace(sandbox) else {
        return;
    };
    for (tool, args) in [
        ("read_file", json!({"path": outside})),
        ("write_file", json!({"path": outside, "content": "x"})),
        (
            "edit_file",
            json!({"path": outside, "old_string": "a", "new_string": "b"}),
        ),
        ("list_files", json!({"path": outside})),
        ("delete", json!({"path": outside})),
        ("mkdir", json!({"path": outside})),
        ("file_stat", json!({"path": outside})),
    ] {
        let out = fails(&ws, tool, args, ToolErrorKind::Sandbox, "permission denied").await;
        assert!(out.text.contains("Stay inside"), "{}", out.text);
    }
}
