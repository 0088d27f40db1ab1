//! [`Collector`]: turns a session command's raw log (however often it is re-read from the start)
//! into capped stdout/stderr and UTF-8-safe callback text, each byte exactly once: the log is
//! split by stream, and each stream turned back into the command's bytes (see
//! [`super::output`]), which also yields the exit code the wrapper's trailer carries.

use workspace_core::OutputCallback;
use workspace_core::output::{CappedBuffer, Utf8Decoder};

use crate::demux::{OutputStream, RawDemuxer};

use super::output::StreamDecoder;
use super::script::OutputEncoding;

/// One stream's share of the log.
struct StreamSink {
    stream: StreamDecoder,
    delivery: Delivery,
}

/// Where one stream's bytes go: the capped result and the callback.
struct Delivery {
    kept: CappedBuffer,
    callback: Option<OutputCallback>,
    decoder: Utf8Decoder,
}

impl StreamSink {
    fn new(
        limit: usize,
        callback: Option<OutputCallback>,
        token: &str,
        encoding: OutputEncoding,
    ) -> Self {
        StreamSink {
            stream: StreamDecoder::new(token, encoding),
            delivery: Delivery {
                kept: CappedBuffer::new(limit),
                callback,
                decoder: Utf8Decoder::default(),
            },
        }
    }

    /// Take log bytes of this stream.
    fn push(&mut self, logged: &[u8]) {
        let delivery = &mut self.delivery;
        self.stream
            .push(logged, &mut |bytes: &[u8]| delivery.deliver(bytes));
    }

    fn finish(&mut self) {
        let delivery = &mut self.delivery;
        self.stream
            .finish(&mut |bytes: &[u8]| delivery.deliver(bytes));
        self.delivery.finish();
    }
}

impl Delivery {
    /// Take the command's own bytes.
    fn deliver(&mut self, bytes: &[u8]) {
        self.kept.push(bytes);
        if let Some(cb) = &self.callback {
            let text = self.decoder.decode(bytes);
            if !text.is_empty() {
                cb(&text);
            }
        }
    }

    fn finish(&mut self) {
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
    /// A collector for the command whose wrapper was built with `token` and `encoding`.
    pub(crate) fn new(
        limit: usize,
        on_stdout: Option<OutputCallback>,
        on_stderr: Option<OutputCallback>,
        token: &str,
        encoding: OutputEncoding,
    ) -> Self {
        Collector {
            demux: RawDemuxer::new(),
            consumed: 0,
            stdout: StreamSink::new(limit, on_stdout, token, encoding),
            stderr: StreamSink::new(limit, on_stderr, token, encoding),
        }
    }

    /// The same for a job of a resident shell: it is fed one stream at a time
    /// ([`push_stream`](Self::push_stream)), from the job's start marker on, and ignores what
    /// follows each trailer.
    pub(crate) fn for_resident_job(mut self) -> Self {
        self.stdout.stream.end_at_trailer();
        self.stderr.stream.end_at_trailer();
        self
    }

    /// Take bytes of one stream, already split from the log.
    pub(crate) fn push_stream(&mut self, stream: OutputStream, bytes: &[u8]) {
        self.consumed += bytes.len() as u64;
        match stream {
            OutputStream::Stdout => self.stdout.push(bytes),
            OutputStream::Stderr => self.stderr.push(bytes),
        }
    }

    /// Whether this stream's trailer is in.
    pub(crate) fn stream_done(&self, stream: OutputStream) -> bool {
        match stream {
            OutputStream::Stdout => self.stdout.stream.exit_code().is_some(),
            OutputStream::Stderr => self.stderr.stream.exit_code().is_some(),
        }
    }

    /// The command's exit code, once the trailers of both streams are in: all it printed
    /// itself has then been seen.
    pub(crate) fn exit_code(&self) -> Option<i32> {
        let out = self.stdout.stream.exit_code()?;
        self.stderr.stream.exit_code()?;
        Some(out)
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
        let (out, err) = (&self.stdout.delivery.kept, &self.stderr.delivery.kept);
        Collected {
            stdout: out.to_string_lossy(),
            stderr: err.to_string_lossy(),
            stdout_dropped: out.dropped(),
            stderr_dropped: err.dropped(),
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

    const TOKEN: &str = "ws-cmd-1-abc";

    /// A log as the daemon keeps it: each piece labelled as one line.
    fn log(pieces: &[(u8, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (marker, bytes) in pieces {
            v.extend_from_slice(&[*marker; 3]);
            v.extend_from_slice(bytes);
            if !bytes.ends_with(b"\n") {
                v.push(b'\n');
            }
        }
        v
    }

    fn trailer(code: i32) -> Vec<u8> {
        format!("\x1ews-exit {TOKEN} {code}\x1e\n").into_bytes()
    }

    #[test]
    fn rereads_from_the_start_add_nothing_twice() {
        let seen = Arc::new(Mutex::new(String::new()));
        let s = seen.clone();
        let cb: OutputCallback = Arc::new(move |t: &str| s.lock().unwrap().push_str(t));
        let mut c = Collector::new(1024, Some(cb), None, TOKEN, OutputEncoding::Plain);
        let last = [&b"\xffend"[..], &trailer(5)].concat();
        let log = log(&[
            (1, "out ☃\n".as_bytes()),
            (2, b"err\n"),
            (1, &last),
            (2, &trailer(5)),
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
        assert_eq!(c.exit_code(), Some(5));
        let done = c.finish();
        assert_eq!(done.stdout, "out ☃\n\u{FFFD}end");
        assert_eq!(done.stderr, "err\n");
        assert_eq!(*seen.lock().unwrap(), "out ☃\n\u{FFFD}end");
    }

    #[test]
    fn the_exit_code_needs_both_trailers() {
        let mut c = Collector::new(1024, None, None, TOKEN, OutputEncoding::Plain);
        c.feed_at(0, &log(&[(1, &trailer(0))]));
        assert_eq!(c.exit_code(), None);
        c.feed_at(0, &log(&[(1, &trailer(0)), (2, &trailer(0))]));
        assert_eq!(c.exit_code(), Some(0));
    }

    #[test]
    fn caps_count_exactly_in_both_encodings() {
        let mut c = Collector::new(4, None, None, TOKEN, OutputEncoding::Plain);
        c.feed_at(0, &log(&[(1, &[b'a'; 60]), (1, &[b'b'; 40])]));
        let done = c.finish();
        // Without a trailer the newline the daemon added stays: the output was cut short.
        assert_eq!(done.stdout, "aab\n");
        assert_eq!(done.stdout_dropped, 98);

        let mut c = Collector::new(4, None, None, TOKEN, OutputEncoding::Base64);
        let (a, b) = (STANDARD.encode([b'a'; 60]), STANDARD.encode([b'b'; 40]));
        c.feed_at(
            0,
            &log(&[(1, a.as_bytes()), (1, b.as_bytes()), (1, &trailer(0))]),
        );
        let done = c.finish();
        assert_eq!(done.stdout, "aabb");
        assert_eq!(done.stdout_dropped, 96);
    }
}
