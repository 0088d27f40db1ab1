//! The stateful code interpreter: `POST/GET /process/interpreter/context`,
//! `DELETE /process/interpreter/context/{id}` and the WebSocket
//! `GET /process/interpreter/execute`, as the v0.190.0 daemon serves them
//! (`toolbox/process/interpreter/controller.go`, `websocket.go`, `repl_client.go`). The
//! contexts and their workers live in [`crate::runtime::interpreter`].
//!
//! Errors of the REST routes are a bare status with an **empty body**: the daemon fails them
//! with gin's `AbortWithError`, which writes the status before its error middleware could add
//! one. An execution's errors are WebSocket close frames with the daemon's codes and reasons:
//! 1002 `failed to read first message` / `invalid JSON payload`, 1008 `code is required` /
//! `timeout must be greater than or equal to 0` / `context not found: <id>`, 1011
//! `failed to get default context: ...`. Its output is one JSON text frame per chunk,
//! `{type, text, name, value, traceback}` with every field present, ending with a `control`
//! chunk (`completed` or `interrupted`), then close 1000, or 4008 when the timeout (default
//! 10 minutes, 0 = none) interrupted or killed the code.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::ws::{
    Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{OriginalUri, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::error::{ApiError, go_http_error, verbatim};
use crate::faults::WsDrop;
use crate::runtime::interpreter::{
    ContextInfo, DEFAULT_CONTEXT, Ending, Execution, InterpreterError, PYTHON,
};
use crate::state::{AppState, ToolboxTarget};
use crate::toolbox::file_info::rfc3339_nano;
use crate::toolbox::sdk_version::OutputFormat;
use crate::toolbox::{SandboxPath, SentFrames, close_socket, sandbox_env};

/// An execution's limit when the request names none (the daemon's default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How long one frame may take to reach the client before it counts as gone (the daemon's
/// `writeWait`).
const WRITE_WAIT: Duration = Duration::from_secs(10);
/// Output chunks queued for the client before the execution waits for it.
const CHUNK_QUEUE: usize = 1024;

const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_PROTOCOL_ERROR: u16 = 1002;
const CLOSE_POLICY_VIOLATION: u16 = 1008;
const CLOSE_INTERNAL: u16 = 1011;
/// The daemon's close code for an execution its timeout stopped.
const CLOSE_TIMEOUT: u16 = 4008;

/// `{sandboxId}/process/interpreter/context/{id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ContextPath {
    #[serde(rename = "sandboxId")]
    sandbox_id: String,
    id: String,
}

#[derive(Debug, Default, Deserialize)]
struct CreateContextRequest {
    cwd: Option<String>,
    language: Option<String>,
}

/// A context on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InterpreterContext {
    id: String,
    cwd: String,
    created_at: String,
    active: bool,
    language: String,
}

impl From<ContextInfo> for InterpreterContext {
    fn from(info: ContextInfo) -> Self {
        InterpreterContext {
            id: info.id,
            cwd: info.cwd,
            created_at: rfc3339_nano(info.created_at),
            active: info.active,
            language: info.language.to_string(),
        }
    }
}

/// The list of contexts on the wire.
#[derive(Debug, Serialize)]
pub(crate) struct ListContextsResponse {
    contexts: Vec<InterpreterContext>,
}

/// The first message of an execution. Absent and `null` fields are left empty, as Go's
/// decoder leaves them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecuteRequest {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    context_id: Option<String>,
    #[serde(default)]
    timeout: Option<i64>,
    #[serde(default)]
    envs: Option<BTreeMap<String, Option<String>>>,
}

/// What gin's `AbortWithError` leaves a client: the status alone.
fn aborted(status: StatusCode) -> Response {
    verbatim(status.into_response())
}

/// The daemon's 500 for a context it could not make or start; why goes to the emulator's log,
/// since the client gets no body.
fn start_failed(error: &InterpreterError) -> Response {
    tracing::warn!(error = %error, "an interpreter context could not start");
    aborted(StatusCode::INTERNAL_SERVER_ERROR)
}

/// `POST /process/interpreter/context` `{cwd?, language?}`: 200 with the context, whose worker
/// is running.
pub(crate) async fn create_context(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    // gin decodes the first JSON value of the body and ignores what follows; `null` leaves
    // the request empty.
    let request = match serde_json::Deserializer::from_slice(&body)
        .into_iter::<Option<CreateContextRequest>>()
        .next()
    {
        Some(Ok(request)) => request.unwrap_or_default(),
        _ => return Ok(aborted(StatusCode::BAD_REQUEST)),
    };
    if request.language.as_deref().unwrap_or(PYTHON) != PYTHON {
        return Ok(aborted(StatusCode::BAD_REQUEST));
    }
    let created = target
        .runtime
        .interpreters()
        .create(request.cwd.as_deref(), sandbox_env(&target))
        .await;
    match created {
        Ok(context) => Ok(Json(InterpreterContext::from(context.info())).into_response()),
        // A working directory outside the sandbox: the emulator's own refusal, explained.
        Err(InterpreterError::Refused(e)) => Err(e),
        Err(e) => Ok(start_failed(&e)),
    }
}

