//! Content search (`grep`) and path search (`glob`) over a sandbox's files: the requests, the
//! results, and the path rules every provider applies the same way.
//!
//! Providers implement [`SandboxFilesystem::grep`](crate::SandboxFilesystem::grep) and
//! [`SandboxFilesystem::glob`](crate::SandboxFilesystem::glob) with whatever is fastest where the
//! files are (the local provider walks with the `ignore` crate and searches with
//! `grep-searcher`; Daytona uses its toolbox's find/search routes or a command inside the
//! sandbox), but they share the rules below through [`PathFilter`], [`GlobPattern`] and
//! [`GrepResult::finish`], so the same tree gives the same answer everywhere:
//!
//! - Paths in results are relative to the searched `path`, `/`-separated, sorted.
//! - Directories named `.git` are never searched. Other hidden files are.
//! - With `gitignore` on (the default), `.gitignore` files in the searched directory and below
//!   apply as git applies them: a file inside an ignored directory stays ignored.
//! - An `include`/`exclude` pattern without `/` matches a file or directory *name* at any
//!   depth (`*.rs`, `node_modules`); with `/` it matches the path relative to `path`
//!   (`src/**/*.rs`). A file is searched when it matches some `include` (or there is none) and
//!   neither it nor a directory above it matches an `exclude`.
//! - Symbolic links are not followed; grep skips them, glob lists them.
//! - A file with a NUL byte in its first 8 KiB is binary and is skipped by grep.
//! - Lines are reported without their `\n` (and a `\r` before it), invalid UTF-8 replaced.
//!
//! ```
//! use workspace_core::search::{GrepRequest, PathFilter};
//!
//! let request = GrepRequest::new("fn main").fixed_strings(true).include("*.rs");
//! assert!(request.validate().is_ok());
//! let filter = PathFilter::new(&request.include, &request.exclude).unwrap();
//! assert!(filter.allows_file("src/main.rs"));
//! assert!(!filter.allows_file("README.md"));
//! assert!(!filter.allows_file(".git/config"));
//!
//! let err = GrepRequest::new("fn (").validate().expect_err("invalid");
//! assert!(err.to_string().contains("pattern"));
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use globset::{GlobBuilder, GlobMatcher};
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::error::{Result, SandboxError};

/// Bytes looked at to decide whether a file is binary (a NUL byte among them).
pub const BINARY_SNIFF_BYTES: usize = 8192;
/// Most context lines before and after a match.
pub const MAX_CONTEXT: u32 = 50;
/// Default cap on the lines a grep returns.
pub const DEFAULT_MAX_LINES: usize = 1000;
/// Default cap on the paths a glob returns.
pub const DEFAULT_MAX_RESULTS: usize = 1000;
/// Largest compiled regex accepted, so a pathological pattern is refused, not built.
const REGEX_SIZE_LIMIT: usize = 10 * 1024 * 1024;

/// What to search for, and where. Build with [`GrepRequest::new`] and the chaining methods.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrepRequest {
    /// A regular expression (Rust `regex` syntax), or a literal with `fixed_strings`.
    pub pattern: String,
    /// The directory (or single file) to search: absolute, or relative to the working
    /// directory. Default `.`.
    pub path: String,
    /// Match `pattern` literally.
    pub fixed_strings: bool,
    /// Match regardless of case.
    pub case_insensitive: bool,
    /// Only files matching one of these globs (see the module docs).
    pub include: Vec<String>,
    /// Skip files and directories matching any of these globs.
    pub exclude: Vec<String>,
    /// Honour `.gitignore` files (default on).
    pub gitignore: bool,
    /// Lines of context before and after each match (at most [`MAX_CONTEXT`]).
    pub context: u32,
    /// Most lines (matches and context) returned; match counts stay exact past it.
    pub max_lines: usize,
}

impl GrepRequest {
    /// Search for the regex `pattern` under the working directory.
    pub fn new(pattern: impl Into<String>) -> Self {
        GrepRequest {
            pattern: pattern.into(),
            path: ".".into(),
            fixed_strings: false,
            case_insensitive: false,
            include: Vec::new(),
            exclude: Vec::new(),
            gitignore: true,
            context: 0,
            max_lines: DEFAULT_MAX_LINES,
        }
    }

