//! The HTTP machinery under every call: one reqwest pool, the SDK headers, deadlines, retries,
//! error mapping and a tracing span per call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use url::Url;

use crate::config::DaytonaConfig;
use crate::error::{DaytonaError, parse_retry_after};
use crate::retry::{Failure, Replay};

/// The SDK version this client speaks as. The daemon picks response formats from
/// `X-Daytona-SDK-Version`; ≥ 0.167 gets session output split into `stdout`/`stderr`.
pub const SDK_COMPAT_VERSION: &str = "0.218.0";

/// `X-Daytona-Source` value.
pub const SDK_SOURCE: &str = "sdk-rust";

/// Error bodies larger than this are cut before parsing.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Builds a multipart form afresh for each attempt (file sources are reopened).
pub(crate) type FormFactory = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<reqwest::multipart::Form, DaytonaError>> + Send>>
        + Send
        + Sync,
>;

/// A request body that can be produced again for a retry.
#[derive(Clone)]
pub(crate) enum Body {
    Empty,
    Json(Bytes),
    Multipart(FormFactory),
}

/// How long one attempt may take.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Deadline {
    /// The configured request timeout.
    Default,
    /// No deadline.
    Unbounded,
    /// This long.
    After(Duration),
}

/// One logical API call (possibly several attempts).
#[derive(Clone)]
pub(crate) struct Call {
    pub op: &'static str,
    pub method: Method,
    pub url: Url,
    pub body: Body,
    pub replay: Replay,
    pub deadline: Deadline,
    /// No attempt starts, and none runs, past this instant (lifecycle waits pass their budget).
    pub until: Option<Instant>,
    pub sandbox_id: Option<String>,
}

impl Call {
    pub fn new(op: &'static str, method: Method, url: Url) -> Self {
        let replay = if matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        ) {
            Replay::Idempotent
        } else {
            Replay::ConnectOnly
        };
        Call {
            op,
            method,
            url,
            body: Body::Empty,
            replay,
            deadline: Deadline::Default,
            until: None,
            sandbox_id: None,
        }
    }

    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self, DaytonaError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| DaytonaError::invalid("body", format!("cannot encode request: {e}")))?;
        self.body = Body::Json(Bytes::from(bytes));
        Ok(self)
    }

    pub fn multipart(mut self, factory: FormFactory) -> Self {
        self.body = Body::Multipart(factory);
        self
    }

    pub fn replay(mut self, replay: Replay) -> Self {
        self.replay = replay;
        self
    }

    pub fn deadline(mut self, deadline: Deadline) -> Self {
        self.deadline = deadline;
        self
    }

    pub fn until(mut self, until: Option<Instant>) -> Self {
        self.until = until;
        self
    }

    pub fn sandbox(mut self, id: &str) -> Self {
        self.sandbox_id = Some(id.to_string());
        self
    }
}

/// What happened across the attempts of one call.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stats {
    /// Whether some earlier attempt may have reached the server and been acted on.
    pub unknown_outcome: bool,
}

/// A success answer with its body read.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Bytes,
}

/// Shared by every clone of the client and every sandbox handle.
pub(crate) struct Transport {
    http: reqwest::Client,
    headers: HeaderMap,
    config: DaytonaConfig,
    /// TLS for WebSockets when extra roots are trusted; `None` uses tungstenite's default
    /// (the public web PKI roots).
    ws_tls: Option<tokio_tungstenite::Connector>,
    /// TLS for connections made ahead (`preconnect`): the same roots, always built.
    ws_rustls: Arc<rustls::ClientConfig>,
    spares: Arc<crate::preconnect::Spares>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("api_url", &self.config.api_url_str())
            .finish_non_exhaustive()
    }
}

/// A rustls client config trusting the public web PKI roots plus the configured extra ones, as
/// reqwest does for HTTP.
fn websocket_tls(config: &DaytonaConfig) -> Result<Arc<rustls::ClientConfig>, DaytonaError> {
    let invalid = |reason: String| DaytonaError::InvalidConfig {
        field: "extra_ca".into(),
        reason,
    };
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for der in &config.extra_roots.0 {
        roots
            .add(der.clone())
            .map_err(|e| invalid(format!("a certificate cannot be a trust anchor: {e}")))?;
    }
    // ring explicitly: the process-wide default provider may be unset, or another one.
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(tls))
}

