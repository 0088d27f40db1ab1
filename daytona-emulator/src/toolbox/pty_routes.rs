//! PTY routes: `POST/GET /process/pty`, `GET/DELETE /process/pty/{id}`,
//! `POST /process/pty/{id}/resize`, and the WebSockets `/process/pty/{id}/connect` and
//! `/process/pty/create-connect?id=&cols=&rows=&cwd=`.
//!
//! WebSocket protocol (as the v0.205+ daemon): the server selects the
//! `X-Daytona-Pty-Exit-Control` subprotocol when offered and reads the environment from an
//! `X-Daytona-Pty-Envs~<base64url JSON>` token; it sends `{"type":"control","status":"connected"}`
//! first, terminal output as binary frames, and when the shell exits
//! `{"type":"control","status":"exited","exitCode":N,...}` (exit-control clients only) and a
//! close frame: 1000 `{"exitCode":0}`, or 1011 `{"exitCode":N,"exitReason":...}`. Input comes as
//! binary or text frames. A client closing its socket detaches; the shell keeps running until
//! it exits or the session is deleted. Connecting to an unknown session upgrades and closes
//! 1011 with `{"error":"PTY session X not found"}`, which the SDKs report.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::ws::{
    Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{OriginalUri, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use daytona_api::pty::{
    PTY_CLOSE_ERROR, PTY_CLOSE_NORMAL, PTY_ENVS_SUBPROTOCOL_PREFIX, PTY_EXIT_CONTROL_SUBPROTOCOL,
    PtyCloseReason, PtyControlMessage, PtyCreateRequest, PtyCreateResponse, PtyListResponse,
    PtySessionInfo,
};
use daytona_api::toolbox::codes;
use serde::Deserialize;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::error::ApiError;
use crate::faults::WsDrop;
use crate::layout::{CommandExtras, shell_single_quote};
use crate::runtime::pty::{PtyExit, PtyOptions, PtySession};
use crate::state::{AppState, ToolboxTarget};
use crate::toolbox::{SandboxPath, SentFrames, close_socket, parse_json, sandbox_env};

/// Default terminal size, as the SDKs' defaults.
const DEFAULT_COLS: u16 = 80;
const DEFAULT_ROWS: u16 = 24;
/// Close code when the emulator shuts down under a client.
const CLOSE_GOING_AWAY: u16 = 1001;

/// `{sandboxId}/process/pty/{sessionId}`.
#[derive(Debug, Deserialize)]
pub(crate) struct PtyPath {
    #[serde(rename = "sandboxId")]
    sandbox_id: String,
    #[serde(rename = "sessionId")]
    session_id: String,
}

/// Query of `create-connect`.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateConnectQuery {
    id: Option<String>,
    cols: Option<String>,
    rows: Option<String>,
    cwd: Option<String>,
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::daemon(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
}

/// Largest terminal dimension the daemon's REST routes take.
const MAX_DIMENSION: u16 = 1000;

/// The bare `{"error": ...}` 400 of the daemon's PTY routes.
fn pty_bad_request(message: impl Into<String>) -> ApiError {
    ApiError::daemon_bare(StatusCode::BAD_REQUEST, message)
}

/// A PTY route's JSON body; gin's bind error in the bare shape otherwise.
fn parse_pty_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    parse_json(body).map_err(|e| pty_bad_request(e.message))
}

