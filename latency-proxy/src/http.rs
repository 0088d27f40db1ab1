//! Counting HTTP/1.1 requests in a client's byte stream, chunk by chunk, without buffering
//! bodies: request heads are found at message boundaries (the previous message's
//! `Content-Length` or chunked body skipped), so a body that happens to contain `GET / HTTP/1.1`
//! is not counted.

/// A request head larger than this is not HTTP we understand; counting stops.
const MAX_HEAD: usize = 64 * 1024;
/// A chunk-size or trailer line longer than this ends counting likewise.
const MAX_LINE: usize = 4 * 1024;

/// What the start of a connection's client bytes says it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Not decided yet (no byte seen).
    Unknown,
    /// HTTP/1.x requests, counted.
    Http1,
    /// A TLS record (0x16): requests are not visible.
    Tls,
    /// Anything else (HTTP/2 prior knowledge, another protocol): requests are not visible.
    Other,
}

/// One request head parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Request {
    /// It asked to switch protocols (`Upgrade:` with `Connection: upgrade`), e.g. a WebSocket.
    pub(crate) upgrade: bool,
}

#[derive(Debug)]
enum State {
    Head(Vec<u8>),
    Body(u64),
    ChunkSize(Vec<u8>),
    ChunkData(u64),
    ChunkEnd(u64),
    Trailers(Vec<u8>),
    /// Upgraded, TLS, or not understood: nothing more is counted.
    Done,
}

/// The request counter of one connection's client → server direction.
#[derive(Debug)]
pub(crate) struct RequestCounter {
    kind: Kind,
    state: State,
}

impl RequestCounter {
    pub(crate) fn new() -> Self {
        RequestCounter {
            kind: Kind::Unknown,
            state: State::Head(Vec::new()),
        }
    }

    /// What the connection was recognised as so far.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// Feeds the next client bytes; calls `on_request` once per request head completed.
    pub(crate) fn feed(&mut self, mut data: &[u8], mut on_request: impl FnMut(Request)) {
        if self.kind == Kind::Unknown {
            let Some(&first) = data.first() else {
                return;
            };
            self.kind = if first == 0x16 {
                Kind::Tls
            } else if data.starts_with(b"PRI * HTTP/2") || !first.is_ascii() {
                Kind::Other
            } else {
                Kind::Http1
            };
            if self.kind != Kind::Http1 {
                self.state = State::Done;
            }
        }
        while !data.is_empty() {
            match &mut self.state {
                State::Done => return,
                State::Head(head) => {
                    // Blank lines between messages are allowed (RFC 9112 §2.2).
                    if head.is_empty() {
                        let skip = data
                            .iter()
                            .take_while(|b| **b == b'\r' || **b == b'\n')
                            .count();
                        data = &data[skip..];
                        if data.is_empty() {
                            return;
                        }
                    }
                    let before = head.len();
                    head.extend_from_slice(data);
                    let Some(end) = find_head_end(head, before.saturating_sub(3)) else {
                        if head.len() > MAX_HEAD {
                            self.state = State::Done;
                        }
                        return;
                    };
                    data = &data[end - before..];
                    let parsed = parse_head(&head[..end]);
                    match parsed {
                        Some((request, framing)) => {
                            on_request(request);
                            self.state = if request.upgrade {
                                State::Done
                            } else {
                                match framing {
                                    Framing::Length(0) => State::Head(Vec::new()),
                                    Framing::Length(n) => State::Body(n),
                                    Framing::Chunked => State::ChunkSize(Vec::new()),
                                }
                            };
                        }
                        None => self.state = State::Done,
                    }
                }
                State::Body(remaining) => {
                    if skip(remaining, &mut data) {
                        self.state = State::Head(Vec::new());
                    }
                }
                State::ChunkSize(line) => {
                    let Some(line_end) = take_line(line, &mut data) else {
                        if line.len() > MAX_LINE {
                            self.state = State::Done;
                        }
                        return;
                    };
                    let text = String::from_utf8_lossy(&line[..line_end]);
                    let size = text.split(';').next().unwrap_or("").trim();
                    self.state = match u64::from_str_radix(size, 16) {
                        Ok(0) => State::Trailers(Vec::new()),
                        Ok(n) => State::ChunkData(n),
                        Err(_) => State::Done,
                    };
                }
                State::ChunkData(remaining) => {
                    if skip(remaining, &mut data) {
                        // The CRLF after a chunk's data.
                        self.state = State::ChunkEnd(2);
                    }
                }
                State::ChunkEnd(left) => {
                    if skip(left, &mut data) {
                        self.state = State::ChunkSize(Vec::new());
                    }
                }
                State::Trailers(line) => {
                    let Some(line_end) = take_line(line, &mut data) else {
                        if line.len() > MAX_LINE {
                            self.state = State::Done;
                        }
                        return;
                    };
                    self.state = if line_end == 0 {
                        State::Head(Vec::new())
                    } else {
                        State::Trailers(Vec::new())
                    };
                }
            }
        }
    }
}

