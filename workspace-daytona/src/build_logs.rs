//! Image build logs: while a sandbox (or snapshot) is built from an image, the API serves the
//! build's output as a plain-text HTTP stream.
//!
//! The client asks `GET …/build-logs-url` for the stream's address, then reads
//! `GET {url}?follow=true` (chunked text, the same headers as every call) and hands it on line
//! by line. The stream ends when the server ends the body; like the official SDKs, the client
//! also stops once the stream has been idle for two checks in a row while the build is over
//! (some servers keep the body open).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use url::Url;

use daytona_api::sandbox::{SandboxState, UrlResponse};

use crate::error::DaytonaError;
use crate::sandbox::Sandbox;
use crate::transport::{Call, Deadline, Transport, join};

/// How long the log stream may stay silent before the client checks whether the build is over.
const IDLE_CHECK: Duration = Duration::from_secs(2);

/// Longest pause between two state polls while a build is pending.
const MAX_PENDING_POLL: Duration = Duration::from_secs(1);

/// Lines longer than this are handed on in pieces, so a stream without newlines cannot grow
/// memory without bound.
const MAX_LINE: usize = 64 * 1024;

/// Splits a byte stream into lines (without `\n` or `\r\n`), decoding UTF-8 lossily.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    pub(crate) fn push(&mut self, chunk: &[u8], mut emit: impl FnMut(&str)) {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos;
            emit_line(&self.buf[start..end], &mut emit);
            start = end + 1;
        }
        self.buf.drain(..start);
        while self.buf.len() >= MAX_LINE {
            let mut cut = MAX_LINE;
            // Do not split a UTF-8 sequence: back up to a char boundary (at most 3 bytes).
            while cut > MAX_LINE - 4 && (self.buf[cut] & 0b1100_0000) == 0b1000_0000 {
                cut -= 1;
            }
            let rest = self.buf.split_off(cut);
            emit(&String::from_utf8_lossy(&self.buf));
            self.buf = rest;
        }
    }

    pub(crate) fn finish(&mut self, mut emit: impl FnMut(&str)) {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            emit_line(&rest, &mut emit);
        }
    }
}

fn emit_line(line: &[u8], emit: &mut impl FnMut(&str)) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    emit(&String::from_utf8_lossy(line));
}

/// What is being built (a sandbox from an image, a snapshot from a Dockerfile), asked whether
/// its build is over when the log stream idles.
#[async_trait::async_trait]
pub(crate) trait BuildProbe: Send {
    /// Refreshes the state; whether no more log will come.
    async fn build_over(&mut self) -> Result<bool, DaytonaError>;
}

#[async_trait::async_trait]
impl BuildProbe for &mut Sandbox {
    async fn build_over(&mut self) -> Result<bool, DaytonaError> {
        self.refresh().await?;
        Ok(sandbox_build_over(self.state()))
    }
}

/// Reads `GET {url}?follow=true` line by line until the body ends, `until` passes, or the
/// stream idles through two consecutive checks for which `probe` says the build is over.
pub(crate) async fn follow_lines<F>(
    transport: &Arc<Transport>,
    op: &'static str,
    sandbox_id: Option<&str>,
    url: &str,
    until: Option<Instant>,
    on_line: &mut F,
    mut probe: impl BuildProbe,
) -> Result<(), DaytonaError>
where
    F: FnMut(&str) + ?Sized,
{
    let mut url = Url::parse(url)
        .map_err(|e| DaytonaError::decode(op, format!("bad build log URL {url:?}: {e}")))?;
    url.query_pairs_mut().append_pair("follow", "true");
    let mut call = Call::new(op, Method::GET, url).deadline(Deadline::Unbounded);
    if let Some(id) = sandbox_id {
        call = call.sandbox(id);
    }
    let mut response = transport.call_streaming(&call).await?;
    let mut lines = LineSplitter::default();
    let mut idle_over = 0u32;
    loop {
        let wait = match until {
            Some(u) => {
                let left = u.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                left.min(IDLE_CHECK)
            }
            None => IDLE_CHECK,
        };
        match tokio::time::timeout(wait, response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                idle_over = 0;
                lines.push(&chunk, &mut *on_line);
            }
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                // The build's outcome is read from the API afterwards; a broken log stream
                // only means the log is incomplete.
                tracing::warn!(op, error = %crate::transport::error_chain(&e), "build log stream broke off");
                break;
            }
            Err(_) => {
                if probe.build_over().await? {
                    idle_over += 1;
                    if idle_over > 1 {
                        break;
                    }
                } else {
                    idle_over = 0;
                }
            }
        }
    }
    lines.finish(&mut *on_line);
    Ok(())
}

