//! [`PtyHandle`]: one attached pseudo-terminal — its output as a byte stream, input, resize,
//! kill, and how it exited.
//!
//! The daemon sends terminal output as binary frames and control messages as JSON text frames
//! (`connected` first, `exited` with the exit code, `error`). After the shell exits it closes
//! the socket with the exit status in the close reason: 1000 `{"exitCode":0}`, or 1011
//! `{"exitCode":N,"exitReason":…}`. The exit code is taken only from one of those two places; a
//! connection that ends without either is reported as an error, never as an invented exit code.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, Stream, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use daytona_api::pty::{PtyCloseReason, PtyControlMessage, PtyControlStatus, PtySessionInfo};

use crate::error::DaytonaError;
use crate::process::Process;
use crate::transport::error_chain;

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long [`crate::Process::create_pty`] and [`crate::Process::connect_pty`] wait for the
/// daemon's `connected` control frame (the official SDKs wait as long).
pub const PTY_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a PTY's shell ended, as the daemon reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtyExit {
    /// The shell's exit code.
    pub exit_code: i32,
    /// Why it ended, for a non-zero exit: `non-zero exit`, `SIGKILL`, `SIGTERM`, `Ctrl+C`,
    /// `signal N`.
    pub reason: Option<String>,
}

impl PtyExit {
    /// Whether the exit code is 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// The input side of a PTY: sends keystrokes. Cheap to clone, so one task can type while
/// another reads the [`PtyHandle`]'s output.
#[derive(Clone)]
pub struct PtyWriter {
    sink: Arc<Mutex<SplitSink<Socket, Message>>>,
    session_id: Arc<str>,
}

impl fmt::Debug for PtyWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PtyWriter")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

impl PtyWriter {
    /// Sends `data` to the terminal as if typed (`"ls\n"`, or raw bytes such as `[3]` for
    /// Ctrl+C).
    ///
    /// # Errors
    /// [`DaytonaError::WebSocket`] when the connection is closed or broken.
    pub async fn send_input(&self, data: impl AsRef<[u8]>) -> Result<(), DaytonaError> {
        let data = data.as_ref();
        if data.is_empty() {
            return Ok(());
        }
        let mut sink = self.sink.lock().await;
        sink.send(Message::Binary(Bytes::copy_from_slice(data)))
            .await
            .map_err(|e| ws_error("pty.send_input", e))
    }

    /// Closes the connection (a normal close frame). The PTY keeps running on the server and
    /// can be attached again with [`crate::Process::connect_pty`].
    pub async fn disconnect(&self) -> Result<(), DaytonaError> {
        let mut sink = self.sink.lock().await;
        match sink.close().await {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Ok(()),
            Err(e) => Err(ws_error("pty.disconnect", e)),
        }
    }
}

/// An attached PTY session.
///
/// The handle is a [`Stream`] of output chunks (raw terminal bytes, escape sequences
/// included); it ends when the connection ends. Reading is what moves the connection forward:
/// frames are read only as fast as the stream is polled, and [`wait`](Self::wait) polls it to
/// the end (dropping the output) if nobody else does.
///
/// ```no_run
/// # async fn f(sandbox: workspace_daytona::Sandbox) -> Result<(), workspace_daytona::DaytonaError> {
/// use workspace_daytona::PtyOptions;
/// let mut pty = sandbox.process().create_pty(&PtyOptions::new().size(120, 30)).await?;
/// pty.send_input("echo hi; exit 3\n").await?;
/// let (output, exit) = pty.wait_with_output().await?;
/// assert!(String::from_utf8_lossy(&output).contains("hi"));
/// assert_eq!(exit.exit_code, 3);
/// # Ok(()) }
/// ```
pub struct PtyHandle {
    session_id: String,
    process: Process,
    writer: PtyWriter,
    reader: SplitStream<Socket>,
    /// Output that arrived while waiting for `connected`.
    pending: VecDeque<Bytes>,
    exit: Option<PtyExit>,
    /// Why the connection ended without an exit status, when it did.
    failure: Option<String>,
    finished: bool,
}

impl fmt::Debug for PtyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PtyHandle")
            .field("session_id", &self.session_id)
            .field("exit", &self.exit)
            .field("failure", &self.failure)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// What one WebSocket item meant.
enum Frame {
    Output(Bytes),
    Connected,
    /// Control frames other than `connected` and protocol frames: state only.
    Handled,
    Ended,
}

impl PtyHandle {
    /// Takes over a freshly opened socket and waits (bounded) for the `connected` frame.
    pub(crate) async fn attach(
        process: Process,
        session_id: String,
        socket: Socket,
        connect_timeout: Duration,
    ) -> Result<PtyHandle, DaytonaError> {
        let (sink, reader) = socket.split();
        let mut handle = PtyHandle {
            writer: PtyWriter {
                sink: Arc::new(Mutex::new(sink)),
                session_id: Arc::from(session_id.as_str()),
            },
            session_id,
            process,
            reader,
            pending: VecDeque::new(),
            exit: None,
            failure: None,
            finished: false,
        };
        let until = tokio::time::Instant::now() + connect_timeout;
        loop {
            let item = match tokio::time::timeout_at(until, handle.reader.next()).await {
                Ok(item) => item,
                Err(_) => {
                    // Best effort: do not leak the socket of a handshake that never completed.
                    let _ = handle.writer.disconnect().await;
                    return Err(DaytonaError::RequestTimeout {
                        operation: "pty.connect",
                        after: connect_timeout,
                    });
                }
            };
            match handle.absorb(item) {
                Frame::Connected => return Ok(handle),
                Frame::Output(bytes) => handle.pending.push_back(bytes),
                // A shell that exits at once still attached: its exit status is known.
                Frame::Handled if handle.exit.is_some() => return Ok(handle),
                Frame::Handled => {
                    if let Some(message) = handle.failure.clone() {
                        let _ = handle.writer.disconnect().await;
                        return Err(pty_failure("pty.connect", message));
                    }
                }
                Frame::Ended if handle.exit.is_some() => return Ok(handle),
                Frame::Ended => {
                    let message = handle
                        .failure
                        .clone()
                        .unwrap_or_else(|| "the connection closed before it was ready".into());
                    return Err(pty_failure("pty.connect", message));
                }
            }
        }
    }

