//! `get_process_output` and `kill_process`: following and stopping background processes.

use std::time::Duration;

use workspace_core::{
    OutputOffsets, ProcessId, ProcessManagerExt, ProcessOutput, ProcessState, WaitForOutput,
};

use super::Ctx;
use crate::ansi::clean_terminal_text;
use crate::args::{GetProcessOutputArgs, KillProcessArgs, PortUrlArgs};
use crate::output::{ToolError, ToolOutput};
use crate::report::{Report, Stream};

/// How long `wait_for` waits when the model gives no `wait_seconds`.
const DEFAULT_WAIT_FOR: Duration = Duration::from_secs(30);

fn process_id(id: &str) -> Result<ProcessId, ToolError> {
    if id.trim().is_empty() {
        return Err(ToolError::InvalidArguments(
            "argument `id` must not be empty".into(),
        ));
    }
    Ok(ProcessId(id.to_string()))
}

pub(crate) async fn get_output(
    ctx: &Ctx<'_>,
    args: GetProcessOutputArgs,
) -> Result<ToolOutput, ToolError> {
    let processes = ctx.processes()?;
    let id = process_id(&args.id)?;
    let since = args
        .since
        .map(|s| OutputOffsets {
            stdout: s.stdout,
            stderr: s.stderr,
        })
        .unwrap_or_default();
    let wait = Duration::from_secs(args.wait_seconds.unwrap_or(0));
    if wait > ctx.options.max_wait {
        return Err(ToolError::InvalidArguments(format!(
            "argument `wait_seconds` must be at most {}, got {}",
            ctx.options.max_wait.as_secs(),
            wait.as_secs()
        )));
    }

    if let Some(pattern) = &args.wait_for {
        let regex = regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                ToolError::InvalidArguments(format!(
                    "argument `wait_for` is not a valid regular expression: {e}"
                ))
            })?;
        let wait = if args.wait_seconds.is_some() {
            wait
        } else {
            DEFAULT_WAIT_FOR.min(ctx.options.max_wait)
        };
        let waiting = processes.wait_for_output(&id, since, &regex, wait);
        let seen = match &ctx.cancel {
            Some(token) => tokio::select! {
                r = waiting => r?,
                _ = token.cancelled() => WaitForOutput::new(false, processes.output(&id, since).await?),
            },
            None => waiting.await?,
        };
        let note = if seen.matched {
            format!("`wait_for` matched `{pattern}`")
        } else if matches!(seen.output.state, ProcessState::Exited(_)) {
            format!("`wait_for`: the process exited before its output matched `{pattern}`")
        } else {
            format!(
                "`wait_for`: no match for `{pattern}` within {}s; the process is still running",
                wait.as_secs()
            )
        };
        let mut out = render(ctx, &id, since, seen.output);
        out.text = format!("{note}\n{}", out.text);
        return Ok(out);
    }

    let output = if wait.is_zero() {
        processes.output(&id, since).await?
    } else {
        let waiting = processes.wait_for_change(&id, since, wait);
        match &ctx.cancel {
            Some(token) => tokio::select! {
                r = waiting => r?,
                _ = token.cancelled() => {}
            },
            None => waiting.await?,
        }
        processes.output(&id, since).await?
    };
    Ok(render(ctx, &id, since, output))
}

/// Hold back an incomplete UTF-8 character at the end of a running process's output: it is
/// still being written, and the next read (from the returned offset) gets it whole.
fn complete_utf8(bytes: &[u8], running: bool) -> (String, u64) {
    if running
        && let Err(e) = std::str::from_utf8(bytes)
        && e.error_len().is_none()
    {
        let valid = e.valid_up_to();
        let held = (bytes.len() - valid) as u64;
        return (String::from_utf8_lossy(&bytes[..valid]).into_owned(), held);
    }
    (String::from_utf8_lossy(bytes).into_owned(), 0)
}

