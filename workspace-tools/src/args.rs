//! The arguments of each tool, as typed structs. Their JSON Schemas (generated with `schemars`,
//! doc comments becoming descriptions) are what the model is shown, and the same structs parse
//! what it sends back, so the two cannot drift apart.
//!
//! Every struct rejects unknown fields (`additionalProperties: false`). Optional fields accept
//! `null` as "not given", which is how strict-mode function calling sends them.

use schemars::JsonSchema;
use serde::Deserialize;

/// Arguments of `execute_command` on a sandbox without background processes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteCommandArgs {
    /// The command line, run by a POSIX shell (`sh -c`): pipes, redirects, `&&`, globs and
    /// quoting work as in a terminal. Quote paths that contain spaces.
    pub command: String,
    /// Directory to run in: absolute, or relative to the sandbox's working directory (the
    /// default).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Kill the command after this many seconds (default shown in the tool description).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<u64>,
}

/// Arguments of `execute_command` on a sandbox with background processes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteCommandBackgroundArgs {
    /// The command line, run by a POSIX shell (`sh -c`): pipes, redirects, `&&`, globs and
    /// quoting work as in a terminal. Quote paths that contain spaces.
    pub command: String,
    /// Directory to run in: absolute, or relative to the sandbox's working directory (the
    /// default).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Kill the command after this many seconds (default shown in the tool description).
    /// Ignored for background processes, which run until they exit or are killed.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<u64>,
    /// Start the command in the background and return its process id at once, for servers,
    /// watchers and anything long-running. Read its output with `get_process_output`, stop it
    /// with `kill_process`.
    #[serde(default)]
    pub background: Option<bool>,
}

impl From<ExecuteCommandArgs> for ExecuteCommandBackgroundArgs {
    fn from(a: ExecuteCommandArgs) -> Self {
        ExecuteCommandBackgroundArgs {
            command: a.command,
            cwd: a.cwd,
            timeout_seconds: a.timeout_seconds,
            background: None,
        }
    }
}

/// Byte offsets into a background process's stdout and stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SinceArgs {
    /// Offset into stdout.
    pub stdout: u64,
    /// Offset into stderr.
    pub stderr: u64,
}

/// Arguments of `get_process_output`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetProcessOutputArgs {
    /// The process id that `execute_command` returned (e.g. `proc-1`).
    pub id: String,
    /// Only output after these offsets: pass the `next` object of the previous answer.
    /// Omit to get everything retained from the start.
    #[serde(default)]
    pub since: Option<SinceArgs>,
    /// Wait up to this many seconds for new output or for the process to exit, instead of
    /// answering at once.
    #[serde(default)]
    pub wait_seconds: Option<u64>,
    /// Wait until the output (from `since` on) matches this regular expression, e.g.
    /// `Listening on|ready in` for a dev server, or the process exits, for up to
    /// `wait_seconds` (default 30); one call instead of polling.
    #[serde(default)]
    pub wait_for: Option<String>,
}

/// Arguments of `kill_process`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KillProcessArgs {
    /// The process id that `execute_command` returned (e.g. `proc-1`).
    pub id: String,
}

/// Arguments of `read_file`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadFileArgs {
    /// The file: absolute, or relative to the sandbox's working directory.
    pub path: String,
    /// First line to show, counting from 1 (default 1).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub offset: Option<u64>,
    /// How many lines to show at most (default 2000).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub limit: Option<u64>,
}

/// Arguments of `write_file`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFileArgs {
    /// The file: absolute, or relative to the sandbox's working directory. Missing parent
    /// directories are created.
    pub path: String,
    /// The complete new content of the file (UTF-8 text). Replaces what was there.
    pub content: String,
}

/// Arguments of `edit_file`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditFileArgs {
    /// The file: absolute, or relative to the sandbox's working directory.
    pub path: String,
    /// The exact text to replace, including whitespace and indentation. It must occur exactly
    /// once unless `replace_all` is true: include surrounding lines to make it unique.
    pub old_string: String,
    /// The text to put in its place.
    pub new_string: String,
    /// Replace every occurrence instead of exactly one.
    #[serde(default)]
    pub replace_all: Option<bool>,
}

/// One replacement of `multi_edit`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditOp {
    /// The exact text to replace; it must occur exactly once (in the text as the earlier edits
    /// left it) unless `replace_all` is true.
    pub old_string: String,
    /// The text to put in its place.
    pub new_string: String,
    /// Replace every occurrence instead of exactly one.
    #[serde(default)]
    pub replace_all: Option<bool>,
}

