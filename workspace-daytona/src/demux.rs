//! Splits the daemon's multiplexed session log into stdout and stderr text.
//!
//! The daemon labels every line it writes to a session command's log with a 3-byte marker:
//! `\x01\x01\x01` before stdout lines, `\x02\x02\x02` before stderr lines. Followed logs arrive as
//! WebSocket frames cut at arbitrary byte offsets, so a marker, or a UTF-8 character, may be split
//! across frames. [`Demuxer`] carries the partial marker (at most two bytes, in a fixed array) and
//! keeps one [`Utf8Decoder`] per stream, so the text it emits is exactly what an unsplit scan of
//! the whole log would give.

use workspace_core::output::Utf8Decoder;

/// Which output stream a piece of text belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// The stdout line marker.
pub const STDOUT_MARKER: [u8; 3] = [0x01; 3];
/// The stderr line marker.
pub const STDERR_MARKER: [u8; 3] = [0x02; 3];

const MARKER_LEN: usize = 3;

fn marker_stream(byte: u8) -> Option<OutputStream> {
    match byte {
        0x01 => Some(OutputStream::Stdout),
        0x02 => Some(OutputStream::Stderr),
        _ => None,
    }
}

/// Incremental demultiplexer for marker-labelled session logs.
///
/// Markers are matched leftmost-first. Bytes before the first marker are stdout (what an old
/// daemon that sends unlabelled output means). Emitted text never contains marker bytes and never
/// splits a UTF-8 character; invalid UTF-8 becomes U+FFFD.
///
/// ```
/// use workspace_daytona::demux::{Demuxer, OutputStream};
/// let mut d = Demuxer::new();
/// let mut out = Vec::new();
/// d.push(b"\x01\x01\x01hi\n\x02\x02", |s, t| out.push((s, t)));
/// d.push(b"\x02oops\n", |s, t| out.push((s, t)));
/// d.finish(|s, t| out.push((s, t)));
/// assert_eq!(out, vec![
///     (OutputStream::Stdout, "hi\n".to_string()),
///     (OutputStream::Stderr, "oops\n".to_string()),
/// ]);
/// ```
#[derive(Debug, Clone)]
pub struct Demuxer {
    current: OutputStream,
    /// Trailing bytes of the previous frame that are a proper prefix of a marker (all equal).
    pending: [u8; MARKER_LEN - 1],
    pending_len: usize,
    stdout: Utf8Decoder,
    stderr: Utf8Decoder,
}

impl Default for Demuxer {
    fn default() -> Self {
        Self::new()
    }
}

impl Demuxer {
    /// A demuxer at the start of a log.
    pub fn new() -> Self {
        Demuxer {
            current: OutputStream::Stdout,
            pending: [0; MARKER_LEN - 1],
            pending_len: 0,
            stdout: Utf8Decoder::default(),
            stderr: Utf8Decoder::default(),
        }
    }

    /// The stream the next unlabelled byte belongs to.
    pub fn current(&self) -> OutputStream {
        self.current
    }

    /// Feeds one frame; `emit` is called with each complete piece of text, in order.
    pub fn push<F: FnMut(OutputStream, String)>(&mut self, frame: &[u8], mut emit: F) {
        let mut data = frame;
        // First settle a marker prefix carried over from the previous frame.
        while self.pending_len > 0 {
            let byte = self.pending[0];
            let need = MARKER_LEN - self.pending_len;
            let avail = need.min(data.len());
            if data[..avail].iter().all(|&b| b == byte) {
                if avail == need {
                    if let Some(stream) = marker_stream(byte) {
                        self.current = stream;
                    }
                    self.pending_len = 0;
                    data = &data[need..];
                } else {
                    // Still only a prefix, and the frame is used up.
                    self.pending[self.pending_len..self.pending_len + avail]
                        .copy_from_slice(&data[..avail]);
                    self.pending_len += avail;
                    return;
                }
            } else {
                // The carried byte starts no marker: it is data.
                let first = [byte];
                self.pending.copy_within(1..self.pending_len, 0);
                self.pending_len -= 1;
                self.emit_data(&first, &mut emit);
            }
        }

        let mut start = 0;
        let mut i = 0;
        while i < data.len() {
            let Some(stream) = marker_stream(data[i]) else {
                i += 1;
                continue;
            };
            let byte = data[i];
            let rest = &data[i..];
            if rest.len() >= MARKER_LEN {
                if rest[1] == byte && rest[2] == byte {
                    self.emit_data(&data[start..i], &mut emit);
                    self.current = stream;
                    i += MARKER_LEN;
                    start = i;
                } else {
                    i += 1;
                }
            } else if rest.iter().all(|&b| b == byte) {
                // A possible marker cut by the frame end: hold it back.
                self.emit_data(&data[start..i], &mut emit);
                self.pending[..rest.len()].copy_from_slice(rest);
                self.pending_len = rest.len();
                return;
            } else {
                i += 1;
            }
        }
        self.emit_data(&data[start..], &mut emit);
    }