    /// Search under `path` instead of the working directory.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Match the pattern literally.
    pub fn fixed_strings(mut self, yes: bool) -> Self {
        self.fixed_strings = yes;
        self
    }

    /// Ignore case.
    pub fn case_insensitive(mut self, yes: bool) -> Self {
        self.case_insensitive = yes;
        self
    }

    /// Add an include glob.
    pub fn include(mut self, glob: impl Into<String>) -> Self {
        self.include.push(glob.into());
        self
    }

    /// Add an exclude glob.
    pub fn exclude(mut self, glob: impl Into<String>) -> Self {
        self.exclude.push(glob.into());
        self
    }

    /// Honour `.gitignore` files or not.
    pub fn gitignore(mut self, yes: bool) -> Self {
        self.gitignore = yes;
        self
    }

    /// Lines of context around each match.
    pub fn context(mut self, lines: u32) -> Self {
        self.context = lines;
        self
    }

    /// Most lines returned.
    pub fn max_lines(mut self, lines: usize) -> Self {
        self.max_lines = lines;
        self
    }

    /// The pattern as a regex source: escaped when `fixed_strings`.
    pub fn regex_source(&self) -> String {
        if self.fixed_strings {
            regex::escape(&self.pattern)
        } else {
            self.pattern.clone()
        }
    }

    /// Check every field: `InvalidArgument` names the one at fault (`pattern`, `path`,
    /// `include[1]`, `context`).
    pub fn validate(&self) -> Result<()> {
        check_search_path(&self.path)?;
        if self.pattern.is_empty() {
            return Err(SandboxError::invalid("pattern", "must not be empty"));
        }
        if self.pattern.contains('\0') || self.pattern.contains('\n') {
            return Err(SandboxError::invalid(
                "pattern",
                "must not contain a NUL byte or a newline (matches are within one line)",
            ));
        }
        regex::RegexBuilder::new(&self.regex_source())
            .case_insensitive(self.case_insensitive)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                SandboxError::invalid("pattern", format!("is not a valid regular expression: {e}"))
            })?;
        if self.context > MAX_CONTEXT {
            return Err(SandboxError::invalid(
                "context",
                format!("must be at most {MAX_CONTEXT}, got {}", self.context),
            ));
        }
        PathFilter::new(&self.include, &self.exclude)?;
        Ok(())
    }
}

/// One line of a grep result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct GrepLine {
    /// 1-based line number.
    pub number: u64,
    /// The line, without its line ending.
    pub text: String,
    /// A matching line (`false`: context).
    pub is_match: bool,
}

impl GrepLine {
    /// A line.
    pub fn new(number: u64, text: impl Into<String>, is_match: bool) -> Self {
        GrepLine {
            number,
            text: text.into(),
            is_match,
        }
    }
}

/// The matches in one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct GrepFile {
    /// Relative to the searched path (the file's own name when a single file was searched).
    pub path: String,
    /// Matching lines in the file (exact, even when `lines` was cut).
    pub matches: u64,
    /// Matching and context lines, in order; possibly cut by `max_lines`.
    pub lines: Vec<GrepLine>,
}

impl GrepFile {
    /// A file's matches.
    pub fn new(path: impl Into<String>, matches: u64, lines: Vec<GrepLine>) -> Self {
        GrepFile {
            path: path.into(),
            matches,
            lines,
        }
    }
}

/// What a grep found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct GrepResult {
    /// Files with at least one match, sorted by path.
    pub files: Vec<GrepFile>,
    /// Matching lines counted but not in `lines` because of `max_lines` (0: nothing was cut).
    pub matches_omitted: u64,
    /// The provider stopped reading at a size limit of its own: the counts are lower bounds.
    pub incomplete: bool,
}

impl GrepResult {
    /// Sort `files` by path and keep at most `max_lines` lines in all (so that every provider
    /// cuts the same lines), counting the matching lines left out.
    pub fn finish(mut files: Vec<GrepFile>, max_lines: usize) -> Self {
        files.retain(|f| f.matches > 0);
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut left = max_lines;
        let mut omitted = 0u64;
        for f in &mut files {
            f.lines.truncate(left);
            left -= f.lines.len();
            let shown = f.lines.iter().filter(|l| l.is_match).count() as u64;
            omitted += f.matches.saturating_sub(shown);
        }
        GrepResult {
            files,
            matches_omitted: omitted,
            incomplete: false,
        }
    }

