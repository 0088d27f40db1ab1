//! Checks of the tool catalogue and of `execute_command`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use workspace_core::{CancellationToken, WorkspaceSandbox};

use super::support::{CommandsOnly, fails, ok, unique_name};
use crate::{ToolErrorKind, ToolKind, Workspace, WorkspaceToolsOptions};

/// Every offered schema is a strict object schema (`type: object`, `additionalProperties:
/// false`, every property described, `required` naming real properties) with the right required
/// fields, and both provider shapes carry it.
pub async fn schemas_are_strict_objects(sandbox: Arc<dyn WorkspaceSandbox>) {
    let ws = Workspace::new(sandbox.clone());
    let expected_required = |k: ToolKind| -> Vec<&str> {
        match k {
            ToolKind::ExecuteCommand => vec!["command"],
            ToolKind::GetProcessOutput | ToolKind::KillProcess => vec!["id"],
            ToolKind::WriteFile => vec!["path", "content"],
            ToolKind::EditFile => vec!["path", "old_string", "new_string"],
            ToolKind::ListFiles => vec![],
            ToolKind::Grep | ToolKind::Glob => vec!["pattern"],
            ToolKind::MultiEdit => vec!["path", "edits"],
            ToolKind::PortUrl => vec!["port"],
            _ => vec!["path"],
        }
    };
    let mut names = std::collections::BTreeSet::new();
    for spec in ws.tools() {
        assert!(
            names.insert(spec.name.clone()),
            "duplicate tool {}",
            spec.name
        );
        assert!(
            !spec.description.is_empty(),
            "{} has no description",
            spec.name
        );
        check_object_schema(&spec.name, &spec.parameters);
        let mut required: Vec<&str> = spec.parameters["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        required.sort();
        let mut want = expected_required(spec.kind);
        want.sort();
        assert_eq!(required, want, "required fields of {}", spec.name);
        let openai = spec.openai();
        assert_eq!(openai["type"], "function");
        assert_eq!(openai["function"]["name"], spec.name.as_str());
        assert_eq!(openai["function"]["parameters"], spec.parameters);
        let anthropic = spec.anthropic();
        assert_eq!(anthropic["name"], spec.name.as_str());
        assert_eq!(anthropic["input_schema"], spec.parameters);
    }
    assert_eq!(ws.definitions_openai().len(), ws.tools().len());
    assert_eq!(ws.definitions_anthropic().len(), ws.tools().len());

    let has_processes = sandbox.processes().is_some();
    let exec = ws
        .tool("execute_command")
        .expect("execute_command is always offered");
    assert_eq!(
        exec.parameters["properties"].get("background").is_some(),
        has_processes,
        "`background` is offered exactly when the sandbox has processes"
    );
    if has_processes {
        let since =
            &ws.tool("get_process_output").expect("offered").parameters["properties"]["since"];
        check_object_schema("get_process_output.since", since);
    }
}

fn check_object_schema(name: &str, schema: &Value) {
    assert_eq!(schema["type"], "object", "{name}: {schema}");
    assert_eq!(
        schema["additionalProperties"], false,
        "{name} must reject unknown fields: {schema}"
    );
    let props = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{name} has no properties: {schema}"));
    for (prop, s) in props {
        let described = s["description"].as_str().is_some_and(|d| !d.is_empty());
        assert!(described, "{name}.{prop} has no description: {s}");
        assert!(s.get("type").is_some(), "{name}.{prop} has no type: {s}");
    }
    if let Some(required) = schema.get("required") {
        for r in required.as_array().expect("required is an array") {
            let r = r.as_str().expect("required names are strings");
            assert!(props.contains_key(r), "{name} requires unknown {r}");
        }
    }
}

/// The system prompt holds the sandbox's own instructions and every offered tool.
pub async fn instructions_list_the_tools(sandbox: Arc<dyn WorkspaceSandbox>) {
    let ws = Workspace::new(sandbox.clone());
    let text = ws.instructions();
    assert!(text.starts_with(&sandbox.get_instructions()), "{text}");
    for name in ws.tool_names() {
        assert!(
            text.contains(&format!("`{name}`")),
            "{name} missing from: {text}"
        );
    }
    assert!(text.contains("16384 bytes"), "{text}");
}

/// An unknown name lists the valid tools; a base name under a prefix gets a "did you mean".
pub async fn unknown_tool_lists_the_tools(sandbox: Arc<dyn WorkspaceSandbox>) {
    let ws = Workspace::new(sandbox.clone());
    let out = fails(
        &ws,
        "run_shell",
        json!({"command": "true"}),
        ToolErrorKind::UnknownTool,
        "there is no tool named `run_shell`",
    )
    .await;
    for name in ws.tool_names() {
        assert!(out.text.contains(&format!("`{name}`")), "{}", out.text);
    }

    let prefixed = Workspace::with_options(
        sandbox.clone(),
        WorkspaceToolsOptions::new().tool_prefix("sb_"),
    )
    .expect("valid options");
    assert!(prefixed.tool_names().iter().all(|n| n.starts_with("sb_")));
    fails(
        &prefixed,
        "execute_command",
        json!({"command": "true"}),
        ToolErrorKind::UnknownTool,
        "Did you mean `sb_execute_command`?",
    )
    .await;
    let out = ok(
        &prefixed,
        "sb_execute_command",
        json!({"command": "echo p"}),
    )
    .await;
    assert_eq!(out.text, "exit code: 0\np");

    let limited = Workspace::with_options(
        sandbox,
        WorkspaceToolsOptions::new().allowed_tools([ToolKind::ExecuteCommand]),
    )
    .expect("valid options");
    assert_eq!(limited.tool_names(), ["execute_command"]);
    fails(
        &limited,
        "read_file",
        json!({"path": "x"}),
        ToolErrorKind::UnknownTool,
        "`read_file` is not available",
    )
    .await;
}

/// Exit codes, streams, labels, `(no output)`, and working directories (relative and absolute).
pub async fn execute_command_basics(sandbox: Arc<dyn WorkspaceSandbox>) {
    let ws = Workspace::new(sandbox);
    let out = ok(&ws, "execute_command", json!({"command": "echo hi"})).await;
    assert_eq!(out.text, "exit code: 0\nhi");
    assert_eq!(out.exit_code, Some(0));
    assert!(!out.truncated && !out.timed_out);

    let out = ok(
        &ws,
        "execute_command",
        json!({"command": "echo out; echo err >&2; exit 3"}),
    )
    .await;
    assert_eq!(out.text, "exit code: 3\nstdout:\nout\nstderr:\nerr");
    assert_eq!(out.exit_code, Some(3));

    let out = ok(&ws, "execute_command", json!({"command": "true"})).await;
    assert_eq!(out.text, "exit code: 0\n(no output)");

    let out = ok(
        &ws,
        "execute_command",
        json!({"command": "no_such_cmd_xyz"}),
    )
    .await;
    assert_eq!(out.exit_code, Some(127), "{}", out.text);
    assert!(
        out.text.starts_with("exit code: 127\nstderr:\n"),
        "{}",
        out.text
    );

    // The arguments may come as the JSON text chat-completions APIs deliver.
    let out = ws
        .call("execute_command", r#"{"command": "echo from text"}"#)
        .await;
    assert_eq!(out.text, "exit code: 0\nfrom text");

    // Working directories: relative to the sandbox's, or absolute.
    let dir = unique_name("wt-cwd");
    ok(
        &ws,
        "execute_command",
        json!({"command": format!("mkdir -p {dir}/sub && echo x > {dir}/sub/f.txt")}),
    )
    .await;
    let out = ok(
        &ws,
        "execute_command",
        json!({"command": "ls", "cwd": format!("{dir}/sub")}),
    )
    .await;
    assert_eq!(out.text, "exit code: 0\nf.txt");
    let pwd = ok(&ws, "execute_command", json!({"command": "pwd"})).await;
    let pwd = pwd
        .text
        .lines()
        .nth(1)
        .expect("pwd printed a line")
        .to_string();
    let out = ok(
        &ws,
        "execute_command",
        json!({"command": "cat f.txt", "cwd": format!("{pwd}/{dir}/sub"), "timeout_seconds": 30}),
    )
    .await;
    assert_eq!(out.text, "exit code: 0\nx");
    // A missing relative directory fails the command the way a shell would, not the call.
    let out = ok(
        &ws,
        "execute_command",
        json!({"command": "echo never", "cwd": format!("{dir}/missing")}),
    )
    .await;
    assert_eq!(out.exit_code, Some(1), "{}", out.text);
    assert!(!out.text.contains("never"), "{}", out.text);
    ok(
        &ws,
        "execute_command",
        json!({"command": format!("rm -rf {dir}")}),
    )
    .await;
}

/// Missing, mistyped, unknown and out-of-range arguments, bad JSON and non-objects.
pub async fn execute_command_bad_arguments(sandbox: Arc<dyn WorkspaceSandbox>) {
    let ws = Workspace::new(sandbox);
    let bad = ToolErrorKind::InvalidArguments;
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "missing required argument `command` (a string)"),
        (
            json!({"command": 5}),
            "argument `command` must be a string, got integer 5",
        ),
        (
            json!({"command": "ls", "shell": "bash"}),
            "unknown argument `shell`; the valid arguments are",
        ),
        (
            json!({"command": "ls", "timeout_seconds": 0}),
            "argument `timeout_seconds` must be at least 1, got 0",
        ),
        (
            json!({"command": "ls", "timeout_seconds": "30"}),
            "argument `timeout_seconds` must be an integer",
        ),
        (
            json!({"command": "ls", "timeout_seconds": 999999}),
            "must be at most 3600",
        ),
        (
            json!({"command": "ls", "cwd": ""}),
            "argument `cwd` must not be empty",
        ),
        (
            json!({"command": "   "}),
            "argument `command` must not be empty",
        ),
        (
            json!(["ls"]),
            "the arguments must be a JSON object like {\"command\": \"…\"}",
        ),
    ];
    for (args, needle) in cases {
        fails(&ws, "execute_command", args, bad, needle).await;
    }
    for (text, needle) in [
        ("{not json", "the arguments are not valid JSON"),
        ("", "missing required argument `command`"),
    ] {
        let out = ws.call("execute_command", text).await;
        assert_eq!(out.error, Some(bad), "{}", out.text);
        assert!(out.text.contains(needle), "{}", out.text);
        assert!(out.text.contains("`execute_command`"), "{}", out.text);
    }
}

