//! `/volumes...` handlers: thin HTTP wrappers around [`crate::volumes`].

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use daytona_api::volume::VolumeDto;

use super::body;
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<VolumeDto>>, ApiError> {
    let mut include_deleted = false;
    for (k, v) in url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        if k == "includeDeleted" {
            include_deleted = match v.as_ref() {
                "true" | "1" => true,
                "false" | "0" => false,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "includeDeleted must be a boolean value, got {other:?}"
                    )));
                }
            };
        }
    }
    Ok(Json(state.list_volumes(include_deleted)))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<VolumeDto>, ApiError> {
    let value = body::read_json(&headers, body).await?;
    let req = body::create_volume(value)?;
    Ok(Json(state.create_volume(&req.name)?))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<VolumeDto>, ApiError> {
    Ok(Json(state.get_volume(&id)?))
}

pub(crate) async fn get_by_name(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<VolumeDto>, ApiError> {
    Ok(Json(state.get_volume_by_name(&name)?))
}

/// 200 with an empty body; 409 while a sandbox mounts it.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.delete_volume(&id).await?;
    Ok(StatusCode::OK.into_response())
}