    /// Matching lines over all files.
    pub fn total_matches(&self) -> u64 {
        self.files.iter().map(|f| f.matches).sum()
    }
}

/// The order of glob results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GlobSort {
    /// By path (default).
    #[default]
    Path,
    /// Most recently modified first, ties by path.
    Newest,
}

/// Which paths to list. Build with [`GlobRequest::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GlobRequest {
    /// The pattern, matched against paths relative to `path` ([`GlobPattern`]).
    pub pattern: String,
    /// The directory to search: absolute, or relative to the working directory. Default `.`.
    pub path: String,
    /// Honour `.gitignore` files (default on).
    pub gitignore: bool,
    /// Result order.
    pub sort: GlobSort,
    /// Most paths returned; [`GlobResult::total`] counts them all.
    pub max_results: usize,
}

impl GlobRequest {
    /// Paths under the working directory matching `pattern`.
    pub fn new(pattern: impl Into<String>) -> Self {
        GlobRequest {
            pattern: pattern.into(),
            path: ".".into(),
            gitignore: true,
            sort: GlobSort::Path,
            max_results: DEFAULT_MAX_RESULTS,
        }
    }

    /// Search under `path`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Honour `.gitignore` files or not.
    pub fn gitignore(mut self, yes: bool) -> Self {
        self.gitignore = yes;
        self
    }

    /// Result order.
    pub fn sort(mut self, sort: GlobSort) -> Self {
        self.sort = sort;
        self
    }

    /// Most paths returned.
    pub fn max_results(mut self, n: usize) -> Self {
        self.max_results = n;
        self
    }

    /// Check the path and the pattern.
    pub fn validate(&self) -> Result<()> {
        check_search_path(&self.path)?;
        GlobPattern::new(&self.pattern).map(|_| ())
    }
}

/// One path a glob found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct GlobEntry {
    /// Relative to the searched path.
    pub path: String,
    /// Last modification, where known (always with [`GlobSort::Newest`]).
    pub modified: Option<DateTime<Utc>>,
}

impl GlobEntry {
    /// An entry.
    pub fn new(path: impl Into<String>, modified: Option<DateTime<Utc>>) -> Self {
        GlobEntry {
            path: path.into(),
            modified,
        }
    }
}

/// What a glob found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct GlobResult {
    /// The paths, in the requested order, at most `max_results`.
    pub entries: Vec<GlobEntry>,
    /// How many paths matched in all.
    pub total: u64,
}

impl GlobResult {
    /// Order `entries` as `sort` says and keep the first `max_results`.
    pub fn finish(mut entries: Vec<GlobEntry>, sort: GlobSort, max_results: usize) -> Self {
        match sort {
            GlobSort::Path => entries.sort_by(|a, b| a.path.cmp(&b.path)),
            GlobSort::Newest => entries.sort_by(|a, b| {
                b.modified
                    .cmp(&a.modified)
                    .then_with(|| a.path.cmp(&b.path))
            }),
        }
        let total = entries.len() as u64;
        entries.truncate(max_results);
        GlobResult { entries, total }
    }
}

fn check_search_path(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(SandboxError::invalid("path", "must not be empty"));
    }
    if path.contains('\0') {
        return Err(SandboxError::invalid("path", "contains a NUL byte"));
    }
    Ok(())
}

/// A compiled glob pattern, matched against `/`-separated relative paths: `*` and `?` within
/// one segment, `**` across segments (`**/` also matching no directory), `[abc]`, `[!a-z]`,
/// `{a,b}`, `\` escaping. Built on `globset`, which replaced a hand-written matcher here: it is
/// the field's kept implementation and compiles sets of patterns into one automaton.
#[derive(Debug, Clone)]
pub struct GlobPattern {
    matcher: GlobMatcher,
    /// Has a `/`: matched against the whole relative path, else against each name.
    anchored: bool,
}

impl GlobPattern {
    /// Compile `pattern`; `InvalidArgument` (`pattern`) says what is wrong with it.
    pub fn new(pattern: &str) -> Result<GlobPattern> {
        Self::compile("pattern", pattern)
    }