impl Transport {
    pub fn new(config: DaytonaConfig) -> Result<Self, DaytonaError> {
        config.validate()?;
        let headers = sdk_headers(&config)?;
        let mut http = reqwest::Client::builder()
            .default_headers(headers.clone())
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60));
        for der in &config.extra_roots.0 {
            let cert =
                reqwest::Certificate::from_der(der).map_err(|e| DaytonaError::InvalidConfig {
                    field: "extra_ca".into(),
                    reason: e.to_string(),
                })?;
            http = http.add_root_certificate(cert);
        }
        let ws_rustls = websocket_tls(&config)?;
        // Without extra roots tungstenite's own default (the same public roots) serves.
        let ws_tls = (!config.extra_roots.0.is_empty())
            .then(|| tokio_tungstenite::Connector::Rustls(ws_rustls.clone()));
        let http = http.build().map_err(|e| DaytonaError::InvalidConfig {
            field: "http client".into(),
            reason: e.to_string(),
        })?;
        Ok(Transport {
            http,
            headers,
            config,
            ws_tls,
            ws_rustls,
            spares: Arc::default(),
        })
    }

    /// Make a connection to `url`'s origin in the background for a WebSocket soon to be
    /// opened there (see [`crate::preconnect`]).
    pub fn preconnect(&self, url: &url::Url) {
        self.spares
            .make(url, self.ws_rustls.clone(), self.config.connect_timeout);
    }

    /// A connection made ahead for `url`'s origin, if one is ready.
    pub fn take_spare(
        &self,
        url: &url::Url,
    ) -> Option<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
        self.spares.take(url)
    }

    /// The TLS connector for WebSocket handshakes (`None`: tungstenite's default).
    pub fn websocket_tls(&self) -> Option<tokio_tungstenite::Connector> {
        self.ws_tls.clone()
    }

    pub fn config(&self) -> &DaytonaConfig {
        &self.config
    }

    /// The headers every request carries (for WebSocket upgrades).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Runs a call and reads the whole success body.
    pub async fn call(&self, call: &Call) -> Result<Reply, DaytonaError> {
        self.call_with_stats(call).await.0
    }

    /// [`call`](Self::call), also reporting whether a replay happened after an unknown outcome
    /// (so a 409 or 404 may be the echo of our own first attempt).
    pub async fn call_with_stats(&self, call: &Call) -> (Result<Reply, DaytonaError>, Stats) {
        let (result, stats) = self.run(call, true).await;
        let result = match result {
            Ok(Answer::Read(r)) => Ok(r),
            Ok(Answer::Open(_)) => Err(DaytonaError::decode(call.op, "internal: body not read")),
            Err(e) => Err(e),
        };
        (result, stats)
    }

    /// Runs a call and decodes the JSON success body.
    pub async fn call_json<T: DeserializeOwned>(&self, call: &Call) -> Result<T, DaytonaError> {
        let reply = self.call(call).await?;
        decode_json(call.op, &reply.body)
    }

    /// Runs a call and hands back the open success response (streaming bodies).
    pub async fn call_streaming(&self, call: &Call) -> Result<reqwest::Response, DaytonaError> {
        match self.run(call, false).await.0? {
            Answer::Open(r) => Ok(r),
            Answer::Read(_) => Err(DaytonaError::decode(call.op, "internal: body already read")),
        }
    }

    async fn run(&self, call: &Call, read_body: bool) -> (Result<Answer, DaytonaError>, Stats) {
        let span = tracing::info_span!(
            "daytona.call",
            op = call.op,
            sandbox_id = call.sandbox_id.as_deref().unwrap_or(""),
            method = %call.method,
            path = %call.url.path(),
            status = tracing::field::Empty,
            attempts = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        async move {
            let started = Instant::now();
            let mut retries = 0u32;
            let mut unknown_outcome = false;
            let result = loop {
                match self.attempt(call, read_body).await {
                    Ok(answer) => break Ok(answer),
                    Err((err, failure)) => {
                        let Some(wait) = self.retry_wait(
                            call.replay,
                            call.until,
                            &err,
                            failure,
                            retries,
                            started,
                        ) else {
                            break Err(err);
                        };
                        // A 429 was refused before any work; a gateway error or a broken
                        // connection may hide a request the server did act on.
                        unknown_outcome |= failure == Failure::Unknown
                            || (failure == Failure::TransientStatus && err.status() != Some(429));
                        tracing::info!(
                            op = call.op,
                            retry = retries + 1,
                            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                            error = %err,
                            "daytona call failed transiently; retrying"
                        );
                        tokio::time::sleep(wait).await;
                        retries += 1;
                    }
                }
            };
            let span = tracing::Span::current();
            let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            span.record("attempts", retries + 1);
            span.record("duration_ms", elapsed);
            match &result {
                Ok(answer) => {
                    span.record("status", answer.status());
                    tracing::debug!(
                        op = call.op,
                        status = answer.status(),
                        attempts = retries + 1,
                        duration_ms = elapsed,
                        "daytona call succeeded"
                    );
                }
                Err(err) => {
                    if let Some(status) = err.status() {
                        span.record("status", status);
                    }
                    tracing::debug!(
                        op = call.op,
                        status = err.status().unwrap_or(0),
                        attempts = retries + 1,
                        duration_ms = elapsed,
                        error = %err,
                        "daytona call failed"
                    );
                }
            }
            let stats = Stats { unknown_outcome };
            (result, stats)
        }
        .instrument(span)
        .await
    }

    /// How long to wait before the next attempt, or `None` to give up.
    pub(crate) fn retry_wait(
        &self,
        replay: Replay,
        until: Option<Instant>,
        err: &DaytonaError,
        failure: Failure,
        retries: u32,
        started: Instant,
    ) -> Option<Duration> {
        let retry = &self.config.retry;
        if retries >= retry.max_retries || !replay.allows(failure) {
            return None;
        }
        let wait = match err {
            DaytonaError::RateLimited {
                retry_after: Some(after),
                ..
            } => {
                if *after > retry.max_backoff {
                    return None;
                }
                *after
            }
            _ => retry.backoff(retries),
        };
        if started.elapsed() + wait > retry.max_elapsed {
            return None;
        }
        if let Some(until) = until
            && Instant::now() + wait >= until
        {
            return None;
        }
        Some(wait)
    }

    /// One attempt; on failure also says what kind of failure it was.
    async fn attempt(
        &self,
        call: &Call,
        read_body: bool,
    ) -> Result<Answer, (DaytonaError, Failure)> {
        let timeout = self.attempt_timeout(call);
        if timeout == Some(Duration::ZERO) {
            return Err((
                DaytonaError::RequestTimeout {
                    operation: call.op,
                    after: Duration::ZERO,
                },
                Failure::Permanent,
            ));
        }
        let mut req = self.http.request(call.method.clone(), call.url.clone());
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        req = match &call.body {
            Body::Empty => req,
            Body::Json(bytes) => req
                .header(CONTENT_TYPE, "application/json")
                .body(bytes.clone()),
            Body::Multipart(factory) => {
                let form = factory().await.map_err(|e| (e, Failure::Permanent))?;
                req.multipart(form.percent_encode_noop())
            }
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Err(self.classify_reqwest(call, e, timeout)),
        };
        let status = resp.status();
        if status.is_success() {
            if !read_body {
                return Ok(Answer::Open(resp));
            }
            return match resp.bytes().await {
                Ok(body) => Ok(Answer::Read(Reply {
                    status: status.as_u16(),
                    body,
                })),
                Err(e) => Err(self.classify_reqwest(call, e, timeout)),
            };
        }
        let retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = read_capped(resp, MAX_ERROR_BODY).await;
        let err = DaytonaError::from_response(status.as_u16(), &body, retry_after);
        let failure = match status.as_u16() {
            429 | 502 | 503 | 504 => Failure::TransientStatus,
            _ => Failure::Permanent,
        };
        Err((err, failure))
    }

    fn attempt_timeout(&self, call: &Call) -> Option<Duration> {
        let base = match call.deadline {
            Deadline::Default => self.config.request_timeout,
            Deadline::Unbounded => None,
            Deadline::After(d) => Some(d),
        };
        match call.until {
            Some(until) => {
                let left = until.saturating_duration_since(Instant::now());
                Some(base.map_or(left, |b| b.min(left)))
            }
            None => base,
        }
    }

    pub(crate) fn classify_reqwest(
        &self,
        call: &Call,
        e: reqwest::Error,
        timeout: Option<Duration>,
    ) -> (DaytonaError, Failure) {
        let message = error_chain(&e);
        if e.is_connect() {
            let endpoint = endpoint_of(&call.url);
            return (
                DaytonaError::Connect {
                    endpoint,
                    message,
                    source: Some(Box::new(e.without_url())),
                },
                Failure::Connect,
            );
        }
        if e.is_timeout() {
            return (
                DaytonaError::RequestTimeout {
                    operation: call.op,
                    after: timeout.unwrap_or_default(),
                },
                Failure::Unknown,
            );
        }
        if e.is_builder() {
            return (
                DaytonaError::invalid("request", message),
                Failure::Permanent,
            );
        }
        (
            DaytonaError::Transport {
                operation: call.op,
                message,
                source: Some(Box::new(e.without_url())),
            },
            Failure::Unknown,
        )
    }
}

