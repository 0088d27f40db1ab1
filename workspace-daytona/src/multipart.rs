//! Reading the daemon's `multipart/form-data` answer to `POST /files/bulk-download`.
//!
//! One part per requested path: a `file` part whose `filename` is the requested path byte for
//! byte, or an `error` part carrying the daemon's JSON error for that path. Parts are matched to
//! requests by filename (as the official SDKs do), streamed to a [`PartSink`] chunk by chunk, and
//! every request ends up either delivered or with a typed error; a path the answer never
//! mentions gets [`DaytonaError::MissingFile`].

use std::collections::HashMap;
use std::future::Future;

use bytes::{Bytes, BytesMut};
use futures::Stream;

use crate::error::DaytonaError;

/// Error parts larger than this are cut (they are small JSON documents).
const MAX_ERROR_PART: usize = 64 * 1024;

/// The `name` and `filename` of a part's `Content-Disposition`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentDisposition {
    /// The form field name (`file` or `error` here).
    pub name: Option<String>,
    /// The file name: `filename*` (RFC 5987, UTF-8) when present and decodable, else `filename`.
    pub filename: Option<String>,
}

/// Parses a `Content-Disposition` header value (`form-data; name="file"; filename="/a"; …`).
///
/// Quoted strings may contain `;` and backslash escapes; unquoted values end at `;`. Never fails:
/// what it cannot read is left `None`.
///
/// ```
/// use workspace_daytona::multipart::parse_content_disposition;
/// let cd = parse_content_disposition(br#"form-data; name="file"; filename="/tmp/a \"q\".txt""#);
/// assert_eq!(cd.name.as_deref(), Some("file"));
/// assert_eq!(cd.filename.as_deref(), Some(r#"/tmp/a "q".txt"#));
/// let cd = parse_content_disposition(b"form-data; filename*=utf-8''%E2%98%83.txt; name=error");
/// assert_eq!(cd.filename.as_deref(), Some("☃.txt"));
/// ```
pub fn parse_content_disposition(value: &[u8]) -> ContentDisposition {
    let mut out = ContentDisposition::default();
    let mut plain_filename = None;
    let mut ext_filename = None;
    let mut i = 0;
    // Skip the disposition type.
    while i < value.len() && value[i] != b';' {
        i += 1;
    }
    while i < value.len() {
        // At a ';'.
        i += 1;
        while i < value.len() && value[i].is_ascii_whitespace() {
            i += 1;
        }
        let key_start = i;
        while i < value.len() && value[i] != b'=' && value[i] != b';' {
            i += 1;
        }
        let key = String::from_utf8_lossy(&value[key_start..i])
            .trim()
            .to_ascii_lowercase();
        if i >= value.len() || value[i] == b';' {
            continue;
        }
        i += 1; // '='
        while i < value.len() && value[i].is_ascii_whitespace() {
            i += 1;
        }
        let raw: Vec<u8> = if i < value.len() && value[i] == b'"' {
            i += 1;
            let mut v = Vec::new();
            while i < value.len() && value[i] != b'"' {
                if value[i] == b'\\' && i + 1 < value.len() {
                    i += 1;
                }
                v.push(value[i]);
                i += 1;
            }
            // Closing quote (or end of input for an unterminated string).
            i += 1;
            while i < value.len() && value[i] != b';' {
                i += 1;
            }
            v
        } else {
            let start = i;
            while i < value.len() && value[i] != b';' {
                i += 1;
            }
            value[start..i].trim_ascii_end().to_vec()
        };
        match key.as_str() {
            "name" => out.name = Some(String::from_utf8_lossy(&raw).into_owned()),
            "filename" => plain_filename = Some(String::from_utf8_lossy(&raw).into_owned()),
            "filename*" => ext_filename = decode_ext_value(&raw),
            _ => {}
        }
    }
    out.filename = ext_filename.or(plain_filename);
    out
}

