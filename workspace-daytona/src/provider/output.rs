//! One stream of a session command's log turned back into the command's bytes: the exit
//! trailer the wrapper prints at the end (see [`super::script`]) is found, removed and read, and
//! in base64 mode the encoded lines are decoded.
//!
//! The trailer is `\x1e` `ws-exit <token> <code>` `\x1e` `\n`, printed on stdout and on stderr by
//! the session shell after the caller's command exits. It does two jobs:
//! - **Exact output without encoding.** The daemon labels logs line by line and ends a last
//!   line that had no newline with one. The trailer is always the stream's last line and ends
//!   with its own newline, so whatever the command printed before it (with or without a final
//!   newline) comes back byte for byte once the trailer is cut off.
//! - **The exit code as soon as the command exits.** The daemon records the exit code only when
//!   every process holding the command's output has closed it, so a command that leaves a
//!   child behind (`server &`) would otherwise keep its caller waiting as long as the child
//!   lives. The trailer carries the code; the caller gives late output a bounded drain.
//!
//! The token (unique per command) keeps output that merely looks like a trailer from being
//! taken for one.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// How the command's output reaches the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum OutputEncoding {
    /// As written; NUL bytes are lost to the daemon's labellers.
    #[default]
    Plain,
    /// Base64 lines: every byte survives, at a cost in sandbox CPU.
    Base64,
}

/// The byte that opens and closes a trailer (ASCII record separator; `\036` to `printf`).
const TRAILER_MARK: u8 = 0x1e;
/// The word after the opening mark.
pub(crate) const TRAILER_TAG: &str = "ws-exit";
/// Longest exit code text a trailer may carry (`-2147483648`).
const MAX_CODE_LEN: usize = 11;

/// Finds the trailer in one stream, passing every other byte through unchanged.
#[derive(Debug)]
struct TrailerScanner {
    /// `\x1ews-exit <token> `: what a trailer starts with.
    prefix: Vec<u8>,
    /// A possible trailer cut by the end of the last piece.
    held: Vec<u8>,
    code: Option<i32>,
    /// Bytes after the trailer are dropped instead of passed on (a resident shell's stream,
    /// where they belong to no command).
    drop_after: bool,
}

/// How the bytes at a trailer mark compare with a trailer.
enum Match {
    /// Not a trailer: the mark is data.
    No,
    /// A trailer so far, cut by the end of the data.
    Partial,
    /// A whole trailer of `len` bytes.
    Yes { len: usize, code: i32 },
}

/// `\x1e<tag> <token> `: how a marker of the wrapper for `token` starts.
pub(crate) fn marker_prefix(tag: &str, token: &str) -> Vec<u8> {
    let mut prefix = vec![TRAILER_MARK];
    prefix.extend_from_slice(tag.as_bytes());
    prefix.push(b' ');
    prefix.extend_from_slice(token.as_bytes());
    prefix.push(b' ');
    prefix
}

impl TrailerScanner {
    fn new(token: &str) -> Self {
        TrailerScanner {
            prefix: marker_prefix(TRAILER_TAG, token),
            held: Vec::new(),
            code: None,
            drop_after: false,
        }
    }

    fn push(&mut self, data: &[u8], emit: &mut impl FnMut(&[u8])) {
        if self.held.is_empty() {
            self.scan(data, emit);
        } else {
            // Rare: a trailer (or look-alike) cut by a frame boundary.
            let mut joined = std::mem::take(&mut self.held);
            joined.extend_from_slice(data);
            self.scan(&joined, emit);
        }
    }

    fn scan(&mut self, buf: &[u8], emit: &mut impl FnMut(&[u8])) {
        if self.code.is_some() {
            // Past the trailer: what children left behind print is plain data.
            if !self.drop_after {
                emit_some(buf, emit);
            }
            return;
        }
        let mut from = 0;
        let mut search = 0;
        while let Some(off) = memchr::memchr(TRAILER_MARK, &buf[search..]) {
            let at = search + off;
            match self.match_at(&buf[at..]) {
                Match::No => search = at + 1,
                Match::Partial => {
                    emit_some(&buf[from..at], emit);
                    self.held = buf[at..].to_vec();
                    return;
                }
                Match::Yes { len, code } => {
                    emit_some(&buf[from..at], emit);
                    self.code = Some(code);
                    from = at + len;
                    if !self.drop_after {
                        emit_some(&buf[from..], emit);
                    }
                    return;
                }
            }
        }
        emit_some(&buf[from..], emit);
    }

