//! [`Collector`]: turns a session command's raw log (however often it is re-read from the start)
//! into capped stdout/stderr and UTF-8-safe callback text, each byte exactly once: the log is
//! split by stream, each stream's base64 lines (see [`super::script`]) decoded back to the
//! command's bytes.

use workspace_core::OutputCallback;
use workspace_core::output::{CappedBuffer, Utf8Decoder};

use crate::demux::{OutputStream, RawDemuxer};

use super::script::LineDecoder;

/// One stream's share of the log.
struct StreamSink {
    lines: LineDecoder,
    kept: CappedBuffer,
    callback: Option<OutputCallback>,
    decoder: Utf8Decoder,
    scratch: Vec<u8>,
}

impl StreamSink {
    fn new(limit: usize, callback: Option<OutputCallback>) -> Self {
        StreamSink {
            lines: LineDecoder::default(),
            kept: CappedBuffer::new(limit),
            callback,
            decoder: Utf8Decoder::default(),
            scratch: Vec::new(),
        }
    }

    /// Take encoded log bytes of this stream.
    fn push(&mut self, encoded: &[u8]) {
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        self.lines.push(encoded, &mut bytes);
        self.deliver(&bytes);
        self.scratch = bytes;
    }

    /// Take the command's own bytes.
    fn deliver(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.kept.push(bytes);
        if let Some(cb) = &self.callback {
            let text = self.decoder.decode(bytes);
            if !text.is_empty() {
                cb(&text);
            }
        }
    }

    fn finish(&mut self) {
        let mut tail = Vec::new();
        self.lines.finish(&mut tail);
        self.deliver(&tail);
        if let Some(cb) = &self.callback {
            let tail = self.decoder.finish();
            if !tail.is_empty() {
                cb(&tail);
            }
        }
    }
}

/// The output of one command as read so far.
pub(crate) struct Collector {
    demux: RawDemuxer,
    /// Log bytes (markers included) consumed: where a re-read of the log resumes.
    consumed: u64,
    stdout: StreamSink,
    stderr: StreamSink,
}

/// What a finished [`Collector`] holds.
pub(crate) struct Collected {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) stdout_dropped: u64,
    pub(crate) stderr_dropped: u64,
}

impl Collector {
    pub(crate) fn new(
        limit: usize,
        on_stdout: Option<OutputCallback>,
        on_stderr: Option<OutputCallback>,
    ) -> Self {
        Collector {
            demux: RawDemuxer::new(),
            consumed: 0,
            stdout: StreamSink::new(limit, on_stdout),
            stderr: StreamSink::new(limit, on_stderr),
        }
    }

    /// Log bytes consumed so far.
    pub(crate) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Feed a piece of the log that starts at log offset `at`: the part before
    /// [`consumed`](Self::consumed) was seen already and is skipped; a piece past it (a gap)
    /// cannot happen with a log read from its start and is fed as is.
    pub(crate) fn feed_at(&mut self, at: u64, bytes: &[u8]) {
        let skip = self.consumed.saturating_sub(at);
        let Ok(skip) = usize::try_from(skip) else {
            return;
        };
        if skip >= bytes.len() {
            return;
        }
        let fresh = &bytes[skip..];
        self.consumed += fresh.len() as u64;
        let Collector {
            demux,
            stdout,
            stderr,
            ..
        } = self;
        demux.push(fresh, |stream, b| match stream {
            OutputStream::Stdout => stdout.push(b),
            OutputStream::Stderr => stderr.push(b),
        });
    }

    /// End of the log: flush what is held back and build the result text.
    pub(crate) fn finish(mut self) -> Collected {
        let Collector {
            demux,
            stdout,
            stderr,
            ..
        } = &mut self;
        demux.finish(|stream, b| match stream {
            OutputStream::Stdout => stdout.push(b),
            OutputStream::Stderr => stderr.push(b),
        });
        self.stdout.finish();
        self.stderr.finish();
        Collected {
            stdout: self.stdout.kept.to_string_lossy(),
            stderr: self.stderr.kept.to_string_lossy(),
            stdout_dropped: self.stdout.kept.dropped(),
            stderr_dropped: self.stderr.kept.dropped(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use std::sync::{Arc, Mutex};

    /// A log as the daemon keeps it for the wrapper's encoded output.
    fn log(pieces: &[(u8, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (marker, bytes) in pieces {
            v.extend_from_slice(&[*marker; 3]);
            v.extend_from_slice(STANDARD.encode(bytes).as_bytes());
            v.push(b'\n');
        }
        v
    }

    #[test]
    fn rereads_from_the_start_add_nothing_twice() {
        let seen = Arc::new(Mutex::new(String::new()));
        let s = seen.clone();
        let cb: OutputCallback = Arc::new(move |t: &str| s.lock().unwrap().push_str(t));
        let mut c = Collector::new(1024, Some(cb), None);
        let snow = "out ☃".as_bytes();
        let log = log(&[
            (1, &snow[..5]),
            (2, b"err\n"),
            (1, &snow[5..]),
            (1, b"\n\xffend"),
        ]);
        // A first connection delivers 9 bytes, then drops; the second replays from 0 in odd
        // pieces.
        c.feed_at(0, &log[..9]);
        let mut at = 0u64;
        for piece in log.chunks(3) {
            c.feed_at(at, piece);
            at += piece.len() as u64;
        }
        assert_eq!(c.consumed(), log.len() as u64);
        let done = c.finish();
        assert_eq!(done.stdout, "out ☃\n\u{FFFD}end");
        assert_eq!(done.stderr, "err\n");
        assert_eq!(*seen.lock().unwrap(), "out ☃\n\u{FFFD}end");
    }

    #[test]
    fn caps_count_exactly() {
        let mut c = Collector::new(4, None, None);
        c.feed_at(0, &log(&[(1, &[b'a'; 60]), (1, &[b'b'; 40])]));
        let done = c.finish();
        assert_eq!(done.stdout, "aabb");
        assert_eq!(done.stdout_dropped, 96);
    }
}