/// About 1 MB of output comes back within the budget, head and tail kept, with a marker giving
/// the exact number of bytes and lines cut.
pub async fn output_is_trimmed_to_budget(sandbox: Arc<dyn WorkspaceSandbox>) {
    let ws = Workspace::new(sandbox);
    let budget = ws.options().output_budget;
    let lines = 90_000;
    let expected: String = (0..lines).map(|i| format!("line {i}\n")).collect();
    assert!(expected.len() > 900_000 && expected.len() < 1024 * 1024);
    let out = ok(
        &ws,
        "execute_command",
        json!({"command": format!(
            "i=0; while [ $i -lt {lines} ]; do echo \"line $i\"; i=$((i+1)); done"
        )}),
    )
    .await;
    assert!(out.text.len() <= budget, "{} > {budget}", out.text.len());
    assert!(out.truncated);
    let body = out
        .text
        .strip_prefix("exit code: 0\n")
        .unwrap_or_else(|| panic!("unexpected header: {}", &out.text[..80]));
    let start = body.find("[... ").expect("a cut marker");
    let end = start + body[start..].find(" ...]\n").expect("marker end") + " ...]\n".len();
    let marker = &body[start..end];
    let (head, tail) = (&body[..start], &body[end..]);
    let numbers: Vec<usize> = marker
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("digits"))
        .collect();
    let [bytes, cut_lines] = numbers[..] else {
        panic!("marker should hold two numbers: {marker}");
    };
    assert!(
        marker.ends_with("lines) cut from the middle ...]\n"),
        "{marker}"
    );
    assert!(head.starts_with("line 0\nline 1\n"), "{head}");
    assert!(tail.ends_with(&format!("line {}", lines - 1)), "{tail}");
    // The last newline of the output is not repeated at the end of the answer.
    let whole = expected.trim_end_matches('\n');
    assert!(whole.starts_with(head) && whole.ends_with(tail));
    assert_eq!(
        head.len() + bytes + tail.len(),
        whole.len(),
        "byte count is exact"
    );
    let removed = &whole[head.len()..head.len() + bytes];
    assert_eq!(
        removed.matches('\n').count(),
        cut_lines,
        "line count is exact"
    );
    assert!(
        head.ends_with('\n') && removed.ends_with('\n'),
        "the cut falls between lines"
    );
}

