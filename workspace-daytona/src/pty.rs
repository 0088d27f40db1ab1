//! Interactive terminals (PTYs) in a sandbox: `sandbox.process().create_pty(…)` opens one over
//! WebSocket and returns a [`PtyHandle`]; the REST routes list, inspect, resize and kill them.
//!
//! Creating uses the daemon's one-round-trip WebSocket `/process/pty/create-connect?id=&cols=&rows=&cwd=`,
//! offering the `X-Daytona-Pty-Exit-Control` subprotocol (preceded by
//! `X-Daytona-Pty-Envs~<base64url JSON>` when there is an environment, so its values never
//! appear in a URL). A daemon without that route (404) gets the older two steps instead:
//! `POST /process/pty`, then the WebSocket `/process/pty/{id}/connect`.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;
use reqwest::Method;
use url::Url;

use daytona_api::pty::{
    PTY_ENVS_SUBPROTOCOL_PREFIX, PTY_EXIT_CONTROL_SUBPROTOCOL, PtyCreateRequest, PtyCreateResponse,
    PtyListResponse, PtyResizeRequest, PtySessionInfo,
};

use crate::error::DaytonaError;
use crate::process::Process;
use crate::pty_handle::{PTY_CONNECT_TIMEOUT, PtyHandle, Socket};
use crate::retry::Replay;
use crate::toolbox::Toolbox;

/// Largest terminal dimension the daemon accepts.
const MAX_PTY_DIMENSION: u16 = 1000;

/// What [`Process::create_pty`] creates.
#[derive(Clone, PartialEq, Eq)]
pub struct PtyOptions {
    /// Session id; a random `pty-…` id when `None`.
    pub id: Option<String>,
    /// Working directory of the shell (default: the sandbox work dir).
    pub cwd: Option<String>,
    /// Extra environment of the shell. Values are sent in a WebSocket subprotocol token, never
    /// in the URL, and never printed by `Debug`.
    pub envs: BTreeMap<String, String>,
    /// Columns, 1..=1000 (default 80).
    pub cols: u16,
    /// Rows, 1..=1000 (default 24).
    pub rows: u16,
}

impl Default for PtyOptions {
    fn default() -> Self {
        PtyOptions {
            id: None,
            cwd: None,
            envs: BTreeMap::new(),
            cols: 80,
            rows: 24,
        }
    }
}

impl fmt::Debug for PtyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PtyOptions")
            .field("id", &self.id)
            .field("cwd", &self.cwd)
            .field(
                "envs (values redacted)",
                &self.envs.keys().collect::<Vec<_>>(),
            )
            .field("cols", &self.cols)
            .field("rows", &self.rows)
            .finish()
    }
}

impl PtyOptions {
    /// 80×24, random id, default cwd, no extra environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the session id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the working directory.
    pub fn cwd(mut self, cwd: impl Into<String>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.insert(key.into(), value.into());
        self
    }

    /// Sets the size.
    pub fn size(mut self, cols: u16, rows: u16) -> Self {
        self.cols = cols;
        self.rows = rows;
        self
    }
}

pub(crate) fn check_size(cols: u16, rows: u16) -> Result<(), DaytonaError> {
    for (field, value) in [("cols", cols), ("rows", rows)] {
        if !(1..=MAX_PTY_DIMENSION).contains(&value) {
            return Err(DaytonaError::invalid(
                field,
                format!("must be within 1..={MAX_PTY_DIMENSION}, got {value}"),
            ));
        }
    }
    Ok(())
}

