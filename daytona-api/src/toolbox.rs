//! Toolbox (in-sandbox daemon) DTOs, relative to `{toolboxProxyUrl}/{sandboxId}`.
//!
//! Field names follow `toolbox.json` exactly: camelCase for process, session and file types,
//! snake_case for a few git fields (`commit_id`, `insecure_skip_tls`, `allow_empty`,
//! `set_upstream`, `initial_branch`). Optional fields are omitted when `None`, because the
//! daemon and the official SDKs distinguish "absent" from `null` (a session command's
//! `exitCode` is absent while it runs).
//!
//! Types that carry secrets (environment values, git passwords) have hand-written `Debug`
//! impls that print keys but never values.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Daemon error codes (`DaemonErrorCode` in the spec, plus the file codes newer SDKs map).
///
/// The TypeScript SDK picks a typed error class from `code` (for example
/// `FILE_NOT_FOUND` → `DaytonaFileNotFoundError`), so servers must send these exact strings.
pub mod codes {
    /// A file or directory does not exist (404).
    pub const FILE_NOT_FOUND: &str = "FILE_NOT_FOUND";
    /// The path may not be accessed (403).
    pub const FILE_ACCESS_DENIED: &str = "FILE_ACCESS_DENIED";
    /// The path is malformed (400).
    pub const INVALID_FILE_PATH: &str = "INVALID_FILE_PATH";
    /// A file could not be read (500).
    pub const FILE_READ_FAILED: &str = "FILE_READ_FAILED";
    /// A command ran past its timeout (408).
    pub const PROCESS_EXECUTION_TIMEOUT: &str = "PROCESS_EXECUTION_TIMEOUT";
    /// No such process (404).
    pub const PROCESS_NOT_FOUND: &str = "PROCESS_NOT_FOUND";
    /// The session no longer accepts commands (410).
    pub const SESSION_ENDED: &str = "SESSION_ENDED";
    /// Input was sent to a command that already finished (410).
    pub const COMMAND_ALREADY_COMPLETED: &str = "COMMAND_ALREADY_COMPLETED";
    /// Generic bad request (400).
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    /// The request body could not be parsed (400).
    pub const INVALID_REQUEST_BODY: &str = "INVALID_REQUEST_BODY";
    /// Missing or wrong credentials (401).
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    /// Not allowed (403).
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// Generic not found (404).
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// Generic conflict (409).
    pub const CONFLICT: &str = "CONFLICT";
    /// Generic timeout (408); the v0.190 daemon's code for an execute timeout.
    pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
    /// Generic gone (410).
    pub const GONE: &str = "GONE";
    /// Generic unprocessable entity (422).
    pub const UNPROCESSABLE_ENTITY: &str = "UNPROCESSABLE_ENTITY";
    /// Generic server error (500).
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
    /// Git authentication failed (401).
    pub const GIT_AUTH_FAILED: &str = "GIT_AUTH_FAILED";
    /// Git repository not found (404).
    pub const GIT_REPO_NOT_FOUND: &str = "GIT_REPO_NOT_FOUND";
    /// Git branch not found (404).
    pub const GIT_BRANCH_NOT_FOUND: &str = "GIT_BRANCH_NOT_FOUND";
    /// Git branch already exists (409).
    pub const GIT_BRANCH_EXISTS: &str = "GIT_BRANCH_EXISTS";
    /// A push was rejected as not fast-forward (409).
    pub const GIT_PUSH_REJECTED: &str = "GIT_PUSH_REJECTED";
    /// Local changes stand in the way (409).
    pub const GIT_DIRTY_WORKTREE: &str = "GIT_DIRTY_WORKTREE";
    /// A merge (pull) stopped on conflicts (409).
    pub const GIT_MERGE_CONFLICT: &str = "GIT_MERGE_CONFLICT";
    /// The remote could not be reached (502).
    pub const GIT_TRANSPORT_FAILED: &str = "GIT_TRANSPORT_FAILED";
    /// The remote refused the update, e.g. a hook declined it (422).
    pub const GIT_REMOTE_REJECTED: &str = "GIT_REMOTE_REJECTED";
}