/// Decodes an RFC 5987 `charset'lang'pct-encoded` value; only UTF-8 (and ASCII) are accepted.
fn decode_ext_value(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut parts = text.splitn(3, '\'');
    let charset = parts.next()?;
    let _lang = parts.next()?;
    let encoded = parts.next()?;
    if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("us-ascii") {
        return None;
    }
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Where downloaded file parts go. `index` is the position of the path in the request.
pub trait PartSink {
    /// A file part for request `index` starts.
    fn begin(&mut self, index: usize) -> impl Future<Output = Result<(), DaytonaError>> + Send;
    /// The next bytes of request `index`.
    fn chunk(
        &mut self,
        index: usize,
        bytes: Bytes,
    ) -> impl Future<Output = Result<(), DaytonaError>> + Send;
    /// Request `index` is complete.
    fn end(&mut self, index: usize) -> impl Future<Output = Result<(), DaytonaError>> + Send;
}

/// Collects every file in memory.
#[derive(Debug, Default)]
pub struct MemorySink {
    /// One buffer per request, filled as parts arrive.
    pub files: Vec<BytesMut>,
}

impl MemorySink {
    /// A sink for `n` requested paths.
    pub fn new(n: usize) -> Self {
        MemorySink {
            files: (0..n).map(|_| BytesMut::new()).collect(),
        }
    }
}

impl PartSink for MemorySink {
    async fn begin(&mut self, index: usize) -> Result<(), DaytonaError> {
        if let Some(b) = self.files.get_mut(index) {
            b.clear();
        }
        Ok(())
    }
    async fn chunk(&mut self, index: usize, bytes: Bytes) -> Result<(), DaytonaError> {
        if let Some(b) = self.files.get_mut(index) {
            b.extend_from_slice(&bytes);
        }
        Ok(())
    }
    async fn end(&mut self, _index: usize) -> Result<(), DaytonaError> {
        Ok(())
    }
}

/// Reads a bulk-download body and feeds each `file` part to `sink`.
///
/// Returns one outcome per requested path, in request order: `Ok(())` when its file was
/// delivered, the typed daemon error from its `error` part, or [`DaytonaError::MissingFile`].
/// The outer error is for the body as a whole (it broke off, or is not multipart) or for a sink
/// failure; a sink that fails has received `begin` but not `end` for that index.
///
/// ```
/// # futures::executor::block_on(async {
/// use workspace_daytona::multipart::{read_bulk_download, MemorySink};
/// let body = "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/a\"\r\n\r\nhello\r\n--B--\r\n";
/// let stream = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(body))]);
/// let mut sink = MemorySink::new(2);
/// let out = read_bulk_download(stream, "B", &["/a".to_string(), "/b".to_string()], &mut sink).await.unwrap();
/// assert!(out[0].is_ok());
/// assert_eq!(&sink.files[0][..], b"hello");
/// assert!(matches!(out[1], Err(workspace_daytona::DaytonaError::MissingFile { .. })));
/// # });
/// ```
pub async fn read_bulk_download<S, O, E, K>(
    body: S,
    boundary: &str,
    requested: &[String],
    sink: &mut K,
) -> Result<Vec<Result<(), DaytonaError>>, DaytonaError>
where
    S: Stream<Item = Result<O, E>> + Send + 'static,
    O: Into<Bytes> + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    K: PartSink + Send,
{
    let mut outcomes: Vec<Option<Result<(), DaytonaError>>> =
        (0..requested.len()).map(|_| None).collect();
    // Same path requested twice: each part fills the next unfilled slot.
    let mut by_path: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in requested.iter().enumerate().rev() {
        by_path.entry(p.as_str()).or_default().push(i);
    }

    let mut multipart = multer::Multipart::new(body, boundary.to_string());
    loop {
        let field = multipart.next_field().await.map_err(multer_error)?;
        let Some(mut field) = field else { break };
        let cd = field
            .headers()
            .get(http::header::CONTENT_DISPOSITION)
            .map(|v| parse_content_disposition(v.as_bytes()))
            .unwrap_or_default();
        let slot = cd
            .filename
            .as_deref()
            .and_then(|f| by_path.get_mut(f))
            .and_then(|slots| slots.pop());
        let Some(index) = slot else {
            // A part for nothing we asked (or a duplicate): skip its body.
            while field.chunk().await.map_err(multer_error)?.is_some() {}
            continue;
        };
        if cd.name.as_deref() == Some("error") {
            let mut buf = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(multer_error)? {
                let room = MAX_ERROR_PART.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            outcomes[index] = Some(Err(error_part(&buf)));
        } else {
            sink.begin(index).await?;
            while let Some(chunk) = field.chunk().await.map_err(multer_error)? {
                sink.chunk(index, chunk).await?;
            }
            sink.end(index).await?;
            outcomes[index] = Some(Ok(()));
        }
    }
    Ok(outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            o.unwrap_or_else(|| {
                Err(DaytonaError::MissingFile {
                    path: requested[i].clone(),
                })
            })
        })
        .collect())
}