    /// Interprets one item read from the socket, updating exit and failure state.
    fn absorb(&mut self, item: Option<Result<Message, WsError>>) -> Frame {
        match item {
            None => {
                self.failure
                    .get_or_insert_with(|| "the connection ended without a close frame".into());
                self.finished = true;
                Frame::Ended
            }
            Some(Err(e)) => {
                let reason = match e {
                    WsError::ConnectionClosed | WsError::AlreadyClosed => {
                        "the connection closed".to_string()
                    }
                    other => format!("the connection broke: {}", error_chain(&other)),
                };
                self.failure.get_or_insert(reason);
                self.finished = true;
                Frame::Ended
            }
            Some(Ok(Message::Binary(bytes))) if bytes.is_empty() => Frame::Handled,
            Some(Ok(Message::Binary(bytes))) => Frame::Output(bytes),
            Some(Ok(Message::Text(text))) => match control_message(text.as_str()) {
                Some(control) => self.on_control(control),
                None if text.is_empty() => Frame::Handled,
                None => Frame::Output(Bytes::copy_from_slice(text.as_bytes())),
            },
            Some(Ok(Message::Close(frame))) => {
                self.on_close(frame);
                self.finished = true;
                Frame::Ended
            }
            Some(Ok(_)) => Frame::Handled,
        }
    }

    fn on_control(&mut self, control: PtyControlMessage) -> Frame {
        match control.status {
            PtyControlStatus::Connected => Frame::Connected,
            PtyControlStatus::Exited => {
                match control.exit_code {
                    Some(exit_code) => {
                        self.exit = Some(PtyExit {
                            exit_code,
                            reason: control.exit_reason.filter(|r| !r.is_empty()),
                        });
                    }
                    None => {
                        self.failure.get_or_insert_with(|| {
                            "the daemon reported an exit without an exit code".into()
                        });
                    }
                }
                Frame::Handled
            }
            PtyControlStatus::Error => {
                let message = control
                    .error
                    .filter(|e| !e.trim().is_empty())
                    .unwrap_or_else(|| "unknown PTY error".into());
                self.failure = Some(message);
                Frame::Handled
            }
        }
    }

    fn on_close(&mut self, frame: Option<CloseFrame>) {
        if self.exit.is_some() {
            return;
        }
        let (code, reason) = match frame {
            Some(f) => (u16::from(f.code), f.reason.to_string()),
            None => (1005, String::new()),
        };
        match serde_json::from_str::<PtyCloseReason>(&reason) {
            Ok(PtyCloseReason {
                exit_code: Some(exit_code),
                exit_reason,
                ..
            }) => {
                self.exit = Some(PtyExit {
                    exit_code,
                    reason: exit_reason.filter(|r| !r.is_empty()),
                });
            }
            Ok(PtyCloseReason {
                error: Some(error), ..
            }) => {
                self.failure.get_or_insert(error);
            }
            _ => {
                let shown = if reason.is_empty() {
                    String::new()
                } else {
                    format!(", reason {reason:?}")
                };
                self.failure.get_or_insert_with(|| {
                    format!("the connection closed (code {code}{shown}) without an exit status")
                });
            }
        }
    }

