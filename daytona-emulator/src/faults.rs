//! Fault injection: rules that make the emulator misbehave on purpose, so clients can be tested
//! against errors, rate limits, slow answers, resets and broken WebSockets.
//!
//! A rule matches a request by method (optional) and path pattern, and fires at most `times`
//! times (forever when unset). Patterns are globs over the request path (query excluded):
//! `*` matches within one `/`-separated segment, `**` matches anything (slashes included), every
//! other character matches itself. `/api/sandbox/**` therefore matches every route below
//! `/api/sandbox/`, and `/toolbox/*/process/execute` matches execute on any sandbox.
//!
//! The HTTP control API (`/_emulator/faults`) takes and returns rules as JSON:
//!
//! ```json
//! {"method": "POST", "path": "/api/sandbox", "times": 1,
//!  "action": {"kind": "status", "status": 429, "retryAfter": 2}}
//! ```
//!
//! Action kinds: `status` (`status`, optional `message`, optional `retryAfter` seconds),
//! `reset` (the connection is closed with a TCP RST and no response), `delay` (`ms`, then the
//! request proceeds), `hang` (never answers; the client's own timeout must fire) and
//! `dropWebSocket` (`afterFrames` or `afterBytes`: the WebSocket opened by the matching
//! request is cut without a close frame after that many server-to-client frames or bytes).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sync::lock;

/// What a matching request gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum FaultAction {
    /// Answer with this status and an error body of the right shape (API or daemon).
    #[serde(rename_all = "camelCase")]
    Status {
        /// HTTP status (400..=599).
        status: u16,
        /// Message in the body; a default per status when unset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// `Retry-After` header in seconds (sent for any status; natural for 429 and 503).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// Close the connection with a TCP reset, without any response.
    Reset,
    /// Wait, then handle the request normally.
    Delay {
        /// Milliseconds to wait.
        ms: u64,
    },
    /// Never answer (until the client gives up and closes the connection).
    Hang,
    /// Cut the WebSocket opened by the matching request (no close frame).
    #[serde(rename_all = "camelCase")]
    DropWebSocket {
        /// Cut after this many server-to-client frames.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_frames: Option<usize>,
        /// Cut after this many server-to-client payload bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_bytes: Option<usize>,
    },
}

/// When to cut a WebSocket, as [`crate::state::AppState::ws_drop_after`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsDrop {
    /// After this many frames sent to the client (0 = right after the upgrade).
    AfterFrames(usize),
    /// Once this many payload bytes were sent to the client (0 = right after the upgrade).
    AfterBytes(usize),
}

impl WsDrop {
    /// Whether a socket that has sent `frames` frames and `bytes` payload bytes must be cut now.
    pub fn reached(self, frames: usize, bytes: usize) -> bool {
        match self {
            WsDrop::AfterFrames(n) => frames >= n,
            WsDrop::AfterBytes(n) => bytes >= n,
        }
    }
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// HTTP method to match (any when unset), case-insensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path glob (see the module docs).
    pub path: String,
    /// How many times it fires; unlimited when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<usize>,
    /// What happens.
    pub action: FaultAction,
}

impl FaultRule {
    /// A rule for every method on paths matching `path`, firing forever.
    pub fn new(path: impl Into<String>, action: FaultAction) -> Self {
        FaultRule {
            method: None,
            path: path.into(),
            times: None,
            action,
        }
    }

    /// Only this method.
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    /// Fire only `n` times.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    /// Answer `status` (with `Retry-After` when given).
    pub fn status(path: impl Into<String>, status: u16) -> Self {
        Self::new(
            path,
            FaultAction::Status {
                status,
                message: None,
                retry_after: None,
            },
        )
    }

    /// Reset the connection.
    pub fn reset(path: impl Into<String>) -> Self {
        Self::new(path, FaultAction::Reset)
    }

    /// Delay, then proceed.
    pub fn delay(path: impl Into<String>, delay: Duration) -> Self {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        Self::new(path, FaultAction::Delay { ms })
    }

    /// Never answer.
    pub fn hang(path: impl Into<String>) -> Self {
        Self::new(path, FaultAction::Hang)
    }

    /// Cut WebSockets opened on `path` as `when` says.
    pub fn drop_websocket(path: impl Into<String>, when: WsDrop) -> Self {
        let (after_frames, after_bytes) = match when {
            WsDrop::AfterFrames(n) => (Some(n), None),
            WsDrop::AfterBytes(n) => (None, Some(n)),
        };
        Self::new(
            path,
            FaultAction::DropWebSocket {
                after_frames,
                after_bytes,
            },
        )
    }

    /// Checks the rule is usable; the message names what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !self.path.starts_with('/') {
            return Err(format!("path must start with '/', got {:?}", self.path));
        }
        if let Some(m) = &self.method
            && (m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            return Err(format!("method must be an HTTP method name, got {m:?}"));
        }
        match &self.action {
            FaultAction::Status { status, .. } if !(400..=599).contains(status) => {
                Err(format!("status must be in 400..=599, got {status}"))
            }
            FaultAction::DropWebSocket {
                after_frames,
                after_bytes,
            } if after_frames.is_some() == after_bytes.is_some() => {
                Err("dropWebSocket needs exactly one of afterFrames and afterBytes".to_string())
            }
            _ => Ok(()),
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && glob_match(self.path.as_bytes(), path.as_bytes())
    }
}

/// A rule as installed, with its id and how often it fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstalledFault {
    /// Id for removal.
    pub id: u64,
    /// The rule.
    pub rule: FaultRule,
    /// Times it fired so far.
    pub hits: usize,
}

