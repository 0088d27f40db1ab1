//! What `GET /files/download` inherits from Go's `http.ServeFile`, which the daemon hands the
//! file to: `Last-Modified` and `Accept-Ranges`, the conditional headers (`If-Match`,
//! `If-Unmodified-Since`, `If-None-Match`, `If-Modified-Since`, `If-Range`) and byte ranges
//! (one range as a 206 with `Content-Range`, several as `multipart/byteranges`, none that
//! overlap the file as a 416). The daemon sets no `ETag`, so entity-tag conditions only ever
//! match `*`.

use std::io::SeekFrom;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use crate::error::{go_http_error, verbatim};

/// Buffer between the task that reads the ranges and the response body.
const PIPE_BUFFER: usize = 64 * 1024;

/// One byte range: `start` and `length`, within the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    pub(crate) start: u64,
    pub(crate) length: u64,
}

/// Why a `Range` header is refused, with the text Go's `http.Error` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeError {
    /// Malformed.
    Invalid,
    /// Well-formed, but every range starts past the end of the file.
    NoOverlap,
}

impl RangeError {
    fn text(self) -> &'static str {
        match self {
            RangeError::Invalid => "invalid range\n",
            RangeError::NoOverlap => "invalid range: failed to overlap\n",
        }
    }
}

/// Parses a `Range` header against a file of `size` bytes as Go's `parseRange` does: only the
/// `bytes` unit, empty items skipped, an end past the file clipped, a suffix longer than the
/// file taken as the whole file, ranges starting past the end dropped (all of them dropped is
/// [`RangeError::NoOverlap`]).
pub(crate) fn parse_range(header: &str, size: u64) -> Result<Vec<ByteRange>, RangeError> {
    let spec = header.strip_prefix("bytes=").ok_or(RangeError::Invalid)?;
    let mut ranges = Vec::new();
    let mut no_overlap = false;
    for item in spec.split(',') {
        let item = item.trim_matches([' ', '\t']);
        if item.is_empty() {
            continue;
        }
        let (start, end) = item.split_once('-').ok_or(RangeError::Invalid)?;
        let (start, end) = (
            start.trim_matches([' ', '\t']),
            end.trim_matches([' ', '\t']),
        );
        if start.is_empty() {
            // A suffix: the last `end` bytes.
            if end.is_empty() || end.starts_with('-') {
                return Err(RangeError::Invalid);
            }
            let n = go_int(end).ok_or(RangeError::Invalid)?.min(size);
            ranges.push(ByteRange {
                start: size - n,
                length: n,
            });
            continue;
        }
        let first = go_int(start).ok_or(RangeError::Invalid)?;
        if first >= size {
            // Go drops a range that starts at or past the end.
            no_overlap = true;
            continue;
        }
        let length = if end.is_empty() {
            size - first
        } else {
            let last = go_int(end).ok_or(RangeError::Invalid)?;
            if first > last {
                return Err(RangeError::Invalid);
            }
            last.min(size - 1) - first + 1
        };
        ranges.push(ByteRange {
            start: first,
            length,
        });
    }
    if no_overlap && ranges.is_empty() {
        return Err(RangeError::NoOverlap);
    }
    Ok(ranges)
}

/// A non-negative decimal as Go's `strconv.ParseInt(s, 10, 64)` takes it (a `+` sign allowed,
/// a negative number refused, as `parseRange` refuses it).
fn go_int(s: &str) -> Option<u64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    (n <= i64::MAX as u64).then_some(n)
}

/// Whole seconds since the epoch: HTTP dates carry no fraction, so Go compares truncated times.
fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A header's HTTP date (IMF-fixdate, RFC 850 or asctime, as Go's `http.ParseTime`).
fn header_date(headers: &HeaderMap, name: header::HeaderName) -> Option<u64> {
    let value = headers.get(name)?.to_str().ok()?;
    httpdate::parse_http_date(value).ok().map(seconds)
}

/// Whether a list of entity tags (`If-Match`, `If-None-Match`) names `*`, the only tag that
/// matches a response without an `ETag`.
fn names_any(headers: &HeaderMap, name: header::HeaderName) -> Option<bool> {
    let value = headers.get(name)?.to_str().unwrap_or("");
    // Go reads an empty header as an absent one.
    (!value.is_empty()).then(|| value.split(',').any(|tag| tag.trim() == "*"))
}

