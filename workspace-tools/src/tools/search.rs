//! `grep` and `glob`: the sandbox's own search ([`workspace_core::SandboxFilesystem::grep`],
//! [`workspace_core::SandboxFilesystem::glob`]) rendered for the model, with a cap and a note
//! saying how much more there is.

use workspace_core::search::{GlobRequest, GlobSort, GrepRequest};

use super::Ctx;
use super::listing::fit_lines;
use crate::args::{GlobArgs, GlobSortArg, GrepArgs, GrepOutputMode};
use crate::output::{ToolError, ToolOutput};

/// Entries `grep` shows when the model gives no `head_limit`.
const DEFAULT_GREP_LIMIT: usize = 100;
/// Paths `glob` shows when the model gives no `head_limit`.
const DEFAULT_GLOB_LIMIT: usize = 200;
/// Bytes kept free for the closing notes.
const NOTE_RESERVE: usize = 300;

fn search_path(path: Option<String>) -> String {
    match path {
        None => ".".into(),
        Some(p) if p.is_empty() => ".".into(),
        Some(p) => p,
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub(crate) async fn grep(ctx: &Ctx<'_>, args: GrepArgs) -> Result<ToolOutput, ToolError> {
    let fs = ctx.fs()?;
    let mode = args.output_mode.unwrap_or_default();
    let limit = args
        .head_limit
        .map(|n| n as usize)
        .unwrap_or(DEFAULT_GREP_LIMIT);
    if args.context.is_some_and(|c| c > 0) && mode != GrepOutputMode::Content {
        return Err(ToolError::InvalidArguments(
            "argument `context` only applies with `output_mode: \"content\"`".into(),
        ));
    }
    let mut request = GrepRequest::new(args.pattern.clone())
        .path(search_path(args.path))
        .fixed_strings(args.fixed_strings == Some(true))
        .case_insensitive(args.case_insensitive == Some(true))
        .gitignore(args.include_ignored != Some(true))
        .context(args.context.unwrap_or(0))
        // Lines are only needed to show them; counts stay exact either way.
        .max_lines(if mode == GrepOutputMode::Content {
            limit
        } else {
            0
        });
    request.include = args.include.unwrap_or_default();
    request.exclude = args.exclude.unwrap_or_default();
    let result = fs.grep(&request).await?;

    let files = result.files.len() as u64;
    let total = result.total_matches();
    if files == 0 {
        return Ok(ToolOutput::ok(
            ctx.tool,
            format!(
                "no matches for `{}` under `{}`{}",
                args.pattern,
                request.path,
                if request.gitignore {
                    " (files excluded by .gitignore were not searched; set `include_ignored: true` to search them)"
                } else {
                    ""
                }
            ),
        ));
    }
    let mut lines: Vec<String> = Vec::new();
    let more = match mode {
        GrepOutputMode::FilesWithMatches | GrepOutputMode::Count => {
            for f in result.files.iter().take(limit) {
                lines.push(match mode {
                    GrepOutputMode::Count => format!("{}:{}", f.path, f.matches),
                    _ => format!("{} ({})", f.path, plural(f.matches, "match", "matches")),
                });
            }
            files.saturating_sub(limit as u64)
        }
        GrepOutputMode::Content => {
            for f in &result.files {
                let mut last = None;
                for l in &f.lines {
                    if request.context > 0 && last.is_some_and(|n: u64| l.number > n + 1) {
                        lines.push("--".into());
                    }
                    let sep = if l.is_match { ':' } else { '-' };
                    lines.push(format!("{}{sep}{}{sep}{}", f.path, l.number, l.text));
                    last = Some(l.number);
                }
            }
            result.matches_omitted
        }
    };
    let header = format!(
        "{} in {} for `{}` under `{}`:",
        plural(total, "matching line", "matching lines"),
        plural(files, "file", "files"),
        args.pattern,
        request.path
    );
    let budget = ctx
        .options
        .output_budget
        .saturating_sub(header.len() + NOTE_RESERVE);
    let (body, shown) = fit_lines(&lines, budget);
    let mut text = format!("{header}\n{body}");
    let unshown = (lines.len() - shown) as u64;
    let what = if mode == GrepOutputMode::Content {
        "matching lines"
    } else {
        "files"
    };
    if more + unshown > 0 {
        text.push_str(&format!(
            "[... {} more {what} not shown; narrow `pattern`, `path` or `include`, or raise \
             `head_limit`]\n",
            more + unshown
        ));
    }
    if result.incomplete {
        text.push_str(
            "[the search output reached the sandbox's size limit: counts are at least these]\n",
        );
    }
    while text.ends_with('\n') {
        text.pop();
    }
    let mut out = ToolOutput::ok(ctx.tool, text);
    out.truncated = more + unshown > 0 || result.incomplete;
    Ok(out)
}

pub(crate) async fn glob(ctx: &Ctx<'_>, args: GlobArgs) -> Result<ToolOutput, ToolError> {
    let fs = ctx.fs()?;
    let limit = args
        .head_limit
        .map(|n| n as usize)
        .unwrap_or(DEFAULT_GLOB_LIMIT);
    let request = GlobRequest::new(args.pattern.clone())
        .path(search_path(args.path))
        .gitignore(args.include_ignored != Some(true))
        .sort(match args.sort.unwrap_or_default() {
            GlobSortArg::Path => GlobSort::Path,
            GlobSortArg::Newest => GlobSort::Newest,
        })
        .max_results(limit);
    let result = fs.glob(&request).await?;
    if result.total == 0 {
        return Ok(ToolOutput::ok(
            ctx.tool,
            format!(
                "no files under `{}` match `{}`{}",
                request.path,
                args.pattern,
                if args.pattern.contains('/') || args.pattern.starts_with("**") {
                    ""
                } else {
                    " (without `/` or `**` only the top level is matched; try `**/` before it)"
                }
            ),
        ));
    }
    let lines: Vec<String> = result.entries.iter().map(|e| e.path.clone()).collect();
    let header = format!(
        "{} under `{}` match `{}`{}:",
        plural(result.total, "file", "files"),
        request.path,
        args.pattern,
        if request.sort == GlobSort::Newest {
            ", newest first"
        } else {
            ""
        }
    );
    let budget = ctx
        .options
        .output_budget
        .saturating_sub(header.len() + NOTE_RESERVE);
    let (body, shown) = fit_lines(&lines, budget);
    let more = result.total - shown as u64;
    let mut text = format!("{header}\n{body}");
    if more > 0 {
        text.push_str(&format!(
            "[... {more} more files not shown; narrow `pattern` or `path`, or raise `head_limit`]"
        ));
    }
    while text.ends_with('\n') {
        text.pop();
    }
    let mut out = ToolOutput::ok(ctx.tool, text);
    out.truncated = more > 0;
    Ok(out)
}
