//! Output plumbing shared by providers: a head-and-tail capped buffer, a streaming UTF-8
//! decoder that never splits a character, and a byte-offset ring for background processes.

use std::collections::VecDeque;

/// Retains at most `limit` bytes of a stream: the first `limit / 2` and the last `limit - limit / 2`.
/// Everything in between is dropped and counted, exactly. Appending never blocks or fails, so a
/// reader can keep draining a pipe after the cap is reached.
///
/// ```
/// use workspace_core::output::CappedBuffer;
/// let mut b = CappedBuffer::new(4);
/// b.push(b"abcdefgh");
/// assert_eq!(b.dropped(), 4);
/// assert_eq!(b.to_string_lossy(), "abgh");
/// ```
#[derive(Debug, Clone)]
pub struct CappedBuffer {
    head_cap: usize,
    tail_cap: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    dropped: u64,
}

impl CappedBuffer {
    /// A buffer retaining at most `limit` bytes (at least 1).
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        let head_cap = limit / 2;
        CappedBuffer {
            head_cap,
            tail_cap: limit - head_cap,
            head: Vec::new(),
            tail: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Append a chunk.
    pub fn push(&mut self, mut data: &[u8]) {
        if self.head.len() < self.head_cap {
            let n = (self.head_cap - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        if data.is_empty() {
            return;
        }
        if data.len() >= self.tail_cap {
            self.dropped += (self.tail.len() + data.len() - self.tail_cap) as u64;
            self.tail.clear();
            self.tail.extend(&data[data.len() - self.tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + data.len()).saturating_sub(self.tail_cap);
        if overflow > 0 {
            self.tail.drain(..overflow);
            self.dropped += overflow as u64;
        }
        self.tail.extend(data);
    }

    /// Bytes dropped from the middle so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes retained.
    pub fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// Nothing retained.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The retained bytes, head then tail.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        v.extend_from_slice(&self.head);
        let (a, b) = self.tail.as_slices();
        v.extend_from_slice(a);
        v.extend_from_slice(b);
        v
    }

    /// The retained bytes decoded as UTF-8, invalid sequences replaced.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.to_bytes()).into_owned()
    }
}

/// Decodes a byte stream into UTF-8 text chunk by chunk, holding back an incomplete character at
/// the end of a chunk until the next one completes it. Invalid bytes become U+FFFD.
///
/// ```
/// use workspace_core::output::Utf8Decoder;
/// let mut d = Utf8Decoder::default();
/// let snow = "☃".as_bytes();
/// assert_eq!(d.decode(&snow[..1]), "");
/// assert_eq!(d.decode(&snow[1..]), "☃");
/// assert_eq!(d.finish(), "");
/// ```
#[derive(Debug, Default, Clone)]
pub struct Utf8Decoder {
    pending: Vec<u8>,
}

impl Utf8Decoder {
    /// Decode the next chunk; returns the text that is complete so far.
    pub fn decode(&mut self, chunk: &[u8]) -> String {
        let mut out = String::with_capacity(chunk.len() + self.pending.len());
        self.decode_into(chunk, &mut out);
        out
    }

    /// Decode the next chunk, appending the text that is complete so far to `out`.
    ///
    /// Each byte is validated once (with SIMD where the CPU has it): an incomplete character
    /// at the end is set aside before validation rather than found by a failed one, so the
    /// common chunk, valid but cut anywhere, takes a single pass.
    pub fn decode_into(&mut self, mut chunk: &[u8], out: &mut String) {
        // Complete a character cut by the previous chunk, a byte at a time (at most three).
        while !self.pending.is_empty() {
            let Some((&first, rest)) = chunk.split_first() else {
                return;
            };
            self.pending.push(first);
            chunk = rest;
            match simdutf8::compat::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                }
                Err(e) if e.error_len().is_none() => {}
                Err(_) => {
                    // Not a character after all: decode what was held as ordinary bytes (it
                    // may leave a new incomplete start behind, handled on the next turn).
                    let held = std::mem::take(&mut self.pending);
                    self.decode_complete(&held, out);
                }
            }
        }
        self.decode_complete(chunk, out);
    }

    /// Decode `data`, keeping an incomplete character at its end in `pending`.
    fn decode_complete(&mut self, data: &[u8], out: &mut String) {
        let (body, tail) = data.split_at(data.len() - incomplete_tail(data));
        let mut rest = body;
        loop {
            match simdutf8::compat::from_utf8(rest) {
                Ok(text) => {
                    out.push_str(text);
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // `valid` was just checked; the fallback is unreachable.
                    out.push_str(simdutf8::basic::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            rest = &after[bad..];
                        }
                        None => {
                            // A character cut short by the lead byte set aside as the tail:
                            // invalid, as lossy decoding has it (one U+FFFD).
                            out.push('\u{FFFD}');
                            break;
                        }
                    }
                }
            }
        }
        self.pending.extend_from_slice(tail);
    }

    /// Flush at end of stream: an incomplete trailing character becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        if self.pending.is_empty() {
            String::new()
        } else {
            self.pending.clear();
            "\u{FFFD}".to_string()
        }
    }
}

/// How many bytes at the end of `data` start a character that `data` does not complete: the
/// last lead byte within three bytes of the end, if its sequence runs past the end. Invalid
/// bytes are left to validation.
fn incomplete_tail(data: &[u8]) -> usize {
    for back in 1..=data.len().min(3) {
        let b = data[data.len() - back];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back for its lead
        }
        let len = match b {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return 0,
        };
        return if len > back { back } else { 0 };
    }
    0
}

