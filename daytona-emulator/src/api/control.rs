//! The test control API under `/_emulator` (no authentication, not logged, no faults): what a
//! test in another language (or another process) needs that the Rust handle offers.
//!
//! | route | does |
//! | --- | --- |
//! | `GET /_emulator/requests` / `DELETE` | request log (credentials redacted) / clear it |
//! | `GET /_emulator/faults` / `POST` / `DELETE` | list / add (body: a fault rule, answers `{id}`) / clear |
//! | `DELETE /_emulator/faults/{id}` | remove one rule |
//! | `GET /_emulator/sandboxes` | every live sandbox (full DTOs, env included) |
//! | `GET /_emulator/sandboxes/{id}/runtime` | sessions and live processes of a sandbox |
//! | `POST /_emulator/sandboxes/{id}/stop` | stop it underneath its client |
//! | `DELETE /_emulator/sandboxes/{id}` | delete it underneath its client |
//! | `POST /_emulator/sandboxes/{id}/fail` | put it in `error` (body `{reason?, recoverable?}`) |
//! | `ANY /_emulator/preview/{id}/{port}/...` | preview URLs: forwarded to the sandbox's port (token checked) |
//! | `ANY /_emulator/preview-signed/{token}/...` | signed preview URLs: forwarded while the token is valid |

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Deserialize;

use super::body;
use crate::error::ApiError;
use crate::faults::FaultRule;
use crate::provision;
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/requests", get(requests).delete(clear_requests))
        .route("/faults", get(faults).post(add_fault).delete(clear_faults))
        .route("/faults/{id}", axum::routing::delete(remove_fault))
        .route("/sandboxes", get(sandboxes))
        .route("/sandboxes/{id}", axum::routing::delete(delete_sandbox))
        .route("/sandboxes/{id}/runtime", get(runtime))
        .route("/sandboxes/{id}/stop", post(stop_sandbox))
        .route("/sandboxes/{id}/fail", post(fail_sandbox))
        .route("/preview/{id}/{port}", any(preview_root))
        .route("/preview/{id}/{port}/", any(preview_root))
        .route("/preview/{id}/{port}/{*rest}", any(preview))
        .route("/preview-signed/{token}", any(signed_preview_root))
        .route("/preview-signed/{token}/", any(signed_preview_root))
        .route("/preview-signed/{token}/{*rest}", any(signed_preview))
}

async fn requests(State(state): State<AppState>) -> Response {
    Json(state.requests()).into_response()
}

async fn clear_requests(State(state): State<AppState>) -> StatusCode {
    state.clear_requests();
    StatusCode::NO_CONTENT
}

async fn faults(State(state): State<AppState>) -> Response {
    Json(state.faults()).into_response()
}

async fn add_fault(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let value = body::read_json(&headers, body).await?;
    let rule: FaultRule = serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("invalid fault rule: {e}")))?;
    let id = state
        .add_fault(rule)
        .map_err(|e| ApiError::bad_request(format!("invalid fault rule: {e}")))?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({"id": id}))).into_response())
}

async fn clear_faults(State(state): State<AppState>) -> StatusCode {
    state.clear_faults();
    StatusCode::NO_CONTENT
}

async fn remove_fault(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("fault id must be a number, got {id:?}")))?;
    if state.remove_fault(id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no fault rule with id {id}")))
    }
}

async fn sandboxes(State(state): State<AppState>) -> Response {
    Json(state.sandboxes()).into_response()
}

async fn runtime(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let runtime = state
        .runtime(&id)
        .ok_or_else(|| ApiError::not_found(format!("Sandbox with ID or name {id} not found")))?;
    Ok(Json(provision::runtime_snapshot(&runtime)).into_response())
}

async fn stop_sandbox(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.stop_sandbox(&id).await?).into_response())
}

async fn delete_sandbox(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.delete_sandbox(&id).await?).into_response())
}

#[derive(Deserialize)]
struct FailBody {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    recoverable: Option<bool>,
}

async fn fail_sandbox(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let value = body::read_json(&headers, body).await?;
    let fail: FailBody = serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?;
    let reason = fail
        .reason
        .unwrap_or_else(|| "failure injected by the emulator".to_string());
    let dto = state
        .fail_sandbox(&id, &reason, fail.recoverable.unwrap_or(true))
        .await?;
    Ok(Json(dto).into_response())
}

fn preview_port(raw: &str) -> Result<u16, ApiError> {
    raw.parse::<u16>()
        .ok()
        .filter(|p| *p >= 1)
        .ok_or_else(|| ApiError::bad_request(format!("Invalid port {raw:?}")))
}

async fn preview_root(
    State(state): State<AppState>,
    Path((id, port)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let port = preview_port(&port)?;
    Ok(state.proxy_preview(&id, port, "", request).await)
}

async fn preview(
    State(state): State<AppState>,
    Path((id, port, rest)): Path<(String, String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let port = preview_port(&port)?;
    Ok(state.proxy_preview(&id, port, &rest, request).await)
}

async fn signed_preview_root(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    state.proxy_signed_preview(&token, "", request).await
}

async fn signed_preview(
    State(state): State<AppState>,
    Path((token, rest)): Path<(String, String)>,
    request: Request,
) -> Response {
    state.proxy_signed_preview(&token, &rest, request).await
}