/// What the request's conditions decide before any byte is sent.
enum Precondition {
    /// Serve; `honour_range` says whether `Range` still applies (`If-Range` may void it).
    Serve { honour_range: bool },
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// Go's `checkPreconditions` for a `GET` of a file last modified at `modified` (no `ETag`).
/// Date conditions are skipped for a file modified at the epoch, Go's "zero time".
fn check_preconditions(headers: &HeaderMap, modified: u64) -> Precondition {
    let dated = |name| header_date(headers, name).filter(|_| modified > 0);
    match names_any(headers, header::IF_MATCH) {
        Some(false) => return Precondition::Failed,
        Some(true) => {}
        None => {
            if dated(header::IF_UNMODIFIED_SINCE).is_some_and(|t| modified > t) {
                return Precondition::Failed;
            }
        }
    }
    match names_any(headers, header::IF_NONE_MATCH) {
        Some(true) => return Precondition::NotModified,
        // A tag list without `*` matches nothing here, and it overrides `If-Modified-Since`.
        Some(false) => {}
        None => {
            if dated(header::IF_MODIFIED_SINCE).is_some_and(|t| modified <= t) {
                return Precondition::NotModified;
            }
        }
    }
    let honour_range = match headers
        .get(header::IF_RANGE)
        .map(|v| v.to_str().unwrap_or(""))
    {
        None | Some("") => true,
        // An entity tag never matches (no `ETag`); a date must be the modification time.
        Some(v) if v.starts_with('"') || v.starts_with("W/") => false,
        Some(v) => httpdate::parse_http_date(v).is_ok_and(|t| seconds(t) == modified),
    };
    Precondition::Serve { honour_range }
}

/// Answers a `GET` for `file` (`size` bytes, modified at `modified`) as `http.ServeFile` does,
/// on top of the headers the handler set (`headers`, which carry the `Content-Type`).
pub(crate) async fn serve_file(
    request: &HeaderMap,
    mut headers: HeaderMap,
    mut file: tokio::fs::File,
    size: u64,
    modified: SystemTime,
) -> Response {
    let modified_secs = seconds(modified);
    // Go leaves `Last-Modified` out for the zero time; a file's mtime at the epoch is the
    // nearest thing a Unix file system has.
    if modified_secs > 0 {
        let at = UNIX_EPOCH + Duration::from_secs(modified_secs);
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(at)) {
            headers.insert(header::LAST_MODIFIED, v);
        }
    }
    let honour_range = match check_preconditions(request, modified_secs) {
        Precondition::Serve { honour_range } => honour_range,
        Precondition::NotModified => {
            headers.remove(header::CONTENT_TYPE);
            headers.remove(header::CONTENT_LENGTH);
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        Precondition::Failed => {
            return verbatim((StatusCode::PRECONDITION_FAILED, headers).into_response());
        }
    };
    let range_header = request
        .get(header::RANGE)
        .filter(|_| honour_range)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mut ranges = match range_header.as_deref().map(|h| parse_range(h, size)) {
        None => Vec::new(),
        Some(Ok(ranges)) => ranges,
        Some(Err(e)) => {
            // Go 1.23 and later drop what described the file from an error's headers.
            headers.remove(header::CACHE_CONTROL);
            headers.remove(header::LAST_MODIFIED);
            if e == RangeError::NoOverlap
                && let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}"))
            {
                headers.insert(header::CONTENT_RANGE, v);
            }
            return go_http_error(StatusCode::RANGE_NOT_SATISFIABLE, headers, e.text());
        }
    };
    // Ranges that add up to more than the file are served as the whole file, which is cheaper
    // for both ends (Go's rule against amplification).
    if ranges.iter().map(|r| r.length).sum::<u64>() > size {
        ranges.clear();
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    match ranges.as_slice() {
        [] => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            let body = Body::from_stream(ReaderStream::new(file.take(size)));
            (StatusCode::OK, headers, body).into_response()
        }
        [one] => {
            if let Ok(v) = HeaderValue::from_str(&content_range(*one, size)) {
                headers.insert(header::CONTENT_RANGE, v);
            }
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(one.length));
            if let Err(e) = file.seek(SeekFrom::Start(one.start)).await {
                tracing::warn!(error = %e, "cannot seek the file to download");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            let body = Body::from_stream(ReaderStream::new(file.take(one.length)));
            (StatusCode::PARTIAL_CONTENT, headers, body).into_response()
        }
        many => {
            let part_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_string();
            let boundary = random_boundary();
            let parts: Vec<(Vec<u8>, ByteRange)> = many
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    // Go's multipart writer: CRLF before every delimiter but the first, part
                    // headers in sorted order.
                    let lead = if i == 0 { "" } else { "\r\n" };
                    let head = format!(
                        "{lead}--{boundary}\r\nContent-Range: {}\r\nContent-Type: {part_type}\r\n\r\n",
                        content_range(*r, size)
                    );
                    (head.into_bytes(), *r)
                })
                .collect();
            let closing = format!("\r\n--{boundary}--\r\n").into_bytes();
            let total = parts
                .iter()
                .map(|(head, r)| head.len() as u64 + r.length)
                .sum::<u64>()
                + closing.len() as u64;
            if let Ok(v) =
                HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}"))
            {
                headers.insert(header::CONTENT_TYPE, v);
            }
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
            let (mut writer, reader) = tokio::io::duplex(PIPE_BUFFER);
            tokio::spawn(async move {
                let written: std::io::Result<()> = async {
                    for (head, r) in parts {
                        writer.write_all(&head).await?;
                        file.seek(SeekFrom::Start(r.start)).await?;
                        let copied =
                            tokio::io::copy(&mut (&mut file).take(r.length), &mut writer).await?;
                        if copied != r.length {
                            // The file shrank: end the body short so the client sees it.
                            return Err(std::io::ErrorKind::UnexpectedEof.into());
                        }
                    }
                    writer.write_all(&closing).await?;
                    writer.shutdown().await
                }
                .await;
                if let Err(e) = written {
                    tracing::debug!(error = %e, "multi-range download ended early");
                }
            });
            let body = Body::from_stream(ReaderStream::new(reader));
            (StatusCode::PARTIAL_CONTENT, headers, body).into_response()
        }
    }
}