/// Turns an `error` part's JSON into the typed error; its status comes from `statusCode`.
fn error_part(body: &[u8]) -> DaytonaError {
    let status = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("statusCode").and_then(|s| s.as_u64()))
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (400..=599).contains(s))
        .unwrap_or(500);
    DaytonaError::from_response(status, body, None)
}

fn multer_error(e: multer::Error) -> DaytonaError {
    match e {
        multer::Error::StreamReadFailed(source) => DaytonaError::Transport {
            operation: "fs.download",
            message: format!("download body broke off: {source}"),
            source: Some(source),
        },
        other => DaytonaError::decode("fs.download", format!("malformed multipart body: {other}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    fn part(name: &str, filename: &str, body: &[u8]) -> Vec<u8> {
        let mut v = format!(
            "--DAYTONA-FILE-BOUNDARY\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{}\"; filename*=utf-8''{}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            filename.replace('\\', "\\\\").replace('"', "\\\""),
            pct(filename),
            body.len()
        )
        .into_bytes();
        v.extend_from_slice(body);
        v.extend_from_slice(b"\r\n");
        v
    }

    fn pct(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    fn finish(mut v: Vec<u8>) -> Vec<u8> {
        v.extend_from_slice(b"--DAYTONA-FILE-BOUNDARY--\r\n");
        v
    }

    fn parse_chunked(
        body: Vec<u8>,
        chunk: usize,
        paths: &[&str],
    ) -> (Vec<Result<(), DaytonaError>>, MemorySink) {
        let chunks: Vec<Result<Bytes, std::io::Error>> = body
            .chunks(chunk.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let paths: Vec<String> = paths.iter().map(|s| s.to_string()).collect();
        let mut sink = MemorySink::new(paths.len());
        let out = block_on(read_bulk_download(
            futures::stream::iter(chunks),
            "DAYTONA-FILE-BOUNDARY",
            &paths,
            &mut sink,
        ))
        .unwrap();
        (out, sink)
    }

    #[test]
    fn disposition_forms() {
        let cd = parse_content_disposition(b"form-data; name=file; filename=/a/b");
        assert_eq!(cd.name.as_deref(), Some("file"));
        assert_eq!(cd.filename.as_deref(), Some("/a/b"));
        let cd = parse_content_disposition(br#"form-data; name="x"; filename="a;b=c""#);
        assert_eq!(cd.filename.as_deref(), Some("a;b=c"));
        let cd =
            parse_content_disposition(br#"form-data; filename*=UTF-8''a%20b; filename="ignored""#);
        assert_eq!(cd.filename.as_deref(), Some("a b"));
        // Bad extended value falls back to the plain one.
        let cd = parse_content_disposition(br#"form-data; filename*=utf-8''%ZZ; filename="plain""#);
        assert_eq!(cd.filename.as_deref(), Some("plain"));
        let cd = parse_content_disposition("form-data; filename=\"/tmp/naïve ☃\"".as_bytes());
        assert_eq!(cd.filename.as_deref(), Some("/tmp/naïve ☃"));
        // Garbage never panics.
        for junk in [
            &b""[..],
            b";",
            b";;=",
            b"form-data; name=\"unterminated",
            b"; =\"",
            b"a; b",
        ] {
            let _ = parse_content_disposition(junk);
        }
        let cd = parse_content_disposition(b"form-data; name=\"unterminated");
        assert_eq!(cd.name.as_deref(), Some("unterminated"));
    }

    #[test]
    fn files_errors_and_missing() {
        let mut body = part("file", "/tmp/a.txt", b"alpha");
        body.extend(part(
            "error",
            "/tmp/nope",
            br#"{"statusCode":404,"code":"FILE_NOT_FOUND","message":"file not found: /tmp/nope"}"#,
        ));
        body.extend(part(
            "file",
            "/tmp/q \"x\".bin",
            b"\x00\x01\r\n--DAYTONA-FILE-BOUNDAR",
        ));
        let body = finish(body);
        for chunk in [1, 2, 3, 7, 64, body.len()] {
            let (out, sink) = parse_chunked(
                body.clone(),
                chunk,
                &["/tmp/a.txt", "/tmp/nope", "/tmp/q \"x\".bin", "/tmp/absent"],
            );
            assert!(out[0].is_ok());
            assert_eq!(&sink.files[0][..], b"alpha");
            assert!(
                matches!(&out[1], Err(DaytonaError::FileNotFound(d)) if d.status == 404 && d.message == "file not found: /tmp/nope"),
                "{:?}",
                out[1]
            );
            assert!(out[2].is_ok());
            assert_eq!(&sink.files[2][..], b"\x00\x01\r\n--DAYTONA-FILE-BOUNDAR");
            assert!(
                matches!(&out[3], Err(DaytonaError::MissingFile { path }) if path == "/tmp/absent")
            );
        }
    }

    #[test]
    fn matching_is_by_filename_not_order() {
        let body = finish([part("file", "/b", b"B"), part("file", "/a", b"A")].concat());
        let (out, sink) = parse_chunked(body, 5, &["/a", "/b"]);
        assert!(out.iter().all(|o| o.is_ok()));
        assert_eq!(&sink.files[0][..], b"A");
        assert_eq!(&sink.files[1][..], b"B");
    }

    #[test]
    fn duplicates_and_strangers() {
        let body = finish(
            [
                part("file", "/a", b"1"),
                part("file", "/zzz", b"unasked"),
                part("file", "/a", b"2"),
                part("file", "/a", b"3"),
            ]
            .concat(),
        );
        let (out, sink) = parse_chunked(body, 4, &["/a", "/a"]);
        assert!(out.iter().all(|o| o.is_ok()));
        assert_eq!(&sink.files[0][..], b"1");
        assert_eq!(&sink.files[1][..], b"2");
    }

    #[test]
    fn error_part_without_status_or_json() {
        let body = finish(part("error", "/x", b"not json"));
        let (out, _) = parse_chunked(body, 3, &["/x"]);
        assert!(
            matches!(&out[0], Err(DaytonaError::Server(d)) if d.message == "not json"),
            "{:?}",
            out[0]
        );
    }

    #[test]
    fn truncated_body_is_an_error() {
        let body = part("file", "/a", b"0123456789");
        let cut = body[..body.len() - 4].to_vec();
        let chunks = vec![Ok::<_, std::io::Error>(Bytes::from(cut))];
        let mut sink = MemorySink::new(1);
        let err = block_on(read_bulk_download(
            futures::stream::iter(chunks),
            "DAYTONA-FILE-BOUNDARY",
            &["/a".to_string()],
            &mut sink,
        ))
        .unwrap_err();
        assert!(matches!(err, DaytonaError::Decode { .. }), "{err:?}");
    }

    #[test]
    fn broken_stream_is_transport() {
        let body = part("file", "/a", b"0123456789");
        let chunks = vec![
            Ok(Bytes::from(body[..20].to_vec())),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset",
            )),
        ];
        let mut sink = MemorySink::new(1);
        let err = block_on(read_bulk_download(
            futures::stream::iter(chunks),
            "DAYTONA-FILE-BOUNDARY",
            &["/a".to_string()],
            &mut sink,
        ))
        .unwrap_err();
        assert!(matches!(err, DaytonaError::Transport { .. }), "{err:?}");
    }

    #[test]
    fn empty_multipart() {
        let (out, _) = parse_chunked(b"--DAYTONA-FILE-BOUNDARY--\r\n".to_vec(), 100, &["/a"]);
        assert!(matches!(out[0], Err(DaytonaError::MissingFile { .. })));
    }
}
