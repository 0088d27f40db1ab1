//! Preview links: URLs that reach a server listening on a port inside a sandbox.
//!
//! Sandbox commands share the machine's network, so a server started in a sandbox listens on
//! `127.0.0.1:PORT` of the host. Preview URLs are path-based routes on the emulator that
//! forward HTTP there (streaming both ways):
//!
//! - `GET /api/sandbox/{id}/ports/{port}/preview-url` → `<base>/_emulator/preview/{id}/{port}/`
//!   with the sandbox's preview token; unless the sandbox is public, requests must carry it in
//!   `X-Daytona-Preview-Token` (or `?DAYTONA_SANDBOX_AUTH_KEY=`), else 401.
//! - `GET /api/sandbox/{id}/ports/{port}/signed-preview-url?expiresInSeconds=` (default 60,
//!   at most 86400) → `<base>/_emulator/preview-signed/{token}/`: the token in the URL is the
//!   credential, valid until it expires (then 401) or is expired early with
//!   `POST .../signed-preview-url/{token}/expire`.
//!
//! The request path after the prefix is forwarded as the path (so relative links work;
//! absolute links in served pages leave the prefix). Hop-by-hop headers and the preview
//! credentials are not forwarded; `X-Forwarded-Host`, `X-Forwarded-Proto` and
//! `X-Forwarded-Prefix` are added. Nothing listening → 502 naming the port; a sandbox that is
//! not started → 502 as well. WebSocket upgrades are not proxied (501).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use daytona_api::sandbox::SandboxState;
use futures::TryStreamExt;
use rand::Rng;

use crate::error::ApiError;
use crate::registries::SignedPreview;
use crate::state::AppState;

/// Signed preview URLs live this long when the request names no expiry (upstream's default).
pub const DEFAULT_SIGNED_EXPIRY_SECS: u64 = 60;
/// Longest expiry accepted (one day).
pub const MAX_SIGNED_EXPIRY_SECS: u64 = 24 * 60 * 60;
/// How long connecting to the sandbox's port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Header carrying the preview token.
const TOKEN_HEADER: &str = "x-daytona-preview-token";
/// Query parameter carrying the preview token.
const TOKEN_QUERY: &str = "DAYTONA_SANDBOX_AUTH_KEY";
/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn random_token() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::api(StatusCode::UNAUTHORIZED, message)
}

impl AppState {
    /// `<base>/_emulator/preview/{id}/{port}/`.
    pub fn preview_url(&self, sandbox_id: &str, port: u16) -> String {
        format!("{}/_emulator/preview/{sandbox_id}/{port}/", self.base_url())
    }

    /// Issues a signed preview token for a sandbox port; returns `(token, url)`.
    pub fn sign_preview(
        &self,
        sandbox_id: &str,
        port: u16,
        expires_in: Duration,
    ) -> (String, String) {
        let token = random_token();
        let mut previews = self.previews();
        let now = Instant::now();
        previews.by_token.retain(|_, p| p.expires > now);
        previews.by_token.insert(
            token.clone(),
            SignedPreview {
                sandbox_id: sandbox_id.to_string(),
                port,
                expires: now + expires_in,
            },
        );
        let url = format!("{}/_emulator/preview-signed/{token}/", self.base_url());
        (token, url)
    }

    /// Expires a signed preview token of this sandbox and port now; false if unknown.
    pub fn expire_signed_preview(&self, sandbox_id: &str, port: u16, token: &str) -> bool {
        let mut previews = self.previews();
        match previews.by_token.get(token) {
            Some(p) if p.sandbox_id == sandbox_id && p.port == port => {
                previews.by_token.remove(token);
                true
            }
            _ => false,
        }
    }

    /// Forwards a request that came in on `/_emulator/preview/{id}/{port}/{rest}`.
    pub(crate) async fn proxy_preview(
        &self,
        sandbox_id: &str,
        port: u16,
        rest: &str,
        request: Request,
    ) -> Response {
        let token = self.preview_token(sandbox_id);
        let public = self.sandbox(sandbox_id).is_some_and(|s| s.public);
        let Some(expected) = token else {
            return ApiError::not_found(format!("Sandbox {sandbox_id} not found")).into_response();
        };
        if !public && !carries_token(request.headers(), request.uri().query(), &expected) {
            return unauthorized(
                "Unauthorized: send the sandbox's preview token in the X-Daytona-Preview-Token header",
            )
            .into_response();
        }
        let prefix = format!("/_emulator/preview/{sandbox_id}/{port}");
        self.forward(sandbox_id, port, rest, &prefix, request).await
    }

    /// Forwards a request that came in on `/_emulator/preview-signed/{token}/{rest}`.
    pub(crate) async fn proxy_signed_preview(
        &self,
        token: &str,
        rest: &str,
        request: Request,
    ) -> Response {
        let signed = self.previews().by_token.get(token).cloned();
        let Some(signed) = signed else {
            return unauthorized("Unauthorized: unknown or expired signed preview URL")
                .into_response();
        };
        if Instant::now() >= signed.expires {
            self.previews().by_token.remove(token);
            return unauthorized("Unauthorized: the signed preview URL has expired")
                .into_response();
        }
        let prefix = format!("/_emulator/preview-signed/{token}");
        self.forward(&signed.sandbox_id, signed.port, rest, &prefix, request)
            .await
    }

