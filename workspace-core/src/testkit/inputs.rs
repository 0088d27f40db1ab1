//! What goes into a command: arguments, environment, working directory, stdin, and the input
//! the provider must refuse. Also how undecodable output comes back.

use std::time::{Duration, Instant};

use super::cksum::posix_cksum;
use super::probe::{
    assert_success, exec_with, expect_invalid, opts, sh, sh_ok, split_records, working_dir,
};
use super::random::{pseudo_random_bytes, random_seed, unique_suffix};
use crate::command::ExecuteCommandOptions;
use crate::error::SandboxError;
use crate::sandbox::WorkspaceSandbox;
use crate::shell_quote;

/// Prints each argument followed by the ASCII record separator, so arguments containing
/// newlines, spaces or nothing at all can be told apart.
const PRINT_ARGS: &str = r"printf '%s\036'";

/// Arguments reach the program exactly, whatever they contain.
pub async fn args_arrive_exact(sandbox: &dyn WorkspaceSandbox) {
    let long = "x".repeat(8192);
    let args = [
        "plain",
        "",
        "two words",
        "  leading and trailing  ",
        "it's",
        "'",
        "''",
        "\"double\"",
        "mixed 'single' and \"double\"",
        "line1\nline2",
        "trailing newline\n",
        "tab\there",
        "$HOME",
        "${HOME}",
        "$(id)",
        "`id`",
        "*",
        "?",
        "[a-z]",
        "~",
        "a;b|c&d",
        "<in >out 2>&1",
        "\\back\\slash\\",
        "%s%d%%",
        "!bang",
        "#not a comment",
        "{a,b}",
        "-n",
        "--",
        "-e",
        "ünïcødé ✓ 日本語 🦀",
        long.as_str(),
    ];
    let r = exec_with(sandbox, PRINT_ARGS, &args, opts()).await;
    assert_success("printf with tricky args", &r);
    let got = split_records(&r.stdout);
    assert_eq!(got.len(), args.len(), "argument count changed: {got:?}");
    for (i, (got, want)) in got.iter().zip(args.iter()).enumerate() {
        assert_eq!(got, want, "args[{i}] arrived changed");
    }

    // A leading `-` right after the command must not turn into an option of the shell.
    let r = exec_with(sandbox, "printf '%s|'", &["-x", "-", "-c"], opts()).await;
    assert_eq!(r.stdout, "-x|-|-c|");
}

