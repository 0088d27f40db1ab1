//! PTY (pseudo-terminal) DTOs and WebSocket protocol constants, relative to the toolbox base.
//!
//! REST: `POST /process/pty` ([`PtyCreateRequest`] → 201 [`PtyCreateResponse`]),
//! `GET /process/pty` ([`PtyListResponse`]), `GET`/`DELETE /process/pty/{id}`
//! ([`PtySessionInfo`]), `POST /process/pty/{id}/resize` ([`PtyResizeRequest`] →
//! [`PtySessionInfo`], 410 once the PTY is gone).
//!
//! WebSocket: `/process/pty/{id}/connect`, or `/process/pty/create-connect?id=&cols=&rows=&cwd=`
//! (create and attach in one round trip). The client offers the
//! [`PTY_EXIT_CONTROL_SUBPROTOCOL`] (and, with envs, a [`PTY_ENVS_SUBPROTOCOL_PREFIX`] token
//! first); the server selects the exit-control one. Terminal output travels as binary frames;
//! [`PtyControlMessage`]s as text frames; the close frame's reason is a [`PtyCloseReason`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Subprotocol a client offers to get `exited` control frames and structured close reasons.
/// The server must select it (Node's `ws` rejects a handshake without a selected subprotocol
/// when it offered some).
pub const PTY_EXIT_CONTROL_SUBPROTOCOL: &str = "X-Daytona-Pty-Exit-Control";

/// Prefix of the subprotocol token that carries the PTY's environment on `create-connect`:
/// `X-Daytona-Pty-Envs~<base64url of the JSON object, no padding>`.
pub const PTY_ENVS_SUBPROTOCOL_PREFIX: &str = "X-Daytona-Pty-Envs~";

/// Close code for a PTY that exited with status 0 (and for a plain detach).
pub const PTY_CLOSE_NORMAL: u16 = 1000;

/// Close code for a PTY that exited non-zero, was killed, or failed.
pub const PTY_CLOSE_ERROR: u16 = 1011;

/// Writes a string map as its keys only, so values (secrets) never reach logs.
struct RedactedMap<'a>(&'a BTreeMap<String, String>);

impl fmt::Debug for RedactedMap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

/// `PtyCreateRequest`: body of `POST /process/pty`. Every field is optional on the wire.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PtyCreateRequest {
    /// Session id (the SDKs always send one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Working directory (default: the sandbox work dir).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Extra environment of the terminal's shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envs: Option<BTreeMap<String, String>>,
    /// Columns (default 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cols: Option<u16>,
    /// Rows (default 24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u16>,
    /// Start the shell only when the first client connects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lazy_start: Option<bool>,
}

impl fmt::Debug for PtyCreateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PtyCreateRequest")
            .field("id", &self.id)
            .field("cwd", &self.cwd)
            .field("envs", &self.envs.as_ref().map(RedactedMap))
            .field("cols", &self.cols)
            .field("rows", &self.rows)
            .field("lazy_start", &self.lazy_start)
            .finish()
    }
}

/// `PtyCreateResponse`: 201 answer of `POST /process/pty`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PtyCreateResponse {
    /// The session id.
    pub session_id: String,
}

/// `PtySessionInfo`: one PTY session.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PtySessionInfo {
    /// Session id.
    pub id: String,
    /// Working directory the shell started in.
    pub cwd: String,
    /// The extra environment it was created with.
    #[serde(default)]
    pub envs: BTreeMap<String, String>,
    /// Current columns.
    pub cols: u16,
    /// Current rows.
    pub rows: u16,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// Whether the shell is running (false once it exited, or before a lazy start).
    pub active: bool,
    /// Whether the session was created with `lazyStart`.
    #[serde(default)]
    pub lazy_start: bool,
}

impl fmt::Debug for PtySessionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PtySessionInfo")
            .field("id", &self.id)
            .field("cwd", &self.cwd)
            .field("envs", &RedactedMap(&self.envs))
            .field("cols", &self.cols)
            .field("rows", &self.rows)
            .field("created_at", &self.created_at)
            .field("active", &self.active)
            .field("lazy_start", &self.lazy_start)
            .finish()
    }
}

