//! Splits the daemon's multiplexed session log into stdout and stderr text.
//!
//! The daemon labels every line it writes to a session command's log with a 3-byte marker:
//! `\x01\x01\x01` before stdout lines, `\x02\x02\x02` before stderr lines. Followed logs arrive as
//! WebSocket frames cut at arbitrary byte offsets, so a marker, or a UTF-8 character, may be split
//! across frames. [`Demuxer`] carries the partial marker (at most two bytes, in a fixed array) and
//! a held-back partial UTF-8 character per stream, so the text it emits is exactly what an
//! unsplit scan of the whole log would give.
//!
//! Throughput matters (a chatty command's log passes through here byte by byte), so the scan
//! for marker bytes looks at eight bytes at a time, and [`Demuxer`] decodes straight into the
//! string it emits: one allocation per run of one stream in a frame, not one per marker.

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

use workspace_core::output::Utf8Decoder;

const MARKER_LEN: usize = 3;

fn marker_stream(byte: u8) -> Option<OutputStream> {
    match byte {
        0x01 => Some(OutputStream::Stdout),
        0x02 => Some(OutputStream::Stderr),
        _ => None,
    }
}

/// Incremental demultiplexer for marker-labelled session logs, decoding each stream as UTF-8.
///
/// Markers are matched leftmost-first. Bytes before the first marker are stdout (what an old
/// daemon that sends unlabelled output means). Markers never reach the emitted text, which
/// never splits a UTF-8 character; invalid UTF-8 becomes U+FFFD. [`RawDemuxer`] does the same
/// split without decoding.
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
#[derive(Debug, Clone, Default)]
pub struct Demuxer {
    raw: RawDemuxer,
    stdout: Utf8Decoder,
    stderr: Utf8Decoder,
}

impl Demuxer {
    /// A demuxer at the start of a log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The stream the next unlabelled byte belongs to.
    pub fn current(&self) -> OutputStream {
        self.raw.current()
    }

    /// Feeds one frame; `emit` is called with each complete piece of text, in order. Text of
    /// one stream that follows itself within the frame (several lines in a row) comes as one
    /// piece.
    pub fn push<F: FnMut(OutputStream, String)>(&mut self, frame: &[u8], mut emit: F) {
        let Demuxer {
            raw,
            stdout,
            stderr,
        } = self;
        let mut run = Run::default();
        raw.push(frame, |stream, bytes| {
            let decoder = match stream {
                OutputStream::Stdout => &mut *stdout,
                OutputStream::Stderr => &mut *stderr,
            };
            decoder.decode_into(bytes, run.text_for(stream, bytes.len(), &mut emit));
        });
        run.flush(&mut emit);
    }

