//! Bulk file transfer: `POST /files/bulk-upload` (multipart in, streamed to disk) and
//! `POST /files/bulk-download` (multipart out, streamed from disk).
//!
//! The download response is written by hand: no maintained crate writes a multipart *response*
//! as a stream with per-part headers (`Content-Length`, `filename*`), and the format is small.
//! Parts are produced by a task into an in-memory pipe whose read end is the response body, so
//! a 10 GB file never sits in memory and a slow client slows the reader down (backpressure).

use std::collections::HashMap;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use daytona_api::toolbox::{FilesDownloadRequest, UploadedFileBytes, codes};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use crate::error::ApiError;
use crate::layout::SandboxLayout;
use crate::state::AppState;
use crate::toolbox::files::write_stream;
use crate::toolbox::go_fs::go_path_error;
use crate::toolbox::{SandboxPath, parse_json};

/// The boundary the daemon uses for bulk downloads.
pub(crate) const DOWNLOAD_BOUNDARY: &str = "DAYTONA-FILE-BOUNDARY";
/// Size of the pipe between the part writer and the response body.
const PIPE_BUFFER: usize = 256 * 1024;
/// RFC 5987 `attr-char`s are sent as is in `filename*`; every other byte is percent-encoded.
pub(crate) const ATTR_CHAR_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// The index in a `files[i].path` / `files[i].file` field name.
fn field_index(name: &str) -> &str {
    let s = name.strip_prefix("files[").unwrap_or(name);
    s.strip_suffix("].path")
        .or_else(|| s.strip_suffix("].file"))
        .unwrap_or(s)
}

/// The daemon's 400: `{errors, files}`, `files` being Go's nil slice (`null`) when nothing was
/// written.
fn upload_failed(errors: Vec<String>, files: Vec<UploadedFileBytes>) -> Response {
    let body = serde_json::json!({ "errors": errors, "files": go_slice(files) });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// A Go slice built by `append` from nil, as JSON: `null` while empty.
fn go_slice(files: Vec<UploadedFileBytes>) -> serde_json::Value {
    if files.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!(files)
    }
}

/// `POST /files/bulk-upload`: fields `files[i].path` (destination) then `files[i].file`
/// (content). Each file is streamed to disk; parents are created 0755; existing files are
/// replaced. 200 `{files}`, or 400 `{errors, files}` when any part failed.
pub(crate) async fn bulk_upload(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        // The daemon answers before it reads a part, without `files`.
        let body = serde_json::json!({ "errors": ["invalid multipart form"] });
        return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
    };
    let mut multipart = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut destinations: HashMap<String, String> = HashMap::new();
    let mut errors = Vec::new();
    let mut files = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                errors.push(format!("reading part: {e}"));
                break;
            }
        };
        let name = field.name().unwrap_or("").to_string();
        let index = field_index(&name).to_string();
        if name.ends_with(".path") {
            match field.text().await {
                Ok(text) if !text.trim().is_empty() => {
                    destinations.insert(index, text.trim().to_string());
                }
                Ok(_) => errors.push(format!("path[{index}]: empty path")),
                Err(e) => errors.push(format!("path[{index}]: {e}")),
            }
        } else if name.ends_with(".file") {
            let Some(dest) = destinations.get(&index).cloned() else {
                errors.push(format!("file[{index}]: missing .path metadata"));
                continue;
            };
            let host = match target.layout.resolve(&dest, true) {
                Ok(r) => r.host,
                Err(e) => {
                    errors.push(format!("{dest}: {}", e.message));
                    continue;
                }
            };
            match write_stream(&host, field).await {
                Ok(bytes) => files.push(UploadedFileBytes { path: dest, bytes }),
                Err(e) => errors.push(format!("{dest}: {e}")),
            }
        }
    }
    if !errors.is_empty() {
        return Ok(upload_failed(errors, files));
    }
    Ok(Json(serde_json::json!({ "files": go_slice(files) })).into_response())
}

/// `POST /files/bulk-download` `{paths}`: 200 `multipart/form-data`, one part per path in
/// order: `name="file"` with the bytes, or `name="error"` with a daemon error JSON. Either way
/// `filename` is the requested path byte for byte (clients match parts to paths by it).
pub(crate) async fn bulk_download(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    // gin's bare `{"error": ...}`, as the daemon aborts with.
    let refused = || {
        ApiError::daemon_bare(
            StatusCode::BAD_REQUEST,
            "request body must be {\"paths\": [ ... ]} and non-empty",
        )
    };
    let req: FilesDownloadRequest = parse_json(&body).map_err(|_| refused())?;
    if req.paths.is_empty() {
        return Err(refused());
    }
    let (writer, reader) = tokio::io::duplex(PIPE_BUFFER);
    let layout = target.layout.clone();
    tokio::spawn(async move {
        if let Err(e) = write_parts(&layout, req.paths, writer).await {
            // The client went away, or a file changed under us: the body ends early.
            tracing::debug!(error = %e, "bulk download stream ended early");
        }
    });
    Ok((
        [(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={DOWNLOAD_BOUNDARY}"),
        )],
        Body::from_stream(ReaderStream::new(reader)),
    )
        .into_response())
}

/// The daemon's `filename="..."` for a download: `\\` and `"` escaped, CR, LF and NUL dropped,
/// other control characters and anything beyond Latin-1 as `_`, the rest as Latin-1 bytes.
pub(crate) fn latin1_filename(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '"' => out.extend_from_slice(b"\\\""),
            '\r' | '\n' | '\0' => {}
            c if u32::from(c) > 0xFF || u32::from(c) < 0x20 || c == '\x7f' => out.push(b'_'),
            // Latin-1 fits one byte by the guard above.
            c => out.push(u8::try_from(u32::from(c)).unwrap_or(b'_')),
        }
    }
    out
}

