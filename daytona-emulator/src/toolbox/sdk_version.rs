//! Response formats the daemon picks from the client's SDK version.
//!
//! The daemon reads `X-Daytona-SDK-Version` (or, for browser WebSockets, an offered
//! `X-Daytona-SDK-Version~<v>` subprotocol) and answers session output in one of three shapes:
//!
//! - **combined**: markers stripped, no `stdout`/`stderr` fields: no version and no
//!   `X-Daytona-Split-Output: true`, or a version below 0.27.0;
//! - **no server demux**: markers kept, logs as `text/plain`, exec without `stdout`/`stderr`:
//!   versions below 0.167.0;
//! - **split**: JSON `{output, stdout, stderr}` with `output` keeping the markers.
//!
//! Versions containing `dev` count as the newest. An unparsable version also counts as the
//! newest, as the daemon treats a comparison error.

use std::cmp::Ordering;

use axum::http::HeaderMap;

/// Request header carrying the SDK version.
pub(crate) const SDK_VERSION_HEADER: &str = "x-daytona-sdk-version";
/// Header asking for split output from a client that sends no version.
pub(crate) const SPLIT_OUTPUT_HEADER: &str = "x-daytona-split-output";
/// Prefix of the WebSocket subprotocol that carries the SDK version.
pub(crate) const SDK_VERSION_PROTOCOL_PREFIX: &str = "X-Daytona-SDK-Version~";

/// How to shape session output for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutputFormat {
    /// Strip the markers and send only the combined text.
    pub combined: bool,
    /// Do not demultiplex on the server (old SDKs demux themselves).
    pub skip_demux: bool,
    /// The version subprotocol the client offered, to echo on a WebSocket upgrade.
    pub ws_protocol: Option<String>,
}

impl OutputFormat {
    /// The format the request's headers ask for.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let ws_protocol = headers
            .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .find(|p| p.starts_with(SDK_VERSION_PROTOCOL_PREFIX))
            .map(str::to_string);
        let version = headers
            .get(SDK_VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .or_else(|| {
                ws_protocol
                    .as_deref()
                    .and_then(|p| p.strip_prefix(SDK_VERSION_PROTOCOL_PREFIX))
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let split_requested = headers
            .get(SPLIT_OUTPUT_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "true");
        Self::for_version(&version, split_requested, ws_protocol)
    }

    fn for_version(version: &str, split_requested: bool, ws_protocol: Option<String>) -> Self {
        let dev = version.contains("dev");
        let older_than = |threshold: &str| {
            !version.is_empty()
                && !dev
                && compare_versions(version, threshold) == Some(Ordering::Less)
        };
        let combined = older_than("0.27.0-0") || (version.is_empty() && !split_requested);
        let skip_demux = older_than("0.167.0-0");
        OutputFormat {
            combined,
            skip_demux,
            ws_protocol,
        }
    }
}

/// Compare two semver-ish versions (`major.minor.patch[-pre]`); `None` when either does not parse.
fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let (a_core, a_pre) = parse_version(a)?;
    let (b_core, b_pre) = parse_version(b)?;
    Some(a_core.cmp(&b_core).then_with(|| match (a_pre, b_pre) {
        (None, None) => Ordering::Equal,
        // A pre-release sorts before its release.
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(x), Some(y)) => compare_prerelease(x, y),
    }))
}

/// Semver pre-release precedence: dot-separated identifiers, numeric ones compared as numbers
/// and lower than alphanumeric ones, a shorter list lower when it is a prefix of a longer one.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let mut a_ids = a.split('.');
    let mut b_ids = b.split('.');
    loop {
        match (a_ids.next(), b_ids.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

fn parse_version(v: &str) -> Option<([u64; 3], Option<&str>)> {
    let v = v.strip_prefix('v').unwrap_or(v);
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (v, None),
    };
    let core = core.split('+').next()?;
    let mut parts = core.split('.');
    let mut out = [0u64; 3];
    for slot in out.iter_mut() {
        *slot = parts.next()?.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some((out, pre))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fmt(version: &str, split: bool) -> OutputFormat {
        OutputFormat::for_version(version, split, None)
    }

    #[test]
    fn gating_follows_the_daemon() {
        let current = fmt("0.218.0", false);
        assert!(!current.combined && !current.skip_demux);
        let none = fmt("", false);
        assert!(none.combined && !none.skip_demux);
        let none_split = fmt("", true);
        assert!(!none_split.combined && !none_split.skip_demux);
        let mid = fmt("0.163.0", true);
        assert!(!mid.combined && mid.skip_demux);
        let old = fmt("0.26.9", false);
        assert!(old.combined && old.skip_demux);
        let dev = fmt("0.0.0-dev", false);
        assert!(!dev.combined && !dev.skip_demux);
        let junk = fmt("banana", false);
        assert!(!junk.combined && !junk.skip_demux);
        assert!(!fmt("0.167.0", false).skip_demux);
        // `-0` is the lowest pre-release, so every 0.167.0 pre-release is new enough.
        assert!(!fmt("0.167.0-rc.1", false).skip_demux);
        assert!(fmt("0.166.9-rc.1", false).skip_demux);
        assert_eq!(compare_prerelease("alpha.2", "alpha.10"), Ordering::Less);
        assert_eq!(compare_prerelease("alpha", "alpha.1"), Ordering::Less);
        assert_eq!(compare_prerelease("1", "alpha"), Ordering::Less);
    }

    #[test]
    fn version_can_come_from_a_websocket_subprotocol() {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::SEC_WEBSOCKET_PROTOCOL,
            "foo, X-Daytona-SDK-Version~0.20.0".parse().unwrap(),
        );
        let f = OutputFormat::from_headers(&headers);
        assert!(f.combined);
        assert_eq!(
            f.ws_protocol.as_deref(),
            Some("X-Daytona-SDK-Version~0.20.0")
        );
    }
}
