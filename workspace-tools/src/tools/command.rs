//! `execute_command`: run a command to completion, or start it in the background.

use std::time::Duration;

use workspace_core::{CommandResult, ExecuteCommandOptions, SpawnOptions, shell_quote};

use super::Ctx;
use crate::ansi::clean_terminal_text;
use crate::args::ExecuteCommandBackgroundArgs;
use crate::catalog::{ToolKind, tool_name};
use crate::output::{ToolError, ToolOutput};
use crate::report::{Report, Stream};

/// Where a command runs: the sandbox default, an absolute directory the provider checks, or a
/// relative one the shell enters first.
enum Cwd {
    Default,
    Absolute(String),
    Relative(String),
}

fn cwd_of(cwd: Option<String>) -> Result<Cwd, ToolError> {
    match cwd {
        None => Ok(Cwd::Default),
        Some(c) if c.is_empty() => Err(ToolError::InvalidArguments(
            "argument `cwd` must not be empty; omit it to use the working directory".into(),
        )),
        Some(c) if c.starts_with('/') => Ok(Cwd::Absolute(c)),
        Some(c) => Ok(Cwd::Relative(c)),
    }
}

/// The command line to run. Providers take only absolute working directories; a model often
/// names one relative to where it is, so a relative `cwd` becomes a `cd` the shell does first,
/// failing the command (exit 1, with the shell's message) if the directory is not there.
fn command_line(command: &str, cwd: &Cwd) -> String {
    match cwd {
        Cwd::Relative(dir) => format!("cd -- {} || exit 1\n{command}", shell_quote(dir)),
        _ => command.to_string(),
    }
}

pub(crate) async fn execute(
    ctx: &Ctx<'_>,
    args: ExecuteCommandBackgroundArgs,
) -> Result<ToolOutput, ToolError> {
    if args.command.trim().is_empty() {
        return Err(ToolError::InvalidArguments(
            "argument `command` must not be empty".into(),
        ));
    }
    let cwd = cwd_of(args.cwd)?;
    let line = command_line(&args.command, &cwd);
    if args.background == Some(true) {
        return start_background(ctx, &args.command, &line, cwd).await;
    }

    let timeout = args
        .timeout_seconds
        .map(Duration::from_secs)
        .unwrap_or(ctx.options.command_timeout);
    let mut options = ExecuteCommandOptions::new().timeout(timeout);
    if let Cwd::Absolute(dir) = cwd {
        options = options.cwd(dir);
    }
    if let Some(token) = &ctx.cancel {
        options = options.cancel_token(token.clone());
    }
    let result = ctx.sandbox.execute_command(&line, &[], options).await?;
    Ok(render(ctx, &result, timeout))
}

/// The model's view of a finished command.
fn render(ctx: &Ctx<'_>, result: &CommandResult, timeout: Duration) -> ToolOutput {
    let mut header = Vec::new();
    if result.timed_out {
        header.push(format!(
            "timed out after {}s: the command was killed (exit code: {})",
            timeout.as_secs(),
            result.exit_code
        ));
    } else if result.killed {
        header.push(format!(
            "cancelled: the command was killed (exit code: {})",
            result.exit_code
        ));
    } else {
        header.push(format!("exit code: {}", result.exit_code));
    }
    let mut footer = Vec::new();
    for (name, dropped) in [
        ("stdout", result.stdout_dropped_bytes),
        ("stderr", result.stderr_dropped_bytes),
    ] {
        if dropped > 0 {
            footer.push(format!(
                "note: {name} was longer than the sandbox keeps; it dropped {dropped} bytes from \
                 the middle before this answer was made"
            ));
        }
    }
    let rendered = Report {
        header,
        streams: vec![
            Stream {
                label: "stdout",
                text: clean_terminal_text(&result.stdout),
            },
            Stream {
                label: "stderr",
                text: clean_terminal_text(&result.stderr),
            },
        ],
        footer,
        empty_note: "(no output)",
    }
    .render(ctx.options.output_budget);
    let mut out = ToolOutput::ok(ctx.tool, rendered.text);
    out.exit_code = Some(result.exit_code);
    out.timed_out = result.timed_out;
    out.truncated = rendered.trimmed || result.stdout_truncated || result.stderr_truncated;
    out
}

async fn start_background(
    ctx: &Ctx<'_>,
    command: &str,
    line: &str,
    cwd: Cwd,
) -> Result<ToolOutput, ToolError> {
    let processes = ctx.processes()?;
    let mut options = SpawnOptions::new();
    if let Cwd::Absolute(dir) = cwd {
        options = options.cwd(dir);
    }
    let info = processes.spawn(line, &[], options).await?;
    let text = format!(
        "started background process {id}: {command}\n\
         Read its output with `{get}` (id \"{id}\"), stop it with `{kill}`.",
        id = info.id,
        get = tool_name(ctx.options, ToolKind::GetProcessOutput),
        kill = tool_name(ctx.options, ToolKind::KillProcess),
    );
    let mut out = ToolOutput::ok(ctx.tool, text);
    out.process_id = Some(info.id);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_cwd_becomes_a_cd() {
        let line = command_line("ls", &Cwd::Relative("my dir".into()));
        assert_eq!(line, "cd -- 'my dir' || exit 1\nls");
        assert_eq!(command_line("ls", &Cwd::Absolute("/x".into())), "ls");
        assert!(matches!(
            cwd_of(Some(String::new())),
            Err(ToolError::InvalidArguments(_))
        ));
    }
}