/// Starts (or, lazily, prepares) a PTY session in the sandbox.
fn create_session(
    target: &ToolboxTarget,
    req: PtyCreateRequest,
) -> Result<Arc<PtySession>, ApiError> {
    let id = req
        .id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| pty_bad_request("session ID is required"))?;
    if target.runtime.pty(&id).is_ok() {
        return Err(pty_exists(&id));
    }
    let cols = req.cols.unwrap_or(DEFAULT_COLS);
    let rows = req.rows.unwrap_or(DEFAULT_ROWS);
    for (name, value) in [("cols", cols), ("rows", rows)] {
        if value > MAX_DIMENSION {
            return Err(pty_bad_request(format!(
                "invalid value for {name} - must be less than 1000"
            )));
        }
    }
    let lazy_start = req.lazy_start.unwrap_or(false);
    let (cwd, workdir) = match req.cwd.as_deref().filter(|c| !c.is_empty()) {
        Some(cwd) => {
            let resolved = target.layout.resolve(cwd, true)?;
            (resolved.sandbox, resolved.host)
        }
        None => {
            let home = target.layout.home_dir().to_string();
            let resolved = target.layout.resolve(&home, true)?;
            (home, resolved.host)
        }
    };
    // A shell started now fails in a directory that is not there (a lazy one fails at its
    // first attach instead, see `PtySession::start`).
    if !lazy_start && !workdir.is_dir() {
        return Err(ApiError::daemon_bare(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed to start PTY session",
        ));
    }
    // The daemon stores its `TERM` default in the session's envs, so `GET` shows it.
    let mut envs = req.envs.unwrap_or_default();
    if envs.get("TERM").is_none_or(|t| t.is_empty()) {
        envs.insert("TERM".into(), "xterm-256color".into());
    }
    let mut env = sandbox_env(target);
    env.extend(envs.clone());
    let shell = target.layout.shell().to_string_lossy().into_owned();
    let launch = target.layout.command_spec_with(
        &format!("exec {} -i", shell_single_quote(&shell)),
        Some(&cwd),
        &env,
        &CommandExtras {
            host_pts: true,
            ..CommandExtras::default()
        },
    )?;
    let opts = PtyOptions {
        id: id.clone(),
        cwd,
        workdir,
        envs,
        cols,
        rows,
        lazy_start,
    };
    target
        .runtime
        .create_pty(&id, || PtySession::create(opts, launch))
}

/// `POST /process/pty`: 201 `{sessionId}`; 409 if the id exists.
pub(crate) async fn create(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let req: PtyCreateRequest = parse_pty_json(&body)?;
    let session = create_session(&target, req)?;
    Ok((
        StatusCode::CREATED,
        Json(PtyCreateResponse {
            session_id: session.id().to_string(),
        }),
    )
        .into_response())
}

/// `GET /process/pty`.
pub(crate) async fn list(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
) -> Result<Json<PtyListResponse>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    Ok(Json(PtyListResponse {
        sessions: target.runtime.ptys().iter().map(|s| s.info()).collect(),
    }))
}

/// The daemon's 409 for a PTY id in use.
fn pty_exists(id: &str) -> ApiError {
    ApiError::daemon_bare(
        StatusCode::CONFLICT,
        format!("PTY session with ID '{id}' already exists"),
    )
}

/// The daemon's 404 for an unknown PTY id on `GET` and `DELETE`.
fn pty_not_found() -> ApiError {
    ApiError::daemon_bare(StatusCode::NOT_FOUND, "PTY session not found")
}

/// `GET /process/pty/{id}`: 404 `{"error":"PTY session not found"}` if unknown.
pub(crate) async fn get(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<PtyPath>,
) -> Result<Json<PtySessionInfo>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let session = target
        .runtime
        .pty(&p.session_id)
        .map_err(|_| pty_not_found())?;
    Ok(Json(session.info()))
}

/// `DELETE /process/pty/{id}`: kills the shell and everything it started; 200
/// `{"message":"PTY session deleted"}`, 404 if unknown.
pub(crate) async fn delete(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<PtyPath>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    target
        .runtime
        .delete_pty(&p.session_id)
        .await
        .map_err(|_| pty_not_found())?;
    Ok(Json(
        serde_json::json!({ "message": "PTY session deleted" }),
    ))
}

/// `POST /process/pty/{id}/resize` `{cols, rows}`: the session info. 400 above 1000 (0 and
/// missing values are taken, as the daemon's validator ignores the `binding` range); 410 for
/// an unknown id or a shell that exited (a lazy session not started yet may be resized).
pub(crate) async fn resize(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<PtyPath>,
    body: Bytes,
) -> Result<Json<PtySessionInfo>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let req: ResizeBody = parse_pty_json(&body)?;
    for (name, value) in [("cols", req.cols), ("rows", req.rows)] {
        if value > MAX_DIMENSION {
            return Err(pty_bad_request(format!("{name} must be less than 1000")));
        }
    }
    let session = target.runtime.pty(&p.session_id).map_err(|_| {
        ApiError::daemon_bare(
            StatusCode::GONE,
            format!("PTY session {} not found", p.session_id),
        )
    })?;
    session.resize(req.cols, req.rows)?;
    Ok(Json(session.info()))
}

/// Body of the resize route: Go zero values for missing numbers.
#[derive(Debug, Deserialize)]
struct ResizeBody {
    #[serde(default)]
    cols: u16,
    #[serde(default)]
    rows: u16,
}

/// What the client offered in `Sec-WebSocket-Protocol`.
struct Offer {
    exit_control: bool,
    envs: Option<BTreeMap<String, String>>,
}