    fn match_at(&self, s: &[u8]) -> Match {
        let prefix = self.prefix.as_slice();
        if s.len() < prefix.len() {
            return if prefix.starts_with(s) {
                Match::Partial
            } else {
                Match::No
            };
        }
        let Some(rest) = s.strip_prefix(prefix) else {
            return Match::No;
        };
        let sign = usize::from(rest.first() == Some(&b'-'));
        let digits = rest[sign..]
            .iter()
            .take(MAX_CODE_LEN + 1)
            .take_while(|b| b.is_ascii_digit())
            .count();
        let number = sign + digits;
        if number > MAX_CODE_LEN {
            return Match::No;
        }
        match &rest[number..] {
            [] | [TRAILER_MARK] => Match::Partial,
            [TRAILER_MARK, b'\n', ..] if digits > 0 => {
                let code = std::str::from_utf8(&rest[..number])
                    .ok()
                    .and_then(|text| text.parse::<i32>().ok());
                match code {
                    Some(code) => Match::Yes {
                        len: prefix.len() + number + 2,
                        code,
                    },
                    None => Match::No,
                }
            }
            _ => Match::No,
        }
    }

    /// End of the stream: a held look-alike was data after all.
    fn finish(&mut self, emit: &mut impl FnMut(&[u8])) {
        let held = std::mem::take(&mut self.held);
        emit_some(&held, emit);
    }
}

fn emit_some(bytes: &[u8], emit: &mut impl FnMut(&[u8])) {
    if !bytes.is_empty() {
        emit(bytes);
    }
}

/// One stream of a wrapped command's log (markers already removed), back to the command's
/// bytes.
#[derive(Debug)]
pub(crate) struct StreamDecoder {
    trailer: TrailerScanner,
    /// Base64 mode only.
    lines: Option<LineDecoder>,
    scratch: Vec<u8>,
}

impl StreamDecoder {
    /// A decoder for the stream of the command whose wrapper was built with `token`.
    pub(crate) fn new(token: &str, encoding: OutputEncoding) -> Self {
        StreamDecoder {
            trailer: TrailerScanner::new(token),
            lines: (encoding == OutputEncoding::Base64).then(LineDecoder::default),
            scratch: Vec::new(),
        }
    }

    /// From now on, what follows the trailer is dropped: on a resident shell's stream it is
    /// output the command's leftovers wrote before they were killed, part of no command.
    pub(crate) fn end_at_trailer(&mut self) {
        self.trailer.drop_after = true;
    }

    /// The exit code the trailer carried, once it has been seen.
    pub(crate) fn exit_code(&self) -> Option<i32> {
        self.trailer.code
    }

    /// Take log bytes of this stream; `emit` gets the command's bytes.
    pub(crate) fn push(&mut self, data: &[u8], emit: &mut impl FnMut(&[u8])) {
        let StreamDecoder {
            trailer,
            lines,
            scratch,
        } = self;
        match lines {
            None => trailer.push(data, emit),
            Some(lines) => {
                scratch.clear();
                trailer.push(data, &mut |b: &[u8]| lines.push(b, scratch));
                emit_some(scratch, emit);
            }
        }
    }

    /// End of the stream.
    pub(crate) fn finish(&mut self, emit: &mut impl FnMut(&[u8])) {
        let StreamDecoder {
            trailer,
            lines,
            scratch,
        } = self;
        match lines {
            None => trailer.finish(emit),
            Some(lines) => {
                scratch.clear();
                trailer.finish(&mut |b: &[u8]| lines.push(b, scratch));
                lines.finish(scratch);
                emit_some(scratch, emit);
            }
        }
    }
}

/// A whole stream at once: the command's bytes and the trailer's exit code, if it came.
pub(crate) fn decode_all(
    log: &[u8],
    token: &str,
    encoding: OutputEncoding,
) -> (Vec<u8>, Option<i32>) {
    let mut d = StreamDecoder::new(token, encoding);
    let mut out = Vec::with_capacity(log.len());
    let mut sink = |b: &[u8]| out.extend_from_slice(b);
    d.push(log, &mut sink);
    d.finish(&mut sink);
    (out, d.exit_code())
}

/// Turns one stream of base64 output (lines, in pieces of any size) back into bytes.
#[derive(Debug, Default)]
struct LineDecoder {
    partial: Vec<u8>,
}