/// `GET /process/interpreter/context`: every context but the default one.
pub(crate) async fn list_contexts(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
) -> Result<Json<ListContextsResponse>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let contexts = target
        .runtime
        .interpreters()
        .list()
        .into_iter()
        .filter(|c| c.id != DEFAULT_CONTEXT)
        .map(InterpreterContext::from)
        .collect();
    Ok(Json(ListContextsResponse { contexts }))
}

/// `DELETE /process/interpreter/context/{id}`: 200 once the worker is dead; 400 for the
/// default context, 404 for an unknown one.
pub(crate) async fn delete_context(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<ContextPath>,
) -> Result<Response, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    if p.id == DEFAULT_CONTEXT {
        return Ok(aborted(StatusCode::BAD_REQUEST));
    }
    match target.runtime.interpreters().delete(&p.id).await {
        Ok(()) => Ok(
            Json(serde_json::json!({"message": "Context deleted successfully"})).into_response(),
        ),
        Err(InterpreterError::NotFound(_)) => Ok(aborted(StatusCode::NOT_FOUND)),
        Err(e) => Ok(start_failed(&e)),
    }
}

/// What gorilla's upgrader answers a request that is no WebSocket handshake.
fn bad_handshake() -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    go_http_error(StatusCode::BAD_REQUEST, headers, "Bad Request\n")
}

/// `GET /process/interpreter/execute` (WebSocket).
pub(crate) async fn execute(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let Ok(upgrade) = upgrade else {
        return Ok(bad_handshake());
    };
    // The daemon echoes the SDK-version subprotocol a browser offers, and selects none else.
    let upgrade = match OutputFormat::from_headers(&headers).ws_protocol {
        Some(protocol) => upgrade.protocols([protocol]),
        None => upgrade,
    };
    let drop_rule = state.ws_drop_after(uri.path());
    Ok(upgrade.on_upgrade(move |socket| serve(socket, state, target, drop_rule)))
}

/// One execution over one socket: the request, then its output, then the close.
async fn serve(
    mut socket: WebSocket,
    state: AppState,
    target: ToolboxTarget,
    drop_rule: Option<WsDrop>,
) {
    let mut sent = SentFrames::new(drop_rule);
    if sent.must_drop() {
        // Fault injection: cut the connection without a close frame.
        return;
    }
    let shutdown = state.shutdown_token();
    let payload = tokio::select! {
        payload = first_message(&mut socket) => payload,
        () = shutdown.cancelled() => {
            close_socket(socket, CLOSE_GOING_AWAY, String::new()).await;
            return;
        }
    };
    let Some(payload) = payload else {
        close_socket(
            socket,
            CLOSE_PROTOCOL_ERROR,
            "failed to read first message".into(),
        )
        .await;
        return;
    };
    let execution = match read_request(&payload) {
        Ok(execution) => execution,
        Err((code, reason)) => {
            close_socket(socket, code, reason).await;
            return;
        }
    };
    let interpreters = target.runtime.interpreters();
    let context = match &execution.context_id {
        None => interpreters
            .default_context(sandbox_env(&target))
            .await
            .map_err(|e| {
                (
                    CLOSE_INTERNAL,
                    format!("failed to get default context: {e}"),
                )
            }),
        // The daemon gives a context whose worker cannot be started again the same answer.
        Some(id) => interpreters
            .get(id)
            .await
            .map_err(|_| (CLOSE_POLICY_VIOLATION, format!("context not found: {id}"))),
    };
    let context = match context {
        Ok(context) => context,
        Err((code, reason)) => {
            close_socket(socket, code, reason).await;
            return;
        }
    };
    // Auto-stop waits while code runs, as the proxy keeps a busy sandbox's activity fresh.
    let _active = state.begin_toolbox_request(&target.sandbox_id);
    let (out, mut chunks) = mpsc::channel(CHUNK_QUEUE);
    let ending = context.enqueue(execution.run, out);
    tracing::debug!(context = context.id(), "interpreter execution queued");
    loop {
        tokio::select! {
            chunk = chunks.recv() => match chunk {
                Some(chunk) => {
                    let text = serde_json::to_string(&chunk).unwrap_or_default();
                    let len = text.len();
                    let delivered = tokio::time::timeout(
                        WRITE_WAIT,
                        socket.send(Message::Text(text.into())),
                    )
                    .await;
                    // A client that is gone or stalled is dropped; the code runs on.
                    if !matches!(delivered, Ok(Ok(()))) {
                        return;
                    }
                    if sent.record(len) {
                        return;
                    }
                }
                // The execution is over (its end is on `ending`).
                None => break,
            },
            // Reading answers the client's pings; whatever it sends is not looked at.
            incoming = socket.recv() => match incoming {
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return,
            },
            () = shutdown.cancelled() => {
                close_socket(socket, CLOSE_GOING_AWAY, String::new()).await;
                return;
            }
        }
    }
    let (code, reason) = match ending.await.unwrap_or(Ending::ContextClosed) {
        Ending::Completed => (CLOSE_NORMAL, String::new()),
        Ending::Interrupted | Ending::Killed => (CLOSE_TIMEOUT, String::new()),
        Ending::WorkerEnded => (CLOSE_GOING_AWAY, "worker process ended".to_string()),
        Ending::ContextClosed => (CLOSE_GOING_AWAY, "context shutdown".to_string()),
        Ending::StartFailed(why) => (CLOSE_INTERNAL, why),
    };
    close_socket(socket, code, reason).await;
}

