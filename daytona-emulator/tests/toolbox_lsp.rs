//! `/lsp/*` as the v0.190.0 daemon answers in a sandbox without a language server to run
//! (`lsp/lsp.go`, `lsp/service.go`): its request checks in order, then a start that fails and
//! servers that are never initialized.

#![allow(clippy::unwrap_used)]

mod toolbox_support;

use reqwest::{Method, StatusCode};
use toolbox_support::Fixture;

/// The status and the daemon error's message.
async fn call(
    fx: &Fixture,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, String) {
    let (status, body) = fx.call_json(method, path, body).await;
    (status, body["message"].as_str().unwrap().to_string())
}

fn answer(status: StatusCode, message: &str) -> (StatusCode, String) {
    (status, message.to_string())
}

#[tokio::test]
async fn servers_cannot_start_and_requests_find_none_initialized() {
    let fx = Fixture::start().await;
    let server = r#"{"languageId": "python", "pathToProject": "/home/daytona"}"#;
    assert_eq!(
        call(&fx, Method::POST, "/lsp/start", Some(server)).await,
        answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "error starting LSP server"
        )
    );
    assert_eq!(
        call(&fx, Method::POST, "/lsp/stop", Some(server)).await,
        answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "error stopping LSP server"
        )
    );
    // A body that does not bind is refused before anything else.
    for path in ["/lsp/start", "/lsp/stop", "/lsp/did-open"] {
        assert_eq!(
            call(&fx, Method::POST, path, Some("")).await,
            answer(StatusCode::BAD_REQUEST, "invalid request body: EOF"),
            "{path}"
        );
        let (status, message) = call(&fx, Method::POST, path, Some(r#"{"languageId": 7}"#)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(message.starts_with("invalid request body: "), "{message}");
    }
    for path in ["/lsp/completions", "/lsp/did-open", "/lsp/did-close"] {
        let document = r#"{"languageId": "typescript", "pathToProject": "/p", "uri": "file:///p/a.ts", "position": {"line": 0, "character": 0}}"#;
        assert_eq!(
            call(&fx, Method::POST, path, Some(document)).await,
            answer(StatusCode::BAD_REQUEST, "server not initialized"),
            "{path}"
        );
        assert_eq!(
            call(&fx, Method::POST, path, Some(r#"{"languageId": "rust"}"#)).await,
            answer(StatusCode::BAD_REQUEST, "unsupported language: rust"),
            "{path}"
        );
        // Fields are not required by gin's binding: an empty language is just unsupported.
        assert_eq!(
            call(&fx, Method::POST, path, Some("{}")).await,
            answer(StatusCode::BAD_REQUEST, "unsupported language: "),
            "{path}"
        );
    }
    fx.shutdown().await;
}

#[tokio::test]
async fn symbol_queries_are_checked_in_the_daemons_order() {
    let fx = Fixture::start().await;
    let get = |query: &'static str| {
        let fx = &fx;
        async move { call(fx, Method::GET, query, None).await }
    };
    assert_eq!(
        get("/lsp/document-symbols").await,
        answer(StatusCode::BAD_REQUEST, "languageId is required")
    );
    assert_eq!(
        get("/lsp/document-symbols?languageId=python&uri=file:///a.py").await,
        answer(StatusCode::BAD_REQUEST, "pathToProject is required")
    );
    assert_eq!(
        get("/lsp/document-symbols?languageId=python&pathToProject=/p").await,
        answer(StatusCode::BAD_REQUEST, "uri is required")
    );
    assert_eq!(
        get("/lsp/document-symbols?languageId=python&pathToProject=/p&uri=file:///p/a.py").await,
        answer(StatusCode::BAD_REQUEST, "server not initialized")
    );
    assert_eq!(
        get("/lsp/workspacesymbols?languageId=python&pathToProject=/p").await,
        answer(StatusCode::BAD_REQUEST, "query is required")
    );
    assert_eq!(
        get("/lsp/workspacesymbols?query=main&pathToProject=/p").await,
        answer(StatusCode::BAD_REQUEST, "languageId is required")
    );
    assert_eq!(
        get("/lsp/workspacesymbols?query=main&languageId=go&pathToProject=/p").await,
        answer(StatusCode::BAD_REQUEST, "unsupported language: go")
    );
    fx.shutdown().await;
}
