//! Build logs: `GET /sandbox/{idOrName}/build-logs-url` and `GET /snapshots/{id}/build-logs-url`
//! (`{url}`), and the logs themselves at `GET /sandbox/{idOrName}/build-logs` and
//! `GET /snapshots/{id}/build-logs`.
//!
//! The logs are plain text, one line per step message. Without `follow` the answer is the log
//! so far. With `?follow=true` it is a chunked HTTP stream that sends lines as the build
//! writes them and ends when the build is over, which is what the TypeScript SDK's
//! `onSnapshotCreateLogs` and `snapshot.create(..., {onLogs})` read (with `fetch`, not a
//! WebSocket).

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use daytona_api::sandbox::UrlResponse;
use tokio_util::sync::CancellationToken;

use crate::build::BuildLog;
use crate::error::ApiError;
use crate::state::AppState;

fn follow_flag(query: Option<&str>) -> Result<bool, ApiError> {
    let mut follow = false;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == "follow" {
            follow = match v.as_ref() {
                "true" | "1" | "" => true,
                "false" | "0" => false,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "follow must be a boolean value, got {other:?}"
                    )));
                }
            };
        }
    }
    Ok(follow)
}

/// The build log of a sandbox: 404 for one that was not created from an image.
fn sandbox_log(state: &AppState, id_or_name: &str) -> Result<(String, Arc<BuildLog>), ApiError> {
    let registry = state.registry();
    let entry = registry.get(id_or_name).ok_or_else(|| {
        ApiError::not_found(format!("Sandbox with ID or name {id_or_name} not found"))
    })?;
    let log = entry.build.clone().ok_or_else(|| {
        ApiError::not_found(format!(
            "Sandbox {id_or_name} has no build logs: it was not created from an image"
        ))
    })?;
    Ok((entry.dto.id.clone(), log))
}

pub(crate) async fn sandbox_logs_url(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<UrlResponse>, ApiError> {
    let (id, _) = sandbox_log(&state, &id)?;
    Ok(Json(UrlResponse {
        url: format!("{}/api/sandbox/{id}/build-logs", state.base_url()),
    }))
}

pub(crate) async fn sandbox_logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let follow = follow_flag(query.as_deref())?;
    let (_, log) = sandbox_log(&state, &id)?;
    Ok(stream(log, follow, state.shutdown_token()))
}

pub(crate) async fn snapshot_logs_url(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<UrlResponse>, ApiError> {
    let (id, _) = state.snapshot_log(&id)?;
    Ok(Json(UrlResponse {
        url: format!("{}/api/snapshots/{id}/build-logs", state.base_url()),
    }))
}

pub(crate) async fn snapshot_logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let follow = follow_flag(query.as_deref())?;
    let (_, log) = state.snapshot_log(&id)?;
    Ok(stream(log, follow, state.shutdown_token()))
}

/// The log as a text body: what is there, then (with `follow`) new lines until the build ends.
fn stream(log: Arc<BuildLog>, follow: bool, shutdown: CancellationToken) -> Response {
    let progress = log.subscribe();
    let chunks = futures::stream::unfold(
        (log, progress, 0usize, shutdown),
        move |(log, mut progress, next, shutdown)| async move {
            loop {
                let now = *progress.borrow_and_update();
                if next < now.lines {
                    let lines = log.lines_from(next);
                    let sent = next + lines.len();
                    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
                    return Some((
                        Ok::<_, std::convert::Infallible>(Bytes::from(text)),
                        (log, progress, sent, shutdown),
                    ));
                }
                if now.done || !follow {
                    return None;
                }
                tokio::select! {
                    changed = progress.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                    }
                    _ = shutdown.cancelled() => return None,
                }
            }
        },
    );
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn follow_is_a_boolean() {
        assert!(follow_flag(Some("follow=true")).unwrap());
        assert!(!follow_flag(None).unwrap());
        assert!(follow_flag(Some("follow=maybe")).is_err());
    }
}
