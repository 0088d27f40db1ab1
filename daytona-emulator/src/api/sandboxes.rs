//! `/api/sandbox/...` handlers: thin HTTP wrappers around the lifecycle in
//! [`crate::lifecycle`].

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use daytona_api::sandbox::{
    ListSandboxesResponse, PaginatedSandboxes, PortPreviewUrl, Sandbox, SandboxLabels,
    SandboxListItem, SignedPortPreviewUrl, ToolboxProxyUrl,
};

use super::body;
use super::list::{self, ListRoute};
use crate::error::ApiError;
use crate::preview::{DEFAULT_SIGNED_EXPIRY_SECS, MAX_SIGNED_EXPIRY_SECS};
use crate::state::AppState;

use std::time::Duration;

type ApiResult<T> = Result<Json<T>, ApiError>;

/// A numeric path parameter (minutes); `name` is the spec's parameter name.
fn interval(name: &str, raw: &str) -> Result<i64, ApiError> {
    let n: f64 = raw
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| ApiError::bad_request(format!("{name} must be a number, got {raw:?}")))?;
    if n.fract() != 0.0 || n.abs() > 1e12 {
        return Err(ApiError::bad_request(format!(
            "{name} must be a whole number of minutes, got {raw:?}"
        )));
    }
    // Whole and bounded, so exact.
    #[allow(clippy::cast_possible_truncation)]
    Ok(n as i64)
}

fn query_flag(query: Option<&str>, key: &str) -> Result<bool, ApiError> {
    let mut out = false;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == key {
            out = match v.as_ref() {
                "true" | "1" | "" => true,
                "false" | "0" => false,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "{key} must be a boolean value, got {other:?}"
                    )));
                }
            };
        }
    }
    Ok(out)
}