/// Per-command environment variables are visible to that command only, values exact.
pub async fn env_vars(sandbox: &dyn WorkspaceSandbox) {
    let vars = [
        ("WS_PLAIN", "hello"),
        ("WS_SPACES", "a b  c "),
        ("WS_QUOTES", "it's \"quoted\""),
        ("WS_NEWLINES", "line1\nline2\n"),
        ("WS_SHELLY", "$HOME `id` $(id) * ; | &"),
        ("WS_UNICODE", "ünïcødé ✓ 🦀"),
        ("WS_EQUALS", "a=b=c"),
        ("WS_EMPTY", ""),
        ("_ws_lower_1", "underscore and lowercase"),
    ];
    let mut command = String::from(PRINT_ARGS);
    for (k, _) in &vars {
        command.push_str(&format!(" \"${k}\""));
    }
    command.push_str(" \"${WS_EMPTY+set}\"");
    let options = vars.iter().fold(opts(), |o, (k, v)| o.env(*k, *v));
    let r = exec_with(sandbox, &command, &[], options).await;
    assert_success(&command, &r);
    let got = split_records(&r.stdout);
    assert_eq!(got.len(), vars.len() + 1, "{got:?}");
    for ((k, want), got) in vars.iter().zip(&got) {
        assert_eq!(got, want, "env {k} arrived changed");
    }
    assert_eq!(
        got[vars.len()],
        "set",
        "an empty variable must still be set"
    );

    let r = sh_ok(sandbox, r#"printf '%s' "${WS_PLAIN-unset}""#).await;
    assert_eq!(r.stdout, "unset", "env must not leak into the next command");
}

/// `cwd` runs the command in that directory; a missing or relative one is refused.
pub async fn working_directory(sandbox: &dyn WorkspaceSandbox) {
    let wd = working_dir(sandbox).await;
    let dir = format!("{wd}/ct-cwd-{}/dir with space ü", unique_suffix());
    let r = exec_with(sandbox, "mkdir -p", &[&dir], opts()).await;
    assert_success("mkdir -p", &r);

    let r = exec_with(sandbox, "pwd", &[], opts().cwd(&dir)).await;
    assert_success("pwd in cwd", &r);
    let got = r.stdout.trim_end_matches('\n');
    if got != dir {
        // Allow a provider whose working directory sits behind a symlink: compare physical paths.
        let physical = exec_with(
            sandbox,
            r#"cd "$WS_DIR" && pwd -P"#,
            &[],
            opts().env("WS_DIR", &dir),
        )
        .await;
        assert_eq!(
            got,
            physical.stdout.trim_end_matches('\n'),
            "pwd inside cwd {dir:?}"
        );
    }

    let r = exec_with(sandbox, "printf here > rel.txt", &[], opts().cwd(&dir)).await;
    assert_success("write a relative file in cwd", &r);
    let r = exec_with(sandbox, "cat", &[&format!("{dir}/rel.txt")], opts()).await;
    assert_eq!(
        r.stdout, "here",
        "a relative path inside cwd should land in cwd"
    );

    let missing = format!("{wd}/ct-missing-{}", unique_suffix());
    match sandbox
        .execute_command("pwd", &[], opts().cwd(&missing))
        .await
    {
        Err(SandboxError::InvalidArgument { .. } | SandboxError::NotFound { .. }) => {}
        other => panic!("a missing cwd must be InvalidArgument or NotFound, got {other:?}"),
    }
    expect_invalid(
        "relative cwd",
        sandbox
            .execute_command("pwd", &[], opts().cwd("relative/dir"))
            .await,
        "cwd",
    );
}

/// Input no process can receive, or options out of range, are `InvalidArgument` naming the
/// field — never a panic, never a half-run command.
pub async fn bad_input(sandbox: &dyn WorkspaceSandbox) {
    let run = |command: &'static str, args: Vec<String>, options: ExecuteCommandOptions| async move {
        tokio::time::timeout(
            Duration::from_secs(60),
            sandbox.execute_command(command, &args, options),
        )
        .await
        .unwrap_or_else(|_| panic!("rejecting bad input to {command:?} should not hang"))
    };
    expect_invalid("empty command", run("", vec![], opts()).await, "command");
    expect_invalid(
        "blank command",
        run(" \t\n", vec![], opts()).await,
        "command",
    );
    expect_invalid(
        "NUL in command",
        run("echo a\0b", vec![], opts()).await,
        "command",
    );
    expect_invalid(
        "NUL in an argument",
        run("echo", vec!["fine".into(), "bad\0arg".into()], opts()).await,
        "args[1]",
    );
    expect_invalid(
        "NUL in an env value",
        run("true", vec![], opts().env("WS_OK", "bad\0value")).await,
        "env.WS_OK",
    );
    for name in ["1BAD", "A-B", "A=B", "", "A B", "ü"] {
        let r = run("true", vec![], opts().env(name, "v")).await;
        expect_invalid(&format!("env name {name:?}"), r, "env");
    }
    expect_invalid(
        "zero timeout",
        run("true", vec![], opts().timeout(Duration::ZERO)).await,
        "timeout",
    );
    expect_invalid(
        "a ten-year timeout",
        run(
            "true",
            vec![],
            opts().timeout(Duration::from_secs(10 * 365 * 24 * 3600)),
        )
        .await,
        "timeout",
    );
    expect_invalid(
        "zero output limit",
        run("true", vec![], opts().output_limit(0)).await,
        "output_limit",
    );
    expect_invalid(
        "empty cwd",
        run("true", vec![], opts().cwd("")).await,
        "cwd",
    );
    expect_invalid(
        "NUL in cwd",
        run("true", vec![], opts().cwd("/tmp/a\0b")).await,
        "cwd",
    );

    // The refusals left the sandbox usable.
    let r = sh_ok(sandbox, "echo still fine").await;
    assert_eq!(r.stdout, "still fine\n");
}