/// When the sandbox itself keeps only part of a stream, the answer says how much it dropped.
pub async fn sandbox_output_cap_is_flagged(sandbox: Arc<dyn WorkspaceSandbox>) {
    let ws = Workspace::new(sandbox);
    let total: u64 = 2_000_000;
    let out = ok(
        &ws,
        "execute_command",
        json!({"command": format!("head -c {total} /dev/zero | tr '\\0' 'a'")}),
    )
    .await;
    assert!(out.truncated);
    assert!(out.text.len() <= ws.options().output_budget);
    let kept = workspace_core::command::DEFAULT_OUTPUT_LIMIT as u64;
    let note = format!(
        "note: stdout was longer than the sandbox keeps; it dropped {} bytes",
        total - kept
    );
    assert!(out.text.contains(&note), "{}", out.text);
}

/// Colours, titles and carriage-return progress are cleaned from the model's view.
pub async fn ansi_is_stripped(sandbox: Arc<dyn WorkspaceSandbox>) {
    let ws = Workspace::new(sandbox);
    let out = ok(
        &ws,
        "execute_command",
        json!({"command": r"printf '\033[1;31mred\033[0m \033]0;title\007plain\n10%%\r100%%\n'; printf '\033[33mwarn\033[0m\n' >&2"}),
    )
    .await;
    assert_eq!(
        out.text,
        "exit code: 0\nstdout:\nred plain\n100%\nstderr:\nwarn"
    );
}