enum Answer {
    Read(Reply),
    Open(reqwest::Response),
}

impl Answer {
    fn status(&self) -> u16 {
        match self {
            Answer::Read(r) => r.status,
            Answer::Open(r) => r.status().as_u16(),
        }
    }
}

/// Reads at most `cap` bytes of a body; a broken body yields what arrived.
async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = cap.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= cap {
            break;
        }
    }
    buf
}

pub(crate) fn decode_json<T: DeserializeOwned>(
    op: &'static str,
    body: &[u8],
) -> Result<T, DaytonaError> {
    serde_json::from_slice(body).map_err(|e| {
        let preview = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        DaytonaError::decode(op, format!("{e}; body starts with {preview:?}"))
    })
}

/// `scheme://host:port` of a URL, for messages (no path, no userinfo).
pub(crate) fn endpoint_of(url: &Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{}://{h}:{p}", url.scheme()),
        (Some(h), None) => format!("{}://{h}", url.scheme()),
        _ => url.scheme().to_string(),
    }
}

/// An error and its causes, joined, so the root cause (e.g. "connection reset") is visible.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn sdk_headers(config: &DaytonaConfig) -> Result<HeaderMap, DaytonaError> {
    let mut headers = HeaderMap::new();
    let mut auth =
        HeaderValue::from_str(&format!("Bearer {}", config.credentials.bearer().expose()))
            .map_err(|_| DaytonaError::InvalidConfig {
                field: "credentials".into(),
                reason: "the token contains characters not allowed in an HTTP header".into(),
            })?;
    auth.set_sensitive(true);
    headers.insert(AUTHORIZATION, auth);
    headers.insert(
        HeaderName::from_static("x-daytona-source"),
        HeaderValue::from_static(SDK_SOURCE),
    );
    headers.insert(
        HeaderName::from_static("x-daytona-sdk-version"),
        HeaderValue::from_static(SDK_COMPAT_VERSION),
    );
    let ua = format!(
        "{SDK_SOURCE}/{SDK_COMPAT_VERSION} workspace-daytona/{}",
        env!("CARGO_PKG_VERSION")
    );
    headers.insert(
        USER_AGENT,
        HeaderValue::from_str(&ua).map_err(|_| DaytonaError::InvalidConfig {
            field: "user agent".into(),
            reason: "invalid header value".into(),
        })?,
    );
    if let Some(org) = config.credentials.organization_id() {
        headers.insert(
            HeaderName::from_static("x-daytona-organization-id"),
            HeaderValue::from_str(org).map_err(|_| DaytonaError::InvalidConfig {
                field: "organization_id".into(),
                reason: "contains characters not allowed in an HTTP header".into(),
            })?,
        );
    }
    Ok(headers)
}