    async fn forward(
        &self,
        sandbox_id: &str,
        port: u16,
        rest: &str,
        prefix: &str,
        request: Request,
    ) -> Response {
        match self.sandbox(sandbox_id).and_then(|s| s.state) {
            Some(SandboxState::Started) => {}
            Some(state) => {
                return ApiError::api(
                    StatusCode::BAD_GATEWAY,
                    format!("Sandbox {sandbox_id} is not running (state: {state})"),
                )
                .into_response();
            }
            None => {
                return ApiError::not_found(format!("Sandbox {sandbox_id} not found"))
                    .into_response();
            }
        }
        if request.headers().contains_key(header::UPGRADE) {
            return ApiError::api(
                StatusCode::NOT_IMPLEMENTED,
                "The Daytona emulator does not proxy WebSocket upgrades on preview URLs",
            )
            .into_response();
        }
        self.record_activity(sandbox_id);
        let (parts, body) = request.into_parts();
        let query = forwarded_query(parts.uri.query());
        let url = format!(
            "http://127.0.0.1:{port}/{}{}",
            rest.trim_start_matches('/'),
            query.map(|q| format!("?{q}")).unwrap_or_default()
        );
        let mut headers = forwarded_headers(&parts.headers);
        if let Some(host) = parts.headers.get(header::HOST) {
            headers.insert("x-forwarded-host", host.clone());
        }
        // The scheme clients reach the emulator by: the public URL's, or the listener's.
        let proto = if self.base_url().starts_with("https:") {
            "https"
        } else {
            "http"
        };
        headers.insert("x-forwarded-proto", HeaderValue::from_static(proto));
        if let Ok(prefix) = HeaderValue::from_str(prefix) {
            headers.insert("x-forwarded-prefix", prefix);
        }
        let body = reqwest::Body::wrap_stream(body.into_data_stream());
        let sent = client()
            .request(parts.method.clone(), &url)
            .headers(headers)
            .body(body)
            .send()
            .await;
        let upstream = match sent {
            Ok(r) => r,
            Err(e) => {
                let why = if e.is_connect() {
                    "nothing is listening there (connection refused)".to_string()
                } else if e.is_timeout() {
                    "the connection timed out".to_string()
                } else {
                    format!("the request failed: {e}")
                };
                return ApiError::api(
                    StatusCode::BAD_GATEWAY,
                    format!("Cannot reach port {port} of sandbox {sandbox_id}: {why}"),
                )
                .into_response();
            }
        };
        let status = upstream.status();
        let headers = forwarded_headers(upstream.headers());
        let stream = upstream.bytes_stream().map_err(std::io::Error::other);
        let mut response = Response::new(Body::from_stream(stream));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }
}

/// One client for every preview request: no redirects followed (the browser's job), no
/// proxy from the environment (the target is always this machine).
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "preview client with defaults");
                reqwest::Client::new()
            })
    })
}

fn carries_token(headers: &HeaderMap, query: Option<&str>, expected: &str) -> bool {
    let header = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok());
    let query = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == TOKEN_QUERY)
        .map(|(_, v)| v.into_owned());
    header == Some(expected) || query.as_deref() == Some(expected)
}

/// The query without the preview credential.
fn forwarded_query(query: Option<&str>) -> Option<String> {
    let query = query?;
    if !query.contains(TOKEN_QUERY) {
        return Some(query.to_string());
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| pair.split('=').next() != Some(TOKEN_QUERY))
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// Headers minus hop-by-hop ones (also those `Connection` names), `Host`, `Content-Length`
/// (the body is re-framed) and the preview token.
fn forwarded_headers(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        let lower = name.as_str();
        if HOP_BY_HOP.contains(&lower)
            || named.iter().any(|n| n == lower)
            || name == header::HOST
            || name == header::CONTENT_LENGTH
            || lower == TOKEN_HEADER
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_not_forwarded() {
        assert_eq!(
            forwarded_query(Some("a=1&DAYTONA_SANDBOX_AUTH_KEY=t&b=2")).as_deref(),
            Some("a=1&b=2")
        );
        assert_eq!(forwarded_query(Some("DAYTONA_SANDBOX_AUTH_KEY=t")), None);
        assert_eq!(forwarded_query(Some("x=y")).as_deref(), Some("x=y"));
        let mut h = HeaderMap::new();
        h.insert("x-daytona-preview-token", HeaderValue::from_static("t"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("p"));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        h.insert(header::HOST, HeaderValue::from_static("h"));
        let out = forwarded_headers(&h);
        assert_eq!(out.len(), 1);
        assert!(out.contains_key(header::ACCEPT));
    }

    #[test]
    fn tokens_are_found_in_header_or_query() {
        let mut h = HeaderMap::new();
        assert!(!carries_token(&h, None, "t"));
        assert!(carries_token(&h, Some("DAYTONA_SANDBOX_AUTH_KEY=t"), "t"));
        h.insert("x-daytona-preview-token", HeaderValue::from_static("t"));
        assert!(carries_token(&h, None, "t"));
        assert!(!carries_token(&h, None, "other"));
    }
}
