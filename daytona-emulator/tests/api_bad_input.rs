//! Bad input never panics and always gets a 4xx with a body in the right shape that names the
//! problem.

#![allow(clippy::unwrap_used)]

mod api_support;

use api_support::{API_KEY, Api, assert_api_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn raw(
    api: &Api,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = api.req(method, path).body(body);
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    api.send(req).await
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let api = Api::start().await;
    for body in [&b"{"[..], b"{\"name\": }", b"not json", b"\xff\xfe"] {
        let (status, resp) = raw(
            &api,
            Method::POST,
            "/sandbox",
            Some("application/json"),
            body.to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let message = assert_api_error(&resp, 400, "/api/sandbox");
        assert!(message.starts_with("Invalid JSON body"), "{message}");
    }
    let (status, resp) = raw(
        &api,
        Method::POST,
        "/sandbox",
        Some("application/json"),
        b"[1,2]".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        assert_api_error(&resp, 400, "/api"),
        "Request body must be a JSON object"
    );
    assert!(api.emu.sandboxes().is_empty());
}

#[tokio::test]
async fn wrong_types_are_listed() {
    let api = Api::start().await;
    let (status, resp) = api
        .call(
            Method::POST,
            "/sandbox",
            Some(json!({
                "name": 5, "cpu": "two", "public": "yes", "env": ["A"], "labels": {"k": 1},
                "autoStopInterval": 1.5, "volumes": {"volumeId": "x"}, "buildInfo": "FROM x"
            })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = assert_api_error(&resp, 400, "/api/sandbox");
    for part in [
        "name must be a string",
        "cpu must be an integer number",
        "public must be a boolean value",
        "env must be an object",
        "labels.k must be a string",
        "autoStopInterval must be an integer number",
        "volumes must be an array",
        "buildInfo must be an object",
    ] {
        assert!(message.contains(part), "missing {part:?} in {message}");
    }
}

#[tokio::test]
async fn negative_resources_and_intervals_are_refused() {
    let api = Api::start().await;
    for (body, expect) in [
        (
            json!({"buildInfo": {"dockerfileContent": "FROM x"}, "cpu": -1}),
            "cpu must not be less than 0",
        ),
        (
            json!({"buildInfo": {"dockerfileContent": "FROM x"}, "memory": -4}),
            "memory must not be less than 0",
        ),
        (
            json!({"autoStopInterval": -1}),
            "autoStopInterval must not be less than 0",
        ),
        (
            json!({"autoArchiveInterval": -1}),
            "autoArchiveInterval must not be less than 0",
        ),
        (
            json!({"networkAllowList": "not-a-cidr"}),
            "Invalid network allow list",
        ),
        (
            json!({"volumes": [{"volumeId": "v", "mountPath": "relative"}]}),
            "Invalid mount path",
        ),
        (json!({"user": "../../etc"}), "Invalid user"),
        (json!({"gpuType": ["B9000"]}), "gpuType"),
    ] {
        let (status, resp) = api.call(Method::POST, "/sandbox", Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let message = assert_api_error(&resp, 400, "/api/sandbox");
        assert!(message.contains(expect), "{body}: {message}");
    }
    assert!(api.emu.sandboxes().is_empty());
}

#[tokio::test]
async fn missing_required_fields_are_named() {
    let api = Api::start().await;
    let id = api.create_default().await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, resp) = api
        .call(
            Method::PUT,
            &format!("/sandbox/{id}/labels"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(assert_api_error(&resp, 400, "/api").contains("labels must be an object"));
    let (status, resp) = api
        .call(
            Method::POST,
            "/sandbox",
            Some(json!({"buildInfo": {"contextHashes": []}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(assert_api_error(&resp, 400, "/api").contains("buildInfo.dockerfileContent"));
}

#[tokio::test]
async fn empty_bodies_and_unknown_fields_are_fine() {
    let api = Api::start().await;
    let (status, resp) = raw(&api, Method::POST, "/sandbox", None, Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let (status, resp) = api
        .call(
            Method::POST,
            "/sandbox",
            Some(json!({"language": "python", "whatever": {"x": 1}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
}

#[tokio::test]
async fn a_body_without_json_content_type_is_refused() {
    let api = Api::start().await;
    let (status, resp) = raw(
        &api,
        Method::POST,
        "/sandbox",
        Some("text/plain"),
        br#"{"name":"x"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(assert_api_error(&resp, 400, "/api").contains("Content-Type"));
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let api = Api::start().await;
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(11 * 1024 * 1024));
    let (status, resp) = raw(
        &api,
        Method::POST,
        "/sandbox",
        Some("application/json"),
        big.into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        assert_api_error(&resp, 413, "/api/sandbox"),
        "request entity too large"
    );
    assert_eq!(resp["error"], "Payload Too Large");
}

#[tokio::test]
async fn oversized_chunked_bodies_get_413_too() {
    let api = Api::start().await;
    // No Content-Length: the limit is enforced while reading.
    let chunk = bytes::Bytes::from(vec![b' '; 1024 * 1024]);
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
        (0..11).map(|_| Ok(chunk.clone())).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let (status, resp) = api
        .send(
            api.req(Method::POST, "/sandbox")
                .header("Content-Type", "application/json")
                .body(body),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{resp}");
    assert_api_error(&resp, 413, "/api/sandbox");
}

#[tokio::test]
async fn bad_path_and_query_parameters() {
    let api = Api::start().await;
    let id = api.create_default().await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (method, path, expect) in [
        (
            Method::POST,
            format!("/sandbox/{id}/autostop/abc"),
            "interval must be a number",
        ),
        (
            Method::POST,
            format!("/sandbox/{id}/autostop/1.5"),
            "whole number",
        ),
        (
            Method::POST,
            format!("/sandbox/{id}/public/maybe"),
            "isPublic",
        ),
        (
            Method::GET,
            format!("/sandbox/{id}/ports/0/preview-url"),
            "Invalid port",
        ),
        (
            Method::GET,
            format!("/sandbox/{id}/ports/99999/preview-url"),
            "Invalid port",
        ),
        (Method::GET, "/sandbox?limit=0".to_string(), "limit"),
        (
            Method::GET,
            "/sandbox?limit=1000".to_string(),
            "limit must not be greater than 200",
        ),
        (
            Method::GET,
            "/sandbox?labels=%7Bbroken".to_string(),
            "labels",
        ),
        (Method::GET, "/sandbox?states=flying".to_string(), "states"),
        (
            Method::GET,
            "/sandbox?cursor=garbage!".to_string(),
            "Invalid cursor",
        ),
        (
            Method::GET,
            "/sandbox?createdAtAfter=yesterday".to_string(),
            "createdAtAfter",
        ),
        (
            Method::POST,
            format!("/sandbox/{id}/stop?force=perhaps"),
            "force",
        ),
    ] {
        let (status, resp) = api.call(method.clone(), &path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {resp}");
        let message = assert_api_error(&resp, 400, "/api/sandbox");
        assert!(message.contains(expect), "{path}: {message}");
    }
    // Unknown ids are 404s everywhere.
    for (method, path) in [
        (Method::POST, "/sandbox/nope/start"),
        (Method::POST, "/sandbox/nope/autostop/5"),
        (Method::PUT, "/sandbox/nope/labels"),
        (Method::POST, "/sandbox/nope/last-activity"),
        (Method::GET, "/sandbox/nope/toolbox-proxy-url"),
    ] {
        let body = (method == Method::PUT).then(|| json!({"labels": {}}));
        let (status, resp) = api.call(method.clone(), path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {resp}");
        assert_api_error(&resp, 404, "/api/sandbox/nope");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_shaped_errors() {
    let api = Api::start().await;
    let (status, resp) = api.call(Method::GET, "/nothing/here", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        assert_api_error(&resp, 404, "/api/nothing"),
        "Cannot GET /api/nothing/here"
    );
    let (status, resp) = api.call(Method::PATCH, "/sandbox", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_api_error(&resp, 405, "/api/sandbox");

    // Under /toolbox, errors come in the daemon's shape.
    let id = api.create_default().await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = api
        .http
        .get(format!("{}/toolbox/{id}/no/such/route", api.emu.base_url()))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["source"], "DAYTONA_DAEMON");
    assert_eq!(body["path"], "/no/such/route");
    assert_eq!(body["method"], "GET");
    assert_eq!(body["code"], "NOT_FOUND");
    // Routes of the toolbox specs the emulator does not serve: v0.190.0's runner-only
    // `/init`, and the routes daemons after v0.190.0 added (a v0.190.0 daemon 404s those too).
    for (method, path) in [
        (Method::POST, "/init"),
        (Method::POST, "/env"),
        (Method::GET, "/system/metrics"),
        (Method::GET, "/git/config"),
        (Method::POST, "/git/config"),
        (Method::POST, "/git/config/user"),
        (Method::POST, "/git/credentials"),
        (Method::GET, "/git/remotes"),
        (Method::POST, "/git/remotes"),
        (Method::POST, "/git/reset"),
        (Method::POST, "/git/restore"),
    ] {
        let resp = api
            .http
            .request(
                method.clone(),
                format!("{}/toolbox/{id}{path}", api.emu.base_url()),
            )
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["source"], "DAYTONA_DAEMON", "{method} {path}");
        assert_eq!(body["path"], path, "{method} {path}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("Cannot {method} /toolbox/")) && message.ends_with(path),
            "{message}"
        );
    }
    // An unknown sandbox on the toolbox is a daemon 404.
    let resp = api
        .http
        .get(format!(
            "{}/toolbox/unknown-sandbox/version",
            api.emu.base_url()
        ))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["source"], "DAYTONA_DAEMON");
    assert_eq!(body["path"], "/version");
}

#[tokio::test]
async fn the_emulator_survives_all_of_it() {
    let api = Api::start().await;
    // A burst of garbage, then a normal request still works.
    for i in 0..20u8 {
        let body: Vec<u8> = (0..64)
            .map(|j| i.wrapping_mul(31).wrapping_add(j))
            .collect();
        let (status, _) = raw(
            &api,
            Method::POST,
            "/sandbox",
            Some("application/json"),
            body,
        )
        .await;
        assert!(status.is_client_error());
    }
    api.create_default().await;
}
