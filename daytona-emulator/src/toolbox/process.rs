//! Process routes: `POST /process/execute` and the session routes, including the
//! `logs?follow=true` WebSocket.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::ws::{
    Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{OriginalUri, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use daytona_api::toolbox::{
    CreateSessionRequest, ExecuteRequest, ExecuteResponse, SessionCommandLogsResponse,
    SessionExecuteRequest, SessionExecuteResponse, SessionSendInputRequest, codes,
};
use serde::Deserialize;

use crate::error::ApiError;
use crate::faults::WsDrop;
use crate::runtime::command_log::{MarkerStripper, demux, strip_markers};
use crate::runtime::session::{ExecMode, SessionCommand, exec_failed};
use crate::state::AppState;
use crate::toolbox::files::bad_request;
use crate::toolbox::sdk_version::OutputFormat;
use crate::toolbox::{
    SandboxPath, SentFrames, check_env_keys, close_socket, missing_field, parse_json, sandbox_env,
};

/// Largest WebSocket frame of log bytes, as the daemon reads them.
const WS_READ_CHUNK: usize = 1024;
/// Bytes of the log file read at a time to cut into frames: a file read per 1 KiB frame (each
/// an open, a seek and a read on the blocking pool) held a 50 MB log to about 5 MB/s.
const LOG_READ_BLOCK: usize = 64 * WS_READ_CHUNK;
/// Normal closure.
const CLOSE_NORMAL: u16 = 1000;
/// Internal error closure.
const CLOSE_INTERNAL: u16 = 1011;

/// `{sandboxId}/process/session/{sessionId}`.
#[derive(Debug, Deserialize)]
pub(crate) struct SessionPath {
    #[serde(rename = "sandboxId")]
    sandbox_id: String,
    #[serde(rename = "sessionId")]
    session_id: String,
}

/// `{sandboxId}/process/session/{sessionId}/command/{commandId}`.
#[derive(Debug, Deserialize)]
pub(crate) struct CommandPath {
    #[serde(rename = "sandboxId")]
    sandbox_id: String,
    #[serde(rename = "sessionId")]
    session_id: String,
    #[serde(rename = "commandId")]
    command_id: String,
}

/// `?follow=` of the logs route.
#[derive(Debug, Deserialize)]
pub(crate) struct LogsQuery {
    follow: Option<String>,
}

/// `POST /process/execute`: run a command line to completion; stdout and stderr interleaved.
pub(crate) async fn execute(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Json<ExecuteResponse>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let req: ExecuteRequest = parse_json(&body)?;
    if req.command.is_empty() {
        return Err(missing_field(
            "invalid request body: ",
            "ExecuteRequest",
            "Command",
        ));
    }
    if req.command.trim().is_empty() {
        return Err(bad_request("command cannot be empty or whitespace-only"));
    }
    check_env_keys(req.envs.iter().flatten().map(|(k, _)| k))?;
    let mut env = sandbox_env(&target);
    env.extend(req.envs.unwrap_or_default());
    let cwd = req.cwd.filter(|c| !c.is_empty());
    if let Some(cwd) = &cwd {
        let host = target.layout.to_host(cwd)?;
        if !tokio::fs::metadata(&host).await.is_ok_and(|m| m.is_dir()) {
            // What the daemon answers when it cannot start the command in that directory.
            return Ok(Json(ExecuteResponse {
                exit_code: Some(-1),
                result: format!("chdir {cwd}: no such file or directory"),
            }));
        }
    }
    // Same line as the command, so the shell's error messages keep their line numbers.
    let script = format!("exec 2>&1; {}", req.command);
    let prepared = target.layout.command_spec(&script, cwd.as_deref(), &env)?;
    let timeout = req.timeout.filter(|t| *t > 0).map(Duration::from_secs);
    let outcome = match target.runtime.run_foreground(prepared, timeout).await {
        Ok(o) => o,
        Err(e) => {
            return Ok(Json(ExecuteResponse {
                exit_code: Some(-1),
                result: e.to_string(),
            }));
        }
    };
    if outcome.result.timed_out {
        return Err(ApiError::daemon(
            StatusCode::REQUEST_TIMEOUT,
            codes::PROCESS_EXECUTION_TIMEOUT,
            "command execution timeout",
        ));
    }
    // Anything on stderr escaped the `exec 2>&1` (a syntax error on the first line).
    let mut result = outcome.result.stdout;
    result.push_str(&outcome.result.stderr);
    Ok(Json(ExecuteResponse {
        exit_code: Some(outcome.result.exit_code),
        result,
    }))
}

/// The id the daemon keeps for the image entrypoint's session: it cannot be created, deleted,
/// run in or written to through the session routes.
const ENTRYPOINT_SESSION: &str = "entrypoint";

/// The daemon's 400 for a session route used on the entrypoint session.
fn entrypoint_refused(session_id: &str, what: &str) -> Result<(), ApiError> {
    if session_id == ENTRYPOINT_SESSION {
        return Err(bad_request(what));
    }
    Ok(())
}

/// `POST /process/session`: 201; 409 if the id exists; 400 for an empty or reserved id.
pub(crate) async fn create_session(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let req: CreateSessionRequest = parse_json(&body)?;
    if req.session_id.is_empty() {
        return Err(missing_field("", "CreateSessionRequest", "SessionId"));
    }
    entrypoint_refused(
        &req.session_id,
        "provided session ID is reserved and cannot be created/overridden",
    )?;
    target.runtime.create_session(&req.session_id)?;
    Ok(StatusCode::CREATED)
}

/// `GET /process/session`.
pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
) -> Result<Json<Vec<daytona_api::toolbox::Session>>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    Ok(Json(
        target
            .runtime
            .sessions()
            .iter()
            .map(|s| s.to_dto())
            .collect(),
    ))
}