    /// The session id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// A writer for sending input from another task.
    pub fn writer(&self) -> PtyWriter {
        self.writer.clone()
    }

    /// Sends `data` to the terminal as if typed. See [`PtyWriter::send_input`].
    pub async fn send_input(&self, data: impl AsRef<[u8]>) -> Result<(), DaytonaError> {
        self.writer.send_input(data).await
    }

    /// Resizes the terminal (REST `POST /process/pty/{id}/resize`); the shell gets `SIGWINCH`.
    ///
    /// # Errors
    /// [`DaytonaError::InvalidArgument`] unless both are within 1..=1000;
    /// [`DaytonaError::Gone`] when the PTY already exited.
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<PtySessionInfo, DaytonaError> {
        self.process.resize_pty(&self.session_id, cols, rows).await
    }

    /// Kills the shell and ends the session (REST `DELETE /process/pty/{id}`). The output stream
    /// then ends and [`wait`](Self::wait) reports how the shell died.
    pub async fn kill(&self) -> Result<(), DaytonaError> {
        self.process.kill_pty(&self.session_id).await
    }

    /// Closes the connection without killing the PTY; see [`PtyWriter::disconnect`].
    pub async fn disconnect(self) -> Result<(), DaytonaError> {
        self.writer.disconnect().await
    }

    /// The exit status, once the daemon reported it.
    pub fn exit_status(&self) -> Option<&PtyExit> {
        self.exit.as_ref()
    }

    /// Whether the connection has ended (the output stream is exhausted once the buffered
    /// output is read).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Reads (and drops) the remaining output until the connection ends; returns the exit
    /// status.
    ///
    /// # Errors
    /// [`DaytonaError::WebSocket`] when the connection ended without an exit status (dropped
    /// socket, daemon error, a close without a status): the shell may still be running.
    pub async fn wait(&mut self) -> Result<PtyExit, DaytonaError> {
        while self.next().await.is_some() {}
        self.outcome()
    }

    /// [`wait`](Self::wait), keeping the remaining output.
    pub async fn wait_with_output(&mut self) -> Result<(Vec<u8>, PtyExit), DaytonaError> {
        let mut output = Vec::new();
        while let Some(chunk) = self.next().await {
            output.extend_from_slice(&chunk);
        }
        Ok((output, self.outcome()?))
    }

    /// [`wait`](Self::wait), handing each output chunk to `on_data`.
    pub async fn wait_with<F>(&mut self, mut on_data: F) -> Result<PtyExit, DaytonaError>
    where
        F: FnMut(&[u8]),
    {
        while let Some(chunk) = self.next().await {
            on_data(&chunk);
        }
        self.outcome()
    }

    fn outcome(&self) -> Result<PtyExit, DaytonaError> {
        match &self.exit {
            Some(exit) => Ok(exit.clone()),
            None => Err(pty_failure(
                "pty.wait",
                self.failure
                    .clone()
                    .unwrap_or_else(|| "the connection ended without an exit status".into()),
            )),
        }
    }
}

impl Stream for PtyHandle {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = &mut *self;
        loop {
            if let Some(bytes) = this.pending.pop_front() {
                return Poll::Ready(Some(bytes));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            let item = match this.reader.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(item) => item,
            };
            match this.absorb(item) {
                Frame::Output(bytes) => return Poll::Ready(Some(bytes)),
                Frame::Connected | Frame::Handled => {}
                Frame::Ended => return Poll::Ready(None),
            }
        }
    }
}

/// A text frame that is a PTY control message, if it is one.
fn control_message(text: &str) -> Option<PtyControlMessage> {
    // Cheap pre-check: terminal output is rarely a JSON object.
    if !text.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str::<PtyControlMessage>(text)
        .ok()
        .filter(|m| m.kind == "control")
}

fn pty_failure(operation: &'static str, message: String) -> DaytonaError {
    DaytonaError::WebSocket {
        operation,
        message,
        source: None,
    }
}

fn ws_error(operation: &'static str, e: WsError) -> DaytonaError {
    DaytonaError::WebSocket {
        operation,
        message: error_chain(&e),
        source: Some(Box::new(e)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn control_frames_are_recognised_and_output_is_not() {
        let c = control_message(r#"{"type":"control","status":"exited","exitCode":3}"#).unwrap();
        assert_eq!(c.status, PtyControlStatus::Exited);
        assert_eq!(c.exit_code, Some(3));
        assert!(control_message("hello {").is_none());
        assert!(control_message(r#"{"type":"other","status":"connected"}"#).is_none());
        assert!(control_message(r#"{"status":"connected"}"#).is_none());
    }
}