fn port(raw: &str) -> Result<u16, ApiError> {
    raw.parse::<u16>()
        .ok()
        .filter(|p| *p >= 1)
        .ok_or_else(|| ApiError::bad_request("Invalid port"))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Sandbox> {
    let value = body::read_json(&headers, body).await?;
    let req = body::create_sandbox(value)?;
    Ok(Json(state.create_sandbox(req).await?))
}

pub(crate) async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> ApiResult<ListSandboxesResponse> {
    let q = list::parse(query.as_deref(), ListRoute::Cursor)?;
    let all = list::select(&state, &q);
    let start = q.cursor_offset.min(all.len());
    let end = start.saturating_add(q.limit).min(all.len());
    let items = all[start..end].iter().map(SandboxListItem::from).collect();
    let next_cursor = (end < all.len()).then(|| list::encode_cursor(end));
    Ok(Json(ListSandboxesResponse { items, next_cursor }))
}

pub(crate) async fn list_paginated(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> ApiResult<PaginatedSandboxes> {
    let q = list::parse(query.as_deref(), ListRoute::Paginated)?;
    let all = list::select(&state, &q);
    let total = all.len();
    let start = q.page.saturating_sub(1).saturating_mul(q.limit).min(total);
    let end = start.saturating_add(q.limit).min(total);
    Ok(Json(PaginatedSandboxes {
        items: all[start..end].to_vec(),
        total: total as u64,
        page: q.page as u64,
        total_pages: total.div_ceil(q.limit) as u64,
    }))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Sandbox> {
    query_flag(query.as_deref(), "verbose")?;
    Ok(Json(state.get_sandbox(&id)?))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Sandbox> {
    Ok(Json(state.delete_sandbox(&id).await?))
}

pub(crate) async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Sandbox> {
    Ok(Json(state.start_sandbox(&id).await?))
}

/// `?force=true` asks for SIGKILL; every stop kills the sandbox's processes outright anyway.
pub(crate) async fn stop(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Sandbox> {
    query_flag(query.as_deref(), "force")?;
    Ok(Json(state.stop_sandbox(&id).await?))
}

pub(crate) async fn archive(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Sandbox> {
    Ok(Json(state.archive_sandbox(&id).await?))
}

pub(crate) async fn recover(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Sandbox> {
    let skip_start = query_flag(query.as_deref(), "skipStart")?;
    Ok(Json(state.recover_sandbox(&id, skip_start).await?))
}

pub(crate) async fn replace_labels(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<SandboxLabels> {
    let value = body::read_json(&headers, body).await?;
    let req = body::sandbox_labels(value)?;
    Ok(Json(SandboxLabels {
        labels: state.replace_labels(&id, req.labels)?,
    }))
}

pub(crate) async fn autostop(
    State(state): State<AppState>,
    Path((id, raw)): Path<(String, String)>,
) -> ApiResult<Sandbox> {
    Ok(Json(state.set_auto_stop(&id, interval("interval", &raw)?)?))
}

pub(crate) async fn autopause(
    State(state): State<AppState>,
    Path((id, raw)): Path<(String, String)>,
) -> ApiResult<Sandbox> {
    Ok(Json(
        state.set_auto_pause(&id, interval("interval", &raw)?)?,
    ))
}

pub(crate) async fn autoarchive(
    State(state): State<AppState>,
    Path((id, raw)): Path<(String, String)>,
) -> ApiResult<Sandbox> {
    Ok(Json(
        state.set_auto_archive(&id, interval("interval", &raw)?)?,
    ))
}

pub(crate) async fn autodelete(
    State(state): State<AppState>,
    Path((id, raw)): Path<(String, String)>,
) -> ApiResult<Sandbox> {
    Ok(Json(
        state.set_auto_delete(&id, interval("interval", &raw)?)?,
    ))
}

pub(crate) async fn ttl(
    State(state): State<AppState>,
    Path((id, raw)): Path<(String, String)>,
) -> ApiResult<Sandbox> {
    Ok(Json(state.set_ttl(&id, interval("ttlMinutes", &raw)?)?))
}

pub(crate) async fn public(
    State(state): State<AppState>,
    Path((id, raw)): Path<(String, String)>,
) -> ApiResult<Sandbox> {
    let public = match raw.as_str() {
        "true" => true,
        "false" => false,
        other => {
            return Err(ApiError::bad_request(format!(
                "isPublic must be true or false, got {other:?}"
            )));
        }
    };
    Ok(Json(state.set_public(&id, public)?))
}

pub(crate) async fn network_settings(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Sandbox> {
    let value = body::read_json(&headers, body).await?;
    let req = body::network_settings(value)?;
    Ok(Json(state.update_network_settings(&id, req)?))
}

pub(crate) async fn resize(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Sandbox> {
    let value = body::read_json(&headers, body).await?;
    let req = body::resize_sandbox(value)?;
    Ok(Json(state.resize_sandbox(&id, req)?))
}

/// `POST /sandbox/{sandboxId}/last-activity` → 201 with an empty body. The optional
/// `{activityType}` body is read (so a malformed one is a 400) and otherwise ignored.
pub(crate) async fn last_activity(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    body::read_json(&headers, body).await?;
    state.update_last_activity(&id)?;
    Ok(StatusCode::CREATED.into_response())
}

pub(crate) async fn toolbox_proxy_url(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<ToolboxProxyUrl> {
    if !state.registry().entries.contains_key(&id) {
        return Err(ApiError::not_found(format!(
            "Sandbox with ID {id} not found"
        )));
    }
    Ok(Json(ToolboxProxyUrl {
        url: state.toolbox_proxy_url(),
    }))
}

pub(crate) async fn preview(
    State(state): State<AppState>,
    Path((id, raw_port)): Path<(String, String)>,
) -> ApiResult<PortPreviewUrl> {
    let port = port(&raw_port)?;
    let sandbox = state.get_sandbox(&id)?;
    let token = state.preview_token(&sandbox.id).unwrap_or_default();
    Ok(Json(PortPreviewUrl {
        url: state.preview_url(&sandbox.id, port),
        sandbox_id: sandbox.id,
        token,
    }))
}

/// `?expiresInSeconds=` (default 60, 1..=86400).
fn expires_in(query: Option<&str>) -> Result<Duration, ApiError> {
    let mut secs = DEFAULT_SIGNED_EXPIRY_SECS;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == "expiresInSeconds" {
            secs = v
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=MAX_SIGNED_EXPIRY_SECS).contains(s))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "expiresInSeconds must be an integer between 1 and {MAX_SIGNED_EXPIRY_SECS}"
                    ))
                })?;
        }
    }
    Ok(Duration::from_secs(secs))
}

pub(crate) async fn signed_preview(
    State(state): State<AppState>,
    Path((id, raw_port)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult<SignedPortPreviewUrl> {
    let port = port(&raw_port)?;
    let expires = expires_in(query.as_deref())?;
    let sandbox = state.get_sandbox(&id)?;
    let (token, url) = state.sign_preview(&sandbox.id, port, expires);
    Ok(Json(SignedPortPreviewUrl {
        url,
        sandbox_id: sandbox.id,
        port,
        token,
    }))
}

/// `POST /sandbox/{id}/ports/{port}/signed-preview-url/{token}/expire`: 200, 404 when this
/// sandbox and port have no such token.
pub(crate) async fn expire_signed_preview(
    State(state): State<AppState>,
    Path((id, raw_port, token)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let port = port(&raw_port)?;
    let sandbox = state.get_sandbox(&id)?;
    if state.expire_signed_preview(&sandbox.id, port, &token) {
        Ok(StatusCode::OK.into_response())
    } else {
        Err(ApiError::not_found(format!(
            "No signed preview URL with this token for port {port} of sandbox {}",
            sandbox.id
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn intervals_must_be_whole_numbers() {
        assert_eq!(interval("interval", "15").unwrap(), 15);
        assert_eq!(interval("interval", "-1").unwrap(), -1);
        assert!(interval("interval", "abc").is_err());
        assert!(interval("interval", "1.5").is_err());
    }

    #[test]
    fn ports_are_checked() {
        assert!(port("0").is_err());
        assert!(port("70000").is_err());
        assert_eq!(port("3000").unwrap(), 3000);
    }
}