impl LineDecoder {
    /// Decode every line `data` completes, appending the bytes to `out`.
    fn push(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let mut rest = data;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            if self.partial.is_empty() {
                decode_line(&rest[..nl], out);
            } else {
                self.partial.extend_from_slice(&rest[..nl]);
                let line = std::mem::take(&mut self.partial);
                decode_line(&line, out);
            }
            rest = &rest[nl + 1..];
        }
        self.partial.extend_from_slice(rest);
    }

    /// End of the stream: a last line without its newline.
    fn finish(&mut self, out: &mut Vec<u8>) {
        let line = std::mem::take(&mut self.partial);
        if !line.is_empty() {
            decode_line(&line, out);
        }
    }
}

fn decode_line(line: &[u8], out: &mut Vec<u8>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return;
    }
    match STANDARD.decode(line) {
        Ok(bytes) => out.extend_from_slice(&bytes),
        Err(_) => {
            // Not from the encoder: a diagnostic of the wrapper's own shell.
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn trailer(token: &str, code: i32) -> Vec<u8> {
        format!("\x1ews-exit {token} {code}\x1e\n").into_bytes()
    }

    /// Decode `log` fed in two pieces split at every offset; all must agree.
    fn every_split(log: &[u8], token: &str, encoding: OutputEncoding) -> (Vec<u8>, Option<i32>) {
        let whole = decode_all(log, token, encoding);
        for i in 0..=log.len() {
            let mut d = StreamDecoder::new(token, encoding);
            let mut out = Vec::new();
            let mut sink = |b: &[u8]| out.extend_from_slice(b);
            d.push(&log[..i], &mut sink);
            d.push(&log[i..], &mut sink);
            d.finish(&mut sink);
            assert_eq!((out, d.exit_code()), whole, "split at {i}");
        }
        whole
    }

    #[test]
    fn the_trailer_restores_a_missing_final_newline_exactly() {
        // What the daemon logs for `printf 'a\nb'`: the trailer joins the unfinished line.
        let mut log = b"a\nb".to_vec();
        log.extend(trailer("t1", 0));
        assert_eq!(
            every_split(&log, "t1", OutputEncoding::Plain),
            (b"a\nb".to_vec(), Some(0))
        );
        let mut log = b"a\n".to_vec();
        log.extend(trailer("t1", 7));
        assert_eq!(
            every_split(&log, "t1", OutputEncoding::Plain),
            (b"a\n".to_vec(), Some(7))
        );
        assert_eq!(
            every_split(&trailer("t1", 255), "t1", OutputEncoding::Plain),
            (Vec::new(), Some(255))
        );
    }

    #[test]
    fn look_alikes_and_late_output_are_data() {
        let mut log = Vec::new();
        log.extend_from_slice(b"\x1e\x1ews-exit t2\x1e");
        log.extend(trailer("other", 1)); // another command's token
        log.extend_from_slice(b"\x1ews-exit t2 12x\x1e\n\x1ews-exit t2 \x1e\n");
        log.extend_from_slice(b"\x1ews-exit t2 123456789012\x1e\n");
        let data = log.clone();
        log.extend(trailer("t2", -1));
        log.extend_from_slice(b"late \x1e");
        log.extend(trailer("t2", 3)); // only the first trailer counts
        let mut want = data;
        want.extend_from_slice(b"late \x1e");
        want.extend(trailer("t2", 3));
        assert_eq!(
            every_split(&log, "t2", OutputEncoding::Plain),
            (want, Some(-1))
        );
    }

    #[test]
    fn a_cut_off_trailer_is_data_and_no_code() {
        let log = b"out\x1ews-exit t3 4".to_vec();
        assert_eq!(every_split(&log, "t3", OutputEncoding::Plain), (log, None));
    }

    #[test]
    fn base64_lines_decode_around_the_trailer() {
        let mut log = Vec::new();
        for chunk in [&b"hello "[..], b"\x00\xff", b"world"] {
            log.extend_from_slice(STANDARD.encode(chunk).as_bytes());
            log.push(b'\n');
        }
        log.extend_from_slice(b"sh: 1: mkfifo: not found\n");
        log.extend(trailer("t4", 2));
        assert_eq!(
            every_split(&log, "t4", OutputEncoding::Base64),
            (
                b"hello \x00\xffworldsh: 1: mkfifo: not found\n".to_vec(),
                Some(2)
            )
        );
    }
}
