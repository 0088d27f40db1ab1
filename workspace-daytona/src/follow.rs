//! Following a session command's log live over WebSocket
//! (`GET …/command/{cmdId}/logs?follow=true` upgraded), demultiplexed into stdout and stderr.
//!
//! The daemon sends raw log bytes as binary frames and closes with 1000 once the command's exit
//! code exists. A stream that ends any other way is reported as [`FollowEnd::Dropped`]: the
//! command may still be running, and no exit code is implied. Ask
//! [`crate::Process::get_session_command`] for the exit code.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::{Sink, Stream, StreamExt};
use http::HeaderValue;
use http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use crate::demux::{Demuxer, OutputStream};
use crate::error::DaytonaError;
use crate::retry::{Failure, Replay};
use crate::transport::{Transport, endpoint_of, error_chain};

/// How a followed log ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowEnd {
    /// The server closed the socket with a close frame. Code 1000 means the command finished
    /// and the whole log was delivered.
    Closed {
        /// The close code (1005 when the frame carried none).
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The connection ended without a close frame (network failure, proxy or server restart).
    /// The log may be incomplete and the command may still be running.
    Dropped {
        /// What was observed.
        reason: String,
    },
}

impl FollowEnd {
    /// Whether the server ended the stream normally (close code 1000).
    pub fn is_complete(&self) -> bool {
        matches!(self, FollowEnd::Closed { code: 1000, .. })
    }
}

/// One event of a followed log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    /// Text written to stdout.
    Stdout(String),
    /// Text written to stderr.
    Stderr(String),
    /// The stream ended; always the last event.
    End(FollowEnd),
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A live log: a [`Stream`] of [`LogEvent`]s ending with exactly one [`LogEvent::End`].
///
/// Backpressure is natural: frames are read only as fast as events are consumed, and nothing is
/// dropped.
pub struct LogStream {
    socket: Socket,
    demux: Demuxer,
    queue: VecDeque<LogEvent>,
    done: bool,
}

impl std::fmt::Debug for LogStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStream")
            .field("queued", &self.queue.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl LogStream {
    fn new(socket: Socket) -> Self {
        LogStream {
            socket,
            demux: Demuxer::new(),
            queue: VecDeque::new(),
            done: false,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        let queue = &mut self.queue;
        self.demux.push(bytes, |s, t| queue.push_back(event(s, t)));
    }

    fn end(&mut self, end: FollowEnd) {
        let queue = &mut self.queue;
        self.demux.finish(|s, t| queue.push_back(event(s, t)));
        self.queue.push_back(LogEvent::End(end));
        self.done = true;
    }

    /// Consumes the stream, handing text to the callbacks; returns how it ended.
    pub async fn for_each_chunk<F, G>(mut self, mut on_stdout: F, mut on_stderr: G) -> FollowEnd
    where
        F: FnMut(&str),
        G: FnMut(&str),
    {
        while let Some(ev) = self.next().await {
            match ev {
                LogEvent::Stdout(t) => on_stdout(&t),
                LogEvent::Stderr(t) => on_stderr(&t),
                LogEvent::End(end) => return end,
            }
        }
        // `End` is always yielded before the stream finishes; this is unreachable in practice.
        FollowEnd::Dropped {
            reason: "stream finished without an end event".into(),
        }
    }
}

fn event(stream: OutputStream, text: String) -> LogEvent {
    match stream {
        OutputStream::Stdout => LogEvent::Stdout(text),
        OutputStream::Stderr => LogEvent::Stderr(text),
    }
}

impl Stream for LogStream {
    type Item = LogEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LogEvent>> {
        let this = &mut *self;
        loop {
            if let Some(ev) = this.queue.pop_front() {
                return Poll::Ready(Some(ev));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.socket.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(Message::Binary(b)))) => this.feed(&b),
                Poll::Ready(Some(Ok(Message::Text(t)))) => this.feed(t.as_bytes()),
                Poll::Ready(Some(Ok(Message::Close(frame)))) => {
                    let (code, reason) = match frame {
                        Some(f) => (u16::from(f.code), f.reason.to_string()),
                        None => (u16::from(CloseCode::Status), String::new()),
                    };
                    // Best effort: push out our close reply; the outcome does not matter.
                    let _ = Pin::new(&mut this.socket).poll_flush(cx);
                    this.end(FollowEnd::Closed { code, reason });
                }
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(e))) => {
                    let reason = match e {
                        WsError::ConnectionClosed | WsError::AlreadyClosed => {
                            "connection closed".to_string()
                        }
                        other => error_chain(&other),
                    };
                    this.end(FollowEnd::Dropped { reason });
                }
                Poll::Ready(None) => this.end(FollowEnd::Dropped {
                    reason: "connection ended without a close frame".into(),
                }),
            }
        }
    }
}

