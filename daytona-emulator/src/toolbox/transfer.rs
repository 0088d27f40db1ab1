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
use daytona_api::toolbox::{BulkUploadResponse, FilesDownloadRequest, UploadedFileBytes};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use crate::error::ApiError;
use crate::layout::SandboxLayout;
use crate::state::AppState;
use crate::toolbox::files::{bad_request, open_for_download, write_stream};
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

fn upload_failed(errors: Vec<String>, files: Vec<UploadedFileBytes>) -> Response {
    // The daemon's own shape (`errors`, `files`) plus `message`, which the SDKs show as the
    // error text.
    let body = serde_json::json!({
        "statusCode": 400,
        "message": errors.join("; "),
        "errors": errors,
        "files": files,
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
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
        return Ok(upload_failed(
            vec![format!(
                "invalid multipart form: expected multipart/form-data with a boundary, got {content_type:?}"
            )],
            Vec::new(),
        ));
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
    Ok(Json(BulkUploadResponse {
        files,
        errors: None,
    })
    .into_response())
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
    let req: FilesDownloadRequest = parse_json(&body)
        .map_err(|_| bad_request("request body must be {\"paths\": [ ... ]} and non-empty"))?;
    if req.paths.is_empty() {
        return Err(bad_request(
            "request body must be {\"paths\": [ ... ]} and non-empty",
        ));
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

/// `filename` as a quoted-string: `\` and `"` escaped, CR and LF percent-encoded (they would
/// end the header line).
fn quoted_filename(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 2);
    out.push('"');
    for c in path.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The header block of one part.
pub(crate) fn part_header(name: &str, path: &str, content_type: &str, len: Option<u64>) -> String {
    let mut h = format!(
        "--{DOWNLOAD_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename={}; filename*=utf-8''{}\r\nContent-Type: {content_type}\r\n",
        quoted_filename(path),
        utf8_percent_encode(path, ATTR_CHAR_ESCAPES),
    );
    if let Some(len) = len {
        h.push_str(&format!("Content-Length: {len}\r\n"));
    }
    h.push_str("\r\n");
    h
}

async fn write_parts(
    layout: &SandboxLayout,
    paths: Vec<String>,
    mut w: tokio::io::DuplexStream,
) -> std::io::Result<()> {
    for path in paths {
        match open_for_download(layout, &path).await {
            Ok((file, len)) => {
                let mime = mime_guess::from_path(&path)
                    .first_raw()
                    .unwrap_or("application/octet-stream");
                w.write_all(part_header("file", &path, mime, Some(len)).as_bytes())
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
                let body =
                    serde_json::to_vec(&e.body("POST", "/files/bulk-download")).unwrap_or_default();
                w.write_all(
                    part_header(
                        "error",
                        &path,
                        "application/json; charset=utf-8",
                        Some(body.len() as u64),
                    )
                    .as_bytes(),
                )
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
        let h = part_header("file", "/tmp/a b/ü\"x.txt", "text/plain", Some(3));
        assert!(h.starts_with("--DAYTONA-FILE-BOUNDARY\r\n"));
        assert!(h.contains("name=\"file\"; filename=\"/tmp/a b/ü\\\"x.txt\"; "));
        assert!(h.contains("filename*=utf-8''%2Ftmp%2Fa%20b%2F%C3%BC%22x.txt\r\n"));
        assert!(h.contains("Content-Length: 3\r\n\r\n"));
    }

    #[test]
    fn field_indices() {
        assert_eq!(field_index("files[12].path"), "12");
        assert_eq!(field_index("files[0].file"), "0");
    }
}