    fn compile(field: &str, pattern: &str) -> Result<GlobPattern> {
        if pattern.is_empty() {
            return Err(SandboxError::invalid(field, "the glob is empty"));
        }
        if pattern.starts_with('/') {
            return Err(SandboxError::invalid(
                field,
                "globs are matched against paths relative to `path`; drop the leading `/`",
            ));
        }
        let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
        let matcher = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .empty_alternates(true)
            .build()
            .map_err(|e| {
                SandboxError::invalid(
                    field,
                    format!("`{pattern}` is not a valid glob: {}", e.kind()),
                )
            })?
            .compile_matcher();
        Ok(GlobPattern {
            matcher,
            anchored: pattern.contains('/'),
        })
    }

    /// Whether the whole relative path matches.
    pub fn is_match(&self, rel: &str) -> bool {
        self.matcher.is_match(rel)
    }

    /// Whether the path matches as an include/exclude rule: by name when the pattern has no
    /// `/`, else by the whole path.
    fn matches_rule(&self, rel: &str) -> bool {
        if self.anchored {
            self.matcher.is_match(rel)
        } else {
            self.matcher.is_match(rel.rsplit('/').next().unwrap_or(rel))
        }
    }
}

/// The include/exclude, `.git` and `.gitignore` rules of a search (see the module docs),
/// applied to paths relative to the searched directory.
#[derive(Debug, Clone, Default)]
pub struct PathFilter {
    include: Vec<GlobPattern>,
    exclude: Vec<GlobPattern>,
    /// `.gitignore` matchers by the relative directory that holds them (`""`: the top).
    gitignores: BTreeMap<String, Gitignore>,
}

impl PathFilter {
    /// A filter with these include and exclude globs; `InvalidArgument` names a bad one
    /// (`include[0]`).
    pub fn new(include: &[String], exclude: &[String]) -> Result<PathFilter> {
        let compile = |field: &str, globs: &[String]| -> Result<Vec<GlobPattern>> {
            globs
                .iter()
                .enumerate()
                .map(|(i, g)| GlobPattern::compile(&format!("{field}[{i}]"), g))
                .collect()
        };
        Ok(PathFilter {
            include: compile("include", include)?,
            exclude: compile("exclude", exclude)?,
            gitignores: BTreeMap::new(),
        })
    }

    /// Add the `.gitignore` found in the relative directory `dir` (`""` for the top).
    /// Lines that are not valid patterns are skipped, as git skips them.
    pub fn add_gitignore(&mut self, dir: &str, contents: &str) {
        let mut builder = GitignoreBuilder::new(".");
        for line in contents.lines() {
            let _ = builder.add_line(None, line);
        }
        if let Ok(gi) = builder.build() {
            self.gitignores
                .insert(dir.trim_matches('/').to_string(), gi);
        }
    }

    /// Whether any `.gitignore` was added.
    pub fn has_gitignores(&self) -> bool {
        !self.gitignores.is_empty()
    }

    /// Whether the include/exclude rules alone let the file through (for walkers that apply
    /// `.gitignore` and `.git` themselves).
    pub fn allows_by_globs(&self, rel: &str) -> bool {
        if !self.include.is_empty() && !self.include.iter().any(|g| g.matches_rule(rel)) {
            return false;
        }
        !self.excluded(rel)
    }

    /// Whether a directory (relative path) is cut off by an exclude glob.
    pub fn excludes_dir(&self, rel: &str) -> bool {
        self.exclude.iter().any(|g| g.matches_rule(rel))
    }

    fn excluded(&self, rel: &str) -> bool {
        prefixes(rel).any(|p| self.exclude.iter().any(|g| g.matches_rule(p)))
    }

    /// Whether the file at `rel` is searched: not under `.git`, not ignored by a
    /// `.gitignore` (nor inside an ignored directory), and passing include/exclude.
    pub fn allows_file(&self, rel: &str) -> bool {
        let rel = rel.trim_start_matches("./");
        if rel.split('/').any(|c| c == ".git") {
            return false;
        }
        if self.has_gitignores() {
            let mut dirs = prefixes(rel).collect::<Vec<_>>();
            dirs.pop();
            if dirs.into_iter().any(|d| self.ignored(d, true)) || self.ignored(rel, false) {
                return false;
            }
        }
        self.allows_by_globs(rel)
    }