/// Output that is not UTF-8 comes back lossily decoded (U+FFFD), not as an error; valid
/// multi-byte text is untouched.
pub async fn non_utf8_output(sandbox: &dyn WorkspaceSandbox) {
    let r = sh(sandbox, r"printf '\377\376ok'").await;
    assert_success("printf invalid UTF-8", &r);
    let prefix = r
        .stdout
        .strip_suffix("ok")
        .unwrap_or_else(|| panic!("stdout should end with `ok`: {:?}", r.stdout));
    assert!(
        !prefix.is_empty() && prefix.chars().all(|c| c == '\u{FFFD}'),
        "invalid bytes should become U+FFFD, got {:?}",
        r.stdout
    );

    let r = sh(sandbox, r"printf 'a\377b' >&2").await;
    assert_eq!(r.stderr, "a\u{FFFD}b", "stderr is decoded the same way");

    let text = "ünïcødé ✓ 日本語 🦀\n";
    let r = exec_with(sandbox, "printf '%s\\n'", &[text.trim_end()], opts()).await;
    assert_eq!(r.stdout, text, "valid UTF-8 must pass untouched");
}

/// Without stdin options a command reading stdin sees end-of-file at once.
pub async fn stdin_closed_by_default(sandbox: &dyn WorkspaceSandbox) {
    sh_ok(sandbox, "true").await;
    let started = Instant::now();
    let r = exec_with(sandbox, "cat", &[], opts().timeout(Duration::from_secs(20))).await;
    let elapsed = started.elapsed();
    assert!(!r.timed_out, "`cat` waited for stdin: it should be closed");
    assert_success("cat", &r);
    assert_eq!(r.stdout, "");
    assert!(elapsed < Duration::from_secs(10), "`cat` took {elapsed:?}");

    let r = sh(sandbox, r#"read line; echo "rc=$? line=[$line]""#).await;
    assert_eq!(r.stdout, "rc=1 line=[]\n", "`read` should hit end-of-file");
}

/// Bytes given as stdin arrive exactly, text and binary, more than a pipe buffer's worth.
pub async fn stdin_bytes(sandbox: &dyn WorkspaceSandbox) {
    let text = "line one\nline 'two' \"quoted\"\n\n  ünïcødé ✓\nno newline at the end";
    let r = exec_with(sandbox, "cat", &[], opts().stdin(text)).await;
    assert_success("cat with stdin", &r);
    assert_eq!(r.stdout, text);

    let seed = random_seed();
    let data = pseudo_random_bytes(300_001, seed);
    let r = exec_with(sandbox, "wc -c", &[], opts().stdin(data.clone())).await;
    assert_success("wc -c with stdin", &r);
    assert_eq!(
        r.stdout.trim(),
        data.len().to_string(),
        "byte count (seed {seed})"
    );

    let r = exec_with(sandbox, "cksum", &[], opts().stdin(data.clone())).await;
    assert_success("cksum with stdin", &r);
    let fields: Vec<&str> = r.stdout.split_whitespace().collect();
    assert_eq!(
        fields,
        [posix_cksum(&data).to_string(), data.len().to_string()],
        "binary stdin arrived changed (seed {seed})"
    );

    let r = exec_with(sandbox, "cat", &[], opts().stdin(Vec::new())).await;
    assert_success("cat with empty stdin", &r);
    assert_eq!(r.stdout, "");

    let quoted = shell_quote("stdin and args together");
    let r = exec_with(
        sandbox,
        &format!("printf '%s:' {quoted}; cat"),
        &[],
        opts().stdin("piped"),
    )
    .await;
    assert_eq!(r.stdout, "stdin and args together:piped");
}
