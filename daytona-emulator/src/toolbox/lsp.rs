//! `/lsp/*` as the daemon answers in a sandbox with no language server to run (`lsp/lsp.go`,
//! `lsp/service.go`). The daemon starts `typescript-language-server` or `pylsp` from the
//! sandbox image; an emulated sandbox runs none, so a start fails as it does when the binary
//! is missing, and every request to a server finds it not initialized. The request checks in
//! front of that are the daemon's, in its order.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use daytona_api::toolbox::codes;
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;
use crate::toolbox::SandboxPath;

/// The `/lsp` routes, to be merged into the toolbox router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/lsp/start", post(start))
        .route("/lsp/stop", post(stop))
        .route("/lsp/completions", post(document_request))
        .route("/lsp/did-open", post(document_request))
        .route("/lsp/did-close", post(document_request))
        .route("/lsp/document-symbols", get(document_symbols))
        .route("/lsp/workspacesymbols", get(workspace_symbols))
}

/// The fields every `/lsp` body names the server by. Go binds absent fields as empty strings
/// (the request types' `validate` tags are not checked by gin's binding).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerRequest {
    #[serde(default)]
    language_id: String,
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::daemon(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
}

/// The body as gin's `ShouldBindJSON` takes it: 400 `invalid request body: ...` when it is not
/// JSON of the right shape (`EOF` for an empty body, as Go's decoder reports it).
fn bind(body: &[u8]) -> Result<ServerRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad_request("invalid request body: EOF"));
    }
    serde_json::from_slice::<Option<ServerRequest>>(body)
        .map(Option::unwrap_or_default)
        .map_err(|e| bad_request(format!("invalid request body: {e}")))
}

/// `LSPService.Get` then `IsInitialized`: a language the daemon has no server for, else a
/// server that never started.
fn server_not_running(language_id: &str) -> ApiError {
    if matches!(language_id, "typescript" | "python") {
        bad_request("server not initialized")
    } else {
        bad_request(format!("unsupported language: {language_id}"))
    }
}

/// `POST /lsp/start`: the daemon's start fails when the server binary cannot be run.
async fn start(
    state: State<AppState>,
    path: UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    server_call_fails(state, path, &body, "error starting LSP server")
}

/// `POST /lsp/stop`: no server ever started, so there is none to stop.
async fn stop(
    state: State<AppState>,
    path: UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    server_call_fails(state, path, &body, "error stopping LSP server")
}

/// A start or stop: the body is bound, then the server call fails with the daemon's 500.
fn server_call_fails(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: &[u8],
    message: &str,
) -> Result<Response, ApiError> {
    state.toolbox_target(&p.sandbox_id)?;
    bind(body)?;
    Err(ApiError::daemon(
        StatusCode::INTERNAL_SERVER_ERROR,
        codes::INTERNAL_SERVER_ERROR,
        message,
    ))
}

/// `POST /lsp/completions`, `/lsp/did-open`, `/lsp/did-close`.
async fn document_request(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    state.toolbox_target(&p.sandbox_id)?;
    let request = bind(&body)?;
    Err(server_not_running(&request.language_id))
}

/// The query of the two symbol routes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SymbolsQuery {
    language_id: Option<String>,
    path_to_project: Option<String>,
    uri: Option<String>,
    query: Option<String>,
}

/// The first of `params` that is missing or empty, as the daemon checks them in order.
fn require(params: &[(&str, &Option<String>)]) -> Result<(), ApiError> {
    match params
        .iter()
        .find(|(_, v)| v.as_deref().is_none_or(str::is_empty))
    {
        Some((name, _)) => Err(bad_request(format!("{name} is required"))),
        None => Ok(()),
    }
}

/// `GET /lsp/document-symbols?languageId=&pathToProject=&uri=`.
async fn document_symbols(
    state: State<AppState>,
    path: UrlPath<SandboxPath>,
    Query(q): Query<SymbolsQuery>,
) -> Result<Response, ApiError> {
    let required = [
        ("languageId", &q.language_id),
        ("pathToProject", &q.path_to_project),
        ("uri", &q.uri),
    ];
    symbols(state, path, &required, &q)
}

/// `GET /lsp/workspacesymbols?query=&languageId=&pathToProject=`.
async fn workspace_symbols(
    state: State<AppState>,
    path: UrlPath<SandboxPath>,
    Query(q): Query<SymbolsQuery>,
) -> Result<Response, ApiError> {
    let required = [
        ("query", &q.query),
        ("languageId", &q.language_id),
        ("pathToProject", &q.path_to_project),
    ];
    symbols(state, path, &required, &q)
}

/// A symbol route: its `required` query in order, then the server lookup.
fn symbols(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    required: &[(&str, &Option<String>)],
    q: &SymbolsQuery,
) -> Result<Response, ApiError> {
    state.toolbox_target(&p.sandbox_id)?;
    require(required)?;
    Err(server_not_running(q.language_id.as_deref().unwrap_or("")))
}