    /// Ends the log: a held-back partial marker is data after all, and an incomplete UTF-8
    /// character becomes U+FFFD.
    pub fn finish<F: FnMut(OutputStream, String)>(&mut self, mut emit: F) {
        if self.pending_len > 0 {
            let pending = self.pending;
            let n = self.pending_len;
            self.pending_len = 0;
            self.emit_data(&pending[..n], &mut emit);
        }
        for stream in [OutputStream::Stdout, OutputStream::Stderr] {
            let tail = self.decoder(stream).finish();
            if !tail.is_empty() {
                emit(stream, tail);
            }
        }
    }

    /// Demuxes a complete log in one go, into `(stdout, stderr)`.
    ///
    /// ```
    /// let (out, err) = workspace_daytona::demux::split_all(b"\x01\x01\x01a\n\x02\x02\x02b\n");
    /// assert_eq!((out.as_str(), err.as_str()), ("a\n", "b\n"));
    /// ```
    pub fn split(mut self, log: &[u8]) -> (String, String) {
        let mut out = String::new();
        let mut err = String::new();
        let mut sink = |s: OutputStream, t: String| match s {
            OutputStream::Stdout => out.push_str(&t),
            OutputStream::Stderr => err.push_str(&t),
        };
        self.push(log, &mut sink);
        self.finish(&mut sink);
        (out, err)
    }

    fn decoder(&mut self, stream: OutputStream) -> &mut Utf8Decoder {
        match stream {
            OutputStream::Stdout => &mut self.stdout,
            OutputStream::Stderr => &mut self.stderr,
        }
    }

    fn emit_data<F: FnMut(OutputStream, String)>(&mut self, bytes: &[u8], emit: &mut F) {
        if bytes.is_empty() {
            return;
        }
        let stream = self.current;
        let text = self.decoder(stream).decode(bytes);
        if !text.is_empty() {
            emit(stream, text);
        }
    }
}