/// `PtyListResponse`: `GET /process/pty`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PtyListResponse {
    /// Every PTY session of the sandbox.
    pub sessions: Vec<PtySessionInfo>,
}

/// `PtyResizeRequest`: body of `POST /process/pty/{id}/resize` (each 1..=1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtyResizeRequest {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

/// `status` of a [`PtyControlMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PtyControlStatus {
    /// Sent first, once the terminal is attached; the SDKs wait for it (10 s).
    Connected,
    /// The shell exited; `exitCode` (and `exitReason` when non-zero) follow.
    Exited,
    /// Attaching failed; `error` says why.
    Error,
}

/// A control frame (JSON text) on the PTY WebSocket: `{"type":"control","status":...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PtyControlMessage {
    /// Always `control`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What happened.
    pub status: PtyControlStatus,
    /// Exit code, with `exited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why a non-zero exit happened: `non-zero exit`, `SIGKILL`, `SIGTERM`, `Ctrl+C`,
    /// `signal N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_reason: Option<String>,
    /// The failure, with `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PtyControlMessage {
    /// `{"type":"control","status":"connected"}`.
    pub fn connected() -> Self {
        Self::new(PtyControlStatus::Connected)
    }

    /// `{"type":"control","status":"exited","exitCode":N[,"exitReason":...]}`.
    pub fn exited(exit_code: i32, exit_reason: Option<String>) -> Self {
        PtyControlMessage {
            exit_code: Some(exit_code),
            exit_reason,
            ..Self::new(PtyControlStatus::Exited)
        }
    }

    /// `{"type":"control","status":"error","error":...}`.
    pub fn error(message: impl Into<String>) -> Self {
        PtyControlMessage {
            error: Some(message.into()),
            ..Self::new(PtyControlStatus::Error)
        }
    }

    fn new(status: PtyControlStatus) -> Self {
        PtyControlMessage {
            kind: "control".to_string(),
            status,
            exit_code: None,
            exit_reason: None,
            error: None,
        }
    }
}

/// The JSON reason of the close frame after a PTY exits: `{"exitCode":0}` with close 1000,
/// `{"exitCode":N,"exitReason":...}` with close 1011; `{"error":...}` when attaching failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PtyCloseReason {
    /// Exit code of the shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why it exited non-zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_reason: Option<String>,
    /// What went wrong, when the session could not be attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn control_frames_have_the_wire_shape() {
        assert_eq!(
            serde_json::to_value(PtyControlMessage::connected()).unwrap(),
            json!({"type": "control", "status": "connected"})
        );
        assert_eq!(
            serde_json::to_value(PtyControlMessage::exited(3, Some("non-zero exit".into())))
                .unwrap(),
            json!({"type": "control", "status": "exited", "exitCode": 3, "exitReason": "non-zero exit"})
        );
        let back: PtyControlMessage =
            serde_json::from_value(json!({"type": "control", "status": "error", "error": "x"}))
                .unwrap();
        assert_eq!(back.status, PtyControlStatus::Error);
    }

    #[test]
    fn session_info_is_camel_case_and_hides_env_values() {
        let info = PtySessionInfo {
            id: "p".into(),
            cwd: "/home/daytona".into(),
            envs: BTreeMap::from([("TOKEN".to_string(), "s3cret".to_string())]),
            cols: 80,
            rows: 24,
            created_at: "t".into(),
            active: true,
            lazy_start: false,
        };
        let v = serde_json::to_value(&info).unwrap();
        for key in ["createdAt", "lazyStart", "active", "cols", "rows", "envs"] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        assert!(!format!("{info:?}").contains("s3cret"));
    }

    #[test]
    fn close_reason_omits_what_is_unset() {
        let ok = PtyCloseReason {
            exit_code: Some(0),
            exit_reason: None,
            error: None,
        };
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"exitCode":0}"#);
    }
}