fn check_session_id(id: &str) -> Result<(), DaytonaError> {
    if id.trim().is_empty() {
        return Err(DaytonaError::invalid("session_id", "must not be empty"));
    }
    if id.chars().any(char::is_control) {
        return Err(DaytonaError::invalid(
            "session_id",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// `X-Daytona-Pty-Envs~<base64url of the JSON object, no padding>`.
fn envs_token(envs: &BTreeMap<String, String>) -> Result<String, DaytonaError> {
    for key in envs.keys() {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(DaytonaError::invalid(
                format!("envs.{key}"),
                "names must be non-empty and contain no '=' or NUL",
            ));
        }
    }
    let json = serde_json::to_vec(envs)
        .map_err(|e| DaytonaError::invalid("envs", format!("cannot encode: {e}")))?;
    Ok(format!(
        "{PTY_ENVS_SUBPROTOCOL_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(json)
    ))
}

fn random_session_id() -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("pty-{n:016x}")
}

impl Process {
    /// Creates a PTY running the sandbox user's shell and attaches to it; returns once the
    /// daemon reports the terminal connected (within 10 s).
    ///
    /// # Errors
    /// [`DaytonaError::InvalidArgument`] for a size outside 1..=1000, an empty id or a bad
    /// environment name; [`DaytonaError::Conflict`] when a PTY with this id exists;
    /// [`DaytonaError::RequestTimeout`] when the daemon never confirmed the connection;
    /// [`DaytonaError::WebSocket`] when it refused it.
    pub async fn create_pty(&self, options: &PtyOptions) -> Result<PtyHandle, DaytonaError> {
        check_size(options.cols, options.rows)?;
        let id = match &options.id {
            Some(id) => {
                check_session_id(id)?;
                id.clone()
            }
            None => random_session_id(),
        };
        if let Some(cwd) = &options.cwd
            && cwd.trim().is_empty()
        {
            return Err(DaytonaError::invalid("cwd", "must not be empty"));
        }
        let mut protocols = Vec::with_capacity(2);
        if !options.envs.is_empty() {
            protocols.push(envs_token(&options.envs)?);
        }
        protocols.push(PTY_EXIT_CONTROL_SUBPROTOCOL.to_string());

        let cols = options.cols.to_string();
        let rows = options.rows.to_string();
        let mut query = vec![("id", id.as_str()), ("cols", &cols), ("rows", &rows)];
        if let Some(cwd) = &options.cwd {
            query.push(("cwd", cwd));
        }
        let url = self
            .tb
            .url_query(&["process", "pty", "create-connect"], &query)
            .await?;
        // Never replayed once sent: a second create of the same id would meet 409.
        let socket = match open_socket(
            &self.tb,
            "pty.create_connect",
            url,
            &protocols,
            Replay::ConnectOnly,
        )
        .await
        {
            Ok(socket) => socket,
            // An older daemon without the route. (Were the sandbox itself unknown, the REST
            // create below answers with the same 404.)
            Err(e) if matches!(e.status(), Some(404 | 405)) => {
                tracing::debug!(
                    sandbox_id = %self.tb.sandbox_id,
                    "daemon has no pty create-connect route; creating over REST"
                );
                self.create_pty_rest(&id, options).await?;
                return self.connect_pty(&id).await;
            }
            Err(e) => return Err(e),
        };
        PtyHandle::attach(self.clone(), id, socket, PTY_CONNECT_TIMEOUT).await
    }

    /// `POST /process/pty`: creates a PTY without attaching (older daemons' first step).
    async fn create_pty_rest(&self, id: &str, options: &PtyOptions) -> Result<(), DaytonaError> {
        let body = PtyCreateRequest {
            id: Some(id.to_string()),
            cwd: options.cwd.clone(),
            envs: (!options.envs.is_empty()).then(|| options.envs.clone()),
            cols: Some(options.cols),
            rows: Some(options.rows),
            lazy_start: None,
        };
        let url = self.tb.url(&["process", "pty"]).await?;
        let call = self
            .tb
            .call("pty.create", Method::POST, url)
            .json(&body)?
            .replay(Replay::ConnectOnly);
        let created: PtyCreateResponse = self.tb.transport.call_json(&call).await?;
        if created.session_id != id {
            return Err(DaytonaError::decode(
                "pty.create",
                format!(
                    "asked for PTY {id:?}, the daemon created {:?}",
                    created.session_id
                ),
            ));
        }
        Ok(())
    }

    /// Attaches to an existing PTY (WebSocket `/process/pty/{id}/connect`). Output starts with
    /// what the terminal prints from now on.
    ///
    /// # Errors
    /// [`DaytonaError::NotFound`] when there is no such PTY; as for
    /// [`create_pty`](Self::create_pty) otherwise.
    pub async fn connect_pty(&self, session_id: &str) -> Result<PtyHandle, DaytonaError> {
        check_session_id(session_id)?;
        let url = self
            .tb
            .url(&["process", "pty", session_id, "connect"])
            .await?;
        let protocols = [PTY_EXIT_CONTROL_SUBPROTOCOL.to_string()];
        let socket =
            open_socket(&self.tb, "pty.connect", url, &protocols, Replay::Idempotent).await?;
        PtyHandle::attach(
            self.clone(),
            session_id.to_string(),
            socket,
            PTY_CONNECT_TIMEOUT,
        )
        .await
    }

    /// Every PTY session of the sandbox (`GET /process/pty`).
    pub async fn list_ptys(&self) -> Result<Vec<PtySessionInfo>, DaytonaError> {
        let url = self.tb.url(&["process", "pty"]).await?;
        let call = self.tb.call("pty.list", Method::GET, url);
        let list: PtyListResponse = self.tb.transport.call_json(&call).await?;
        Ok(list.sessions)
    }

    /// One PTY session (`GET /process/pty/{id}`).
    ///
    /// # Errors
    /// [`DaytonaError::NotFound`] when there is none.
    pub async fn get_pty(&self, session_id: &str) -> Result<PtySessionInfo, DaytonaError> {
        check_session_id(session_id)?;
        let url = self.tb.url(&["process", "pty", session_id]).await?;
        let call = self.tb.call("pty.get", Method::GET, url);
        self.tb.transport.call_json(&call).await
    }

    /// Resizes a PTY (`POST /process/pty/{id}/resize`); returns the updated session.
    ///
    /// # Errors
    /// [`DaytonaError::InvalidArgument`] unless both are within 1..=1000 (checked before
    /// anything is sent); [`DaytonaError::Gone`] when the PTY already exited.
    pub async fn resize_pty(
        &self,
        session_id: &str,
        cols: u16,
        rows: u16,
    ) -> Result<PtySessionInfo, DaytonaError> {
        check_session_id(session_id)?;
        check_size(cols, rows)?;
        let url = self
            .tb
            .url(&["process", "pty", session_id, "resize"])
            .await?;
        // Setting the same size twice is the same as once.
        let call = self
            .tb
            .call("pty.resize", Method::POST, url)
            .json(&PtyResizeRequest { cols, rows })?
            .replay(Replay::Idempotent);
        self.tb.transport.call_json(&call).await
    }

    /// Kills a PTY's shell and removes the session (`DELETE /process/pty/{id}`).
    ///
    /// # Errors
    /// [`DaytonaError::NotFound`] when there is no such PTY.
    pub async fn kill_pty(&self, session_id: &str) -> Result<(), DaytonaError> {
        check_session_id(session_id)?;
        let url = self.tb.url(&["process", "pty", session_id]).await?;
        let call = self.tb.call("pty.kill", Method::DELETE, url);
        let (result, stats) = self.tb.transport.call_with_stats(&call).await;
        match result {
            Ok(_) => Ok(()),
            // The first attempt may have removed it before the connection broke.
            Err(e) if e.is_not_found() && stats.unknown_outcome => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Opens a toolbox WebSocket offering `protocols`, with the SDK headers, retrying what
/// `replay` allows.
async fn open_socket(
    tb: &Toolbox,
    op: &'static str,
    http_url: Url,
    protocols: &[String],
    replay: Replay,
) -> Result<Socket, DaytonaError> {
    let offered = if protocols.is_empty() {
        None
    } else {
        let mut value = HeaderValue::from_str(&protocols.join(", "))
            .map_err(|_| DaytonaError::invalid("envs", "cannot be sent as a subprotocol token"))?;
        // The envs token carries environment values.
        value.set_sensitive(true);
        Some(value)
    };
    crate::follow::connect(&tb.transport, op, &tb.sandbox_id, http_url, offered, replay).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked() {
        assert!(check_size(80, 24).is_ok());
        assert!(check_size(1000, 1).is_ok());
        for (c, r, field) in [(0, 0, "cols"), (80, 0, "rows"), (1001, 24, "cols")] {
            match check_size(c, r) {
                Err(DaytonaError::InvalidArgument { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{c}x{r}: {other:?}"),
            }
        }
    }

    #[test]
    fn envs_token_is_base64url_json_without_padding() {
        let envs = BTreeMap::from([("A".to_string(), "b?c/d+e".to_string())]);
        let token = envs_token(&envs).unwrap();
        let encoded = token.strip_prefix(PTY_ENVS_SUBPROTOCOL_PREFIX).unwrap();
        assert!(!encoded.contains('=') && !encoded.contains('+') && !encoded.contains('/'));
        let json = URL_SAFE_NO_PAD.decode(encoded).unwrap();
        assert_eq!(
            serde_json::from_slice::<BTreeMap<String, String>>(&json).unwrap(),
            envs
        );
        assert!(envs_token(&BTreeMap::from([("A=B".into(), "x".into())])).is_err());
    }

    #[test]
    fn options_debug_hides_env_values() {
        let o = PtyOptions::new().env("TOKEN", "s3cr3t").id("p1");
        let d = format!("{o:?}");
        assert!(d.contains("TOKEN") && !d.contains("s3cr3t"));
        assert!(random_session_id().starts_with("pty-"));
    }
}
