//! `/snapshots...` handlers: thin HTTP wrappers around [`crate::snapshots`].

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use daytona_api::snapshot::{PaginatedSnapshots, SnapshotDto};

use super::body;
use crate::error::ApiError;
use crate::snapshots::SnapshotQuery;
use crate::state::AppState;

pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<SnapshotDto>, ApiError> {
    let value = body::read_json(&headers, body).await?;
    let req = body::create_snapshot(value)?;
    Ok(Json(state.create_snapshot(req)?))
}

pub(crate) async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<PaginatedSnapshots>, ApiError> {
    let q = SnapshotQuery::parse(query.as_deref())?;
    Ok(Json(state.list_snapshots(&q)))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SnapshotDto>, ApiError> {
    Ok(Json(state.get_snapshot(&id)?))
}

/// 200 with an empty body, as upstream.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.delete_snapshot(&id)?;
    Ok(StatusCode::OK.into_response())
}

pub(crate) async fn activate(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SnapshotDto>, ApiError> {
    Ok(Json(state.activate_snapshot(&id)?))
}

/// 204.
pub(crate) async fn deactivate(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.deactivate_snapshot(&id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
