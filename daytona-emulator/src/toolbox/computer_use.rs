//! `/computeruse/*` as the daemon answers it in a sandbox whose computer-use plugin did not load
//! (`computeruse/lazy.go`: no X server, VNC or desktop to drive). An emulated sandbox never has
//! one, so every desktop route is the daemon's 503, and the recordings routes, which the
//! daemon serves without the plugin (`computeruse/recording/`), see no recordings and cannot
//! start one.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;
use crate::toolbox::SandboxPath;

/// The desktop routes, each behind the daemon's plugin check.
const DESKTOP_GETS: &[&str] = &[
    "/computeruse/status",
    "/computeruse/process-status",
    "/computeruse/process/{processName}/status",
    "/computeruse/process/{processName}/logs",
    "/computeruse/process/{processName}/errors",
    "/computeruse/screenshot",
    "/computeruse/screenshot/region",
    "/computeruse/screenshot/compressed",
    "/computeruse/screenshot/region/compressed",
    "/computeruse/mouse/position",
    "/computeruse/display/info",
    "/computeruse/display/windows",
    "/computeruse/a11y/tree",
];
const DESKTOP_POSTS: &[&str] = &[
    "/computeruse/start",
    "/computeruse/stop",
    "/computeruse/process/{processName}/restart",
    "/computeruse/mouse/move",
    "/computeruse/mouse/click",
    "/computeruse/mouse/drag",
    "/computeruse/mouse/scroll",
    "/computeruse/keyboard/type",
    "/computeruse/keyboard/key",
    "/computeruse/keyboard/hotkey",
    "/computeruse/a11y/find",
    "/computeruse/a11y/node/focus",
    "/computeruse/a11y/node/invoke",
    "/computeruse/a11y/node/value",
];

/// The computer-use routes, to be merged into the toolbox router.
pub(crate) fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for path in DESKTOP_GETS {
        router = router.route(path, get(unavailable));
    }
    for path in DESKTOP_POSTS {
        router = router.route(path, post(unavailable));
    }
    let recording: MethodRouter<AppState> = get(get_recording).delete(delete_recording);
    router
        .route("/computeruse/recordings", get(list_recordings))
        .route("/computeruse/recordings/start", post(start_recording))
        .route("/computeruse/recordings/stop", post(stop_recording))
        .route("/computeruse/recordings/{id}", recording)
        .route(
            "/computeruse/recordings/{id}/download",
            get(download_recording),
        )
}

/// The daemon's answer while its plugin is not loaded (`LazyCheckMiddleware`).
async fn unavailable(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
) -> Result<Response, ApiError> {
    state.toolbox_target(&p.sandbox_id)?;
    let body = json!({
        "message": "Computer-use functionality is not available",
        "details": "The computer-use plugin is still loading or failed to initialize.",
        "solution": "Retry shortly. If the problem persists, check the daemon logs for specific error details.",
    });
    Ok((StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response())
}

/// gin's `{"error": ...}` with `status`, as the recording controller writes its errors.
fn recording_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// `GET /computeruse/recordings`: the daemon lists `.mp4` files of its recordings directory
/// and active recordings; an emulated sandbox has neither.
async fn list_recordings(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
) -> Result<Response, ApiError> {
    state.toolbox_target(&p.sandbox_id)?;
    Ok(Json(json!({ "recordings": [] })).into_response())
}

/// `GET /computeruse/recordings/{id}` (and the delete and download routes): no recording
/// exists.
async fn get_recording(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
) -> Result<Response, ApiError> {
    state.toolbox_target(&p.sandbox_id)?;
    Ok(recording_error(
        StatusCode::NOT_FOUND,
        "recording not found",
    ))
}

async fn delete_recording(
    state: State<AppState>,
    path: UrlPath<SandboxPath>,
) -> Result<Response, ApiError> {
    get_recording(state, path).await
}

async fn download_recording(
    state: State<AppState>,
    path: UrlPath<SandboxPath>,
) -> Result<Response, ApiError> {
    get_recording(state, path).await
}

/// `POST /computeruse/recordings/start`: the daemon looks for `ffmpeg` before anything else
/// can fail; an emulated sandbox has no display to record, so it answers as an image without
/// `ffmpeg` does (the label is not checked, as the daemon checks it after `ffmpeg`).
async fn start_recording(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
) -> Result<Response, ApiError> {
    state.toolbox_target(&p.sandbox_id)?;
    let body = json!({
        "error": "ffmpeg_not_found",
        "message": "FFmpeg must be installed and available in PATH to use screen recording",
    });
    Ok((StatusCode::BAD_REQUEST, Json(body)).into_response())
}

/// `POST /computeruse/recordings/stop` `{id}`: the daemon's body checks, then no active
/// recording has that id.
async fn stop_recording(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    state.toolbox_target(&p.sandbox_id)?;
    // Go decodes `null` (whole body or field) as the zero value: no id.
    #[derive(Deserialize)]
    struct StopRequest {
        #[serde(default)]
        id: Option<String>,
    }
    let Ok(request) = serde_json::from_slice::<Option<StopRequest>>(&body) else {
        return Ok(recording_error(
            StatusCode::BAD_REQUEST,
            "invalid request: id is required",
        ));
    };
    if request.and_then(|r| r.id).unwrap_or_default().is_empty() {
        return Ok(recording_error(StatusCode::BAD_REQUEST, "id is required"));
    }
    Ok(recording_error(
        StatusCode::NOT_FOUND,
        "recording not found",
    ))
}
