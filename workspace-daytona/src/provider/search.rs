//! `grep` and `glob` on a Daytona sandbox, keeping file contents inside it.
//!
//! Names come from the toolbox's `GET /files/search` (one request for every path under the
//! root, filtered here by the shared rules of [`workspace_core::search`], `.gitignore` files
//! downloaded and applied here). Contents are searched in the sandbox:
//! - a case-sensitive literal without context goes to the toolbox's `GET /files/find`, which
//!   answers with the matching lines only;
//! - anything else (a regex, ignoring case, context lines) runs `grep` over the chosen files in
//!   one command (`-P`, Perl syntax, close to Rust's `regex`, where the sandbox's grep has it;
//!   else `-E`), and its output is parsed here.
//!
//! `glob` sorted by path is `/files/search` alone; newest-first adds one `find -printf` command
//! for the modification times.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use workspace_core::search::{
    GlobEntry, GlobPattern, GlobRequest, GlobResult, GlobSort, GrepFile, GrepLine, GrepRequest,
    GrepResult, PathFilter,
};
use workspace_core::{ExecuteCommandOptions, Result, SandboxError, shell_quote};

use super::command;
use super::shared::{self, Shared, file_error};

/// How many `.gitignore` files are downloaded at once.
const GITIGNORE_FETCHES: usize = 8;
/// Bytes of `grep` output read back at most; past it the result is marked incomplete.
const GREP_OUTPUT_LIMIT: usize = 16 * 1024 * 1024;
/// What separates a path from the rest in command output: the unit separator, because NUL
/// bytes do not survive Daytona's command logs and no real file name holds this byte.
const FIELD_SEP: char = '\x1f';
/// How long the search command may run.
const SEARCH_TIMEOUT: Duration = Duration::from_secs(300);

/// The searched root: its absolute path and whether it is a directory.
struct Root {
    path: String,
    is_dir: bool,
}

async fn root(shared: &Arc<Shared>, path: &str) -> Result<Root> {
    shared
        .with_retry(|attached| async move {
            let abs = shared.absolute(&attached, path).await?;
            let info = attached
                .sandbox
                .fs()
                .get_file_info(&abs)
                .await
                .map_err(|e| file_error(e, &abs))?;
            Ok(Root {
                path: abs.trim_end_matches('/').to_string(),
                is_dir: info.is_dir,
            })
        })
        .await
}

/// The name pattern to give the toolbox search for a glob: the daemon matches each entry's own
/// *name* (Go's `filepath.Match`, at any depth; a pattern with `/` matches nothing), so the
/// glob's last segment when Go reads it as the glob does, else every name (`*`). The caller
/// filters the paths with the whole glob.
fn name_pattern(glob: &str) -> &str {
    let last = glob.rsplit('/').next().unwrap_or(glob);
    let go_reads_it_alike =
        !last.is_empty() && !last.contains("**") && !last.contains(['{', '}', '[', ']', '\\']);
    if go_reads_it_alike { last } else { "*" }
}

/// Paths under `root` whose name matches what `glob` needs (toolbox search), relative to
/// `root`.
async fn search(shared: &Arc<Shared>, root: &str, glob: &str) -> Result<Vec<String>> {
    let pattern = name_pattern(glob);
    let files = shared
        .with_retry(|attached| async move {
            attached
                .sandbox
                .fs()
                .search_files(root, pattern)
                .await
                .map_err(|e| file_error(e, root))
        })
        .await?;
    let prefix = format!("{root}/");
    Ok(files
        .into_iter()
        .filter_map(|f| f.strip_prefix(&prefix).map(str::to_string))
        .collect())
}