/// States after which a sandbox build produces no more log (the SDKs' set).
fn sandbox_build_over(state: Option<&SandboxState>) -> bool {
    matches!(
        state,
        Some(
            SandboxState::Started
                | SandboxState::Starting
                | SandboxState::Error
                | SandboxState::BuildFailed
        )
    )
}

impl Sandbox {
    /// The address of this sandbox's build log stream (`GET /sandbox/{id}/build-logs-url`).
    pub async fn build_logs_url(&self) -> Result<String, DaytonaError> {
        let transport = &self.process().tb.transport;
        let url = join(
            &transport.config().api_url,
            &["sandbox", self.id(), "build-logs-url"],
        )?;
        let call = Call::new("sandbox.build_logs_url", Method::GET, url).sandbox(self.id());
        let answer: UrlResponse = transport.call_json(&call).await?;
        Ok(answer.url)
    }

    /// Follows the image build log of a sandbox built from an image, handing each line to
    /// `on_line`, until the log ends (a finished build's log is read whole). Waits first while
    /// the build is still `pending_build`.
    ///
    /// `timeout` bounds the whole call (`None`: no limit); when it passes, following stops
    /// without error. The build's outcome is the sandbox state: see
    /// [`refresh`](Self::refresh) and [`wait_until_started`](Self::wait_until_started).
    pub async fn follow_build_logs<F>(
        &mut self,
        timeout: Option<Duration>,
        mut on_line: F,
    ) -> Result<(), DaytonaError>
    where
        F: FnMut(&str),
    {
        let until = timeout.map(|t| Instant::now() + t);
        self.follow_build_logs_until(until, &mut on_line).await
    }

    async fn follow_build_logs_until<F>(
        &mut self,
        until: Option<Instant>,
        on_line: &mut F,
    ) -> Result<(), DaytonaError>
    where
        F: FnMut(&str) + ?Sized,
    {
        let mut pause = Duration::from_millis(100);
        while self.state() == Some(&SandboxState::PendingBuild) {
            if let Some(u) = until {
                let left = u.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(());
                }
                pause = pause.min(left);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PENDING_POLL);
            self.refresh().await?;
        }
        // Even a build that is over already still has its whole log to read.
        let url = self.build_logs_url().await?;
        let transport = Arc::clone(&self.process().tb.transport);
        let id = self.id().to_string();
        follow_lines(
            &transport,
            "sandbox.build_logs",
            Some(&id),
            &url,
            until,
            on_line,
            &mut *self,
        )
        .await?;
        self.refresh().await
    }
}

/// Follows the build log of a sandbox that `create` just made, if it is being built. A log
/// that cannot be read is not a create failure: the sandbox exists, and the wait that follows
/// reports how its build ended.
pub(crate) async fn follow_during_create<F>(
    sandbox: &mut Sandbox,
    until: Option<Instant>,
    on_line: &mut F,
) where
    F: FnMut(&str) + Send + ?Sized,
{
    let building = matches!(
        sandbox.state(),
        Some(SandboxState::PendingBuild | SandboxState::BuildingSnapshot)
    );
    if !building {
        return;
    }
    if let Err(e) = sandbox.follow_build_logs_until(until, on_line).await {
        tracing::warn!(sandbox_id = %sandbox.id(), error = %e, "could not follow the build log");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        let mut s = LineSplitter::default();
        for c in chunks {
            s.push(c, |l| out.push(l.to_string()));
        }
        s.finish(|l| out.push(l.to_string()));
        out
    }

    #[test]
    fn lines_across_chunks() {
        assert_eq!(
            split(&[b"Step 1/2 : FROM", b" alpine\r\nStep 2/2", b"\n\ndone"]),
            ["Step 1/2 : FROM alpine", "Step 2/2", "", "done"]
        );
        assert!(split(&[]).is_empty());
    }

    #[test]
    fn utf8_split_across_chunks_survives() {
        let text = "héllo\n".as_bytes();
        assert_eq!(split(&[&text[..2], &text[2..]]), ["héllo"]);
    }

    #[test]
    fn endless_lines_are_cut() {
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let out = split(&[&long]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(out[2].len(), 10);
        let mut multi = vec![b'a'; MAX_LINE - 1];
        multi.extend_from_slice("é".as_bytes());
        let out = split(&[&multi]);
        assert!(out.iter().all(|l| !l.contains('\u{fffd}')), "{out:?}");
    }

    #[test]
    fn build_over_states() {
        assert!(sandbox_build_over(Some(&SandboxState::Started)));
        assert!(sandbox_build_over(Some(&SandboxState::BuildFailed)));
        assert!(!sandbox_build_over(Some(&SandboxState::BuildingSnapshot)));
        assert!(!sandbox_build_over(None));
    }
}