    /// Ends the log: a held-back partial marker is data after all, and an incomplete UTF-8
    /// character becomes U+FFFD.
    pub fn finish<F: FnMut(OutputStream, String)>(&mut self, mut emit: F) {
        let Demuxer {
            raw,
            stdout,
            stderr,
        } = self;
        let mut run = Run::default();
        raw.finish(|stream, bytes| {
            let decoder = match stream {
                OutputStream::Stdout => &mut *stdout,
                OutputStream::Stderr => &mut *stderr,
            };
            decoder.decode_into(bytes, run.text_for(stream, bytes.len(), &mut emit));
        });
        run.flush(&mut emit);
        for (stream, decoder) in [
            (OutputStream::Stdout, &mut self.stdout),
            (OutputStream::Stderr, &mut self.stderr),
        ] {
            let tail = decoder.finish();
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
}

/// The text of one stream being gathered for a single emit.
#[derive(Default)]
struct Run {
    current: Option<(OutputStream, String)>,
}

impl Run {
    /// The string to append `stream`'s next text to; a switch of stream emits what was
    /// gathered first.
    fn text_for<F: FnMut(OutputStream, String)>(
        &mut self,
        stream: OutputStream,
        hint: usize,
        emit: &mut F,
    ) -> &mut String {
        if self.current.as_ref().is_some_and(|(s, _)| *s != stream) {
            self.flush(emit);
        }
        &mut self
            .current
            .get_or_insert_with(|| (stream, String::with_capacity(hint)))
            .1
    }

    fn flush<F: FnMut(OutputStream, String)>(&mut self, emit: &mut F) {
        if let Some((stream, text)) = self.current.take()
            && !text.is_empty()
        {
            emit(stream, text);
        }
    }
}

/// The marker split of [`Demuxer`] on bytes: emits each stream's raw bytes (exactly as the
/// command wrote them, invalid UTF-8 included), so a caller can count bytes, cap buffers and
/// decode on its own terms.
///
/// The bytes it emits for a log are the same however the log is cut into frames, so two readers
/// of one log agree on every stream offset.
///
/// ```
/// use workspace_daytona::demux::{OutputStream, RawDemuxer};
/// let mut d = RawDemuxer::new();
/// let mut err = Vec::new();
/// d.push(b"\x02\x02\x02\xffbad\n\x01\x01", |s, b| if s == OutputStream::Stderr { err.extend_from_slice(b) });
/// d.finish(|_, _| {});
/// assert_eq!(err, b"\xffbad\n");
/// ```
#[derive(Debug, Clone)]
pub struct RawDemuxer {
    current: OutputStream,
    /// Trailing bytes of the previous frame that are a proper prefix of a marker (all equal).
    pending: [u8; MARKER_LEN - 1],
    pending_len: usize,
}

impl Default for RawDemuxer {
    fn default() -> Self {
        Self::new()
    }
}

impl RawDemuxer {
    /// A demuxer at the start of a log.
    pub fn new() -> Self {
        RawDemuxer {
            current: OutputStream::Stdout,
            pending: [0; MARKER_LEN - 1],
            pending_len: 0,
        }
    }

    /// The stream the next unlabelled byte belongs to.
    pub fn current(&self) -> OutputStream {
        self.current
    }

    /// Feeds one frame; `emit` is called with each run of bytes of one stream, in order.
    pub fn push<F: FnMut(OutputStream, &[u8])>(&mut self, frame: &[u8], mut emit: F) {
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
        let mut i = next_marker_byte(data, 0);
        while i < data.len() {
            let byte = data[i];
            let Some(stream) = marker_stream(byte) else {
                i = next_marker_byte(data, i + 1);
                continue;
            };
            let rest = &data[i..];
            if rest.len() >= MARKER_LEN {
                if rest[1] == byte && rest[2] == byte {
                    self.emit_data(&data[start..i], &mut emit);
                    self.current = stream;
                    i += MARKER_LEN;
                    start = i;
                    i = next_marker_byte(data, i);
                } else {
                    i = next_marker_byte(data, i + 1);
                }
            } else if rest.iter().all(|&b| b == byte) {
                // A possible marker cut by the frame end: hold it back.
                self.emit_data(&data[start..i], &mut emit);
                self.pending[..rest.len()].copy_from_slice(rest);
                self.pending_len = rest.len();
                return;
            } else {
                i = next_marker_byte(data, i + 1);
            }
        }
        self.emit_data(&data[start..], &mut emit);
    }

    /// Ends the log: a held-back partial marker is data after all.
    pub fn finish<F: FnMut(OutputStream, &[u8])>(&mut self, mut emit: F) {
        if self.pending_len > 0 {
            let pending = self.pending;
            let n = self.pending_len;
            self.pending_len = 0;
            self.emit_data(&pending[..n], &mut emit);
        }
    }

    fn emit_data<F: FnMut(OutputStream, &[u8])>(&self, bytes: &[u8], emit: &mut F) {
        if !bytes.is_empty() {
            emit(self.current, bytes);
        }
    }
}

/// The index of the first byte at or after `from` that may start a marker (`0x01` or `0x02`),
/// or `data.len()`. Output rarely holds such bytes, so it tests eight at a time: a word's bytes
/// below 3 get their high bit set by `(w - 0x0303…) & !w & 0x8080…`, and the lowest flagged
/// byte is exact (borrows only travel upward, from a byte that is itself below 3).
fn next_marker_byte(data: &[u8], from: usize) -> usize {
    const THREES: u64 = 0x0303_0303_0303_0303;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while let Some(word) = data.get(i..).and_then(|d| d.first_chunk::<8>()) {
        let w = u64::from_le_bytes(*word);
        let below_three = w.wrapping_sub(THREES) & !w & HIGH_BITS;
        if below_three == 0 {
            i += 8;
            continue;
        }
        let at = i + (below_three.trailing_zeros() / 8) as usize;
        if marker_stream(data[at]).is_some() {
            return at;
        }
        // A NUL byte: look on after it.
        i = at + 1;
    }
    while i < data.len() && marker_stream(data[i]).is_none() {
        i += 1;
    }
    i.min(data.len())
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
            assert!(!t.is_empty(), "empty pieces are never emitted");
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

    /// The raw split emits the same bytes per stream however the log is cut, and decoding them
    /// gives what the text demuxer gives.
    #[test]
    fn raw_split_is_frame_independent() {
        let mut rng = StdRng::seed_from_u64(0xb17e5);
        let alphabet: &[&[u8]] = &[
            b"\x01",
            b"\x02",
            b"\x01\x01\x01",
            b"\x02\x02\x02",
            b"a",
            "☃".as_bytes(),
            b"\xff",
        ];
        let raw = |frames: &[&[u8]]| {
            let mut d = RawDemuxer::new();
            let mut out = Vec::new();
            let mut err = Vec::new();
            let mut sink = |s: OutputStream, b: &[u8]| match s {
                OutputStream::Stdout => out.extend_from_slice(b),
                OutputStream::Stderr => err.extend_from_slice(b),
            };
            for f in frames {
                d.push(f, &mut sink);
            }
            d.finish(&mut sink);
            (out, err)
        };
        for _ in 0..2000 {
            let mut log = Vec::new();
            for _ in 0..rng.random_range(0..30) {
                log.extend_from_slice(alphabet[rng.random_range(0..alphabet.len())]);
            }
            let whole = raw(&[&log]);
            let mut frames = Vec::new();
            let mut rest = &log[..];
            while !rest.is_empty() {
                let n = rng.random_range(0..=rest.len().min(4));
                frames.push(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(raw(&frames), whole, "log {log:?}");
            let text = run(&[&log]);
            assert_eq!(
                (
                    String::from_utf8_lossy(&whole.0).into_owned(),
                    String::from_utf8_lossy(&whole.1).into_owned()
                ),
                text,
                "log {log:?}"
            );
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

    /// The word-at-a-time scan finds exactly what a byte-by-byte scan finds, whatever the
    /// alignment, with NUL and high bytes (which the bit trick must not mistake) around.
    #[test]
    fn marker_byte_scan_matches_naive() {
        let mut rng = StdRng::seed_from_u64(0x5ca9);
        let alphabet = [
            0x00u8, 0x01, 0x02, 0x03, 0x7f, 0x80, 0x81, 0x82, 0x83, 0xfd, 0xff, b'a',
        ];
        for _ in 0..5000 {
            let len = rng.random_range(0..40);
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.random_bool(0.8) {
                        alphabet[rng.random_range(3..alphabet.len())]
                    } else {
                        alphabet[rng.random_range(0..3)]
                    }
                })
                .collect();
            for from in 0..=data.len() {
                let naive = (from..data.len())
                    .find(|&i| data[i] == 1 || data[i] == 2)
                    .unwrap_or(data.len());
                assert_eq!(next_marker_byte(&data, from), naive, "{data:?} from {from}");
            }
        }
    }

    #[test]
    fn lines_of_one_stream_in_a_frame_come_as_one_piece() {
        let log = labelled(&[
            (OutputStream::Stdout, "a\n"),
            (OutputStream::Stdout, "b\n"),
            (OutputStream::Stderr, "c\n"),
            (OutputStream::Stderr, "d\n"),
            (OutputStream::Stdout, "e\n"),
        ]);
        let mut d = Demuxer::new();
        let mut seq = Vec::new();
        d.push(&log, |s, t| seq.push((s, t)));
        d.finish(|s, t| seq.push((s, t)));
        assert_eq!(
            seq,
            vec![
                (OutputStream::Stdout, "a\nb\n".to_string()),
                (OutputStream::Stderr, "c\nd\n".to_string()),
                (OutputStream::Stdout, "e\n".to_string()),
            ]
        );
    }
}
