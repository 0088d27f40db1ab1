//! `list_files`: a directory tree, or the files matching a glob.

use workspace_core::{DirEntry, FileKind};

use super::Ctx;
use super::files::describe_stat;
use crate::args::ListFilesArgs;
use crate::output::{ToolError, ToolOutput};
use workspace_core::search::GlobPattern;

/// Depth when the model gives none: the directory and one level below.
const DEFAULT_DEPTH: u32 = 2;
/// Depth with a glob, which usually means "find it wherever it is".
const DEFAULT_GLOB_DEPTH: u32 = 8;
/// Entries visited at most; past this the walk stops and says so.
const MAX_ENTRIES: usize = 5000;
/// Directories shown but never descended into: huge, and rarely what the model is after.
const NOT_DESCENDED: [&str; 2] = [".git", "node_modules"];

/// One directory being walked: its entries still to show (reversed, so `pop` takes the next).
struct Frame {
    remaining: Vec<DirEntry>,
    level: u32,
    dir: String,
    rel: String,
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

pub(crate) async fn list_files(
    ctx: &Ctx<'_>,
    args: ListFilesArgs,
) -> Result<ToolOutput, ToolError> {
    let fs = ctx.fs()?;
    let root = match args.path.as_deref() {
        None | Some("") => ".".to_string(),
        Some(p) => p.to_string(),
    };
    let glob = match &args.glob {
        Some(pattern) => Some(GlobPattern::new(pattern).map_err(|e| match e {
            workspace_core::SandboxError::InvalidArgument { reason, .. } => {
                ToolError::InvalidArguments(format!("argument `glob` is not valid: {reason}"))
            }
            other => ToolError::Sandbox(other),
        })?),
        None => None,
    };
    let depth = args.depth.unwrap_or(if glob.is_some() {
        DEFAULT_GLOB_DEPTH
    } else {
        DEFAULT_DEPTH
    });

    let stat = fs.stat(&root).await?;
    if !stat.is_dir() {
        return Err(ToolError::Rejected(format!(
            "`{root}` is not a directory ({})",
            describe_stat(&root, &stat)
        )));
    }

    let mut lines: Vec<String> = Vec::new();
    let (mut dirs, mut files, mut visited) = (0usize, 0usize, 0usize);
    let mut depth_limited = false;
    let mut stopped = false;
    let mut stack = vec![Frame {
        remaining: reversed(fs.list_dir(&root).await?),
        level: 1,
        dir: root.clone(),
        rel: String::new(),
    }];
    while let Some(frame) = stack.last_mut() {
        let Some(entry) = frame.remaining.pop() else {
            stack.pop();
            continue;
        };
        visited += 1;
        if visited > MAX_ENTRIES {
            stopped = true;
            break;
        }
        let level = frame.level;
        let indent = "  ".repeat(level as usize);
        let rel = format!("{}{}", frame.rel, entry.name);
        let path = join(&frame.dir, &entry.name);
        match entry.stat.kind {
            FileKind::Directory => {
                dirs += 1;
                let skip = NOT_DESCENDED.contains(&entry.name.as_str());
                if glob.is_none() {
                    let note = if skip { "  (not expanded)" } else { "" };
                    lines.push(format!("{indent}{}/{note}", entry.name));
                }
                if skip {
                    continue;
                }
                if level >= depth {
                    depth_limited = true;
                    continue;
                }
                match fs.list_dir(&path).await {
                    Ok(children) => stack.push(Frame {
                        remaining: reversed(children),
                        level: level + 1,
                        dir: path,
                        rel: format!("{rel}/"),
                    }),
                    Err(e) if glob.is_none() => {
                        lines.push(format!("{indent}  (could not list: {e})"));
                    }
                    Err(_) => {}
                }
            }
            kind => {
                files += 1;
                let shown = match kind {
                    FileKind::Symlink => "  (symlink)".to_string(),
                    FileKind::Other => "  (special file)".to_string(),
                    _ => format!("  ({} bytes)", entry.stat.size),
                };
                match &glob {
                    Some(g) if g.is_match(&rel) => lines.push(format!("{rel}{shown}")),
                    Some(_) => {}
                    None => lines.push(format!("{indent}{}{shown}", entry.name)),
                }
            }
        }
    }

    let mut footer = Vec::new();
    match (&args.glob, lines.len()) {
        (Some(pattern), 0) => footer.push(format!(
            "no files under `{root}` match `{pattern}` (searched {depth} levels deep)"
        )),
        (Some(pattern), n) => footer.push(format!("{n} files match `{pattern}`")),
        (None, _) => footer.push(format!("{dirs} directories, {files} files")),
    }
    if depth_limited {
        footer.push(format!(
            "directories {depth} levels down are not expanded; raise `depth` to see inside"
        ));
    }
    if stopped {
        footer.push(format!(
            "stopped after {MAX_ENTRIES} entries; narrow `path`, `depth` or `glob`"
        ));
    }

    let header = if glob.is_some() {
        format!("files under {root}/ matching the pattern:")
    } else {
        format!("{}/", root.trim_end_matches('/'))
    };
    let (body, shown) = fit_lines(
        &lines,
        ctx.options
            .output_budget
            .saturating_sub(header.len() + footer.iter().map(|f| f.len() + 1).sum::<usize>() + 100),
    );
    let mut text = header;
    text.push('\n');
    text.push_str(&body);
    if shown < lines.len() {
        text.push_str(&format!(
            "[... {} more entries not shown; narrow `path`, `depth` or `glob`]\n",
            lines.len() - shown
        ));
    }
    text.push_str(&footer.join("\n"));
    let mut out = ToolOutput::ok(ctx.tool, text);
    out.truncated = shown < lines.len() || stopped;
    Ok(out)
}

fn reversed(mut entries: Vec<DirEntry>) -> Vec<DirEntry> {
    entries.reverse();
    entries
}

/// As many whole lines as fit in `budget` bytes, and how many that is.
pub(crate) fn fit_lines(lines: &[String], budget: usize) -> (String, usize) {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if out.len() + line.len() + 1 > budget {
            return (out, i);
        }
        out.push_str(line);
        out.push('\n');
    }
    (out, lines.len())
}
