//! `grep` and `glob` on the host: a parallel walk with the `ignore` crate (`.gitignore` handled
//! by it, directories pruned before they are read) and, per file, `grep-searcher` with a
//! `grep-regex` matcher, the engine of ripgrep. The rules shared with other providers
//! (include/exclude, `.git`, result order and cuts) come from [`workspace_core::search`].

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder, Sink, SinkContext, SinkMatch};
use ignore::{WalkBuilder, WalkState};
use workspace_core::search::{
    GlobEntry, GlobPattern, GlobRequest, GlobResult, GrepFile, GrepLine, GrepRequest, GrepResult,
    PathFilter, line_text,
};
use workspace_core::{Result, SandboxError};

/// A walk of `root` with the shared rules: hidden files in, `.git` and excluded directories
/// out, `.gitignore` files at and below `root` honoured when asked.
fn walker(root: &Path, gitignore: bool, filter: &PathFilter) -> WalkBuilder {
    let mut builder = WalkBuilder::new(root);
    builder
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_global(false)
        .git_exclude(false)
        .git_ignore(gitignore)
        .require_git(false)
        .follow_links(false);
    let root = root.to_path_buf();
    let filter = filter.clone();
    builder.filter_entry(move |entry| {
        if entry.depth() == 0 {
            return true;
        }
        if entry.file_name() == ".git" {
            return false;
        }
        let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
        !(is_dir && filter.excludes_dir(&relative(&root, entry.path())))
    });
    builder
}

/// `path` relative to `root`, `/`-separated; a single-file search names the file itself.
fn relative(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
        _ => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

fn missing_root(root: &Path, display: &str) -> Result<()> {
    match root.symlink_metadata() {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(SandboxError::not_found(format!("path {display}")))
        }
        Err(e) => Err(SandboxError::io(format!("reading {display}"), e)),
    }
}

/// Collects one file's lines, at most `cap`, counting every match.
struct Collect {
    lines: Vec<GrepLine>,
    matches: u64,
    cap: usize,
    binary: bool,
}

impl Collect {
    fn push(&mut self, number: Option<u64>, bytes: &[u8], is_match: bool) {
        if self.lines.len() < self.cap {
            self.lines.push(GrepLine::new(
                number.unwrap_or(0),
                line_text(bytes),
                is_match,
            ));
        }
    }
}

impl Sink for Collect {
    type Error = std::io::Error;

    fn matched(&mut self, _: &Searcher, m: &SinkMatch<'_>) -> std::io::Result<bool> {
        let mut number = m.line_number();
        for line in m.lines() {
            self.matches += 1;
            self.push(number, line, true);
            number = number.map(|n| n + 1);
        }
        Ok(true)
    }

    fn context(&mut self, _: &Searcher, c: &SinkContext<'_>) -> std::io::Result<bool> {
        self.push(c.line_number(), c.bytes(), false);
        Ok(true)
    }

    fn binary_data(&mut self, _: &Searcher, _: u64) -> std::io::Result<bool> {
        self.binary = true;
        Ok(false)
    }
}

fn matcher(request: &GrepRequest) -> Result<RegexMatcher> {
    RegexMatcherBuilder::new()
        .case_insensitive(request.case_insensitive)
        .line_terminator(Some(b'\n'))
        .build(&request.regex_source())
        .map_err(|e| {
            SandboxError::invalid("pattern", format!("is not a valid regular expression: {e}"))
        })
}

/// Search under the host directory (or file) `root`, shown to the caller as `display`.
pub(crate) fn grep(root: &Path, display: &str, request: &GrepRequest) -> Result<GrepResult> {
    request.validate()?;
    missing_root(root, display)?;
    let filter = PathFilter::new(&request.include, &request.exclude)?;
    let matcher = matcher(request)?;
    let context = request.context as usize;
    let found: Mutex<Vec<GrepFile>> = Mutex::new(Vec::new());
    let root_buf: PathBuf = root.to_path_buf();
    walker(root, request.gitignore, &filter)
        .build_parallel()
        .run(|| {
            let matcher = matcher.clone();
            let mut searcher = SearcherBuilder::new()
                .line_number(true)
                .before_context(context)
                .after_context(context)
                .binary_detection(BinaryDetection::quit(b'\0'))
                .build();
            let (filter, found, root) = (&filter, &found, &root_buf);
            let cap = request.max_lines;
            Box::new(move |entry| {
                let Ok(entry) = entry else {
                    return WalkState::Continue;
                };
                if !entry.file_type().is_some_and(|t| t.is_file()) {
                    return WalkState::Continue;
                }
                let rel = relative(root, entry.path());
                if !filter.allows_by_globs(&rel) {
                    return WalkState::Continue;
                }
                let mut sink = Collect {
                    lines: Vec::new(),
                    matches: 0,
                    cap,
                    binary: false,
                };
                // An unreadable file is skipped, as a walk skips an unreadable directory.
                if searcher
                    .search_path(&matcher, entry.path(), &mut sink)
                    .is_err()
                {
                    return WalkState::Continue;
                }
                if !sink.binary && sink.matches > 0 {
                    let file = GrepFile::new(rel, sink.matches, sink.lines);
                    found
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .push(file);
                }
                WalkState::Continue
            })
        });
    let files = found
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Ok(GrepResult::finish(files, request.max_lines))
}

/// List the files and symlinks under the host directory `root` whose relative paths match.
pub(crate) fn glob(root: &Path, display: &str, request: &GlobRequest) -> Result<GlobResult> {
    request.validate()?;
    missing_root(root, display)?;
    if !root.is_dir() {
        return Err(SandboxError::invalid(
            "path",
            format!("{display} is not a directory"),
        ));
    }
    let pattern = GlobPattern::new(&request.pattern)?;
    let mut entries = Vec::new();
    for entry in walker(root, request.gitignore, &PathFilter::default()).build() {
        let Ok(entry) = entry else { continue };
        if entry.depth() == 0 || entry.file_type().is_none_or(|t| t.is_dir()) {
            continue;
        }
        let rel = relative(root, entry.path());
        if !pattern.is_match(&rel) {
            continue;
        }
        let modified = entry
            .path()
            .symlink_metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .map(DateTime::<Utc>::from);
        entries.push(GlobEntry::new(rel, modified));
    }
    Ok(GlobResult::finish(
        entries,
        request.sort,
        request.max_results,
    ))
}