/// `GET /process/session/{sessionId}`.
pub(crate) async fn get_session(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SessionPath>,
) -> Result<Json<daytona_api::toolbox::Session>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    Ok(Json(target.runtime.session(&p.session_id)?.to_dto()))
}

/// `DELETE /process/session/{sessionId}`: 204; kills the session's processes.
pub(crate) async fn delete_session(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SessionPath>,
) -> Result<StatusCode, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    entrypoint_refused(&p.session_id, "can't delete entrypoint session")?;
    target.runtime.delete_session(&p.session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /process/session/{sessionId}/exec`: sync 200 with the output, async 202 `{cmdId}`.
pub(crate) async fn session_exec(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SessionPath>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    entrypoint_refused(&p.session_id, "can't execute command in entrypoint session")?;
    let req: SessionExecuteRequest = parse_json(&body)?;
    // The body is checked before the session is looked up, as in the daemon.
    if req.command.is_empty() {
        return Err(missing_field(
            "invalid request body: ",
            "SessionExecuteRequest",
            "Command",
        ));
    }
    if req.command.trim().is_empty() {
        return Err(bad_request("command cannot be empty"));
    }
    let session = target
        .runtime
        .session(&p.session_id)
        .map_err(|e| exec_failed(&e.message))?;
    let run_async = req.is_async();
    let mode = ExecMode {
        run_async,
        echo_input: !req.suppress_input_echo.unwrap_or(false),
    };
    let cmd = target
        .runtime
        .exec(&session, &req.command, mode, sandbox_env(&target))?;
    if run_async {
        return Ok((
            StatusCode::ACCEPTED,
            Json(SessionExecuteResponse {
                cmd_id: cmd.id().to_string(),
                ..Default::default()
            }),
        )
            .into_response());
    }
    let Some(exit_code) = cmd.wait(session.ended()).await else {
        return Err(exec_failed("session cancelled"));
    };
    let log = cmd
        .log()
        .read_all()
        .await
        .map_err(|e| bad_request(format!("failed to read log file: {e}")))?;
    let format = OutputFormat::from_headers(&headers);
    let mut response = SessionExecuteResponse {
        cmd_id: cmd.id().to_string(),
        exit_code: Some(exit_code),
        ..Default::default()
    };
    if format.combined {
        response.output = Some(String::from_utf8_lossy(&strip_markers(&log)).into_owned());
    } else {
        response.output = Some(String::from_utf8_lossy(&log).into_owned());
        if !format.skip_demux {
            let (out, err) = demux(&log);
            response.stdout = Some(String::from_utf8_lossy(&out).into_owned());
            response.stderr = Some(String::from_utf8_lossy(&err).into_owned());
        }
    }
    Ok(Json(response).into_response())
}

/// `GET /process/session/{sessionId}/command/{commandId}`: `exitCode` absent while running.
pub(crate) async fn get_command(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<CommandPath>,
) -> Result<Json<daytona_api::toolbox::Command>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let session = target.runtime.session(&p.session_id)?;
    Ok(Json(session.command(&p.command_id)?.to_dto()))
}

/// `POST /process/session/{sessionId}/command/{commandId}/input`: 204, 410 once finished.
pub(crate) async fn send_input(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<CommandPath>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    entrypoint_refused(&p.session_id, "can't send input to entrypoint session")?;
    let req: SessionSendInputRequest = parse_json(&body)?;
    if req.data.is_empty() {
        return Err(missing_field("", "SessionSendInputRequest", "Data"));
    }
    let session = target.runtime.session(&p.session_id)?;
    let cmd = session.command(&p.command_id)?;
    cmd.send_input(&session, req.data.as_bytes()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The command the daemon runs the image entrypoint as, in [`ENTRYPOINT_SESSION`].
const ENTRYPOINT_COMMAND: &str = "entrypoint_command";

/// `GET /process/session/entrypoint/logs`: the logs route for the entrypoint's command. An
/// emulated sandbox runs no image entrypoint, so this answers what the daemon answers in a
/// sandbox without one (404 `session not found`).
pub(crate) async fn entrypoint_logs(
    state: State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    query: Query<LogsQuery>,
    uri: OriginalUri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let path = CommandPath {
        sandbox_id: p.sandbox_id,
        session_id: ENTRYPOINT_SESSION.to_string(),
        command_id: ENTRYPOINT_COMMAND.to_string(),
    };
    command_logs(state, UrlPath(path), query, uri, headers, upgrade).await
}

/// `GET .../command/{commandId}/logs`: the log so far (JSON or text by SDK version), or with a
/// WebSocket upgrade, the log streamed as binary frames until the command ends (close 1000).
pub(crate) async fn command_logs(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<CommandPath>,
    Query(q): Query<LogsQuery>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let session = target.runtime.session(&p.session_id)?;
    let cmd = session.command(&p.command_id)?;
    let format = OutputFormat::from_headers(&headers);
    let follow = q.follow.as_deref() == Some("true");
    let wants_upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if wants_upgrade {
        let upgrade = upgrade.map_err(|e| bad_request(format!("websocket upgrade failed: {e}")))?;
        let drop_rule = state.ws_drop_after(uri.path());
        let upgrade = match &format.ws_protocol {
            // Echo the version subprotocol a browser offered; select none otherwise (Node's
            // `ws` fails if a server selects a protocol it did not offer).
            Some(proto) => upgrade.protocols([proto.clone()]),
            None => upgrade,
        };
        return Ok(upgrade.on_upgrade(move |socket| async move {
            stream_log(socket, cmd, format.combined, follow, drop_rule).await;
        }));
    }
    let log = cmd
        .log()
        .read_all()
        .await
        .map_err(|e| bad_request(format!("failed to read log file: {e}")))?;
    if format.combined || format.skip_demux {
        let text = if format.combined {
            strip_markers(&log)
        } else {
            log
        };
        return Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            String::from_utf8_lossy(&text).into_owned(),
        )
            .into_response());
    }
    let (out, err) = demux(&log);
    Ok(Json(SessionCommandLogsResponse {
        output: String::from_utf8_lossy(&log).into_owned(),
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
    .into_response())
}

/// Send the log from the start in frames of at most 1 KiB (not aligned to markers), then, once
/// the command has ended and everything was sent (or at once without `follow`), close 1000.
async fn stream_log(
    mut socket: WebSocket,
    cmd: Arc<SessionCommand>,
    combined: bool,
    follow: bool,
    drop_rule: Option<WsDrop>,
) {
    let mut sent = SentFrames::new(drop_rule);
    if sent.must_drop() {
        // Fault injection: cut the connection without a close frame.
        return;
    }
    let mut progress_rx = cmd.log().subscribe();
    let mut stripper = combined.then(MarkerStripper::default);
    let mut offset = 0u64;
    loop {
        let progress = *progress_rx.borrow_and_update();
        if offset < progress.len {
            let block = match cmd.log().read_at(offset, LOG_READ_BLOCK).await {
                Ok(c) if !c.is_empty() => c,
                Ok(_) => {
                    tracing::warn!("command log shorter than published");
                    close_socket(socket, CLOSE_INTERNAL, String::new()).await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading a command log failed");
                    close_socket(socket, CLOSE_INTERNAL, String::new()).await;
                    return;
                }
            };
            offset += block.len() as u64;
            let block = bytes::Bytes::from(block);
            for at in (0..block.len()).step_by(WS_READ_CHUNK) {
                let chunk = block.slice(at..block.len().min(at + WS_READ_CHUNK));
                let payload = match stripper.as_mut() {
                    Some(s) => bytes::Bytes::from(s.push(&chunk)),
                    None => chunk,
                };
                if payload.is_empty() {
                    continue;
                }
                let len = payload.len();
                if socket.send(Message::Binary(payload)).await.is_err() {
                    return;
                }
                if sent.record(len) {
                    return;
                }
            }
            continue;
        }
        if progress.done || !follow {
            if let Some(rest) = stripper.as_mut().map(MarkerStripper::finish)
                && !rest.is_empty()
                && socket.send(Message::Binary(rest.into())).await.is_err()
            {
                return;
            }
            close_socket(socket, CLOSE_NORMAL, String::new()).await;
            return;
        }
        tokio::select! {
            changed = progress_rx.changed() => {
                if changed.is_err() {
                    // The command is gone with its session; what was sent is all there is.
                    close_socket(socket, CLOSE_NORMAL, String::new()).await;
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                // Client frames carry nothing for us.
                Some(Ok(_)) => {}
            },
        }
    }
}