/// The client's first data frame; `None` if it closed or failed first.
async fn first_message(socket: &mut WebSocket) -> Option<Vec<u8>> {
    loop {
        match socket.recv().await? {
            Ok(Message::Text(text)) => return Some(text.as_bytes().to_vec()),
            Ok(Message::Binary(data)) => return Some(data.to_vec()),
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(Message::Close(_)) | Err(_) => return None,
        }
    }
}

/// A checked execution request.
struct Request {
    context_id: Option<String>,
    run: Execution,
}

/// The first message checked as the daemon checks it; a close code and reason otherwise.
fn read_request(payload: &[u8]) -> Result<Request, (u16, String)> {
    let request = serde_json::from_slice::<Option<ExecuteRequest>>(payload)
        .map_err(|_| (CLOSE_PROTOCOL_ERROR, "invalid JSON payload".to_string()))?
        .unwrap_or_default();
    let code = request.code.unwrap_or_default();
    if code.is_empty() {
        return Err((CLOSE_POLICY_VIOLATION, "code is required".to_string()));
    }
    let timeout = match request.timeout {
        None => Some(DEFAULT_TIMEOUT),
        Some(t) if t < 0 => {
            return Err((
                CLOSE_POLICY_VIOLATION,
                "timeout must be greater than or equal to 0".to_string(),
            ));
        }
        Some(0) => None,
        Some(t) => Some(Duration::from_secs(t.unsigned_abs())),
    };
    let envs = request
        .envs
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name, value.unwrap_or_default()))
        .collect();
    Ok(Request {
        context_id: request.context_id,
        run: Execution {
            code,
            envs,
            timeout,
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn refused(payload: &str) -> (u16, String) {
        read_request(payload.as_bytes()).err().unwrap()
    }

    #[tokio::test]
    async fn a_machine_without_python_gets_the_daemons_bare_500() {
        let error = InterpreterError::NoPython;
        assert!(
            error
                .to_string()
                .starts_with("python3 is not available on this machine"),
            "{error}"
        );
        let response = start_failed(&error);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert!(body.is_empty());
    }

    #[test]
    fn first_messages_are_checked_as_the_daemon_checks_them() {
        assert_eq!(refused("{"), (1002, "invalid JSON payload".into()));
        assert_eq!(refused(r#"{"code":"x","timeout":1.5}"#).0, 1002);
        assert_eq!(refused(r#"{"code":"x","envs":{"A":1}}"#).0, 1002);
        assert_eq!(refused(r#"{"code":"x"} trailing"#).0, 1002);
        assert_eq!(refused("{}"), (1008, "code is required".into()));
        assert_eq!(refused("null"), (1008, "code is required".into()));
        assert_eq!(
            refused(r#"{"code":null}"#),
            (1008, "code is required".into())
        );
        assert_eq!(
            refused(r#"{"code":"x","timeout":-1}"#),
            (1008, "timeout must be greater than or equal to 0".into())
        );
        let ok =
            read_request(br#"{"code":"x","envs":{"A":null,"B":"b"},"contextId":"c"}"#).unwrap();
        assert_eq!(ok.run.timeout, Some(DEFAULT_TIMEOUT));
        assert_eq!(ok.run.envs["A"], "");
        assert_eq!(ok.context_id.as_deref(), Some("c"));
        let none = read_request(br#"{"code":"x","timeout":0}"#).unwrap();
        assert_eq!(none.run.timeout, None);
        let three = read_request(br#"{"code":"x","timeout":3}"#).unwrap();
        assert_eq!(three.run.timeout, Some(Duration::from_secs(3)));
    }
}