/// Keeps the newest `capacity` bytes of a stream and knows the absolute offset of each, so that a
/// reader can ask for "everything since byte N" and learn how much it missed.
#[derive(Debug, Clone)]
pub struct OffsetRing {
    capacity: usize,
    data: VecDeque<u8>,
    /// Absolute offset of `data[0]`.
    start: u64,
}

/// What [`OffsetRing::since`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingSlice {
    /// The bytes from the effective start offset to the end.
    pub data: Vec<u8>,
    /// The absolute offset the data starts at (greater than asked when older bytes were dropped).
    pub from: u64,
    /// The absolute offset after the last byte: pass it as the next `since`.
    pub next: u64,
    /// Bytes between the asked offset and `from` that are no longer retained.
    pub missed: u64,
}

impl OffsetRing {
    /// A ring keeping the newest `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        OffsetRing {
            capacity: capacity.max(1),
            data: VecDeque::new(),
            start: 0,
        }
    }

    /// Append.
    pub fn push(&mut self, chunk: &[u8]) {
        self.data.extend(chunk);
        let over = self.data.len().saturating_sub(self.capacity);
        if over > 0 {
            self.data.drain(..over);
            self.start += over as u64;
        }
    }

    /// Total bytes ever pushed.
    pub fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }

    /// Everything retained from absolute offset `since` on.
    pub fn since(&self, since: u64) -> RingSlice {
        let end = self.end();
        let from = since.clamp(self.start, end);
        let skip = usize::try_from(from - self.start).unwrap_or(usize::MAX);
        // Two slice copies, not a byte-by-byte walk: followers re-read megabytes at a time.
        let (front, back) = self.data.as_slices();
        let mut data = Vec::with_capacity(self.data.len().saturating_sub(skip));
        if skip < front.len() {
            data.extend_from_slice(&front[skip..]);
            data.extend_from_slice(back);
        } else {
            data.extend_from_slice(&back[(skip - front.len()).min(back.len())..]);
        }
        RingSlice {
            data,
            from,
            next: end,
            missed: from.saturating_sub(since.min(end)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_counts_exactly() {
        let mut b = CappedBuffer::new(10);
        let mut total = 0u64;
        for i in 0..1000u32 {
            let chunk = vec![b'a' + (i % 26) as u8; (i % 7) as usize];
            total += chunk.len() as u64;
            b.push(&chunk);
        }
        assert_eq!(b.len(), 10);
        assert_eq!(b.dropped(), total - 10);
    }

    #[test]
    fn capped_keeps_head_and_tail() {
        let mut b = CappedBuffer::new(6);
        for c in b"0123456789".chunks(3) {
            b.push(c);
        }
        assert_eq!(b.to_string_lossy(), "012789");
        assert_eq!(b.dropped(), 4);
    }

    #[test]
    fn decoder_handles_every_split() {
        let text = "aé☃𝄞z";
        let bytes = text.as_bytes();
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let mut d = Utf8Decoder::default();
                let mut s = d.decode(&bytes[..i]);
                s += &d.decode(&bytes[i..j]);
                s += &d.decode(&bytes[j..]);
                s += &d.finish();
                assert_eq!(s, text);
            }
        }
    }

    #[test]
    fn decoder_matches_lossy_decoding_at_every_split() {
        // Valid text, stray continuation bytes, truncated and overlong sequences, surrogates.
        let bytes: &[u8] = b"a\xc3\xa9\xe2\x98\x83\xf0\x9d\x84\x9e\x80z\xe2\x98\xf0\x9d\xc0\xaf\xed\xa0\x80\xff\xe2\x98\xf0\x9d\x84\x9e\xe2";
        let want = String::from_utf8_lossy(bytes);
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let mut d = Utf8Decoder::default();
                let mut s = String::new();
                d.decode_into(&bytes[..i], &mut s);
                d.decode_into(&bytes[i..j], &mut s);
                s += &d.decode(&bytes[j..]);
                s += &d.finish();
                assert_eq!(s, want, "split at {i} and {j}");
            }
        }
    }

    #[test]
    fn decoder_replaces_invalid() {
        let mut d = Utf8Decoder::default();
        let mut s = d.decode(b"a\xffb\xe2\x98");
        s += &d.finish();
        assert_eq!(s, "a\u{FFFD}b\u{FFFD}");
    }

    #[test]
    fn ring_offsets() {
        let mut r = OffsetRing::new(4);
        r.push(b"abcdef");
        let s = r.since(0);
        assert_eq!(s.data, b"cdef");
        assert_eq!((s.from, s.next, s.missed), (2, 6, 2));
        let s = r.since(5);
        assert_eq!(s.data, b"f");
        let s = r.since(100);
        assert!(s.data.is_empty());
        assert_eq!(s.next, 6);
    }

    #[test]
    fn ring_slices_match_the_stream_however_it_wrapped() {
        // Odd chunk sizes make the deque wrap at every position; each `since` must equal the
        // tail of everything pushed.
        let mut r = OffsetRing::new(7);
        let mut all = Vec::new();
        for i in 0..200u32 {
            let chunk: Vec<u8> = (0..(i % 5)).map(|k| (i * 7 + k) as u8).collect();
            all.extend_from_slice(&chunk);
            r.push(&chunk);
            let end = all.len() as u64;
            let start = end.saturating_sub(7);
            for since in start.saturating_sub(2)..=end + 1 {
                let s = r.since(since);
                let from = since.clamp(start, end);
                assert_eq!(s.data, &all[from as usize..], "push {i}, since {since}");
                assert_eq!((s.from, s.next), (from, end));
                assert_eq!(s.missed, from.saturating_sub(since.min(end)));
            }
        }
    }
}