/// Arguments of `multi_edit`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MultiEditArgs {
    /// The file: absolute, or relative to the sandbox's working directory.
    pub path: String,
    /// The replacements, applied in order, each to the result of the one before. If any fails,
    /// none is applied.
    #[schemars(length(min = 1))]
    pub edits: Vec<EditOp>,
}

/// Arguments of `port_url`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortUrlArgs {
    /// The port a server listens on inside the sandbox.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
}

/// Arguments of `list_files`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListFilesArgs {
    /// The directory to list (default: the sandbox's working directory).
    #[serde(default)]
    pub path: Option<String>,
    /// How many levels to descend: 1 lists only the directory's own entries (default 2, or 8
    /// with `glob`).
    #[serde(default)]
    #[schemars(range(min = 1, max = 20))]
    pub depth: Option<u32>,
    /// Only list files whose path relative to `path` matches this pattern: `*` and `?` within
    /// one path segment, `**` across segments, `[abc]` character sets, `{a,b}` alternatives.
    /// Example: `**/*.{rs,toml}`.
    #[serde(default)]
    pub glob: Option<String>,
}

/// Arguments of `delete`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteArgs {
    /// The file or directory to delete.
    pub path: String,
    /// Delete a non-empty directory with everything in it.
    #[serde(default)]
    pub recursive: Option<bool>,
}

/// Arguments of `mkdir`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MkdirArgs {
    /// The directory to create, with any missing parents.
    pub path: String,
}

/// Arguments of `file_stat`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileStatArgs {
    /// The path to describe.
    pub path: String,
}

/// What `grep` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrepOutputMode {
    /// The paths of the matching files, with their match counts (default).
    #[default]
    FilesWithMatches,
    /// The matching lines as `path:line:text` (context lines as `path-line-text`).
    Content,
    /// Matching lines per file as `path:count`.
    Count,
}

/// Arguments of `grep`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrepArgs {
    /// What to search for: a regular expression (Rust/PCRE-like syntax: `\w`, `\d`, `(a|b)`,
    /// `fn\s+main`), or literal text with `fixed_strings: true`. Matches are within one line.
    pub pattern: String,
    /// The directory or file to search (default: the working directory).
    #[serde(default)]
    pub path: Option<String>,
    /// Treat `pattern` as literal text, not a regular expression.
    #[serde(default)]
    pub fixed_strings: Option<bool>,
    /// Match regardless of upper/lower case.
    #[serde(default)]
    pub case_insensitive: Option<bool>,
    /// Only search files matching one of these globs: without `/` a glob matches file names at
    /// any depth (`*.rs`), with `/` the path relative to `path` (`src/**/*.ts`).
    #[serde(default)]
    pub include: Option<Vec<String>>,
    /// Skip files and directories matching any of these globs (e.g. `vendor`, `*.min.js`).
    #[serde(default)]
    pub exclude: Option<Vec<String>>,
    /// `files_with_matches` (default): matching paths; `content`: matching lines with line
    /// numbers; `count`: matches per file.
    #[serde(default)]
    pub output_mode: Option<GrepOutputMode>,
    /// With `output_mode: content`, lines of context before and after each match.
    #[serde(default)]
    #[schemars(range(max = 20))]
    pub context: Option<u32>,
    /// Also search files that `.gitignore` excludes (default false).
    #[serde(default)]
    pub include_ignored: Option<bool>,
    /// Most files (or lines, with `content`) to show (default 100).
    #[serde(default)]
    #[schemars(range(min = 1, max = 2000))]
    pub head_limit: Option<u32>,
}

/// Order of `glob` results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GlobSortArg {
    /// Alphabetical by path (default).
    #[default]
    Path,
    /// Most recently modified first.
    Newest,
}

/// Arguments of `glob`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobArgs {
    /// The pattern, matched against paths relative to `path`: `*` and `?` within one path
    /// segment, `**` across segments, `[abc]` sets, `{a,b}` alternatives. Example:
    /// `**/*.{ts,tsx}`; `*.rs` matches only the top level.
    pub pattern: String,
    /// The directory to search (default: the working directory).
    #[serde(default)]
    pub path: Option<String>,
    /// `path` (default) or `newest` (most recently modified first).
    #[serde(default)]
    pub sort: Option<GlobSortArg>,
    /// Also list files that `.gitignore` excludes (default false).
    #[serde(default)]
    pub include_ignored: Option<bool>,
    /// Most paths to show (default 200).
    #[serde(default)]
    #[schemars(range(min = 1, max = 5000))]
    pub head_limit: Option<u32>,
}
