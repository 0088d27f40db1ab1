//! Error bodies as Daytona sends them: the API's NestJS shape and the daemon's shape.
//!
//! A handler returns [`ApiError`]; its response carries the error as an extension, and the
//! [`shape_errors`] middleware (installed by the server around every route) renders the final
//! body with the request's path, method and a timestamp. The same middleware turns bare error
//! responses that did not come from an `ApiError` (axum extractor rejections, 405s, body-limit
//! 413s) into the right shape, so a client never sees a plain-text error from the emulator.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{SecondsFormat, Utc};

/// Largest bare error body read back to become a message.
const BARE_BODY_LIMIT: usize = 64 * 1024;

/// Which server an error comes from; decides the body shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The control-plane API: `{statusCode, error, message, path, timestamp}`.
    Api,
    /// The in-sandbox daemon: `{statusCode, message, code, timestamp, path, method, source}`.
    Daemon,
    /// The daemon's PTY routes, which answer with gin's bare `{"error": message}`.
    DaemonBare,
}

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human message (the SDKs show it as the error text).
    pub message: String,
    /// Daemon error code such as `FILE_NOT_FOUND`.
    pub code: Option<String>,
    /// API or daemon shape.
    pub source: ErrorSource,
}

impl ApiError {
    /// A control-plane error.
    pub fn api(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            code: None,
            source: ErrorSource::Api,
        }
    }

    /// A daemon (toolbox) error with its code.
    pub fn daemon(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            code: Some(code.to_string()),
            source: ErrorSource::Daemon,
        }
    }

    /// A daemon error in the bare `{"error": message}` shape of its PTY routes.
    pub fn daemon_bare(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            code: None,
            source: ErrorSource::DaemonBare,
        }
    }

    /// Daemon 500 `INTERNAL_SERVER_ERROR`: the emulator itself failed while `context` (its
    /// disk, a process, a terminal), not the request.
    pub fn daemon_internal(context: &str, cause: impl std::fmt::Display) -> Self {
        Self::daemon(
            StatusCode::INTERNAL_SERVER_ERROR,
            daytona_api::toolbox::codes::INTERNAL_SERVER_ERROR,
            format!("{context}: {cause}"),
        )
    }

    /// API 400 (`BadRequestError` / `SandboxError` upstream).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::api(StatusCode::BAD_REQUEST, message)
    }

    /// API 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::api(StatusCode::NOT_FOUND, message)
    }

    /// API 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::api(StatusCode::CONFLICT, message)
    }

    /// API 401 with NestJS's exact message.
    pub fn unauthorized() -> Self {
        Self::api(StatusCode::UNAUTHORIZED, "Unauthorized")
    }

    /// API 500 with NestJS's message for unexpected failures.
    pub fn internal() -> Self {
        Self::api(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An unexpected error occurred.",
        )
    }

    /// The body for a request to `path` (as the client sent it, query included) with `method`.
    pub fn body(&self, method: &str, path: &str) -> serde_json::Value {
        match self.source {
            ErrorSource::Api => serde_json::json!({
                "statusCode": self.status.as_u16(),
                "error": status_text(self.status),
                "message": self.message,
                "path": path,
                "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            }),
            ErrorSource::DaemonBare => serde_json::json!({ "error": self.message }),
            ErrorSource::Daemon => {
                let code = self
                    .code
                    .clone()
                    .unwrap_or_else(|| default_daemon_code(self.status));
                serde_json::json!({
                    "statusCode": self.status.as_u16(),
                    "message": self.message,
                    "code": code,
                    "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
                    "path": daemon_path(path),
                    "method": method,
                    "source": "DAYTONA_DAEMON",
                })
            }
        }
    }

    fn response_with(&self, method: &str, path: &str) -> Response {
        let mut response = (self.status, axum::Json(self.body(method, path))).into_response();
        response.extensions_mut().insert(Rendered);
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}

/// Marks a response whose error body is final.
#[derive(Clone, Copy)]
struct Rendered;

/// Marks an error response that is sent as it is: what Go's `net/http` itself answers (a 416
/// from `http.ServeFile`, say), not one of the daemon's JSON error bodies.
pub(crate) fn verbatim(mut response: Response) -> Response {
    response.extensions_mut().insert(Rendered);
    response
}

/// What Go's `http.Error` answers: `text` (which ends in a newline, as `Fprintln` writes it) as
/// unsniffed plain text, with the `headers` the handler had set, sent as it is.
pub(crate) fn go_http_error(
    status: StatusCode,
    mut headers: HeaderMap,
    text: &'static str,
) -> Response {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    verbatim((status, headers, text).into_response())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Without the middleware (a router used on its own) this body is still complete, only
        // with an empty path; the middleware re-renders it with the request's path and method.
        let mut response = (self.status, axum::Json(self.body("", ""))).into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Node's `STATUS_CODES` text, which NestJS puts in `error`.
pub fn status_text(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Unknown Error")
}

/// The daemon's generic code for a status (`NOT_FOUND`, `BAD_REQUEST`, ...).
fn default_daemon_code(status: StatusCode) -> String {
    match status {
        StatusCode::BAD_REQUEST => "BAD_REQUEST".into(),
        StatusCode::UNAUTHORIZED => "UNAUTHORIZED".into(),
        StatusCode::FORBIDDEN => "FORBIDDEN".into(),
        StatusCode::NOT_FOUND => "NOT_FOUND".into(),
        StatusCode::CONFLICT => "CONFLICT".into(),
        StatusCode::REQUEST_TIMEOUT => "REQUEST_TIMEOUT".into(),
        StatusCode::GONE => "GONE".into(),
        StatusCode::UNPROCESSABLE_ENTITY => "UNPROCESSABLE_ENTITY".into(),
        StatusCode::INTERNAL_SERVER_ERROR => "INTERNAL_SERVER_ERROR".into(),
        other => status_text(other)
            .to_ascii_uppercase()
            .replace([' ', '-'], "_"),
    }
}

/// The path the daemon saw: the proxy strips `/toolbox/{sandboxId}` and the query.
fn daemon_path(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    match path.strip_prefix("/toolbox/") {
        Some(rest) => match rest.find('/') {
            Some(i) => rest[i..].to_string(),
            None => "/".to_string(),
        },
        None => path.to_string(),
    }
}

/// Renders error bodies with the request's path, method and time; shapes bare errors.
pub async fn shape_errors(request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| request.uri().path().to_string());
    let response = next.run(request).await;
    if response.extensions().get::<Rendered>().is_some() {
        return response;
    }
    if let Some(error) = response.extensions().get::<ApiError>().cloned() {
        return keep_headers(response, error.response_with(&method, &path));
    }
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, BARE_BODY_LIMIT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        bare_message(status, &method, &path)
    } else {
        text
    };
    let error = if path.starts_with("/toolbox/") {
        ApiError {
            status,
            message,
            code: None,
            source: ErrorSource::Daemon,
        }
    } else {
        ApiError::api(status, message)
    };
    keep_headers(
        Response::from_parts(parts, Body::empty()),
        error.response_with(&method, &path),
    )
}

/// NestJS's text for a route that does not exist, else the status text.
fn bare_message(status: StatusCode, method: &str, path: &str) -> String {
    match status {
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {
            let path = path.split('?').next().unwrap_or(path);
            format!("Cannot {method} {path}")
        }
        StatusCode::PAYLOAD_TOO_LARGE => "request entity too large".to_string(),
        other => status_text(other).to_string(),
    }
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"))
}

/// The new error response, keeping headers such as `Retry-After` or `Allow` from the old one.
fn keep_headers(old: Response, mut new: Response) -> Response {
    for (name, value) in old.headers() {
        if name == header::CONTENT_TYPE || name == header::CONTENT_LENGTH {
            continue;
        }
        new.headers_mut().insert(name.clone(), value.clone());
    }
    new.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    new
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The listen address is not `host:port`.
    #[error("invalid listen address {addr:?}: {reason}")]
    InvalidAddress {
        /// What was given.
        addr: String,
        /// Why it is wrong.
        reason: String,
    },
    /// Binding the listen socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The data directory cannot be created.
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The public URL is not an `http`/`https` origin.
    #[error("invalid public URL {url:?}: {reason}")]
    InvalidPublicUrl {
        /// What was given.
        url: String,
        /// Why it is wrong.
        reason: String,
    },
    /// A TLS certificate or key file cannot be used.
    #[error("TLS file {path}: {reason}")]
    TlsFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it (never its content).
        reason: String,
    },
    /// TLS cannot be set up with the given or generated certificate.
    #[error("TLS: {0}")]
    Tls(String),
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    /// The thread or runtime of a detached emulator could not be started.
    #[error("cannot start the emulator's thread: {0}")]
    Thread(std::io::Error),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn api_body_has_nest_shape() {
        let body = ApiError::not_found("Sandbox with ID or name x not found")
            .body("GET", "/api/sandbox/x");
        assert_eq!(body["statusCode"], 404);
        assert_eq!(body["error"], "Not Found");
        assert_eq!(body["path"], "/api/sandbox/x");
        assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert!(body.get("source").is_none());
    }

    #[test]
    fn daemon_body_uses_daemon_path_and_source() {
        let body = ApiError::daemon(
            StatusCode::NOT_FOUND,
            "FILE_NOT_FOUND",
            "file not found: /p",
        )
        .body("GET", "/toolbox/abc/files/info?path=/p");
        assert_eq!(body["path"], "/files/info");
        assert_eq!(body["method"], "GET");
        assert_eq!(body["code"], "FILE_NOT_FOUND");
        assert_eq!(body["source"], "DAYTONA_DAEMON");
    }

    #[test]
    fn bare_daemon_body_has_only_the_error() {
        let body = ApiError::daemon_bare(StatusCode::NOT_FOUND, "PTY session not found")
            .body("GET", "/toolbox/abc/process/pty/x");
        assert_eq!(body, serde_json::json!({"error": "PTY session not found"}));
    }

    #[test]
    fn daemon_code_defaults_from_status() {
        let e = ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: "x".into(),
            code: None,
            source: ErrorSource::Daemon,
        };
        assert_eq!(e.body("POST", "/toolbox/a/b")["code"], "PAYLOAD_TOO_LARGE");
    }
}
