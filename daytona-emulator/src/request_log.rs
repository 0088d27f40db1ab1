//! The request log: every `/api` and `/toolbox` request the emulator received, so tests can
//! assert what a client actually sent (method, path, query, headers, JSON body) and what it got.
//!
//! Credentials are not kept: the values of `Authorization`, `X-Daytona-Preview-Token` and
//! `Cookie`, the `DAYTONA_SANDBOX_AUTH_KEY` query parameter, a signed preview token in an
//! expire route's path, and a top-level `password` in a JSON body (git credentials) are
//! replaced by `<redacted>` (the `Bearer` scheme word is kept). Other JSON is kept verbatim,
//! including any `env` values
//! a create request carries: asserting them is what the log is for. It is never written to
//! `tracing` output.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::http::HeaderMap;
use serde::Serialize;

use crate::sync::lock;

/// Most records kept; older ones are dropped first.
const MAX_RECORDS: usize = 10_000;

/// Headers whose values are credentials.
const SECRET_HEADERS: &[&str] = &["authorization", "x-daytona-preview-token", "cookie"];
/// Query parameters whose values are credentials.
const SECRET_QUERY_KEYS: &[&str] = &["DAYTONA_SANDBOX_AUTH_KEY", "token"];

/// One request as received.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// Sequence number (1-based, in arrival order).
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string, credentials redacted.
    pub query: Option<String>,
    /// Headers (lower-case names; repeated headers joined with `, `), credentials redacted.
    pub headers: BTreeMap<String, String>,
    /// The body when it was JSON (and at most 1 MiB); `None` otherwise.
    pub body: Option<serde_json::Value>,
    /// Response status; `None` while in flight, or when the connection was reset or the client
    /// gave up before an answer.
    pub status: Option<u16>,
    /// RFC 3339 arrival time.
    pub received_at: String,
}

impl RequestRecord {
    /// A header value by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    inner: Mutex<LogInner>,
}

#[derive(Debug, Default)]
struct LogInner {
    records: std::collections::VecDeque<RequestRecord>,
    next_seq: u64,
}

impl RequestLog {
    /// Records a request; returns its sequence number for [`RequestLog::set_status`].
    pub(crate) fn begin(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: Option<serde_json::Value>,
    ) -> u64 {
        let mut inner = lock(&self.inner);
        inner.next_seq += 1;
        let seq = inner.next_seq;
        let record = RequestRecord {
            seq,
            method: method.to_string(),
            path: redact_path(path),
            query: query.map(redact_query),
            headers: redact_headers(headers),
            body: body.map(redact_body),
            status: None,
            received_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        if inner.records.len() >= MAX_RECORDS {
            inner.records.pop_front();
        }
        inner.records.push_back(record);
        seq
    }

    pub(crate) fn set_status(&self, seq: u64, status: u16) {
        let mut inner = lock(&self.inner);
        if let Some(r) = inner.records.iter_mut().rev().find(|r| r.seq == seq) {
            r.status = Some(status);
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<RequestRecord> {
        lock(&self.inner).records.iter().cloned().collect()
    }

    pub(crate) fn clear(&self) {
        lock(&self.inner).records.clear();
    }
}

fn redact_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str().to_ascii_lowercase();
        let value = if SECRET_HEADERS.contains(&name.as_str()) {
            match value.to_str().ok().and_then(|v| v.split_once(' ')) {
                Some((scheme, _)) if scheme.eq_ignore_ascii_case("bearer") => {
                    format!("{scheme} <redacted>")
                }
                _ => "<redacted>".to_string(),
            }
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        out.entry(name)
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    out
}

/// A signed preview token travels in the path of its expire route.
fn redact_path(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let mut out = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let after_signed = i > 0 && segments[i - 1] == "signed-preview-url";
        if after_signed && segments.get(i + 1) == Some(&"expire") {
            out.push("<redacted>");
        } else {
            out.push(segment);
        }
    }
    out.join("/")
}

/// Git credentials (`password` of clone, push and pull bodies) are not kept.
fn redact_body(mut body: serde_json::Value) -> serde_json::Value {
    if let Some(password) = body.get_mut("password").filter(|p| !p.is_null()) {
        *password = serde_json::Value::String("<redacted>".to_string());
    }
    body
}

fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET_QUERY_KEYS.contains(&k) => format!("{k}=<redacted>"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn credentials_are_redacted() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer sekrit"));
        h.insert("x-daytona-preview-token", HeaderValue::from_static("tok"));
        h.insert(
            "x-daytona-source",
            HeaderValue::from_static("sdk-typescript"),
        );
        let log = RequestLog::default();
        let seq = log.begin(
            "GET",
            "/toolbox/a/files",
            Some("path=/x&DAYTONA_SANDBOX_AUTH_KEY=tok"),
            &h,
            None,
        );
        log.set_status(seq, 200);
        let r = &log.snapshot()[0];
        assert_eq!(r.header("Authorization"), Some("Bearer <redacted>"));
        assert_eq!(r.header("x-daytona-preview-token"), Some("<redacted>"));
        assert_eq!(r.header("x-daytona-source"), Some("sdk-typescript"));
        assert_eq!(
            r.query.as_deref(),
            Some("path=/x&DAYTONA_SANDBOX_AUTH_KEY=<redacted>")
        );
        assert_eq!(r.status, Some(200));
        assert!(!format!("{r:?}").contains("sekrit"));
    }

    #[test]
    fn signed_tokens_and_git_passwords_are_redacted() {
        let log = RequestLog::default();
        log.begin(
            "POST",
            "/api/sandbox/s/ports/3000/signed-preview-url/tok123/expire",
            None,
            &HeaderMap::new(),
            None,
        );
        log.begin(
            "POST",
            "/toolbox/s/git/clone",
            None,
            &HeaderMap::new(),
            Some(serde_json::json!({"url": "u", "username": "me", "password": "hunter2"})),
        );
        let records = log.snapshot();
        assert_eq!(
            records[0].path,
            "/api/sandbox/s/ports/3000/signed-preview-url/<redacted>/expire"
        );
        let body = records[1].body.as_ref().unwrap();
        assert_eq!(body["password"], "<redacted>");
        assert_eq!(body["username"], "me");
    }
}