/// How a request's body is delimited.
enum Framing {
    Length(u64),
    Chunked,
}

/// Drops up to `remaining` bytes from the front of `data`; whether none remain to drop.
fn skip(remaining: &mut u64, data: &mut &[u8]) -> bool {
    let take = usize::try_from(*remaining)
        .unwrap_or(usize::MAX)
        .min(data.len());
    *remaining -= take as u64;
    *data = &data[take..];
    *remaining == 0
}

/// The index just past `\r\n\r\n` in `buf`, searching from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| from + p + 4)
}

/// Moves bytes from `data` into `line` up to and including a `\n`; returns the line's length
/// without its line ending once complete.
fn take_line(line: &mut Vec<u8>, data: &mut &[u8]) -> Option<usize> {
    match data.iter().position(|b| *b == b'\n') {
        Some(nl) => {
            line.extend_from_slice(&data[..=nl]);
            *data = &data[nl + 1..];
            let mut len = line.len() - 1;
            if len > 0 && line[len - 1] == b'\r' {
                len -= 1;
            }
            Some(len)
        }
        None => {
            line.extend_from_slice(data);
            *data = &[];
            None
        }
    }
}

/// Parses a request head; `None` when it is not an HTTP/1.x request.
fn parse_head(head: &[u8]) -> Option<(Request, Framing)> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next()?;
    let mut parts = request_line.split(' ');
    let (method, _target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if method.is_empty() || !version.starts_with("HTTP/1.") {
        return None;
    }
    let mut length = 0u64;
    let mut chunked = false;
    let mut upgrade_header = false;
    let mut connection_upgrade = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade_header = true;
        } else if name.eq_ignore_ascii_case("connection") {
            connection_upgrade |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
        }
    }
    let framing = if chunked {
        Framing::Chunked
    } else {
        Framing::Length(length)
    };
    Some((
        Request {
            upgrade: upgrade_header && connection_upgrade,
        },
        framing,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(chunks: &[&[u8]]) -> (usize, usize, Kind) {
        let mut counter = RequestCounter::new();
        let (mut requests, mut upgrades) = (0, 0);
        for chunk in chunks {
            counter.feed(chunk, |r| {
                requests += 1;
                upgrades += usize::from(r.upgrade);
            });
        }
        (requests, upgrades, counter.kind())
    }

    #[test]
    fn bodies_are_skipped_whatever_they_hold() {
        let body = b"GET /not-a-request HTTP/1.1\r\n\r\n";
        let mut stream = format!(
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        stream.extend_from_slice(body);
        stream.extend_from_slice(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(count(&[&stream]), (2, 0, Kind::Http1));
        // The same bytes one at a time: boundaries anywhere.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(count(&bytes), (2, 0, Kind::Http1));
    }

    #[test]
    fn chunked_bodies_and_trailers() {
        let stream = b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            5\r\nGET /\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n\
            GET /next HTTP/1.1\r\n\r\n";
        assert_eq!(count(&[stream]), (2, 0, Kind::Http1));
        let bytes: Vec<&[u8]> = stream.chunks(3).collect();
        assert_eq!(count(&bytes), (2, 0, Kind::Http1));
    }

    #[test]
    fn a_websocket_upgrade_counts_and_ends_counting() {
        let stream =
            b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n\
            GET /inside-frames HTTP/1.1\r\n\r\n";
        assert_eq!(count(&[stream]), (1, 1, Kind::Http1));
    }

    #[test]
    fn tls_and_http2_are_opaque() {
        assert_eq!(count(&[&[0x16, 3, 1, 0, 5]]), (0, 0, Kind::Tls));
        assert_eq!(
            count(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]),
            (0, 0, Kind::Other)
        );
        // Text that is not a request line: nothing counted, and counting stops.
        assert_eq!(
            count(&[b"SSH-2.0-x\r\n\r\nGET / HTTP/1.1\r\n\r\n"]),
            (0, 0, Kind::Http1)
        );
    }

    #[test]
    fn a_bad_content_length_stops_counting() {
        let stream = b"POST / HTTP/1.1\r\nContent-Length: lots\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(count(&[stream]), (0, 0, Kind::Http1));
    }
}