/// The `source` value newer daemons put in error bodies.
pub const DAEMON_ERROR_SOURCE: &str = "DAYTONA_DAEMON";

/// Marker the daemon puts before every stdout line of a session command log.
pub const STDOUT_MARKER: &[u8; 3] = b"\x01\x01\x01";
/// Marker the daemon puts before every stderr line of a session command log.
pub const STDERR_MARKER: &[u8; 3] = b"\x02\x02\x02";

/// Writes a string map as its keys only, so values (secrets) never reach logs.
struct RedactedMap<'a>(&'a BTreeMap<String, String>);

impl fmt::Debug for RedactedMap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

/// Error body of the daemon: `{statusCode, message, code?, timestamp, path, method?, source?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorResponse {
    /// HTTP status code.
    pub status_code: u16,
    /// Human-readable message; the SDKs use it as the error text.
    pub message: String,
    /// Daemon error code, one of [`codes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// RFC 3339 time of the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Request method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// `DAYTONA_DAEMON` on newer daemons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// `POST /process/execute` body.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteRequest {
    /// Shell command line.
    pub command: String,
    /// Working directory (default: the sandbox work dir).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envs: Option<BTreeMap<String, String>>,
    /// Timeout in seconds; absent or 0 means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

impl fmt::Debug for ExecuteRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecuteRequest")
            .field("command", &self.command)
            .field("cwd", &self.cwd)
            .field("envs", &self.envs.as_ref().map(RedactedMap))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `POST /process/execute` response: stdout and stderr interleaved in `result`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteResponse {
    /// Exit code (`-1` when the command could not be started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Combined output.
    pub result: String,
}

/// `POST /process/session` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSessionRequest {
    /// Caller-chosen session id.
    pub session_id: String,
}

/// One command run in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Command {
    /// Command id (`cmdId`).
    pub id: String,
    /// The command text as submitted.
    pub command: String,
    /// Exit code; absent while the command runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// A session and its commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Session id.
    pub session_id: String,
    /// Commands in submission order.
    #[serde(default)]
    pub commands: Vec<Command>,
}

/// `POST /process/session/{sessionId}/exec` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionExecuteRequest {
    /// Shell command line.
    pub command: String,
    /// Return `202 {cmdId}` at once instead of waiting for the exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_async: Option<bool>,
    /// Deprecated alias of `runAsync`.
    #[serde(rename = "async", default, skip_serializing_if = "Option::is_none")]
    pub async_: Option<bool>,
    /// Do not echo input sent to the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress_input_echo: Option<bool>,
}

impl SessionExecuteRequest {
    /// Whether the command runs asynchronously (`runAsync` or the deprecated `async`).
    pub fn is_async(&self) -> bool {
        self.run_async.unwrap_or(false) || self.async_.unwrap_or(false)
    }
}

/// Session exec response: sync `200 {cmdId, output, stdout, stderr, exitCode}`, async `202 {cmdId}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionExecuteResponse {
    /// Command id.
    pub cmd_id: String,
    /// Log with `\x01\x01\x01`/`\x02\x02\x02` line markers (or stripped, for old SDKs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Demultiplexed stdout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// Demultiplexed stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// Exit code (sync only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// `GET .../command/{cmdId}/logs` JSON response (SDK ≥ 0.167).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCommandLogsResponse {
    /// Log with line markers.
    #[serde(default)]
    pub output: String,
    /// Demultiplexed stdout.
    #[serde(default)]
    pub stdout: String,
    /// Demultiplexed stderr.
    #[serde(default)]
    pub stderr: String,
}

/// `POST .../command/{cmdId}/input` body.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSendInputRequest {
    /// Bytes (as text) written to the command's stdin.
    pub data: String,
}

impl fmt::Debug for SessionSendInputRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSendInputRequest")
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .finish()
    }
}