fn read_offer(headers: &HeaderMap) -> Result<Offer, ApiError> {
    let mut offer = Offer {
        exit_control: false,
        envs: None,
    };
    let tokens = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim);
    for token in tokens {
        if token == PTY_EXIT_CONTROL_SUBPROTOCOL {
            offer.exit_control = true;
        } else if let Some(encoded) = token.strip_prefix(PTY_ENVS_SUBPROTOCOL_PREFIX) {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded.trim_end_matches('='))
                .map_err(|e| {
                    bad_request(format!("invalid {PTY_ENVS_SUBPROTOCOL_PREFIX} token: {e}"))
                })?;
            let envs: BTreeMap<String, String> = serde_json::from_slice(&raw).map_err(|e| {
                bad_request(format!(
                    "invalid {PTY_ENVS_SUBPROTOCOL_PREFIX} token: not a JSON object of strings: {e}"
                ))
            })?;
            offer.envs = Some(envs);
        }
    }
    Ok(offer)
}

fn require_upgrade(
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<WebSocketUpgrade, ApiError> {
    upgrade.map_err(|e| bad_request(format!("a WebSocket upgrade is required: {e}")))
}

fn parse_dimension(name: &str, raw: Option<&str>) -> Result<Option<u16>, ApiError> {
    raw.filter(|r| !r.is_empty())
        .map(|r| {
            r.parse::<u16>()
                .map_err(|_| bad_request(format!("{name} must be a number up to 1000, got {r:?}")))
        })
        .transpose()
}

/// `GET /process/pty/create-connect` (WebSocket): creates the session and attaches.
pub(crate) async fn create_connect(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<CreateConnectQuery>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let upgrade = require_upgrade(upgrade)?;
    let offer = read_offer(&headers)?;
    let id =
        q.id.filter(|id| !id.trim().is_empty())
            .ok_or_else(|| bad_request("id is required"))?;
    let req = PtyCreateRequest {
        id: Some(id),
        cwd: q.cwd,
        envs: offer.envs,
        cols: parse_dimension("cols", q.cols.as_deref())?,
        rows: parse_dimension("rows", q.rows.as_deref())?,
        lazy_start: Some(false),
    };
    let session = create_session(&target, req)?;
    let drop_rule = state.ws_drop_after(uri.path());
    Ok(upgrade_with(upgrade, offer.exit_control, move |socket| {
        serve(
            socket,
            state,
            target.sandbox_id,
            Some(session),
            String::new(),
            offer.exit_control,
            drop_rule,
        )
    }))
}

/// `GET /process/pty/{id}/connect` (WebSocket): attaches to an existing session.
pub(crate) async fn connect(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<PtyPath>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let upgrade = require_upgrade(upgrade)?;
    let offer = read_offer(&headers)?;
    let session = target.runtime.pty(&p.session_id).ok();
    let drop_rule = state.ws_drop_after(uri.path());
    let id = p.session_id;
    Ok(upgrade_with(upgrade, offer.exit_control, move |socket| {
        serve(
            socket,
            state,
            target.sandbox_id,
            session,
            id,
            offer.exit_control,
            drop_rule,
        )
    }))
}

fn upgrade_with<F, Fut>(upgrade: WebSocketUpgrade, exit_control: bool, serve: F) -> Response
where
    F: FnOnce(WebSocket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let upgrade = if exit_control {
        upgrade.protocols([PTY_EXIT_CONTROL_SUBPROTOCOL])
    } else {
        upgrade
    };
    upgrade.on_upgrade(serve)
}

/// One attached client: output out, input in, until the shell exits or the client leaves.
async fn serve(
    mut socket: WebSocket,
    state: AppState,
    sandbox_id: String,
    session: Option<Arc<PtySession>>,
    requested_id: String,
    exit_control: bool,
    drop_rule: Option<WsDrop>,
) {
    let mut sent = SentFrames::new(drop_rule);
    if sent.must_drop() {
        return;
    }
    let Some(session) = session else {
        let message =
            format!("Failed to connect to PTY session: PTY session {requested_id} not found");
        fail(socket, exit_control, message).await;
        return;
    };
    if let Err(e) = session.start() {
        let message = format!(
            "Failed to connect to PTY session: failed to start PTY session: {}",
            e.message
        );
        fail(socket, exit_control, message).await;
        return;
    }
    if !send_control(&mut socket, &PtyControlMessage::connected(), &mut sent).await {
        return;
    }
    let (history, mut output) = session.attach();
    if !history.is_empty() {
        let len = history.len();
        if socket.send(Message::Binary(history.into())).await.is_err() || sent.record(len) {
            return;
        }
    }
    let mut exit_rx = session.exit_rx();
    let shutdown = state.shutdown_token();
    loop {
        tokio::select! {
            biased;
            chunk = output.recv() => match chunk {
                Ok(bytes) => {
                    let len = bytes.len();
                    if socket.send(Message::Binary(bytes)).await.is_err() || sent.record(len) {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(pty = %session.id(), missed, "a slow pty client missed output");
                }
                // The session is gone (deleted); its exit follows on the watch.
                Err(RecvError::Closed) => {}
            },
            exit = async { exit_rx.wait_for(Option::is_some).await.ok().and_then(|e| e.clone()) } => {
                // What was printed before the exit goes first.
                loop {
                    match output.try_recv() {
                        Ok(bytes) => {
                            let len = bytes.len();
                            if socket.send(Message::Binary(bytes)).await.is_err() || sent.record(len) {
                                return;
                            }
                        }
                        Err(TryRecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    }
                }
                let exit = exit.unwrap_or(PtyExit { code: -1, reason: Some("unknown".into()) });
                finish(socket, exit_control, exit, &mut sent).await;
                return;
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Binary(data))) => {
                    state.record_activity(&sandbox_id);
                    if let Err(e) = session.write(&data).await {
                        tracing::debug!(pty = %session.id(), error = %e, "writing pty input failed");
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    state.record_activity(&sandbox_id);
                    if let Err(e) = session.write(text.as_bytes()).await {
                        tracing::debug!(pty = %session.id(), error = %e, "writing pty input failed");
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                // The client detached; the shell keeps running.
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
            },
            _ = shutdown.cancelled() => {
                close_socket(socket, CLOSE_GOING_AWAY, String::new()).await;
                return;
            }
        }
    }
}

async fn send_control(
    socket: &mut WebSocket,
    message: &PtyControlMessage,
    sent: &mut SentFrames,
) -> bool {
    let text = serde_json::to_string(message).unwrap_or_default();
    let len = text.len();
    socket.send(Message::Text(text.into())).await.is_ok() && !sent.record(len)
}

/// The exit: the `exited` control frame (exit-control clients), then the close frame.
async fn finish(mut socket: WebSocket, exit_control: bool, exit: PtyExit, sent: &mut SentFrames) {
    if exit_control
        && !send_control(
            &mut socket,
            &PtyControlMessage::exited(exit.code, exit.reason.clone()),
            sent,
        )
        .await
    {
        return;
    }
    let code = if exit.code == 0 {
        PTY_CLOSE_NORMAL
    } else {
        PTY_CLOSE_ERROR
    };
    let reason = PtyCloseReason {
        exit_code: Some(exit.code),
        exit_reason: exit.reason,
        error: None,
    };
    close_socket(
        socket,
        code,
        serde_json::to_string(&reason).unwrap_or_default(),
    )
    .await;
}

/// Attaching failed: an `error` control frame (exit-control clients), then close 1011 with
/// `{"error":...}`.
async fn fail(mut socket: WebSocket, exit_control: bool, message: String) {
    if exit_control {
        let text =
            serde_json::to_string(&PtyControlMessage::error(message.clone())).unwrap_or_default();
        if socket.send(Message::Text(text.into())).await.is_err() {
            return;
        }
    }
    let reason = PtyCloseReason {
        exit_code: None,
        exit_reason: None,
        error: Some(message),
    };
    close_socket(
        socket,
        PTY_CLOSE_ERROR,
        serde_json::to_string(&reason).unwrap_or_default(),
    )
    .await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn offers_are_read_from_every_protocol_header() {
        let mut headers = HeaderMap::new();
        let envs = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"A":"1"}"#);
        headers.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(&format!(
                "{PTY_ENVS_SUBPROTOCOL_PREFIX}{envs}, {PTY_EXIT_CONTROL_SUBPROTOCOL}"
            ))
            .unwrap(),
        );
        let offer = read_offer(&headers).unwrap();
        assert!(offer.exit_control);
        assert_eq!(offer.envs.unwrap()["A"], "1");
        let mut bad = HeaderMap::new();
        bad.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("X-Daytona-Pty-Envs~!!!"),
        );
        assert_eq!(
            read_offer(&bad).err().unwrap().status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn query_dimensions_are_parsed() {
        assert_eq!(parse_dimension("cols", Some("0")).unwrap(), Some(0));
        assert!(parse_dimension("cols", Some("abc")).is_err());
        assert_eq!(parse_dimension("cols", Some("")).unwrap(), None);
    }
}