/// A timeout and a cancel are results with their exit codes, flagged in the text.
pub async fn timeout_and_cancel_are_flagged(sandbox: Arc<dyn WorkspaceSandbox>) {
    let ws = Workspace::new(sandbox);
    let out = ok(
        &ws,
        "execute_command",
        json!({"command": "echo started; sleep 30", "timeout_seconds": 1}),
    )
    .await;
    assert!(out.timed_out);
    assert_eq!(out.exit_code, Some(workspace_core::EXIT_TIMEOUT));
    assert_eq!(
        out.text,
        "timed out after 1s: the command was killed (exit code: 124)\nstarted"
    );

    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let started = std::time::Instant::now();
    let out = ws
        .call_with_cancel("execute_command", json!({"command": "sleep 30"}), token)
        .await;
    assert!(!out.is_error, "{}", out.text);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(out.exit_code, Some(workspace_core::EXIT_KILLED));
    assert!(
        out.text
            .starts_with("cancelled: the command was killed (exit code: 137)"),
        "{}",
        out.text
    );
}

/// A sandbox with neither files nor processes gets `execute_command` alone, without
/// `background`.
pub async fn commands_only_sandbox_offers_execute_command(sandbox: Arc<dyn WorkspaceSandbox>) {
    let ws = Workspace::new(Arc::new(CommandsOnly::new(sandbox)));
    assert_eq!(ws.tool_names(), ["execute_command"]);
    assert_eq!(ws.definitions_openai().len(), 1);
    assert_eq!(ws.definitions_anthropic().len(), 1);
    let props = &ws.tools()[0].parameters["properties"];
    assert!(props.get("background").is_none(), "{props}");
    let out = ok(&ws, "execute_command", json!({"command": "echo only"})).await;
    assert_eq!(out.text, "exit code: 0\nonly");
    fails(
        &ws,
        "execute_command",
        json!({"command": "sleep 1", "background": true}),
        ToolErrorKind::InvalidArguments,
        "unknown argument `background`",
    )
    .await;
    for tool in ["read_file", "get_process_output"] {
        fails(
            &ws,
            tool,
            json!({}),
            ToolErrorKind::UnknownTool,
            &format!("`{tool}` is not available with this sandbox"),
        )
        .await;
    }
    let text = ws.instructions();
    assert!(!text.contains("read_file"), "{text}");
}