/// A file or directory as the daemon describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    /// Base name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether it is a directory.
    pub is_dir: bool,
    /// Go `FileMode` string, e.g. `-rw-r--r--` or `drwxr-xr-x`.
    pub mode: String,
    /// Octal permission bits, e.g. `0644`.
    pub permissions: String,
    /// Numeric owner uid, as a string.
    pub owner: String,
    /// Numeric group gid, as a string.
    pub group: String,
    /// Deprecated modification time in Go `time.String()` layout.
    #[serde(default)]
    pub mod_time: String,
    /// Modification time, RFC 3339.
    #[serde(default)]
    pub modified_at: String,
    /// Full path of the entry (newer daemons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// One line matched by `GET /files/find`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    /// File containing the line.
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// The whole line.
    pub content: String,
}

/// `GET /files/search` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchFilesResponse {
    /// Matching file paths.
    #[serde(default)]
    pub files: Vec<String>,
}

/// `POST /files/replace` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplaceRequest {
    /// Files to edit.
    pub files: Vec<String>,
    /// Literal text to replace.
    pub pattern: String,
    /// Replacement text.
    pub new_value: String,
}

/// Per-file outcome of `POST /files/replace`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplaceResult {
    /// The file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Whether the file was rewritten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /files/bulk-download` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesDownloadRequest {
    /// Paths to download; each gets a `file` or `error` part named by this exact path.
    pub paths: Vec<String>,
}

/// One file written by `POST /files/bulk-upload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedFileBytes {
    /// Destination path as sent.
    pub path: String,
    /// Bytes written.
    pub bytes: u64,
}

/// `POST /files/bulk-upload` response: 200 `{files}`, or 400 `{errors, files}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkUploadResponse {
    /// Files written.
    #[serde(default)]
    pub files: Vec<UploadedFileBytes>,
    /// Per-part failures, as text; present only on 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
}

/// `POST /files/upload-v2` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedFile {
    /// Base name.
    pub name: String,
    /// Destination path.
    pub path: String,
    /// `file`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// `GET /work-dir` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkDirResponse {
    /// The directory commands run in by default.
    pub dir: String,
}

/// `GET /user-home-dir` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserHomeDirResponse {
    /// The sandbox user's home directory.
    pub dir: String,
}

/// `GET /version` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionResponse {
    /// Daemon version.
    pub version: String,
}

/// `POST /git/clone` body. Note the snake_case `commit_id` and `insecure_skip_tls`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitCloneRequest {
    /// Repository URL.
    pub url: String,
    /// Destination path.
    pub path: String,
    /// Branch to check out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Commit to check out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_id: Option<String>,
    /// Username for HTTPS auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password or token for HTTPS auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Shallow-clone depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
    /// Skip TLS verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_tls: Option<bool>,
}

impl fmt::Debug for GitCloneRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitCloneRequest")
            .field("url", &self.url)
            .field("path", &self.path)
            .field("branch", &self.branch)
            .field("commit_id", &self.commit_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("depth", &self.depth)
            .field("insecure_skip_tls", &self.insecure_skip_tls)
            .finish()
    }
}

/// `POST /git/commit` body. Note the snake_case `allow_empty`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitCommitRequest {
    /// Repository path.
    pub path: String,
    /// Commit message.
    pub message: String,
    /// Author name.
    pub author: String,
    /// Author email.
    pub email: String,
    /// Allow a commit with no changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_empty: Option<bool>,
}

/// `POST /git/commit` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitCommitResponse {
    /// New commit hash.
    pub hash: String,
}

/// `POST /git/add` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitAddRequest {
    /// Repository path.
    pub path: String,
    /// Files to stage, relative to the repository.
    pub files: Vec<String>,
}

/// `POST /git/push` and `POST /git/pull` body. Note the snake_case `set_upstream`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitRemoteRequest {
    /// Repository path.
    pub path: String,
    /// Username for HTTPS auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password or token for HTTPS auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Remote name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Branch name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Set the upstream on push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_upstream: Option<bool>,
}