/// The installed rules, in installation order (the first match wins).
#[derive(Debug, Default)]
pub(crate) struct FaultSet {
    rules: Mutex<Vec<InstalledFault>>,
    next_id: AtomicU64,
}

impl FaultSet {
    pub(crate) fn add(&self, rule: FaultRule) -> Result<u64, String> {
        rule.validate()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        lock(&self.rules).push(InstalledFault { id, rule, hits: 0 });
        Ok(id)
    }

    pub(crate) fn remove(&self, id: u64) -> bool {
        let mut rules = lock(&self.rules);
        let before = rules.len();
        rules.retain(|r| r.id != id);
        rules.len() != before
    }

    pub(crate) fn clear(&self) {
        lock(&self.rules).clear();
    }

    pub(crate) fn list(&self) -> Vec<InstalledFault> {
        lock(&self.rules).clone()
    }

    /// The first live HTTP rule (not a WebSocket drop) matching the request; counts a hit.
    pub(crate) fn take_http(&self, method: &str, path: &str) -> Option<FaultAction> {
        self.take(|rule| {
            !matches!(rule.action, FaultAction::DropWebSocket { .. }) && rule.matches(method, path)
        })
    }

    /// The first live WebSocket-drop rule for `path` (any method); counts a hit.
    pub(crate) fn take_ws_drop(&self, path: &str) -> Option<WsDrop> {
        let action = self.take(|rule| {
            matches!(rule.action, FaultAction::DropWebSocket { .. }) && rule.matches("GET", path)
        })?;
        match action {
            FaultAction::DropWebSocket {
                after_frames: Some(n),
                ..
            } => Some(WsDrop::AfterFrames(n)),
            FaultAction::DropWebSocket {
                after_bytes: Some(n),
                ..
            } => Some(WsDrop::AfterBytes(n)),
            _ => None,
        }
    }

    fn take(&self, pick: impl Fn(&FaultRule) -> bool) -> Option<FaultAction> {
        let mut rules = lock(&self.rules);
        let rule = rules
            .iter_mut()
            .find(|r| r.rule.times.is_none_or(|t| r.hits < t) && pick(&r.rule))?;
        rule.hits += 1;
        Some(rule.rule.action.clone())
    }
}

/// Glob match: `*` = any run of non-`/` bytes, `**` = any run of bytes.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => {
            let (any_depth, rest) = match rest.split_first() {
                Some((b'*', r)) => (true, r),
                _ => (false, rest),
            };
            for i in 0..=text.len() {
                if glob_match(rest, &text[i..]) {
                    return true;
                }
                if i < text.len() && !any_depth && text[i] == b'/' {
                    return false;
                }
            }
            false
        }
        Some((c, rest)) => text
            .split_first()
            .is_some_and(|(t, text_rest)| t == c && glob_match(rest, text_rest)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn glob_semantics() {
        let m = |p: &str, t: &str| glob_match(p.as_bytes(), t.as_bytes());
        assert!(m("/api/sandbox", "/api/sandbox"));
        assert!(!m("/api/sandbox", "/api/sandbox/x"));
        assert!(m("/api/sandbox/*", "/api/sandbox/x"));
        assert!(!m("/api/sandbox/*", "/api/sandbox/x/stop"));
        assert!(m("/api/sandbox/**", "/api/sandbox/x/stop"));
        assert!(m(
            "/toolbox/*/process/execute",
            "/toolbox/abc/process/execute"
        ));
        assert!(m("/api/sandbox/*/st*", "/api/sandbox/abc/stop"));
        assert!(m("**", "/anything/at/all"));
        assert!(!m("/a*c", "/a/c"));
    }

    #[test]
    fn times_limits_hits_and_first_match_wins() {
        let set = FaultSet::default();
        set.add(FaultRule::status("/x", 503).method("get").times(1))
            .unwrap();
        set.add(FaultRule::status("/**", 500)).unwrap();
        assert!(matches!(
            set.take_http("GET", "/x"),
            Some(FaultAction::Status { status: 503, .. })
        ));
        assert!(matches!(
            set.take_http("GET", "/x"),
            Some(FaultAction::Status { status: 500, .. })
        ));
        assert_eq!(set.list()[0].hits, 1);
    }

    #[test]
    fn ws_rules_are_separate_from_http_rules() {
        let set = FaultSet::default();
        set.add(FaultRule::drop_websocket("/ws", WsDrop::AfterFrames(2)))
            .unwrap();
        assert_eq!(set.take_http("GET", "/ws"), None);
        assert_eq!(set.take_ws_drop("/ws"), Some(WsDrop::AfterFrames(2)));
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        assert!(
            FaultRule::status("/x", 200)
                .validate()
                .unwrap_err()
                .contains("status")
        );
        assert!(
            FaultRule::reset("x")
                .validate()
                .unwrap_err()
                .contains("path")
        );
        let r: FaultRule = serde_json::from_value(serde_json::json!({
            "path": "/x", "action": {"kind": "dropWebSocket"}}))
        .unwrap();
        assert!(r.validate().is_err());
    }

    #[test]
    fn rules_read_from_json() {
        let r: FaultRule = serde_json::from_value(serde_json::json!({
            "method": "POST", "path": "/api/sandbox", "times": 1,
            "action": {"kind": "status", "status": 429, "retryAfter": 2}}))
        .unwrap();
        assert_eq!(
            r.action,
            FaultAction::Status {
                status: 429,
                message: None,
                retry_after: Some(2)
            }
        );
    }
}
