//! The file tools: `read_file`, `write_file`, `edit_file`, `delete`, `mkdir`, `file_stat`.

use workspace_core::{FileKind, FileStat, SandboxError};

use super::Ctx;
use crate::args::{
    DeleteArgs, EditFileArgs, FileStatArgs, MkdirArgs, MultiEditArgs, ReadFileArgs, WriteFileArgs,
};
use crate::catalog::{ToolKind, tool_name};
use crate::ledger::content_hash;
use crate::output::{ToolError, ToolOutput};
use crate::trim::floor_char_boundary;

/// Lines `read_file` shows when the model gives no `limit`.
pub(crate) const DEFAULT_READ_LIMIT: u64 = 2000;
/// Longest line `read_file` shows whole; longer ones are cut with a note (minified files and
/// data blobs would otherwise eat the budget in one line).
const MAX_LINE_BYTES: usize = 2000;
/// Largest file `read_file` and `edit_file` load: the file API reads whole files, and a model
/// wanting part of a huge one is better served by `sed -n` or `grep`.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Bytes kept free for the closing note of a cut `read_file` answer.
const NOTE_RESERVE: usize = 200;
/// Lines of context shown around an edit.
const EDIT_CONTEXT_LINES: usize = 3;
/// Most lines an edit snippet shows.
const EDIT_SNIPPET_LINES: usize = 30;

fn check_path(path: &str) -> Result<(), ToolError> {
    if path.is_empty() {
        return Err(ToolError::InvalidArguments(
            "argument `path` must not be empty".into(),
        ));
    }
    Ok(())
}

/// A text file as loaded for reading or editing.
struct Loaded {
    text: String,
    /// Invalid UTF-8 had to be replaced.
    lossy: bool,
    stat: FileStat,
    /// Of the bytes as read.
    hash: u64,
}