/// The header block of one part, as the daemon writes it: `filename` in Latin-1 (see
/// [`latin1_filename`]) and the exact path in `filename*`, which clients prefer; headers in
/// the sorted order Go's multipart writer puts them in.
pub(crate) fn part_header(name: &str, path: &str, content_type: &str, len: Option<u64>) -> Vec<u8> {
    let mut h = format!(
        "--{DOWNLOAD_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\""
    )
    .into_bytes();
    h.extend(latin1_filename(path));
    h.extend(
        format!(
            "\"; filename*=utf-8''{}\r\n",
            utf8_percent_encode(path, ATTR_CHAR_ESCAPES),
        )
        .into_bytes(),
    );
    if let Some(len) = len {
        h.extend(format!("Content-Length: {len}\r\n").into_bytes());
    }
    h.extend(format!("Content-Type: {content_type}\r\n\r\n").into_bytes());
    h
}

/// The error part's status, code and message for `path`, as the daemon classifies the open.
fn download_error(path: &str, e: &std::io::Error) -> ApiError {
    let (status, code, message) = match e.kind() {
        std::io::ErrorKind::NotFound => (
            StatusCode::NOT_FOUND,
            codes::FILE_NOT_FOUND,
            format!("file not found: {path}"),
        ),
        std::io::ErrorKind::PermissionDenied => (
            StatusCode::FORBIDDEN,
            codes::FILE_ACCESS_DENIED,
            format!("permission denied: {path}"),
        ),
        std::io::ErrorKind::InvalidInput => (
            StatusCode::BAD_REQUEST,
            codes::INVALID_FILE_PATH,
            format!("invalid file path: {path}"),
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::FILE_READ_FAILED,
            format!("failed to open file: {}", go_path_error("open", path, e)),
        ),
    };
    ApiError::daemon(status, code, message)
}

/// Opens one requested path of a bulk download: the file and its length, or the error part's
/// error (`fs/download_files.go`'s `openDownloadFile`).
async fn open_for_bulk(
    layout: &SandboxLayout,
    path: &str,
) -> Result<(tokio::fs::File, u64), ApiError> {
    if path.is_empty() {
        return Err(ApiError::daemon(
            StatusCode::BAD_REQUEST,
            codes::INVALID_FILE_PATH,
            "invalid file path: path is empty",
        ));
    }
    let resolved = layout.resolve(path, true)?;
    let file = tokio::fs::File::open(&resolved.host)
        .await
        .map_err(|e| download_error(path, &e))?;
    let meta = file
        .metadata()
        .await
        .map_err(|e| download_error(path, &e))?;
    if meta.is_dir() {
        return Err(ApiError::daemon(
            StatusCode::BAD_REQUEST,
            codes::INVALID_FILE_PATH,
            format!("invalid file path: path points to a directory: {path}"),
        ));
    }
    Ok((file, meta.len()))
}

async fn write_parts(
    layout: &SandboxLayout,
    paths: Vec<String>,
    mut w: tokio::io::DuplexStream,
) -> std::io::Result<()> {
    for path in paths {
        match open_for_bulk(layout, &path).await {
            Ok((file, len)) => {
                let mime = mime_guess::from_path(&path)
                    .first_raw()
                    .unwrap_or("application/octet-stream");
                w.write_all(&part_header("file", &path, mime, Some(len)))
                    .await?;
                let copied = tokio::io::copy(&mut file.take(len), &mut w).await?;
                if copied != len {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("{path} shrank while it was sent ({copied} of {len} bytes)"),
                    ));
                }
            }
            Err(e) => {
                // The daemon's error part: `path` is the requested file, and there is no
                // `Content-Length`.
                let mut body = e.body("POST", "/files/bulk-download");
                body["path"] = serde_json::Value::String(path.clone());
                let body = serde_json::to_vec(&body).unwrap_or_default();
                w.write_all(&part_header(
                    "error",
                    &path,
                    "application/json; charset=utf-8",
                    None,
                ))
                .await?;
                w.write_all(&body).await?;
            }
        }
        w.write_all(b"\r\n").await?;
    }
    w.write_all(format!("--{DOWNLOAD_BOUNDARY}--\r\n").as_bytes())
        .await?;
    w.shutdown().await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_the_exact_path() {
        let h = part_header("file", "/tmp/a b/ü\"x€.txt", "text/plain", Some(3));
        let h = String::from_utf8_lossy(&h).into_owned();
        assert!(h.starts_with("--DAYTONA-FILE-BOUNDARY\r\n"));
        // Latin-1 in `filename` (ü is one byte, € beyond Latin-1 is `_`), UTF-8 in `filename*`.
        assert!(
            h.contains("name=\"file\"; filename=\"/tmp/a b/\u{fffd}\\\"x_.txt\"; "),
            "{h}"
        );
        assert!(h.contains("filename*=utf-8''%2Ftmp%2Fa%20b%2F%C3%BC%22x%E2%82%AC.txt\r\n"));
        assert!(h.contains("Content-Length: 3\r\nContent-Type: text/plain\r\n\r\n"));
        assert_eq!(latin1_filename("a\rb\nc\0d\x01\\"), b"abcd_\\\\");
    }

    #[test]
    fn field_indices() {
        assert_eq!(field_index("files[12].path"), "12");
        assert_eq!(field_index("files[0].file"), "0");
    }
}
