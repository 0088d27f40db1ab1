//! `/computeruse/*` as the v0.190.0 daemon answers when its computer-use plugin is not loaded
//! (`computeruse/lazy.go` `LazyCheckMiddleware`), and its recordings routes
//! (`computeruse/recording/*.go`), which it serves either way, with nothing recorded.

#![allow(clippy::unwrap_used)]

mod toolbox_support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use toolbox_support::Fixture;

#[tokio::test]
async fn desktop_routes_answer_as_a_daemon_without_its_plugin() {
    let fx = Fixture::start().await;
    // Every desktop route of the spec, GETs and POSTs alike.
    for (method, path) in [
        (Method::GET, "/computeruse/status"),
        (Method::POST, "/computeruse/start"),
        (Method::POST, "/computeruse/stop"),
        (Method::GET, "/computeruse/process-status"),
        (Method::GET, "/computeruse/process/xvfb/status"),
        (Method::POST, "/computeruse/process/xvfb/restart"),
        (Method::GET, "/computeruse/process/xvfb/logs"),
        (Method::GET, "/computeruse/process/xvfb/errors"),
        (Method::GET, "/computeruse/screenshot"),
        (Method::GET, "/computeruse/screenshot/region"),
        (Method::GET, "/computeruse/screenshot/compressed"),
        (Method::GET, "/computeruse/screenshot/region/compressed"),
        (Method::GET, "/computeruse/mouse/position"),
        (Method::POST, "/computeruse/mouse/move"),
        (Method::POST, "/computeruse/mouse/click"),
        (Method::POST, "/computeruse/mouse/drag"),
        (Method::POST, "/computeruse/mouse/scroll"),
        (Method::POST, "/computeruse/keyboard/type"),
        (Method::POST, "/computeruse/keyboard/key"),
        (Method::POST, "/computeruse/keyboard/hotkey"),
        (Method::GET, "/computeruse/display/info"),
        (Method::GET, "/computeruse/display/windows"),
        (Method::GET, "/computeruse/a11y/tree"),
        (Method::POST, "/computeruse/a11y/find"),
        (Method::POST, "/computeruse/a11y/node/focus"),
        (Method::POST, "/computeruse/a11y/node/invoke"),
        (Method::POST, "/computeruse/a11y/node/value"),
    ] {
        let (status, body) = fx.call_json(method.clone(), path, Some("{}")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{method} {path}");
        assert_eq!(
            body,
            json!({
                "message": "Computer-use functionality is not available",
                "details": "The computer-use plugin is still loading or failed to initialize.",
                "solution": "Retry shortly. If the problem persists, check the daemon logs for specific error details.",
            }),
            "{method} {path}"
        );
    }
    // A path the daemon does not register stays a 404.
    let (status, _) = fx
        .call_json(Method::GET, "/computeruse/nothing", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    fx.shutdown().await;
}

#[tokio::test]
async fn recordings_are_served_with_nothing_recorded() {
    let fx = Fixture::start().await;
    assert_eq!(
        fx.call_json(Method::GET, "/computeruse/recordings", None)
            .await,
        (StatusCode::OK, json!({"recordings": []}))
    );
    let not_found = (
        StatusCode::NOT_FOUND,
        json!({"error": "recording not found"}),
    );
    assert_eq!(
        fx.call_json(Method::GET, "/computeruse/recordings/r1", None)
            .await,
        not_found
    );
    assert_eq!(
        fx.call_json(Method::GET, "/computeruse/recordings/r1/download", None)
            .await,
        not_found
    );
    assert_eq!(
        fx.call_json(Method::DELETE, "/computeruse/recordings/r1", None)
            .await,
        not_found
    );
    // Stop: the body is checked first (`stop.go`), then the id is looked up.
    assert_eq!(
        fx.call_json(Method::POST, "/computeruse/recordings/stop", Some(""))
            .await,
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid request: id is required"})
        )
    );
    for empty in ["{}", "null", r#"{"id": null}"#, r#"{"id": ""}"#] {
        assert_eq!(
            fx.call_json(Method::POST, "/computeruse/recordings/stop", Some(empty))
                .await,
            (StatusCode::BAD_REQUEST, json!({"error": "id is required"})),
            "{empty}"
        );
    }
    assert_eq!(
        fx.call_json(
            Method::POST,
            "/computeruse/recordings/stop",
            Some(r#"{"id": "r1"}"#)
        )
        .await,
        not_found
    );
    // Start: no display to record, answered as an image without ffmpeg.
    assert_eq!(
        fx.call_json(
            Method::POST,
            "/computeruse/recordings/start",
            Some(r#"{"label": "demo"}"#)
        )
        .await,
        (
            StatusCode::BAD_REQUEST,
            json!({
                "error": "ffmpeg_not_found",
                "message": "FFmpeg must be installed and available in PATH to use screen recording",
            })
        )
    );
    fx.shutdown().await;
}