fn render(
    ctx: &Ctx<'_>,
    id: &ProcessId,
    since: OutputOffsets,
    output: ProcessOutput,
) -> ToolOutput {
    let running = output.state == ProcessState::Running;
    let (stdout, held_out) = complete_utf8(&output.stdout, running);
    let (stderr, held_err) = complete_utf8(&output.stderr, running);
    let next = OutputOffsets {
        stdout: output.next.stdout.saturating_sub(held_out),
        stderr: output.next.stderr.saturating_sub(held_err),
    };

    let mut header = vec![match output.state {
        ProcessState::Running => format!("process {id}: running"),
        ProcessState::Exited(code) => format!("process {id}: exited, exit code: {code}"),
    }];
    for (name, missed) in [
        ("stdout", output.missed.stdout),
        ("stderr", output.missed.stderr),
    ] {
        if missed > 0 {
            header.push(format!(
                "note: {missed} bytes of {name} after the requested offset are no longer kept"
            ));
        }
    }
    let footer = vec![format!(
        "next: {{\"stdout\": {}, \"stderr\": {}}} (pass as `since` to get only newer output)",
        next.stdout, next.stderr
    )];
    let fresh = since == OutputOffsets::default();
    let rendered = Report {
        header,
        streams: vec![
            Stream {
                label: "stdout",
                text: clean_terminal_text(&stdout),
            },
            Stream {
                label: "stderr",
                text: clean_terminal_text(&stderr),
            },
        ],
        footer,
        empty_note: if fresh {
            "(no output yet)"
        } else {
            "(no new output)"
        },
    }
    .render(ctx.options.output_budget);

    let mut out = ToolOutput::ok(ctx.tool, rendered.text);
    out.exit_code = match output.state {
        ProcessState::Exited(code) => Some(code),
        ProcessState::Running => None,
    };
    out.truncated = rendered.trimmed || output.missed.stdout > 0 || output.missed.stderr > 0;
    out.process_id = Some(id.clone());
    out.next = Some(next);
    out
}

pub(crate) async fn kill(ctx: &Ctx<'_>, args: KillProcessArgs) -> Result<ToolOutput, ToolError> {
    let processes = ctx.processes()?;
    let id = process_id(&args.id)?;
    let before = processes.get(&id).await?;
    let (text, code) = if let ProcessState::Exited(code) = before.state {
        (
            format!("process {id} had already exited (exit code: {code}); nothing to kill"),
            code,
        )
    } else {
        match processes.kill(&id).await?.state {
            ProcessState::Exited(code) => {
                (format!("killed process {id} (exit code: {code})"), code)
            }
            ProcessState::Running => {
                return Err(ToolError::Rejected(format!(
                    "process {id} is still running after the kill; try again"
                )));
            }
        }
    };
    let mut out = ToolOutput::ok(ctx.tool, text);
    out.exit_code = Some(code);
    out.process_id = Some(id);
    Ok(out)
}

pub(crate) async fn port_url(ctx: &Ctx<'_>, args: PortUrlArgs) -> Result<ToolOutput, ToolError> {
    if args.port == 0 {
        return Err(ToolError::InvalidArguments(
            "argument `port` must be from 1 to 65535".into(),
        ));
    }
    let url = ctx.sandbox.port_url(args.port).await?;
    let mut text = format!(
        "port {} of the sandbox is reachable from outside at {}",
        url.port, url.url
    );
    // The header values are credentials: the application holds them, the model never sees them.
    if !url.headers.is_empty() {
        text.push_str(
            "\n(requests need an access header, which the application adds; the address alone \
             answers 401 or similar)",
        );
    }
    text.push_str("\ninside the sandbox, use http://localhost:");
    text.push_str(&url.port.to_string());
    Ok(ToolOutput::ok(ctx.tool, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_character_waits_for_the_next_read() {
        let bytes = "ok ✓".as_bytes();
        let (text, held) = complete_utf8(&bytes[..bytes.len() - 1], true);
        assert_eq!((text.as_str(), held), ("ok ", 2));
        // Once the process has exited nothing more is coming: show what there is.
        let (text, held) = complete_utf8(&bytes[..bytes.len() - 1], false);
        assert_eq!((text.as_str(), held), ("ok \u{fffd}", 0));
        // Invalid bytes in the middle are not held back.
        let (_, held) = complete_utf8(b"a\xffb", true);
        assert_eq!(held, 0);
    }
}
