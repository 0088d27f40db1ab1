//! The HTTP surface: control-plane routes under `/api` (as in the v0.205 `api.json`), socket.io
//! at `/api/socket.io/`, the toolbox under `/toolbox/{sandboxId}`, the test control API under
//! `/_emulator`, and the layers every request passes through.
//!
//! Layers, outermost first: error shaping (final API/daemon error bodies), request log,
//! panic catcher (a panic becomes a 500 `An unexpected error occurred.`), fault injection,
//! authentication, toolbox activity tracking.

mod body;
mod build_logs;
mod control;
mod list;
mod middleware;
mod sandboxes;
mod snapshots;
mod socketio;
mod volumes;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
use crate::state::AppState;

pub use body::JSON_BODY_LIMIT;

/// Path parameter name of the sandbox id in toolbox routes: `/toolbox/{sandboxId}/...`.
pub const TOOLBOX_ID_PARAM: &str = "sandboxId";

/// The `/api` routes.
fn api_routes() -> Router<AppState> {
    use sandboxes as s;
    Router::new()
        .route("/sandbox", post(s::create).get(s::list))
        .route("/sandbox/paginated", get(s::list_paginated))
        .route("/sandbox/{id}", get(s::get).delete(s::delete))
        .route("/sandbox/{id}/start", post(s::start))
        .route("/sandbox/{id}/stop", post(s::stop))
        .route("/sandbox/{id}/archive", post(s::archive))
        .route("/sandbox/{id}/recover", post(s::recover))
        .route("/sandbox/{id}/labels", put(s::replace_labels))
        .route("/sandbox/{id}/autostop/{interval}", post(s::autostop))
        .route("/sandbox/{id}/autopause/{interval}", post(s::autopause))
        .route("/sandbox/{id}/autoarchive/{interval}", post(s::autoarchive))
        .route("/sandbox/{id}/autodelete/{interval}", post(s::autodelete))
        .route("/sandbox/{id}/ttl/{ttl}", post(s::ttl))
        .route("/sandbox/{id}/public/{public}", post(s::public))
        .route("/sandbox/{id}/network-settings", post(s::network_settings))
        .route("/sandbox/{id}/resize", post(s::resize))
        .route("/sandbox/{id}/last-activity", post(s::last_activity))
        .route("/sandbox/{id}/toolbox-proxy-url", get(s::toolbox_proxy_url))
        .route("/sandbox/{id}/ports/{port}/preview-url", get(s::preview))
        .route(
            "/sandbox/{id}/ports/{port}/signed-preview-url",
            get(s::signed_preview),
        )
        .route(
            "/sandbox/{id}/ports/{port}/signed-preview-url/{token}/expire",
            post(s::expire_signed_preview),
        )
        .route(
            "/sandbox/{id}/build-logs-url",
            get(build_logs::sandbox_logs_url),
        )
        .route("/sandbox/{id}/build-logs", get(build_logs::sandbox_logs))
        .route("/snapshots", get(snapshots::list).post(snapshots::create))
        .route(
            "/snapshots/{id}",
            get(snapshots::get).delete(snapshots::delete),
        )
        .route("/snapshots/{id}/activate", post(snapshots::activate))
        .route("/snapshots/{id}/deactivate", post(snapshots::deactivate))
        .route(
            "/snapshots/{id}/build-logs-url",
            get(build_logs::snapshot_logs_url),
        )
        .route("/snapshots/{id}/build-logs", get(build_logs::snapshot_logs))
        .route("/volumes", get(volumes::list).post(volumes::create))
        .route("/volumes/by-name/{name}", get(volumes::get_by_name))
        .route("/volumes/{id}", get(volumes::get).delete(volumes::delete))
        .route("/socket.io/", get(socketio::handshake))
        .route("/socket.io", get(socketio::handshake))
}

/// Everything the emulator serves, with its layers.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .nest("/api", api_routes())
        .nest("/toolbox/{sandboxId}", crate::toolbox::router())
        .nest(middleware::CONTROL_PREFIX, control::routes())
        .fallback(not_found)
        .layer(from_fn_with_state(
            state.clone(),
            middleware::track_toolbox_activity,
        ))
        .layer(from_fn_with_state(state.clone(), middleware::authenticate))
        .layer(from_fn_with_state(state.clone(), middleware::inject_faults))
        .layer(CatchPanicLayer::custom(panic_response as PanicHandler))
        .layer(from_fn_with_state(state.clone(), middleware::log_requests))
        .layer(from_fn(crate::error::shape_errors))
        .with_state(state)
}

type PanicHandler = fn(Box<dyn std::any::Any + Send>) -> Response;

/// A handler panic becomes NestJS's 500 for unexpected errors (the panic text is logged only).
fn panic_response(panic: Box<dyn std::any::Any + Send>) -> Response {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %text, "request handler panicked");
    ApiError::internal().into_response()
}

/// Unknown routes: NestJS's `Cannot GET /path` 404 (daemon shape under `/toolbox`).
async fn not_found(request: axum::extract::Request) -> Response {
    // The body is left empty so the error-shaping layer words it for the right server.
    let _ = request;
    axum::http::StatusCode::NOT_FOUND.into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_becomes_a_shaped_500() {
        async fn boom() -> &'static str {
            panic!("handler bug")
        }
        let app = Router::new()
            .route("/api/boom", get(boom))
            .layer(CatchPanicLayer::custom(panic_response as PanicHandler))
            .layer(from_fn(crate::error::shape_errors));
        let response = app
            .oneshot(Request::get("/api/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["message"], "An unexpected error occurred.");
        assert_eq!(body["path"], "/api/boom");
        assert_eq!(body["error"], "Internal Server Error");
    }
}