    /// The decision of the nearest `.gitignore` that has one for `rel`.
    fn ignored(&self, rel: &str, is_dir: bool) -> bool {
        let mut dir = parent(rel);
        loop {
            if let Some(gi) = self.gitignores.get(dir) {
                let sub = if dir.is_empty() {
                    rel
                } else {
                    &rel[dir.len() + 1..]
                };
                let m = gi.matched(Path::new(sub), is_dir);
                if m.is_ignore() {
                    return true;
                }
                if m.is_whitelist() {
                    return false;
                }
            }
            if dir.is_empty() {
                return false;
            }
            dir = parent(dir);
        }
    }
}

/// `a`, `a/b`, `a/b/c` for `a/b/c`.
fn prefixes(rel: &str) -> impl Iterator<Item = &str> {
    rel.match_indices('/')
        .map(move |(i, _)| &rel[..i])
        .chain(std::iter::once(rel))
}

fn parent(rel: &str) -> &str {
    rel.rfind('/').map(|i| &rel[..i]).unwrap_or("")
}

/// Whether `head` (the first bytes of a file) marks it binary: a NUL among the first
/// [`BINARY_SNIFF_BYTES`].
pub fn looks_binary(head: &[u8]) -> bool {
    head[..head.len().min(BINARY_SNIFF_BYTES)].contains(&0)
}

/// A line's text as results carry it: line ending cut, invalid UTF-8 replaced.
pub fn line_text(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(line).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: &[&str], exclude: &[&str]) -> PathFilter {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        PathFilter::new(&s(include), &s(exclude)).expect("valid globs")
    }

    #[test]
    fn include_by_name_or_path() {
        let f = filter(&["*.rs"], &[]);
        assert!(f.allows_file("a/b/c.rs"));
        assert!(!f.allows_file("a/b/c.md"));
        let f = filter(&["src/**/*.rs"], &["gen"]);
        assert!(f.allows_file("src/x/y.rs"));
        assert!(!f.allows_file("lib/y.rs"));
        assert!(!f.allows_file("src/gen/y.rs"));
    }

    #[test]
    fn gitignore_rules_nest() {
        let mut f = filter(&[], &[]);
        f.add_gitignore("", "target/\n*.log\n!keep.log\n");
        f.add_gitignore("sub", "local.txt\n");
        assert!(!f.allows_file("target/x.rs"));
        assert!(!f.allows_file("a/b.log"));
        assert!(f.allows_file("keep.log"));
        assert!(!f.allows_file("sub/local.txt"));
        assert!(f.allows_file("local.txt"));
        assert!(f.allows_file("sub/other.txt"));
        assert!(!f.allows_file(".git/HEAD"));
    }

    #[test]
    fn bad_input_is_named() {
        let e = GrepRequest::new("a(").validate().expect_err("invalid");
        assert!(e.to_string().contains("`pattern`"), "{e}");
        let e = GrepRequest::new("a")
            .include("[z-")
            .validate()
            .expect_err("invalid");
        assert!(e.to_string().contains("`include[0]`"), "{e}");
        let e = GrepRequest::new("a")
            .context(99)
            .validate()
            .expect_err("invalid");
        assert!(e.to_string().contains("`context`"), "{e}");
        assert!(
            GrepRequest::new("a(")
                .fixed_strings(true)
                .validate()
                .is_ok()
        );
        assert!(GlobRequest::new("/etc/*").validate().is_err());
        assert!(GlobRequest::new("").validate().is_err());
    }

    #[test]
    fn finish_cuts_lines_in_path_order() {
        let lines = |n: u64| (1..=n).map(|i| GrepLine::new(i, "x", true)).collect();
        let r = GrepResult::finish(
            vec![
                GrepFile::new("b", 3, lines(3)),
                GrepFile::new("a", 2, lines(2)),
            ],
            4,
        );
        assert_eq!(r.files[0].path, "a");
        assert_eq!(r.files[1].lines.len(), 2);
        assert_eq!(r.matches_omitted, 1);
        assert_eq!(r.total_matches(), 5);
    }
}