/// Appends percent-encoded path segments to a base URL.
pub(crate) fn join(base: &Url, segments: &[&str]) -> Result<Url, DaytonaError> {
    let mut url = base.clone();
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|_| DaytonaError::InvalidConfig {
                field: "api_url".into(),
                reason: format!("`{base}` cannot have path segments"),
            })?;
        path.pop_if_empty();
        for s in segments {
            path.push(s);
        }
    }
    Ok(url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn join_encodes_segments() {
        let base = Url::parse("http://h:1/api").unwrap();
        let u = join(&base, &["sandbox", "a b/c?d"]).unwrap();
        assert_eq!(u.as_str(), "http://h:1/api/sandbox/a%20b%2Fc%3Fd");
        let base = Url::parse("http://h:1/").unwrap();
        assert_eq!(join(&base, &["x"]).unwrap().as_str(), "http://h:1/x");
    }

    #[test]
    fn headers_are_complete_and_auth_is_sensitive() {
        let cfg = DaytonaConfig::with_jwt("tok", "org-9");
        let h = sdk_headers(&cfg).unwrap();
        assert_eq!(h["authorization"], "Bearer tok");
        assert!(h["authorization"].is_sensitive());
        assert_eq!(h["x-daytona-source"], SDK_SOURCE);
        assert_eq!(h["x-daytona-sdk-version"], SDK_COMPAT_VERSION);
        assert_eq!(h["x-daytona-organization-id"], "org-9");
        assert!(
            h["user-agent"]
                .to_str()
                .unwrap()
                .starts_with("sdk-rust/0.218.0")
        );
        let h = sdk_headers(&DaytonaConfig::with_api_key("k")).unwrap();
        assert!(h.get("x-daytona-organization-id").is_none());
    }

    #[test]
    fn bad_token_is_a_config_error() {
        let err = sdk_headers(&DaytonaConfig::with_api_key("a\nb")).unwrap_err();
        assert!(matches!(err, DaytonaError::InvalidConfig { .. }));
        assert!(!err.to_string().contains("a\nb"));
    }

    #[test]
    fn endpoints_hide_paths() {
        let u = Url::parse("https://user:pw@h.example/api/x?y=1").unwrap();
        assert_eq!(endpoint_of(&u), "https://h.example:443");
    }
}