/// Demuxes a complete log into `(stdout, stderr)`.
pub fn split_all(log: &[u8]) -> (String, String) {
    Demuxer::new().split(log)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn run(frames: &[&[u8]]) -> (String, String) {
        let mut d = Demuxer::new();
        let mut out = String::new();
        let mut err = String::new();
        let mut sink = |s: OutputStream, t: String| {
            assert!(!t.contains('\u{1}') || !t.contains("\u{1}\u{1}\u{1}"));
            match s {
                OutputStream::Stdout => out.push_str(&t),
                OutputStream::Stderr => err.push_str(&t),
            }
        };
        for f in frames {
            d.push(f, &mut sink);
        }
        d.finish(&mut sink);
        (out, err)
    }

    fn labelled(lines: &[(OutputStream, &str)]) -> Vec<u8> {
        let mut v = Vec::new();
        for (s, l) in lines {
            v.extend_from_slice(match s {
                OutputStream::Stdout => &STDOUT_MARKER,
                OutputStream::Stderr => &STDERR_MARKER,
            });
            v.extend_from_slice(l.as_bytes());
        }
        v
    }

    fn expected(lines: &[(OutputStream, &str)]) -> (String, String) {
        let mut out = String::new();
        let mut err = String::new();
        for (s, l) in lines {
            match s {
                OutputStream::Stdout => out.push_str(l),
                OutputStream::Stderr => err.push_str(l),
            }
        }
        (out, err)
    }

    const LINES: &[(OutputStream, &str)] = &[
        (OutputStream::Stdout, "line1 out\n"),
        (OutputStream::Stderr, "line1 err ☃\n"),
        (OutputStream::Stdout, "é𝄞 two\n"),
        (OutputStream::Stderr, "\n"),
        (OutputStream::Stdout, "last"),
    ];

    #[test]
    fn whole_log() {
        let log = labelled(LINES);
        assert_eq!(run(&[&log]), expected(LINES));
    }

    #[test]
    fn every_single_split_point() {
        let log = labelled(LINES);
        let want = expected(LINES);
        for i in 0..=log.len() {
            assert_eq!(run(&[&log[..i], &log[i..]]), want, "split at {i}");
        }
    }

    #[test]
    fn every_pair_of_split_points() {
        let log = labelled(LINES);
        let want = expected(LINES);
        for i in 0..=log.len() {
            for j in i..=log.len() {
                assert_eq!(
                    run(&[&log[..i], &log[i..j], &log[j..]]),
                    want,
                    "split at {i},{j}"
                );
            }
        }
    }

    #[test]
    fn byte_at_a_time() {
        let log = labelled(LINES);
        let frames: Vec<&[u8]> = log.chunks(1).collect();
        assert_eq!(run(&frames), expected(LINES));
    }

    #[test]
    fn unlabelled_prefix_is_stdout() {
        assert_eq!(
            run(&[b"plain\n\x02\x02\x02e\n"]),
            ("plain\n".into(), "e\n".into())
        );
    }

    #[test]
    fn lone_marker_bytes_are_data() {
        // Fewer than three equal marker bytes are ordinary data.
        assert_eq!(
            run(&[b"a\x01b\x02\x02c"]),
            ("a\u{1}b\u{2}\u{2}c".into(), String::new())
        );
        // A partial marker at the very end is data.
        assert_eq!(
            run(&[b"x\x01", b"\x01"]),
            ("x\u{1}\u{1}".into(), String::new())
        );
        // Mixed marker bytes never form a marker.
        assert_eq!(
            run(&[b"\x01\x01", b"\x02\x02\x02e"]),
            ("\u{1}\u{1}".into(), "e".into())
        );
        // Four equal bytes: a marker, then one data byte.
        assert_eq!(
            run(&[b"\x02\x02", b"\x02\x02z"]),
            (String::new(), "\u{2}z".into())
        );
    }

    #[test]
    fn utf8_split_across_marker_switch() {
        // A stdout character is cut, a stderr line intervenes... which cannot happen in a real
        // log (lines are whole), but per-stream decoders must still not mix bytes.
        let snow = "☃".as_bytes();
        let mut log = STDOUT_MARKER.to_vec();
        log.extend_from_slice(&snow[..1]);
        log.extend_from_slice(&STDERR_MARKER);
        log.extend_from_slice(b"e");
        log.extend_from_slice(&STDOUT_MARKER);
        log.extend_from_slice(&snow[1..]);
        assert_eq!(run(&[&log]), ("☃".into(), "e".into()));
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(
            run(&[b"\x01\x01\x01a\xffb", b"\xe2\x98"]),
            ("a\u{FFFD}b\u{FFFD}".into(), String::new())
        );
    }

    #[test]
    fn interleaving_preserves_order() {
        let log = labelled(&[
            (OutputStream::Stdout, "1"),
            (OutputStream::Stderr, "2"),
            (OutputStream::Stdout, "3"),
            (OutputStream::Stderr, "4"),
        ]);
        let mut d = Demuxer::new();
        let mut seq = Vec::new();
        for c in log.chunks(2) {
            d.push(c, |s, t| seq.push((s, t)));
        }
        d.finish(|s, t| seq.push((s, t)));
        let joined: Vec<(OutputStream, String)> = seq;
        assert_eq!(
            joined,
            vec![
                (OutputStream::Stdout, "1".into()),
                (OutputStream::Stderr, "2".into()),
                (OutputStream::Stdout, "3".into()),
                (OutputStream::Stderr, "4".into()),
            ]
        );
    }

    /// Random logs of random bytes (biased toward marker bytes and multi-byte characters), cut at
    /// random points: the split result must equal the unsplit one.
    #[test]
    fn random_splits_match_unsplit() {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let alphabet: &[&[u8]] = &[
            b"\x01",
            b"\x02",
            b"\x01\x01\x01",
            b"\x02\x02\x02",
            b"a",
            b"\n",
            "é".as_bytes(),
            "☃".as_bytes(),
            "𝄞".as_bytes(),
            b"\xff",
            b"\xe2",
        ];
        for _ in 0..3000 {
            let mut log = Vec::new();
            for _ in 0..rng.random_range(0..40) {
                log.extend_from_slice(alphabet[rng.random_range(0..alphabet.len())]);
            }
            let want = run(&[&log]);
            let mut frames = Vec::new();
            let mut rest = &log[..];
            while !rest.is_empty() {
                let n = rng.random_range(0..=rest.len().min(5));
                frames.push(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(run(&frames), want, "log {log:?} frames {frames:?}");
        }
    }

    /// Well-formed logs: whatever the cuts, the text per stream is exactly the labelled lines.
    #[test]
    fn random_wellformed_logs_roundtrip() {
        let mut rng = StdRng::seed_from_u64(42);
        let words = ["x", "héllo", "☃☃", "𝄞", " ", "\t", "12345"];
        for _ in 0..1000 {
            let mut lines: Vec<(OutputStream, String)> = Vec::new();
            for _ in 0..rng.random_range(0..8) {
                let stream = if rng.random_bool(0.5) {
                    OutputStream::Stdout
                } else {
                    OutputStream::Stderr
                };
                let mut line = String::new();
                for _ in 0..rng.random_range(0..5) {
                    line.push_str(words[rng.random_range(0..words.len())]);
                }
                line.push('\n');
                lines.push((stream, line));
            }
            let borrowed: Vec<(OutputStream, &str)> =
                lines.iter().map(|(s, l)| (*s, l.as_str())).collect();
            let log = labelled(&borrowed);
            let mut frames = Vec::new();
            let mut rest = &log[..];
            while !rest.is_empty() {
                let n = rng.random_range(1..=rest.len().min(7));
                frames.push(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(run(&frames), expected(&borrowed));
        }
    }
}
