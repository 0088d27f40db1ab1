//! Cross-cutting layers: the request log, fault injection, authentication and toolbox
//! activity tracking. None of them applies to `/_emulator/...` (the test control API).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::conn::ConnHandle;
use crate::error::{ApiError, ErrorSource};
use crate::faults::FaultAction;
use crate::state::AppState;

/// JSON bodies up to this size are copied into the request log.
const LOGGED_BODY_LIMIT: usize = 1024 * 1024;

/// Prefix of the test control API.
pub(crate) const CONTROL_PREFIX: &str = "/_emulator";

fn is_control(path: &str) -> bool {
    path == CONTROL_PREFIX || path.starts_with("/_emulator/")
}

/// The sandbox id of a `/toolbox/{id}/...` path.
pub(crate) fn toolbox_sandbox_id(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/toolbox/")?;
    let id = rest.split('/').next().unwrap_or(rest);
    (!id.is_empty()).then_some(id)
}

/// Records every request (and later its status) in the request log.
pub(crate) async fn log_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    if is_control(&path) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
    let small = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n <= LOGGED_BODY_LIMIT);
    let (body, logged) = if is_json && small {
        match axum::body::to_bytes(body, LOGGED_BODY_LIMIT).await {
            Ok(bytes) => {
                let logged = serde_json::from_slice(&bytes).ok();
                (Body::from(bytes), logged)
            }
            Err(e) => {
                let seq = state.request_log().begin(
                    parts.method.as_str(),
                    &path,
                    parts.uri.query(),
                    &parts.headers,
                    None,
                );
                let error = ApiError::bad_request(format!("Cannot read request body: {e}"));
                state.request_log().set_status(seq, error.status.as_u16());
                return error.into_response();
            }
        }
    } else {
        (body, None)
    };
    let seq = state.request_log().begin(
        parts.method.as_str(),
        &path,
        parts.uri.query(),
        &parts.headers,
        logged,
    );
    let response = next.run(Request::from_parts(parts, body)).await;
    state
        .request_log()
        .set_status(seq, response.status().as_u16());
    response
}

/// Applies the first matching fault rule.
pub(crate) async fn inject_faults(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    if is_control(&path) {
        return next.run(request).await;
    }
    let Some(action) = state.take_http_fault(request.method().as_str(), &path) else {
        return next.run(request).await;
    };
    tracing::debug!(%path, ?action, "fault injected");
    match action {
        FaultAction::Status {
            status,
            message,
            retry_after,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = message.unwrap_or_else(|| match status {
                StatusCode::TOO_MANY_REQUESTS => {
                    "ThrottlerException: Too Many Requests".to_string()
                }
                other => format!("Injected fault: {}", crate::error::status_text(other)),
            });
            let error = if toolbox_sandbox_id(&path).is_some() {
                ApiError {
                    status,
                    message,
                    code: None,
                    source: ErrorSource::Daemon,
                }
            } else {
                ApiError::api(status, message)
            };
            let mut response = error.into_response();
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
        FaultAction::Reset => match request.extensions().get::<ConnHandle>() {
            Some(conn) => {
                conn.abort();
                // The connection task drops this request (and the socket) as soon as it sees
                // the abort; nothing is ever answered.
                std::future::pending::<Response>().await
            }
            None => ApiError::api(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reset fault: this router is not served by the emulator's own server",
            )
            .into_response(),
        },
        FaultAction::Delay { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            next.run(request).await
        }
        FaultAction::Hang => {
            // Until the client gives up; at shutdown, answer so connections can close.
            state.shutdown_token().cancelled().await;
            ApiError::api(
                StatusCode::SERVICE_UNAVAILABLE,
                "The emulator is shutting down",
            )
            .into_response()
        }
        // WebSocket drops are consulted by the WebSocket handlers, never taken here.
        FaultAction::DropWebSocket { .. } => next.run(request).await,
    }
}

/// `Authorization: Bearer <key>` on `/api` (except socket.io, which authenticates in its
/// CONNECT packet) and `/toolbox`; the toolbox also takes the sandbox's preview token in
/// `X-Daytona-Preview-Token` or `?DAYTONA_SANDBOX_AUTH_KEY=`.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !state.auth_required() {
        return next.run(request).await;
    }
    let path = request.uri().path();
    let guarded = (path == "/api" || path.starts_with("/api/")) && !is_socketio(path)
        || path.starts_with("/toolbox/");
    if !guarded {
        return next.run(request).await;
    }
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    if bearer.is_some() && state.api_key_matches(bearer) {
        return next.run(request).await;
    }
    if let Some(id) = toolbox_sandbox_id(path)
        && let Some(expected) = state.preview_token(id)
    {
        let header_token = request
            .headers()
            .get("x-daytona-preview-token")
            .and_then(|v| v.to_str().ok());
        let query_token =
            url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "DAYTONA_SANDBOX_AUTH_KEY")
                .map(|(_, v)| v.into_owned());
        if header_token == Some(expected.as_str()) || query_token.as_deref() == Some(&expected) {
            return next.run(request).await;
        }
    }
    ApiError::unauthorized().into_response()
}

fn is_socketio(path: &str) -> bool {
    path == "/api/socket.io" || path.starts_with("/api/socket.io/")
}

/// Keeps a toolbox request counted as in flight (auto-stop waits) until its response is ready.
pub(crate) async fn track_toolbox_activity(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let guard =
        toolbox_sandbox_id(request.uri().path()).and_then(|id| state.begin_toolbox_request(id));
    let response = next.run(request).await;
    drop(guard);
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn toolbox_ids_come_from_the_path() {
        assert_eq!(toolbox_sandbox_id("/toolbox/abc/files"), Some("abc"));
        assert_eq!(toolbox_sandbox_id("/toolbox/abc"), Some("abc"));
        assert_eq!(toolbox_sandbox_id("/toolbox/"), None);
        assert_eq!(toolbox_sandbox_id("/api/sandbox"), None);
    }
}