/// Download the `.gitignore` files among `rels` into `filter`.
async fn load_gitignores(
    shared: &Arc<Shared>,
    root: &str,
    rels: &[String],
    filter: &mut PathFilter,
) -> Result<()> {
    let wanted: Vec<String> = rels
        .iter()
        .filter(|r| r.rsplit('/').next() == Some(".gitignore"))
        .filter(|r| !r.split('/').any(|c| c == ".git"))
        .cloned()
        .collect();
    let fetched: Vec<(String, Result<Option<bytes::Bytes>>)> = futures::stream::iter(wanted)
        .map(|rel: String| {
            let path = format!("{root}/{rel}");
            let shared = shared.clone();
            async move { (rel, download(&shared, &path).await) }
        })
        .buffer_unordered(GITIGNORE_FETCHES)
        .collect()
        .await;
    for (rel, bytes) in fetched {
        // A `.gitignore` deleted since the listing no longer applies; any other failure is
        // reported rather than answered with files it would have left out.
        if let Some(bytes) = bytes? {
            let dir = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            filter.add_gitignore(dir, &String::from_utf8_lossy(&bytes));
        }
    }
    Ok(())
}

/// A small file's bytes; `None` when it is gone (deleted since it was listed).
async fn download(shared: &Arc<Shared>, path: &str) -> Result<Option<bytes::Bytes>> {
    match shared
        .with_retry(|attached| async move { shared::download(&attached, path).await })
        .await
    {
        Ok(bytes) => Ok(Some(bytes)),
        Err(SandboxError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) async fn grep(shared: &Arc<Shared>, request: &GrepRequest) -> Result<GrepResult> {
    request.validate()?;
    let root = root(shared, &request.path).await?;
    let mut filter = PathFilter::new(&request.include, &request.exclude)?;
    // The directory the paths are relative to, and the candidate files.
    let (base, candidates) = if root.is_dir {
        let all = search(shared, &root.path, "**").await?;
        if request.gitignore {
            load_gitignores(shared, &root.path, &all, &mut filter).await?;
        }
        let kept: Vec<String> = all.into_iter().filter(|r| filter.allows_file(r)).collect();
        (root.path.clone(), kept)
    } else {
        let (dir, name) = root.path.rsplit_once('/').unwrap_or(("", &root.path));
        let dir = if dir.is_empty() { "/" } else { dir };
        (dir.to_string(), vec![name.to_string()])
    };
    if candidates.is_empty() {
        return Ok(GrepResult::finish(Vec::new(), request.max_lines));
    }
    if request.fixed_strings && !request.case_insensitive && request.context == 0 {
        find_route(shared, &root, &base, &candidates, request).await
    } else {
        command_route(shared, &base, &candidates, request).await
    }
}

/// The toolbox's literal search over the root, keeping the candidates' lines.
async fn find_route(
    shared: &Arc<Shared>,
    root: &Root,
    base: &str,
    candidates: &[String],
    request: &GrepRequest,
) -> Result<GrepResult> {
    let pattern = request.pattern.as_str();
    let path = root.path.as_str();
    let matches = shared
        .with_retry(|attached| async move {
            attached
                .sandbox
                .fs()
                .find_files(path, pattern)
                .await
                .map_err(|e| file_error(e, path))
        })
        .await?;
    let wanted: BTreeSet<&str> = candidates.iter().map(String::as_str).collect();
    let prefix = if base == "/" {
        "/".to_string()
    } else {
        format!("{base}/")
    };
    let mut by_file: BTreeMap<String, GrepFile> = BTreeMap::new();
    for m in matches {
        let Some(rel) = m.file.strip_prefix(&prefix) else {
            continue;
        };
        if !wanted.contains(rel) {
            continue;
        }
        let file = by_file
            .entry(rel.to_string())
            .or_insert_with(|| GrepFile::new(rel, 0, Vec::new()));
        file.matches += 1;
        if file.lines.len() < request.max_lines {
            let text = m.content.strip_suffix('\r').unwrap_or(&m.content);
            file.lines.push(GrepLine::new(m.line, text, true));
        }
    }
    for f in by_file.values_mut() {
        f.lines.sort_by_key(|l| l.number);
    }
    Ok(GrepResult::finish(
        by_file.into_values().collect(),
        request.max_lines,
    ))
}

/// `grep` in the sandbox over the candidates (fed on stdin, NUL-separated), symlinks left out.
async fn command_route(
    shared: &Arc<Shared>,
    base: &str,
    candidates: &[String],
    request: &GrepRequest,
) -> Result<GrepResult> {
    let mut flags = vec!["-H", "-n", "-I", "-Z", "-s"];
    if request.case_insensitive {
        flags.push("-i");
    }
    let context = format!("-C{}", request.context);
    if request.context > 0 {
        flags.push(&context);
    }
    let dialect = if request.fixed_strings {
        "m=-F"
    } else {
        "if printf 'x\\n' | grep -qP 'x' 2>/dev/null; then m=-P; else m=-E; fi"
    };
    let script = format!(
        "{dialect}; export LC_ALL=C; \
         xargs -0 -r sh -c 'for f do [ -L \"$f\" ] || printf \"%s\\0\" \"$f\"; done' sh \
         | xargs -0 -r grep $m {} -e {} -- | head -c {GREP_OUTPUT_LIMIT} | tr '\\000' '\\037'",
        flags.join(" "),
        shell_quote(&request.pattern),
    );
    let mut stdin = Vec::new();
    for c in candidates {
        stdin.extend_from_slice(c.as_bytes());
        stdin.push(0);
    }
    let options = ExecuteCommandOptions::new()
        .cwd(base)
        .stdin(stdin)
        .timeout(SEARCH_TIMEOUT)
        .output_limit(GREP_OUTPUT_LIMIT + 1024);
    let result = command::run(shared, &script, &[], options).await?;
    // grep says 1 for "no match"; xargs turns any non-zero grep into 123.
    if !matches!(result.exit_code, 0 | 1 | 123) {
        return Err(SandboxError::Provider {
            status: None,
            code: Some(format!("exit {}", result.exit_code)),
            message: format!("grep in the sandbox failed: {}", result.stderr.trim()),
        });
    }
    let incomplete = result.stdout.len() >= GREP_OUTPUT_LIMIT || result.stdout_truncated;
    let mut out = GrepResult::finish(
        parse_grep_output(&result.stdout, request.max_lines),
        request.max_lines,
    );
    out.incomplete = incomplete;
    Ok(out)
}

/// Parse `grep -HnZ` output with the NUL turned into [`FIELD_SEP`]: `path␟N:text` for a match, `path␟N-text` for context, `--`
/// between groups. An unfinished last line (output cut) is dropped.
fn parse_grep_output(stdout: &str, cap: usize) -> Vec<GrepFile> {
    let mut files: BTreeMap<String, GrepFile> = BTreeMap::new();
    let complete = match stdout.rfind('\n') {
        Some(i) => &stdout[..=i],
        None => "",
    };
    for record in complete.split_terminator('\n') {
        let Some((path, rest)) = record.split_once(FIELD_SEP) else {
            continue;
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (Ok(number), Some(sep)) =
            (rest[..digits].parse::<u64>(), rest[digits..].chars().next())
        else {
            continue;
        };
        let is_match = match sep {
            ':' => true,
            '-' => false,
            _ => continue,
        };
        let text = &rest[digits + 1..];
        let text = text.strip_suffix('\r').unwrap_or(text);
        let path = path.strip_prefix("./").unwrap_or(path);
        let file = files
            .entry(path.to_string())
            .or_insert_with(|| GrepFile::new(path, 0, Vec::new()));
        if is_match {
            file.matches += 1;
        }
        if file.lines.len() < cap {
            file.lines.push(GrepLine::new(number, text, is_match));
        }
    }
    files.into_values().collect()
}

pub(crate) async fn glob(shared: &Arc<Shared>, request: &GlobRequest) -> Result<GlobResult> {
    request.validate()?;
    let pattern = GlobPattern::new(&request.pattern)?;
    let root = root(shared, &request.path).await?;
    if !root.is_dir {
        return Err(SandboxError::invalid(
            "path",
            format!("{} is not a directory", root.path),
        ));
    }
    let found = search(shared, &root.path, &request.pattern).await?;
    let mut filter = PathFilter::default();
    if request.gitignore {
        let ignores = search(shared, &root.path, "**/.gitignore").await?;
        load_gitignores(shared, &root.path, &ignores, &mut filter).await?;
    }
    let kept: Vec<String> = found
        .into_iter()
        .filter(|r| pattern.is_match(r) && filter.allows_file(r))
        .collect();
    let entries = match request.sort {
        GlobSort::Newest if !kept.is_empty() => modified_times(shared, &root.path, kept).await?,
        _ => kept.into_iter().map(|r| GlobEntry::new(r, None)).collect(),
    };
    Ok(GlobResult::finish(
        entries,
        request.sort,
        request.max_results,
    ))
}

/// Each path with its modification time, from one `find -printf` in the sandbox.
async fn modified_times(
    shared: &Arc<Shared>,
    root: &str,
    rels: Vec<String>,
) -> Result<Vec<GlobEntry>> {
    let mut stdin = Vec::new();
    for r in &rels {
        stdin.extend_from_slice(b"./");
        stdin.extend_from_slice(r.as_bytes());
        stdin.push(0);
    }
    let script = "xargs -0 -r sh -c 'exec find \"$@\" -prune -printf \"%T@\\t%p\\037\"' sh";
    let options = ExecuteCommandOptions::new()
        .cwd(root)
        .stdin(stdin)
        .timeout(SEARCH_TIMEOUT);
    let result = command::run(shared, script, &[], options).await?;
    let mut times: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
    for record in result.stdout.split_terminator(FIELD_SEP) {
        let Some((secs, path)) = record.split_once('\t') else {
            continue;
        };
        if let Some(t) = parse_epoch(secs) {
            times.insert(path.strip_prefix("./").unwrap_or(path), t);
        }
    }
    Ok(rels
        .iter()
        .map(|r| GlobEntry::new(r.clone(), times.get(r.as_str()).copied()))
        .collect())
}

/// `1700000000.123456789` → a time.
fn parse_epoch(s: &str) -> Option<DateTime<Utc>> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos: u32 = format!("{digits:0<9}").parse().ok()?;
    DateTime::from_timestamp(secs, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemon_is_asked_for_names_it_matches_as_the_glob_would() {
        assert_eq!(name_pattern("**/*.rs"), "*.rs");
        assert_eq!(name_pattern("src/*.rs"), "*.rs");
        assert_eq!(name_pattern("**/.gitignore"), ".gitignore");
        for glob in ["**", "src/**", "*.{rs,toml}", "[ab].rs", "a\\*", "dir/"] {
            assert_eq!(name_pattern(glob), "*", "{glob}");
        }
    }

    #[test]
    fn grep_output_parses_matches_context_and_separators() {
        let out = "a.rs\x1f2-ctx\na.rs\x1f3:hit: x\r\n--\n./b/c.rs\x1f10:y\nhalf\x1f1:cut";
        let files = parse_grep_output(out, 10);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].matches, 1);
        assert_eq!(files[0].lines[0], GrepLine::new(2, "ctx", false));
        assert_eq!(files[0].lines[1], GrepLine::new(3, "hit: x", true));
        assert_eq!(files[1].path, "b/c.rs");
    }

    #[test]
    fn epochs_parse_with_fractions() {
        let t = parse_epoch("1700000000.5").expect("parses");
        assert_eq!(t.timestamp(), 1_700_000_000);
        assert_eq!(t.timestamp_subsec_nanos(), 500_000_000);
        assert!(parse_epoch("x").is_none());
    }
}
