//! The toolbox: the in-sandbox daemon's API, served under `/toolbox/{sandboxId}`.
//!
//! [`router`] has the routes (`/process/execute`, `/process/session*`, `/process/pty*` (a real
//! pseudo-terminal), `/process/code-run`, `/process/interpreter/*` (stateful Python contexts),
//! `/git/*`, `/files*`, `/port*`, `/work-dir`, `/user-home-dir`, `/project-dir`, `/version`);
//! every handler first asks
//! [`AppState::toolbox_target`](crate::state::AppState::toolbox_target) for the sandbox, so an
//! unknown or stopped sandbox is answered before anything runs. [`SandboxRuntime`] holds a
//! sandbox's sessions and processes. Wire details (status codes, marker-labelled session logs,
//! SDK-version gating, the multipart download format) follow the Daytona daemon v0.190.0;
//! `CONFORMANCE.md` in the crate goes through them route by route, and deviations are also
//! documented where they are made ([`SandboxRuntime`] for sessions, [`crate::layout`] for paths).

mod code_run;
mod computer_use;
mod file_info;
mod files;
mod git;
mod git_parse;
mod go_fs;
mod interpreter;
mod lsp;
mod ports;
mod process;
mod pty_routes;
mod sdk_version;
mod serve_file;
mod transfer;

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use daytona_api::toolbox::{UserHomeDirResponse, VersionResponse, WorkDirResponse, codes};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::{AppState, ToolboxTarget};

pub use crate::runtime::{RuntimeSnapshot, SandboxRuntime, SessionSnapshot};

/// The daemon version `/version` reports.
pub const DAEMON_VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"), "-emulator");

/// `{sandboxId}` of every toolbox route (captured by the prefix the router is nested under).
#[derive(Debug, Deserialize)]
pub(crate) struct SandboxPath {
    #[serde(rename = "sandboxId")]
    pub(crate) sandbox_id: String,
}

/// Parse a JSON body; a daemon 400 naming what was wrong otherwise.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::daemon(
            StatusCode::BAD_REQUEST,
            codes::INVALID_REQUEST_BODY,
            format!("invalid request body: {e}"),
        )
    })
}

/// The daemon's 400 for a request body whose `field` fails the validator's `required` tag
/// (a missing or empty value), in go-playground's words after `prefix`.
pub(crate) fn missing_field(prefix: &str, request: &str, field: &str) -> ApiError {
    ApiError::daemon(
        StatusCode::BAD_REQUEST,
        codes::INVALID_REQUEST_BODY,
        format!(
            "{prefix}Key: '{request}.{field}' Error:Field validation for '{field}' failed on \
             the 'required' tag"
        ),
    )
}

