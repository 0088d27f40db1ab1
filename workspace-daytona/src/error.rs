//! [`DaytonaError`]: every way a Daytona call can fail, typed by HTTP status and daemon code.

use std::fmt;
use std::time::Duration;

use workspace_core::{SandboxError, TimeoutPhase};

/// What a Daytona error response said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDetails {
    /// HTTP status.
    pub status: u16,
    /// The daemon's error code (`FILE_NOT_FOUND`, `PROCESS_EXECUTION_TIMEOUT`, …); the control
    /// plane rarely sends one.
    pub code: Option<String>,
    /// The human message: the body's `message`, else its `error`, else the body text, else the
    /// status reason.
    pub message: String,
    /// Which component answered, when the body says (`DAYTONA_DAEMON`, `DAYTONA_PROXY`, …).
    pub source: Option<String>,
}

impl fmt::Display for ErrorDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {}", self.message, self.status)?;
        if let Some(code) = &self.code {
            write!(f, ", {code}")?;
        }
        f.write_str(")")
    }
}

/// Everything that can go wrong talking to Daytona.
///
/// HTTP error answers are classified first by the daemon's `code` (so a 404 `FILE_NOT_FOUND`
/// is [`FileNotFound`](Self::FileNotFound), not [`NotFound`](Self::NotFound)), then by status;
/// every such variant keeps the [`ErrorDetails`]. Converts into
/// [`workspace_core::SandboxError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaytonaError {
    /// 400 (and `BAD_REQUEST`/`INVALID_REQUEST_BODY`/`INVALID_FILE_PATH`): the request was invalid.
    #[error("bad request: {0}")]
    BadRequest(ErrorDetails),
    /// 401: the credentials were missing or rejected.
    #[error("unauthorized: {0}")]
    Unauthorized(ErrorDetails),
    /// 403 (and `FILE_ACCESS_DENIED`): not allowed.
    #[error("forbidden: {0}")]
    Forbidden(ErrorDetails),
    /// 404 for anything but a file: a sandbox, session, command, … does not exist.
    #[error("not found: {0}")]
    NotFound(ErrorDetails),
    /// `FILE_NOT_FOUND`: a path in the sandbox does not exist.
    #[error("file not found: {0}")]
    FileNotFound(ErrorDetails),
    /// 409: conflicts with the current state (a name taken, a session that exists).
    #[error("conflict: {0}")]
    Conflict(ErrorDetails),
    /// 410 (and `SESSION_ENDED`, `COMMAND_ALREADY_COMPLETED`): the thing is gone for good.
    #[error("gone: {0}")]
    Gone(ErrorDetails),
    /// 422: understood but refused.
    #[error("unprocessable: {0}")]
    UnprocessableEntity(ErrorDetails),
    /// 408, 504, `PROCESS_EXECUTION_TIMEOUT` or `REQUEST_TIMEOUT`: the server gave up waiting
    /// (for a command with a timeout: the command ran out of time and was killed).
    #[error("timed out: {0}")]
    Timeout(ErrorDetails),
    /// 429: slow down.
    #[error("rate limited{}: {details}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    RateLimited {
        /// What the server said.
        details: ErrorDetails,
        /// The `Retry-After` the server sent, if any.
        retry_after: Option<Duration>,
    },
    /// 502.
    #[error("bad gateway: {0}")]
    BadGateway(ErrorDetails),
    /// 503.
    #[error("service unavailable: {0}")]
    ServiceUnavailable(ErrorDetails),
    /// 500 and other 5xx statuses not named above.
    #[error("server error: {0}")]
    Server(ErrorDetails),
    /// Any other non-success status.
    #[error("unexpected response: {0}")]
    Http(ErrorDetails),

    /// The connection could not be established; the server never saw the request.
    #[error("cannot connect to {endpoint}: {message}")]
    Connect {
        /// Scheme, host and port (no path, no credentials).
        endpoint: String,
        /// Why.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The connection failed after the request was (perhaps) sent: reset, closed early, or the
    /// response body broke off. Whether the server acted on it is unknown.
    #[error("connection failed during {operation}: {message}")]
    Transport {
        /// The operation, e.g. `process.execute`.
        operation: &'static str,
        /// Why.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The client's own deadline for one request passed.
    #[error("{operation} got no response within {after:?}")]
    RequestTimeout {
        /// The operation.
        operation: &'static str,
        /// The deadline.
        after: Duration,
    },
    /// A sandbox did not reach the awaited state in time.
    #[error("sandbox {sandbox_id} did not become {target} within {after:?} (last state: {})", last_state.as_deref().unwrap_or("unknown"))]
    WaitTimeout {
        /// The sandbox.
        sandbox_id: String,
        /// The awaited state, e.g. `started`.
        target: &'static str,
        /// How long was waited.
        after: Duration,
        /// The state seen last.
        last_state: Option<String>,
    },
    /// A sandbox entered `error` or `build_failed` while being waited for.
    #[error("sandbox {sandbox_id} failed with state {state}: {}", reason.as_deref().unwrap_or("no reason given"))]
    SandboxFailed {
        /// The sandbox.
        sandbox_id: String,
        /// The failure state.
        state: String,
        /// The server's `errorReason`.
        reason: Option<String>,
    },
    /// A snapshot or volume entered a failure state (`error`, `build_failed`) while being
    /// waited for.
    #[error("{kind} {id} failed with state {state}: {}", reason.as_deref().unwrap_or("no reason given"))]
    ResourceFailed {
        /// `snapshot` or `volume`.
        kind: &'static str,
        /// Its name or id.
        id: String,
        /// The failure state.
        state: String,
        /// The server's `errorReason`.
        reason: Option<String>,
    },
    /// A success response whose body was not what the API specifies.
    #[error("unexpected response body from {operation}: {message}")]
    Decode {
        /// The operation.
        operation: &'static str,
        /// What was wrong.
        message: String,
    },
    /// A bulk download answered without any part for a requested path.
    #[error("no data received for file {path}")]
    MissingFile {
        /// The requested sandbox path.
        path: String,
    },
    /// A WebSocket could not be opened or failed at the protocol level.
    #[error("websocket error during {operation}: {message}")]
    WebSocket {
        /// The operation.
        operation: &'static str,
        /// Why.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// No credentials were configured.
    #[error("no Daytona credentials: set {variables}")]
    MissingCredentials {
        /// The variables to set.
        variables: &'static str,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration `{field}`: {reason}")]
    InvalidConfig {
        /// The setting or environment variable.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// An argument is invalid; caught before anything was sent.
    #[error("invalid argument `{field}`: {reason}")]
    InvalidArgument {
        /// The argument.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Local file I/O failed (upload source, download destination).
    #[error("i/o error while {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = DaytonaError> = std::result::Result<T, E>;

impl DaytonaError {
    /// Builds the typed error for an HTTP error answer.
    ///
    /// `body` is the raw response body; `retry_after` the parsed `Retry-After` header.
    ///
    /// ```
    /// use workspace_daytona::DaytonaError;
    /// let e = DaytonaError::from_response(404, br#"{"statusCode":404,"code":"FILE_NOT_FOUND","message":"file not found: /x"}"#, None);
    /// assert!(matches!(e, DaytonaError::FileNotFound(ref d) if d.message == "file not found: /x"));
    /// let e = DaytonaError::from_response(404, br#"{"statusCode":404,"error":"Not Found","message":"Sandbox with ID or name x not found"}"#, None);
    /// assert!(matches!(e, DaytonaError::NotFound(_)));
    /// ```
    pub fn from_response(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        Self::from_details(parse_error_body(status, body), retry_after)
    }

    /// Classifies already-parsed details.
    pub fn from_details(details: ErrorDetails, retry_after: Option<Duration>) -> Self {
        match details.code.as_deref() {
            Some("FILE_NOT_FOUND") => return DaytonaError::FileNotFound(details),
            Some("FILE_ACCESS_DENIED") => return DaytonaError::Forbidden(details),
            Some("PROCESS_EXECUTION_TIMEOUT") | Some("REQUEST_TIMEOUT") => {
                return DaytonaError::Timeout(details);
            }
            Some("SESSION_ENDED") | Some("COMMAND_ALREADY_COMPLETED") => {
                return DaytonaError::Gone(details);
            }
            _ => {}
        }
        match details.status {
            400 => DaytonaError::BadRequest(details),
            401 => DaytonaError::Unauthorized(details),
            403 => DaytonaError::Forbidden(details),
            404 => DaytonaError::NotFound(details),
            408 | 504 => DaytonaError::Timeout(details),
            409 => DaytonaError::Conflict(details),
            410 => DaytonaError::Gone(details),
            422 => DaytonaError::UnprocessableEntity(details),
            429 => DaytonaError::RateLimited {
                details,
                retry_after,
            },
            502 => DaytonaError::BadGateway(details),
            503 => DaytonaError::ServiceUnavailable(details),
            500..=599 => DaytonaError::Server(details),
            _ => DaytonaError::Http(details),
        }
    }

    /// The server's answer, for the HTTP variants.
    pub fn details(&self) -> Option<&ErrorDetails> {
        match self {
            DaytonaError::BadRequest(d)
            | DaytonaError::Unauthorized(d)
            | DaytonaError::Forbidden(d)
            | DaytonaError::NotFound(d)
            | DaytonaError::FileNotFound(d)
            | DaytonaError::Conflict(d)
            | DaytonaError::Gone(d)
            | DaytonaError::UnprocessableEntity(d)
            | DaytonaError::Timeout(d)
            | DaytonaError::BadGateway(d)
            | DaytonaError::ServiceUnavailable(d)
            | DaytonaError::Server(d)
            | DaytonaError::Http(d) => Some(d),
            DaytonaError::RateLimited { details, .. } => Some(details),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        self.details().map(|d| d.status)
    }

    /// The daemon's error code, when it sent one.
    pub fn code(&self) -> Option<&str> {
        self.details().and_then(|d| d.code.as_deref())
    }

    /// Whether this is a 404 of any kind (sandbox or file).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            DaytonaError::NotFound(_) | DaytonaError::FileNotFound(_)
        )
    }

    /// Whether some deadline (server, client, or a wait) passed.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            DaytonaError::Timeout(_)
                | DaytonaError::RequestTimeout { .. }
                | DaytonaError::WaitTimeout { .. }
        )
    }

    /// Whether the same call might succeed later (transient server or network trouble).
    /// Whether repeating it is *safe* depends on the call.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            DaytonaError::RateLimited { .. }
                | DaytonaError::BadGateway(_)
                | DaytonaError::ServiceUnavailable(_)
                | DaytonaError::Connect { .. }
                | DaytonaError::Transport { .. }
                | DaytonaError::RequestTimeout { .. }
                | DaytonaError::WebSocket { .. }
        ) || self.status() == Some(504)
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DaytonaError::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DaytonaError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn decode(operation: &'static str, message: impl Into<String>) -> Self {
        DaytonaError::Decode {
            operation,
            message: message.into(),
        }
    }
}

/// Reads `message`, then `error`, then the raw body; `code` (or `error_code`) and `source`.
pub(crate) fn parse_error_body(status: u16, body: &[u8]) -> ErrorDetails {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error")
        .to_string();
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let obj = json.as_ref().and_then(|v| v.as_object());
    let text_field = |key: &str| -> Option<String> {
        let v = obj?.get(key)?;
        match v {
            serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            // Nest joins validation messages; some proxies send an array.
            serde_json::Value::Array(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|i| match i {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                (!parts.is_empty()).then(|| parts.join(", "))
            }
            _ => None,
        }
    };
    let message = text_field("message")
        .or_else(|| text_field("error"))
        .or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            (!text.is_empty()).then(|| truncate(text, 2048))
        })
        .unwrap_or(reason);
    let code = text_field("code").or_else(|| text_field("error_code"));
    let source = text_field("source");
    ErrorDetails {
        status,
        code,
        message,
        source,
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Parses `Retry-After`: delta-seconds, or an HTTP date (relative to now).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs.min(1e9)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

impl From<DaytonaError> for SandboxError {
    fn from(e: DaytonaError) -> Self {
        let provider = |d: ErrorDetails| SandboxError::Provider {
            status: Some(d.status),
            code: d.code,
            message: d.message,
        };
        match e {
            DaytonaError::NotFound(d) | DaytonaError::FileNotFound(d) => {
                SandboxError::NotFound { what: d.message }
            }
            DaytonaError::Unauthorized(d) => SandboxError::Unauthorized { message: d.message },
            DaytonaError::Forbidden(d) => SandboxError::PermissionDenied { message: d.message },
            DaytonaError::Conflict(d) => SandboxError::Conflict { message: d.message },
            DaytonaError::RateLimited { retry_after, .. } => {
                SandboxError::RateLimited { retry_after }
            }
            DaytonaError::BadRequest(d)
            | DaytonaError::Gone(d)
            | DaytonaError::UnprocessableEntity(d)
            | DaytonaError::Timeout(d)
            | DaytonaError::BadGateway(d)
            | DaytonaError::ServiceUnavailable(d)
            | DaytonaError::Server(d)
            | DaytonaError::Http(d) => provider(d),
            e @ (DaytonaError::Connect { .. }
            | DaytonaError::Transport { .. }
            | DaytonaError::WebSocket { .. }) => SandboxError::Transport {
                message: e.to_string(),
                retryable: true,
                source: Some(Box::new(e)),
            },
            DaytonaError::RequestTimeout { after, .. } => SandboxError::Timeout {
                phase: TimeoutPhase::Request,
                after,
            },
            DaytonaError::WaitTimeout { target, after, .. } => SandboxError::Timeout {
                phase: match target {
                    "started" => TimeoutPhase::Start,
                    "stopped" => TimeoutPhase::Stop,
                    "destroyed" => TimeoutPhase::Destroy,
                    _ => TimeoutPhase::Other,
                },
                after,
            },
            e @ DaytonaError::SandboxFailed { .. } => {
                let code = match &e {
                    DaytonaError::SandboxFailed { state, .. } => Some(state.clone()),
                    _ => None,
                };
                SandboxError::Provider {
                    status: None,
                    code,
                    message: e.to_string(),
                }
            }
            e @ DaytonaError::ResourceFailed { .. } => {
                let code = match &e {
                    DaytonaError::ResourceFailed { state, .. } => Some(state.clone()),
                    _ => None,
                };
                SandboxError::Provider {
                    status: None,
                    code,
                    message: e.to_string(),
                }
            }
            e @ DaytonaError::Decode { .. } => SandboxError::Provider {
                status: None,
                code: None,
                message: e.to_string(),
            },
            DaytonaError::MissingFile { path } => SandboxError::NotFound {
                what: format!("file {path}"),
            },
            e @ DaytonaError::MissingCredentials { .. } => SandboxError::Unauthorized {
                message: e.to_string(),
            },
            DaytonaError::InvalidConfig { field, reason }
            | DaytonaError::InvalidArgument { field, reason } => {
                SandboxError::InvalidArgument { field, reason }
            }
            DaytonaError::Io { context, source } => SandboxError::Io { context, source },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn classify(status: u16, body: &str) -> DaytonaError {
        DaytonaError::from_response(status, body.as_bytes(), None)
    }

    #[test]
    fn status_mapping() {
        type Check = fn(&DaytonaError) -> bool;
        let cases: &[(u16, Check)] = &[
            (400, |e| matches!(e, DaytonaError::BadRequest(_))),
            (401, |e| matches!(e, DaytonaError::Unauthorized(_))),
            (403, |e| matches!(e, DaytonaError::Forbidden(_))),
            (404, |e| matches!(e, DaytonaError::NotFound(_))),
            (408, |e| matches!(e, DaytonaError::Timeout(_))),
            (409, |e| matches!(e, DaytonaError::Conflict(_))),
            (410, |e| matches!(e, DaytonaError::Gone(_))),
            (422, |e| matches!(e, DaytonaError::UnprocessableEntity(_))),
            (429, |e| matches!(e, DaytonaError::RateLimited { .. })),
            (500, |e| matches!(e, DaytonaError::Server(_))),
            (502, |e| matches!(e, DaytonaError::BadGateway(_))),
            (503, |e| matches!(e, DaytonaError::ServiceUnavailable(_))),
            (504, |e| matches!(e, DaytonaError::Timeout(_))),
            (507, |e| matches!(e, DaytonaError::Server(_))),
            (418, |e| matches!(e, DaytonaError::Http(_))),
        ];
        for (status, check) in cases {
            let e = classify(*status, "{}");
            assert!(check(&e), "{status} -> {e:?}");
            assert_eq!(e.status(), Some(*status));
        }
    }

    #[test]
    fn daemon_codes_win_over_status() {
        let e = classify(
            404,
            r#"{"statusCode":404,"code":"FILE_NOT_FOUND","message":"file not found: /p","source":"DAYTONA_DAEMON"}"#,
        );
        let DaytonaError::FileNotFound(d) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(d.message, "file not found: /p");
        assert_eq!(d.source.as_deref(), Some("DAYTONA_DAEMON"));
        assert!(matches!(
            classify(
                408,
                r#"{"statusCode":408,"message":"command execution timeout","code":"REQUEST_TIMEOUT"}"#
            ),
            DaytonaError::Timeout(_)
        ));
        assert!(matches!(
            classify(400, r#"{"code":"PROCESS_EXECUTION_TIMEOUT","message":"x"}"#),
            DaytonaError::Timeout(_)
        ));
        assert!(matches!(
            classify(400, r#"{"code":"SESSION_ENDED","message":"x"}"#),
            DaytonaError::Gone(_)
        ));
        assert!(matches!(
            classify(500, r#"{"error_code":"FILE_ACCESS_DENIED","message":"x"}"#),
            DaytonaError::Forbidden(_)
        ));
    }

    #[test]
    fn message_fallbacks() {
        let d = parse_error_body(404, br#"{"error":"Not Found"}"#);
        assert_eq!(d.message, "Not Found");
        let d = parse_error_body(400, br#"{"message":["a must be x","b must be y"]}"#);
        assert_eq!(d.message, "a must be x, b must be y");
        let d = parse_error_body(502, b"upstream exploded");
        assert_eq!(d.message, "upstream exploded");
        let d = parse_error_body(503, b"");
        assert_eq!(d.message, "Service Unavailable");
        let d = parse_error_body(599, b"   ");
        assert_eq!(d.message, "error");
        let big = "é".repeat(5000);
        let d = parse_error_body(500, big.as_bytes());
        assert!(d.message.len() < 2100);
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let future = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        let d = parse_retry_after(&future).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn converts_into_core_errors() {
        let e: SandboxError =
            classify(404, r#"{"message":"Sandbox with ID or name x not found"}"#).into();
        assert!(matches!(e, SandboxError::NotFound { .. }));
        let e: SandboxError = classify(401, r#"{"message":"Unauthorized"}"#).into();
        assert!(matches!(e, SandboxError::Unauthorized { .. }));
        let e: SandboxError = classify(403, "{}").into();
        assert!(matches!(e, SandboxError::PermissionDenied { .. }));
        let e: SandboxError = classify(409, "{}").into();
        assert!(matches!(e, SandboxError::Conflict { .. }));
        let e: SandboxError =
            DaytonaError::from_response(429, b"{}", Some(Duration::from_secs(2))).into();
        assert!(
            matches!(e, SandboxError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(2))
        );
        assert!(e.is_retryable());
        let e: SandboxError = classify(503, "{}").into();
        assert!(e.is_retryable());
        let e: SandboxError = classify(400, r#"{"code":"BAD_REQUEST","message":"m"}"#).into();
        assert!(
            matches!(e, SandboxError::Provider { status: Some(400), code: Some(ref c), .. } if c == "BAD_REQUEST")
        );
        assert!(!e.is_retryable());
        let e: SandboxError = DaytonaError::WaitTimeout {
            sandbox_id: "s".into(),
            target: "started",
            after: Duration::from_secs(1),
            last_state: None,
        }
        .into();
        assert!(matches!(
            e,
            SandboxError::Timeout {
                phase: TimeoutPhase::Start,
                ..
            }
        ));
        let e: SandboxError = DaytonaError::Connect {
            endpoint: "http://x".into(),
            message: "refused".into(),
            source: None,
        }
        .into();
        assert!(e.is_retryable());
        let e: SandboxError = DaytonaError::MissingCredentials {
            variables: "DAYTONA_API_KEY",
        }
        .into();
        assert!(matches!(e, SandboxError::Unauthorized { .. }));
    }
}