/// Load a text file for reading or editing, refusing directories, huge files and binary data.
async fn load_text(ctx: &Ctx<'_>, path: &str) -> Result<Loaded, ToolError> {
    let fs = ctx.fs()?;
    let stat = fs.stat(path).await?;
    if stat.is_dir() {
        return Err(ToolError::Rejected(format!(
            "`{path}` is a directory; use `{}` to see what is in it",
            tool_name(ctx.options, ToolKind::ListFiles)
        )));
    }
    if stat.size > MAX_FILE_BYTES {
        return Err(ToolError::Rejected(format!(
            "`{path}` is {} bytes, more than the {MAX_FILE_BYTES} bytes this tool loads; use \
             `{}` with `sed -n '100,200p'`, `grep -n` or `head` to read part of it",
            stat.size,
            tool_name(ctx.options, ToolKind::ExecuteCommand)
        )));
    }
    let bytes = fs.read_file(path).await?;
    if bytes.iter().take(8192).any(|b| *b == 0) {
        return Err(ToolError::Rejected(format!(
            "`{path}` looks binary ({} bytes, with NUL bytes); it is not shown. Use `{}` with \
             tools such as `file`, `xxd | head` or `strings` to inspect it",
            bytes.len(),
            tool_name(ctx.options, ToolKind::ExecuteCommand)
        )));
    }
    let hash = content_hash(&bytes);
    let (text, lossy) = match String::from_utf8(bytes) {
        Ok(text) => (text, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    };
    Ok(Loaded {
        text,
        lossy,
        stat,
        hash,
    })
}

/// The key the ledger and the locks use for `path`: the sandbox's own full path when the file
/// exists, the path as given when it does not (yet).
async fn file_key(ctx: &Ctx<'_>, path: &str) -> Result<String, ToolError> {
    match ctx.fs()?.stat(path).await {
        Ok(stat) => Ok(stat.path),
        Err(SandboxError::NotFound { .. }) => Ok(path.to_string()),
        Err(e) => Err(e.into()),
    }
}

/// Write `text` to `path` and remember it as seen: the model knows what it wrote.
async fn write_and_record(ctx: &Ctx<'_>, path: &str, text: &str) -> Result<(), ToolError> {
    let fs = ctx.fs()?;
    fs.write_file(path, text.as_bytes()).await?;
    // A failed stat only means the next change will ask for a read first.
    if let Ok(stat) = fs.stat(path).await {
        ctx.ledger.record(&stat, content_hash(text.as_bytes()));
    }
    Ok(())
}

pub(crate) async fn read_file(ctx: &Ctx<'_>, args: ReadFileArgs) -> Result<ToolOutput, ToolError> {
    check_path(&args.path)?;
    let Loaded {
        text,
        lossy,
        stat,
        hash,
    } = load_text(ctx, &args.path).await?;
    // Shown, even in part: the model has seen the file as it is now.
    ctx.ledger.record(&stat, hash);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let total = lines.len() as u64;
    let offset = args.offset.unwrap_or(1);
    let limit = args.limit.unwrap_or(DEFAULT_READ_LIMIT);
    if total == 0 {
        if offset > 1 {
            return Err(ToolError::Rejected(format!(
                "offset {offset} is past the end of `{}`, which is empty",
                args.path
            )));
        }
        return Ok(ToolOutput::ok(ctx.tool, "(empty file)".into()));
    }
    if offset > total {
        return Err(ToolError::Rejected(format!(
            "offset {offset} is past the end of `{}`, which has {total} lines; use an offset \
             from 1 to {total}",
            args.path
        )));
    }

    let budget = ctx.options.output_budget.saturating_sub(NOTE_RESERVE);
    let mut out = String::new();
    if lossy {
        out.push_str("(the file is not valid UTF-8: invalid bytes are shown as \u{fffd})\n");
    }
    let first = offset as usize - 1;
    let wanted_end = (first as u64).saturating_add(limit).min(total) as usize;
    let mut shown_end = first;
    let mut long_lines = false;
    for (i, line) in lines[first..wanted_end].iter().enumerate() {
        let number = first + i + 1;
        let body = line.strip_suffix('\n').unwrap_or(line);
        let body = body.strip_suffix('\r').unwrap_or(body);
        let rendered = if body.len() > MAX_LINE_BYTES {
            long_lines = true;
            let cut = floor_char_boundary(body, MAX_LINE_BYTES);
            format!(
                "{number:>6}\t{}… [line cut: {} more bytes]\n",
                &body[..cut],
                body.len() - cut
            )
        } else {
            format!("{number:>6}\t{body}\n")
        };
        if out.len() + rendered.len() > budget && shown_end > first {
            break;
        }
        out.push_str(&rendered);
        shown_end = first + i + 1;
    }
    let more = shown_end < total as usize;
    if more {
        out.push_str(&format!(
            "[showing lines {}-{} of {total}; to read on, call `{}` with offset={}]\n",
            first + 1,
            shown_end,
            ctx.tool,
            shown_end + 1
        ));
    }
    while out.ends_with('\n') {
        out.pop();
    }
    let mut output = ToolOutput::ok(ctx.tool, out);
    output.truncated = more || long_lines;
    Ok(output)
}

pub(crate) async fn write_file(
    ctx: &Ctx<'_>,
    args: WriteFileArgs,
) -> Result<ToolOutput, ToolError> {
    check_path(&args.path)?;
    let key = file_key(ctx, &args.path).await?;
    let _guard = ctx.ledger.lock_file(&key).await;
    match ctx.fs()?.stat(&args.path).await {
        Ok(stat) if stat.is_dir() => {
            return Err(ToolError::Rejected(format!(
                "`{}` is a directory; give the path of a file inside it",
                args.path
            )));
        }
        Ok(stat) if ctx.options.edit_safety => ctx.ledger.check(
            &args.path,
            &stat,
            None,
            &tool_name(ctx.options, ToolKind::ReadFile),
        )?,
        Ok(_) | Err(SandboxError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    write_and_record(ctx, &args.path, &args.content).await?;
    let lines = args.content.split_inclusive('\n').count();
    Ok(ToolOutput::ok(
        ctx.tool,
        format!(
            "wrote {} bytes ({lines} lines) to `{}`",
            args.content.len(),
            args.path
        ),
    ))
}

/// 1-based line number of byte `index` in `text`.
fn line_of(text: &str, index: usize) -> usize {
    text[..index].matches('\n').count() + 1
}

/// One replacement applied to `text`: the new text, how many occurrences and where the first
/// was. The errors say what the model should change.
fn apply_edit(
    ctx: &Ctx<'_>,
    path: &str,
    text: &str,
    old: &str,
    new: &str,
    replace_all: bool,
) -> Result<(String, usize, usize), ToolError> {
    if old.is_empty() {
        return Err(ToolError::InvalidArguments(format!(
            "argument `old_string` must not be empty; to create or replace a whole file use `{}`",
            tool_name(ctx.options, ToolKind::WriteFile)
        )));
    }
    if old == new {
        return Err(ToolError::Rejected(
            "`old_string` and `new_string` are the same, so there is nothing to change".into(),
        ));
    }
    let positions: Vec<usize> = text.match_indices(old).map(|(i, _)| i).collect();
    match positions.len() {
        0 => {
            return Err(ToolError::Rejected(format!(
                "`old_string` was not found in `{path}` (0 matches). It must match the file \
                 exactly, including whitespace and indentation and without line-number \
                 prefixes; read the file again and copy the text"
            )));
        }
        n if n > 1 && !replace_all => {
            let lines: Vec<String> = positions
                .iter()
                .take(10)
                .map(|&i| line_of(text, i).to_string())
                .collect();
            return Err(ToolError::Rejected(format!(
                "`old_string` matches {n} times in `{path}` (at lines {}{}); include more \
                 surrounding text to make it unique, or set `replace_all: true` to replace \
                 every one",
                lines.join(", "),
                if n > 10 { ", …" } else { "" }
            )));
        }
        _ => {}
    }
    let new_text = if replace_all {
        text.replace(old, new)
    } else {
        text.replacen(old, new, 1)
    };
    Ok((
        new_text,
        positions.len(),
        positions.first().copied().unwrap_or(0),
    ))
}

/// Lock the file, load it, check it against what the model saw, and refuse non-UTF-8 text.
async fn load_for_edit(
    ctx: &Ctx<'_>,
    path: &str,
) -> Result<(tokio::sync::OwnedMutexGuard<()>, Loaded), ToolError> {
    let key = file_key(ctx, path).await?;
    let guard = ctx.ledger.lock_file(&key).await;
    let loaded = load_text(ctx, path).await?;
    if ctx.options.edit_safety {
        ctx.ledger.check(
            path,
            &loaded.stat,
            Some(loaded.hash),
            &tool_name(ctx.options, ToolKind::ReadFile),
        )?;
    }
    if loaded.lossy {
        return Err(ToolError::Rejected(format!(
            "`{path}` is not valid UTF-8 text, and editing it would corrupt the invalid bytes; use \
             `{}` (e.g. with sed) instead",
            tool_name(ctx.options, ToolKind::ExecuteCommand)
        )));
    }
    Ok((guard, loaded))
}

pub(crate) async fn edit_file(ctx: &Ctx<'_>, args: EditFileArgs) -> Result<ToolOutput, ToolError> {
    check_path(&args.path)?;
    // The arguments alone can be wrong: say so before touching the file.
    if args.old_string.is_empty() || args.old_string == args.new_string {
        apply_edit(
            ctx,
            &args.path,
            "",
            &args.old_string,
            &args.new_string,
            false,
        )?;
    }
    let (_guard, loaded) = load_for_edit(ctx, &args.path).await?;
    let (new_text, count, first) = apply_edit(
        ctx,
        &args.path,
        &loaded.text,
        &args.old_string,
        &args.new_string,
        args.replace_all == Some(true),
    )?;
    write_and_record(ctx, &args.path, &new_text).await?;

    let snippet = snippet_around(&new_text, first, args.new_string.len());
    let mut msg = format!(
        "replaced {count} occurrence{} in `{}`",
        if count == 1 { "" } else { "s" },
        args.path
    );
    if count > 1 {
        msg.push_str("; the first one now reads:\n");
    } else {
        msg.push_str("; it now reads:\n");
    }
    msg.push_str(&snippet);
    Ok(ToolOutput::ok(ctx.tool, msg))
}

pub(crate) async fn multi_edit(
    ctx: &Ctx<'_>,
    args: MultiEditArgs,
) -> Result<ToolOutput, ToolError> {
    check_path(&args.path)?;
    if args.edits.is_empty() {
        return Err(ToolError::InvalidArguments(
            "argument `edits` must hold at least one edit".into(),
        ));
    }
    let (_guard, loaded) = load_for_edit(ctx, &args.path).await?;
    let total = args.edits.len();
    let mut text = loaded.text;
    let mut counts = Vec::with_capacity(total);
    for (i, edit) in args.edits.iter().enumerate() {
        let (next, count, _) = apply_edit(
            ctx,
            &args.path,
            &text,
            &edit.old_string,
            &edit.new_string,
            edit.replace_all == Some(true),
        )
        .map_err(|e| {
            e.prefixed(&format!(
                "edit {} of {total} failed, so none was applied: ",
                i + 1
            ))
        })?;
        text = next;
        counts.push(count);
    }
    // Only now, with every edit applied in memory, is the file written: all or nothing.
    write_and_record(ctx, &args.path, &text).await?;
    let replaced: usize = counts.iter().sum();
    Ok(ToolOutput::ok(
        ctx.tool,
        format!(
            "applied {total} edit{} to `{}` ({replaced} replacement{}); the file is now {} lines",
            if total == 1 { "" } else { "s" },
            args.path,
            if replaced == 1 { "" } else { "s" },
            text.split_inclusive('\n').count()
        ),
    ))
}

/// The lines covering `len` bytes at `start` of `text`, with a few lines of context, numbered
/// like `read_file` shows them.
fn snippet_around(text: &str, start: usize, len: usize) -> String {
    let first_line = line_of(text, start);
    let last_line = line_of(text, (start + len).min(text.len()));
    let from = first_line.saturating_sub(EDIT_CONTEXT_LINES).max(1);
    let to = (last_line + EDIT_CONTEXT_LINES).min(from + EDIT_SNIPPET_LINES - 1);
    let mut out = String::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let n = i + 1;
        if n < from {
            continue;
        }
        if n > to {
            break;
        }
        let body = line.strip_suffix('\n').unwrap_or(line);
        let cut = floor_char_boundary(body, MAX_LINE_BYTES);
        out.push_str(&format!("{n:>6}\t{}\n", &body[..cut]));
    }
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

pub(crate) async fn delete(ctx: &Ctx<'_>, args: DeleteArgs) -> Result<ToolOutput, ToolError> {
    check_path(&args.path)?;
    let recursive = args.recursive == Some(true);
    let key = file_key(ctx, &args.path).await?;
    ctx.fs()?.remove(&args.path, recursive).await?;
    // A file made again under this name is new to the model.
    ctx.ledger.forget(&key);
    Ok(ToolOutput::ok(ctx.tool, format!("deleted `{}`", args.path)))
}

pub(crate) async fn mkdir(ctx: &Ctx<'_>, args: MkdirArgs) -> Result<ToolOutput, ToolError> {
    check_path(&args.path)?;
    ctx.fs()?.create_dir(&args.path).await?;
    Ok(ToolOutput::ok(
        ctx.tool,
        format!("created directory `{}` (or it already existed)", args.path),
    ))
}

pub(crate) async fn file_stat(ctx: &Ctx<'_>, args: FileStatArgs) -> Result<ToolOutput, ToolError> {
    check_path(&args.path)?;
    let stat = ctx.fs()?.stat(&args.path).await?;
    Ok(ToolOutput::ok(ctx.tool, describe_stat(&args.path, &stat)))
}

/// `src/main.rs: file, 1234 bytes, mode 0644, modified 2024-05-01T12:00:00Z`.
pub(crate) fn describe_stat(path: &str, stat: &FileStat) -> String {
    let kind = match stat.kind {
        FileKind::File => "file",
        FileKind::Directory => "directory",
        FileKind::Symlink => "symbolic link",
        FileKind::Other => "special file",
    };
    let mut s = format!("{path}: {kind}, {} bytes", stat.size);
    if let Some(mode) = stat.mode {
        s.push_str(&format!(", mode {:04o}", mode & 0o7777));
    }
    if let Some(modified) = stat.modified {
        s.push_str(&format!(
            ", modified {}",
            modified.format("%Y-%m-%dT%H:%M:%SZ")
        ));
    }
    if stat.path != path {
        s.push_str(&format!(" (full path: {})", stat.path));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_number_lines_like_read_file() {
        let text = (1..=20).map(|i| format!("l{i}\n")).collect::<String>();
        let at = text.find("l10").expect("present");
        let s = snippet_around(&text, at, 3);
        assert_eq!(s.lines().next(), Some("     7\tl7"));
        assert_eq!(s.lines().last(), Some("    13\tl13"));
        assert_eq!(line_of(&text, 0), 1);
    }
}