impl fmt::Debug for GitRemoteRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitRemoteRequest")
            .field("path", &self.path)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("remote", &self.remote)
            .field("branch", &self.branch)
            .field("set_upstream", &self.set_upstream)
            .finish()
    }
}

/// `POST /git/init` body. Note the snake_case `initial_branch`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitInitRequest {
    /// Repository path.
    pub path: String,
    /// Create a bare repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bare: Option<bool>,
    /// Name of the first branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_branch: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn command_exit_code_is_absent_while_running() {
        let running = Command {
            id: "c".into(),
            command: "sleep 1".into(),
            exit_code: None,
        };
        assert_eq!(
            serde_json::to_value(&running).unwrap(),
            json!({"id": "c", "command": "sleep 1"})
        );
        let done: Command =
            serde_json::from_value(json!({"id": "c", "command": "x", "exitCode": 3})).unwrap();
        assert_eq!(done.exit_code, Some(3));
    }

    #[test]
    fn session_exec_request_accepts_both_async_spellings() {
        let a: SessionExecuteRequest =
            serde_json::from_value(json!({"command": "x", "async": true})).unwrap();
        assert!(a.is_async());
        let b: SessionExecuteRequest =
            serde_json::from_value(json!({"command": "x", "runAsync": true})).unwrap();
        assert!(b.is_async());
        let c: SessionExecuteRequest = serde_json::from_value(json!({"command": "x"})).unwrap();
        assert!(!c.is_async());
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            json!({"command": "x", "async": true})
        );
    }

    #[test]
    fn execute_request_matches_the_verified_wire_shape_and_redacts_env() {
        let req: ExecuteRequest = serde_json::from_value(
            json!({"command": "echo hi", "timeout": 5, "cwd": "/tmp", "envs": {"X": "s3cret"}}),
        )
        .unwrap();
        assert_eq!(req.timeout, Some(5));
        let dbg = format!("{req:?}");
        assert!(dbg.contains("\"X\""));
        assert!(!dbg.contains("s3cret"));
        let bare = ExecuteRequest {
            command: "ls".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            json!({"command": "ls"})
        );
    }

    #[test]
    fn file_info_uses_camel_case() {
        let info = FileInfo {
            name: "a".into(),
            size: 1,
            is_dir: false,
            mode: "-rw-r--r--".into(),
            permissions: "0644".into(),
            owner: "0".into(),
            group: "0".into(),
            mod_time: "t".into(),
            modified_at: "t".into(),
            path: Some("/a".into()),
        };
        let v = serde_json::to_value(&info).unwrap();
        for key in ["isDir", "modTime", "modifiedAt", "permissions", "path"] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
    }

    #[test]
    fn git_requests_keep_snake_case_and_hide_passwords() {
        let req = GitCloneRequest {
            url: "u".into(),
            path: "p".into(),
            commit_id: Some("abc".into()),
            insecure_skip_tls: Some(true),
            password: Some("hunter2".into()),
            ..Default::default()
        };
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(v["commit_id"], "abc");
        assert_eq!(v["insecure_skip_tls"], true);
        assert!(!format!("{req:?}").contains("hunter2"));
        let push = GitRemoteRequest {
            path: "p".into(),
            set_upstream: Some(true),
            ..Default::default()
        };
        assert_eq!(serde_json::to_value(&push).unwrap()["set_upstream"], true);
    }

    #[test]
    fn error_response_round_trips() {
        let body = json!({"statusCode": 404, "message": "file not found: /p", "code": "FILE_NOT_FOUND",
            "timestamp": "2026-01-01T00:00:00Z", "path": "/files/info", "method": "GET", "source": "DAYTONA_DAEMON"});
        let err: ErrorResponse = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(err.code.as_deref(), Some(codes::FILE_NOT_FOUND));
        assert_eq!(serde_json::to_value(&err).unwrap(), body);
    }
}