/// The daemon's check of `envs` names (`^[A-Za-z_][A-Za-z0-9_]*$`): a 400 naming the first
/// bad one.
pub(crate) fn check_env_keys<'a>(
    keys: impl IntoIterator<Item = &'a String>,
) -> Result<(), ApiError> {
    let valid = |key: &str| {
        let mut bytes = key.bytes();
        bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    match keys.into_iter().find(|k| !valid(k)) {
        Some(key) => Err(ApiError::daemon(
            StatusCode::BAD_REQUEST,
            codes::BAD_REQUEST,
            format!("invalid environment variable name: '{key}'"),
        )),
        None => Ok(()),
    }
}

/// The environment a sandbox's processes start with: its env vars, and its user as `USER` and
/// `LOGNAME`.
pub(crate) fn sandbox_env(target: &ToolboxTarget) -> BTreeMap<String, String> {
    let mut env = target.env.clone();
    if !target.user.is_empty() {
        env.insert("USER".into(), target.user.clone());
        env.insert("LOGNAME".into(), target.user.clone());
    }
    env
}

/// The toolbox routes, to be nested at `/toolbox/{sandboxId}`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/process/execute", post(process::execute))
        .route(
            "/process/session",
            get(process::list_sessions).post(process::create_session),
        )
        .route(
            "/process/session/{sessionId}",
            get(process::get_session).delete(process::delete_session),
        )
        .route(
            "/process/session/entrypoint/logs",
            get(process::entrypoint_logs),
        )
        .route(
            "/process/session/{sessionId}/exec",
            post(process::session_exec),
        )
        .route(
            "/process/session/{sessionId}/command/{commandId}",
            get(process::get_command),
        )
        .route(
            "/process/session/{sessionId}/command/{commandId}/logs",
            get(process::command_logs),
        )
        .route(
            "/process/session/{sessionId}/command/{commandId}/input",
            post(process::send_input),
        )
        .route("/process/code-run", post(code_run::code_run))
        .route(
            "/process/interpreter/context",
            get(interpreter::list_contexts).post(interpreter::create_context),
        )
        .route(
            "/process/interpreter/context/{id}",
            delete(interpreter::delete_context),
        )
        .route("/process/interpreter/execute", get(interpreter::execute))
        .route(
            "/process/pty",
            get(pty_routes::list).post(pty_routes::create),
        )
        .route(
            "/process/pty/create-connect",
            get(pty_routes::create_connect),
        )
        .route(
            "/process/pty/{sessionId}",
            get(pty_routes::get).delete(pty_routes::delete),
        )
        .route("/process/pty/{sessionId}/resize", post(pty_routes::resize))
        .route("/process/pty/{sessionId}/connect", get(pty_routes::connect))
        .route("/files", get(files::list_files).delete(files::delete_file))
        // The daemon serves the list and delete with and without the trailing slash.
        .route("/files/", get(files::list_files).delete(files::delete_file))
        .route("/files/info", get(files::file_info_route))
        .route("/files/folder", post(files::create_folder))
        .route("/files/move", post(files::move_file))
        .route("/files/permissions", post(files::set_permissions))
        .route("/files/find", get(files::find_in_files))
        .route("/files/search", get(files::search_files))
        .route("/files/replace", post(files::replace_in_files))
        .route("/files/download", get(files::download_file))
        .route("/files/upload", post(files::upload_file))
        .route("/files/upload-v2", post(files::upload_file_v2))
        .route("/files/bulk-upload", post(transfer::bulk_upload))
        .route("/files/bulk-download", post(transfer::bulk_download))
        .route("/git/clone", post(git::clone))
        .route("/git/status", get(git::status))
        .route("/git/add", post(git::add))
        .route("/git/commit", post(git::commit))
        .route(
            "/git/branches",
            get(git::list_branches)
                .post(git::create_branch)
                .delete(git::delete_branch),
        )
        .route("/git/checkout", post(git::checkout))
        .route("/git/push", post(git::push))
        .route("/git/pull", post(git::pull))
        .route("/git/history", get(git::history))
        .route("/git/init", post(git::init))
        .route("/port", get(ports::list))
        .route("/port/{port}/in-use", get(ports::in_use))
        .route("/work-dir", get(work_dir))
        .route("/user-home-dir", get(user_home_dir))
        // The daemon's older name for the home dir, still served.
        .route("/project-dir", get(user_home_dir))
        .route("/version", get(version))
        .merge(computer_use::routes())
        .merge(lsp::routes())
}

/// `GET /work-dir`: where commands run by default (the home dir).
async fn work_dir(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
) -> Result<Json<WorkDirResponse>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    Ok(Json(WorkDirResponse {
        dir: target.layout.home_dir().to_string(),
    }))
}

/// `GET /user-home-dir`.
async fn user_home_dir(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
) -> Result<Json<UserHomeDirResponse>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    Ok(Json(UserHomeDirResponse {
        dir: target.layout.home_dir().to_string(),
    }))
}

/// `GET /version`.
async fn version(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
) -> Result<Json<VersionResponse>, ApiError> {
    state.toolbox_target(&p.sandbox_id)?;
    Ok(Json(VersionResponse {
        version: DAEMON_VERSION.to_string(),
    }))
}

/// What a toolbox WebSocket has sent, against the fault rule (if any) that cuts it.
pub(crate) struct SentFrames {
    frames: usize,
    bytes: usize,
    rule: Option<crate::faults::WsDrop>,
}

impl SentFrames {
    /// Nothing sent yet, on a socket `rule` may cut.
    pub(crate) fn new(rule: Option<crate::faults::WsDrop>) -> Self {
        SentFrames {
            frames: 0,
            bytes: 0,
            rule,
        }
    }

    /// Counts a frame of `len` payload bytes; whether the socket must be cut now.
    pub(crate) fn record(&mut self, len: usize) -> bool {
        self.frames += 1;
        self.bytes += len;
        self.must_drop()
    }

    /// Whether the socket must be cut now (without a close frame).
    pub(crate) fn must_drop(&self) -> bool {
        self.rule
            .is_some_and(|rule| rule.reached(self.frames, self.bytes))
    }
}

/// How long to wait for the client's close reply after our close frame.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// Sends a WebSocket close frame (reason cut to the protocol's 123 bytes), then lingers for
/// the reply. Log follows and PTY connections end this way.
pub(crate) async fn close_socket(
    mut socket: axum::extract::ws::WebSocket,
    code: u16,
    mut reason: String,
) {
    use axum::extract::ws::{CloseFrame, Message};
    if reason.len() > 123 {
        let mut cut = 123;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}
