//! Error bodies as Daytona sends them: the API's NestJS shape and the daemon's shape.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Which server an error comes from; decides the body shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The control-plane API: `{statusCode, error, message, path, timestamp}`.
    Api,
    /// The in-sandbox daemon: `{statusCode, message, code, timestamp, path, method, source}`.
    Daemon,
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
        ApiError { status, message: message.into(), code: None, source: ErrorSource::Api }
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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Placeholder shape; the api helper completes it (path, method, timestamp).
        let body = serde_json::json!({
            "statusCode": self.status.as_u16(),
            "message": self.message,
            "code": self.code,
        });
        (self.status, axum::Json(body)).into_response()
    }
}