/// One event of a followed log read without demultiplexing ([`RawLogStream`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawLogEvent {
    /// Log bytes exactly as the daemon sent them, markers included.
    Data(bytes::Bytes),
    /// The stream ended; always the last event.
    End(FollowEnd),
}

/// A live log as raw frames: a [`Stream`] of [`RawLogEvent`]s ending with exactly one
/// [`RawLogEvent::End`]. For callers that count log bytes (to resume after a drop) and split
/// the streams themselves with [`crate::demux::RawDemuxer`].
pub struct RawLogStream {
    socket: Socket,
    done: bool,
}

impl std::fmt::Debug for RawLogStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawLogStream")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Stream for RawLogStream {
    type Item = RawLogEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RawLogEvent>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let end = match this.socket.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(Message::Binary(b)))) => {
                    if b.is_empty() {
                        continue;
                    }
                    return Poll::Ready(Some(RawLogEvent::Data(b)));
                }
                Poll::Ready(Some(Ok(Message::Text(t)))) => {
                    if t.is_empty() {
                        continue;
                    }
                    return Poll::Ready(Some(RawLogEvent::Data(bytes::Bytes::copy_from_slice(
                        t.as_bytes(),
                    ))));
                }
                Poll::Ready(Some(Ok(Message::Close(frame)))) => {
                    let (code, reason) = match frame {
                        Some(f) => (u16::from(f.code), f.reason.to_string()),
                        None => (u16::from(CloseCode::Status), String::new()),
                    };
                    let _ = Pin::new(&mut this.socket).poll_flush(cx);
                    FollowEnd::Closed { code, reason }
                }
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(e))) => FollowEnd::Dropped {
                    reason: match e {
                        WsError::ConnectionClosed | WsError::AlreadyClosed => {
                            "connection closed".to_string()
                        }
                        other => error_chain(&other),
                    },
                },
                Poll::Ready(None) => FollowEnd::Dropped {
                    reason: "connection ended without a close frame".into(),
                },
            };
            this.done = true;
            return Poll::Ready(Some(RawLogEvent::End(end)));
        }
    }
}

/// [`open`] without demultiplexing.
pub(crate) async fn open_raw(
    transport: &Arc<Transport>,
    op: &'static str,
    sandbox_id: &str,
    http_url: Url,
) -> Result<RawLogStream, DaytonaError> {
    let socket = connect(
        transport,
        op,
        sandbox_id,
        http_url,
        None,
        Replay::Idempotent,
    )
    .await?;
    Ok(RawLogStream {
        socket,
        done: false,
    })
}

/// Opens the WebSocket at `http_url` (its scheme switched to ws/wss) with the SDK headers,
/// retrying connect failures and transient statuses like any idempotent GET.
pub(crate) async fn open(
    transport: &Arc<Transport>,
    op: &'static str,
    sandbox_id: &str,
    http_url: Url,
) -> Result<LogStream, DaytonaError> {
    Ok(LogStream::new(
        connect(
            transport,
            op,
            sandbox_id,
            http_url,
            None,
            Replay::Idempotent,
        )
        .await?,
    ))
}

/// Opens a toolbox WebSocket (log follows here, PTY connections in `pty`): `http_url` with
/// its scheme switched to ws/wss, the client's headers and `subprotocols` when offered,
/// retrying what `replay` allows.
pub(crate) async fn connect(
    transport: &Transport,
    op: &'static str,
    sandbox_id: &str,
    http_url: Url,
    subprotocols: Option<HeaderValue>,
    replay: Replay,
) -> Result<Socket, DaytonaError> {
    let mut url = http_url;
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme)
        .map_err(|_| DaytonaError::decode(op, format!("cannot make a WebSocket URL of {url}")))?;
    let span = tracing::info_span!(
        "daytona.websocket",
        op,
        sandbox_id,
        path = %url.path(),
        status = tracing::field::Empty,
        attempts = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut retries = 0u32;
    loop {
        let attempt = connect_once(transport, op, &url, subprotocols.clone());
        match tracing::Instrument::instrument(attempt, span.clone()).await {
            Ok(socket) => {
                span.record("status", 101u16);
                span.record("attempts", retries + 1);
                tracing::debug!(parent: &span, op, attempts = retries + 1, "websocket opened");
                return Ok(socket);
            }
            Err((err, failure)) => {
                match transport.retry_wait(replay, None, &err, failure, retries, started) {
                    Some(wait) => {
                        tracing::info!(parent: &span, op, retry = retries + 1, error = %err, "websocket open failed transiently; retrying");
                        tokio::time::sleep(wait).await;
                        retries += 1;
                    }
                    None => {
                        if let Some(s) = err.status() {
                            span.record("status", s);
                        }
                        span.record("attempts", retries + 1);
                        tracing::debug!(parent: &span, op, error = %err, "websocket open failed");
                        return Err(err);
                    }
                }
            }
        }
    }
}