/// `bytes first-last/size`; an empty suffix range (`bytes=-0`) reads `bytes size-(size-1)/size`
/// in Go, so the last byte is computed signed.
fn content_range(r: ByteRange, size: u64) -> String {
    let last = i128::from(r.start) + i128::from(r.length) - 1;
    format!("bytes {}-{last}/{size}", r.start)
}

/// 60 hex digits, as Go's multipart writer picks a boundary.
fn random_boundary() -> String {
    let mut bytes = [0u8; 30];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, length: u64) -> ByteRange {
        ByteRange { start, length }
    }

    #[test]
    fn ranges_parse_as_go_parses_them() {
        assert_eq!(parse_range("bytes=0-4", 10), Ok(vec![r(0, 5)]));
        assert_eq!(parse_range("bytes=5-", 10), Ok(vec![r(5, 5)]));
        assert_eq!(parse_range("bytes=-3", 10), Ok(vec![r(7, 3)]));
        // A suffix longer than the file is the whole file; an end past it is clipped.
        assert_eq!(parse_range("bytes=-30", 10), Ok(vec![r(0, 10)]));
        assert_eq!(parse_range("bytes=8-100", 10), Ok(vec![r(8, 2)]));
        assert_eq!(
            parse_range("bytes= 0-1 ,, 4-5", 10),
            Ok(vec![r(0, 2), r(4, 2)])
        );
        // Ranges past the end are dropped; only when none is left is it a 416.
        assert_eq!(parse_range("bytes=0-1,20-30", 10), Ok(vec![r(0, 2)]));
        assert_eq!(parse_range("bytes=10-", 10), Err(RangeError::NoOverlap));
        assert_eq!(parse_range("bytes=", 10), Ok(vec![]));
        for bad in [
            "items=0-1",
            "bytes=5",
            "bytes=5-3",
            "bytes=-",
            "bytes=--3",
            "bytes=a-3",
            "bytes=-1-2",
        ] {
            assert_eq!(parse_range(bad, 10), Err(RangeError::Invalid), "{bad}");
        }
        assert_eq!(parse_range("bytes=-0", 10), Ok(vec![r(10, 0)]));
    }

    #[test]
    fn conditions_follow_go_without_an_etag() {
        let mut h = HeaderMap::new();
        let at = 1_700_000_000;
        let date = |s: u64| {
            HeaderValue::from_str(&httpdate::fmt_http_date(
                UNIX_EPOCH + Duration::from_secs(s),
            ))
            .unwrap_or(HeaderValue::from_static(""))
        };
        assert!(matches!(
            check_preconditions(&h, at),
            Precondition::Serve { honour_range: true }
        ));
        h.insert(header::IF_MODIFIED_SINCE, date(at));
        assert!(matches!(
            check_preconditions(&h, at),
            Precondition::NotModified
        ));
        h.insert(header::IF_MODIFIED_SINCE, date(at - 1));
        assert!(matches!(
            check_preconditions(&h, at),
            Precondition::Serve { .. }
        ));
        // Any tag list overrides the date; only `*` matches.
        h.insert(header::IF_MODIFIED_SINCE, date(at));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\""));
        assert!(matches!(
            check_preconditions(&h, at),
            Precondition::Serve { .. }
        ));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches!(
            check_preconditions(&h, at),
            Precondition::NotModified
        ));
        let mut h = HeaderMap::new();
        h.insert(header::IF_UNMODIFIED_SINCE, date(at - 1));
        assert!(matches!(check_preconditions(&h, at), Precondition::Failed));
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert!(matches!(
            check_preconditions(&h, at),
            Precondition::Serve { .. }
        ));
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"x\""));
        assert!(matches!(check_preconditions(&h, at), Precondition::Failed));
        let mut h = HeaderMap::new();
        h.insert(header::IF_RANGE, date(at));
        assert!(matches!(
            check_preconditions(&h, at),
            Precondition::Serve { honour_range: true }
        ));
        h.insert(header::IF_RANGE, date(at + 5));
        assert!(matches!(
            check_preconditions(&h, at),
            Precondition::Serve {
                honour_range: false
            }
        ));
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"x\""));
        assert!(matches!(
            check_preconditions(&h, at),
            Precondition::Serve {
                honour_range: false
            }
        ));
    }
}