/// Read buffer of a toolbox WebSocket. Tungstenite's default (128 KiB) is sized for bulk
/// transfer; a handle keeps its resident shell's log socket open for its whole life, and at
/// 128 KiB that buffer was most of a live handle's memory (see BENCHMARKS.md, many sandboxes).
/// Log frames are what the daemon's labellers write, a few KiB at most.
const SOCKET_READ_BUFFER: usize = 16 * 1024;

fn socket_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(SOCKET_READ_BUFFER)
}

/// The error an upgrade refused with an HTTP answer maps to, and how safe a retry is.
fn http_failure(response: http::Response<Option<Vec<u8>>>) -> (DaytonaError, Failure) {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::error::parse_retry_after);
    let body = response.body().as_deref().unwrap_or_default();
    let err = DaytonaError::from_response(status, body, retry_after);
    let failure = match status {
        429 | 502 | 503 | 504 => Failure::TransientStatus,
        _ => Failure::Permanent,
    };
    (err, failure)
}

/// One WebSocket handshake with the client's headers (and `subprotocols`, when offered): the
/// socket, or the error with how safe a retry is.
async fn connect_once(
    transport: &Transport,
    op: &'static str,
    url: &Url,
    subprotocols: Option<HeaderValue>,
) -> Result<Socket, (DaytonaError, Failure)> {
    let mut request = url.as_str().into_client_request().map_err(|e| {
        (
            DaytonaError::decode(op, format!("bad WebSocket URL: {e}")),
            Failure::Permanent,
        )
    })?;
    for (name, value) in transport.headers() {
        request.headers_mut().insert(name.clone(), value.clone());
    }
    if let Some(value) = subprotocols {
        request.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, value);
    }
    let limit = transport.config().connect_timeout;
    if let Some(stream) = transport.take_spare(url) {
        // A connection made ahead: only the upgrade crosses the network. One the server closed
        // meanwhile fails here, and the socket is made afresh below.
        let handshake = tokio_tungstenite::client_async_with_config(
            request.clone(),
            stream,
            Some(socket_config()),
        );
        match tokio::time::timeout(limit, handshake).await {
            Ok(Ok((socket, _response))) => return Ok(socket),
            Ok(Err(WsError::Http(response))) => return Err(http_failure(*response)),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "a spare connection failed; connecting afresh")
            }
            Err(_) => tracing::debug!("a spare connection did not answer; connecting afresh"),
        }
    }
    let handshake = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(socket_config()),
        false,
        transport.websocket_tls(),
    );
    let outcome = match tokio::time::timeout(limit, handshake).await {
        Ok(outcome) => outcome,
        Err(_) => {
            return Err((
                DaytonaError::Connect {
                    endpoint: endpoint_of(url),
                    message: format!("WebSocket handshake did not finish within {limit:?}"),
                    source: None,
                },
                Failure::Unknown,
            ));
        }
    };
    match outcome {
        Ok((socket, _response)) => Ok(socket),
        Err(WsError::Http(response)) => Err(http_failure(*response)),
        Err(WsError::Io(io)) => {
            // The TCP connect (or TLS) failed before the upgrade request was sent.
            let message = error_chain(&io);
            Err((
                DaytonaError::Connect {
                    endpoint: endpoint_of(url),
                    message,
                    source: Some(Box::new(io)),
                },
                Failure::Connect,
            ))
        }
        Err(WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(e))) => Err((
            DaytonaError::WebSocket {
                operation: op,
                message: format!("the server did not accept the offered subprotocol: {e}"),
                source: None,
            },
            Failure::Permanent,
        )),
        Err(e) => Err((
            DaytonaError::WebSocket {
                operation: op,
                message: error_chain(&e),
                source: Some(Box::new(e)),
            },
            Failure::Unknown,
        )),
    }
}
