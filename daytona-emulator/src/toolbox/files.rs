//! File-system routes: list, info, delete, mkdir, move, chmod/chown, find (grep), search (glob),
//! replace, and single-file download/upload. Bulk transfers are in [`super::transfer`].
//!
//! Every path goes through [`SandboxLayout::resolve`] first, so nothing outside the sandbox's
//! own directories is read or written. Tree walks never follow symlinks.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use daytona_api::toolbox::{
    FileInfo, Match, ReplaceRequest, ReplaceResult, SearchFilesResponse, UploadedFile, codes,
};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use crate::error::ApiError;
use crate::layout::{ResolvedPath, SandboxLayout};
use crate::state::AppState;
use crate::toolbox::file_info::file_info;
use crate::toolbox::{SandboxPath, parse_json};

/// Bytes of a file inspected for NUL to decide it is binary (as the daemon does).
const BINARY_SNIFF: usize = 512;

/// `?path=` (and friends) of file routes.
#[derive(Debug, Deserialize)]
pub(crate) struct FileQuery {
    path: Option<String>,
    depth: Option<String>,
    recursive: Option<String>,
    mode: Option<String>,
    owner: Option<String>,
    group: Option<String>,
    pattern: Option<String>,
    source: Option<String>,
    destination: Option<String>,
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, ApiError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad_request(format!("{name} is required")))
}

pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::daemon(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
}

/// The daemon's error for an I/O failure on `path`: 404 when missing, 403 when not permitted.
pub(crate) fn io_error(e: &io::Error, path: &str) -> ApiError {
    match e.kind() {
        io::ErrorKind::NotFound => ApiError::daemon(
            StatusCode::NOT_FOUND,
            codes::FILE_NOT_FOUND,
            format!("file not found: {path}"),
        ),
        io::ErrorKind::PermissionDenied => ApiError::daemon(
            StatusCode::FORBIDDEN,
            codes::FILE_ACCESS_DENIED,
            format!("access denied: {path}: {e}"),
        ),
        _ => bad_request(format!("{path}: {e}")),
    }
}

fn protect_root(layout: &SandboxLayout, resolved: &ResolvedPath) -> Result<(), ApiError> {
    if layout.is_mount_root(&resolved.host) {
        return Err(ApiError::daemon(
            StatusCode::FORBIDDEN,
            codes::FILE_ACCESS_DENIED,
            format!("{} is a sandbox root directory", resolved.sandbox),
        ));
    }
    Ok(())
}

/// Run blocking file-system work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::daemon_internal("file operation failed", e))?
}

fn base_name(sandbox_path: &str) -> String {
    match sandbox_path.rsplit('/').next() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => "/".to_string(),
    }
}

fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Info on one directory entry: a symlink is described by its target when that stays in the
/// sandbox, else by the link itself.
fn entry_info(layout: &SandboxLayout, sandbox: &str, host: &Path) -> io::Result<FileInfo> {
    let meta = std::fs::symlink_metadata(host)?;
    let meta = if meta.file_type().is_symlink() {
        layout
            .resolve(sandbox, true)
            .ok()
            .and_then(|r| std::fs::metadata(r.host).ok())
            .unwrap_or(meta)
    } else {
        meta
    };
    Ok(file_info(base_name(sandbox), sandbox.to_string(), &meta))
}

/// Entries of `dir`, sorted by name (as Go's `os.ReadDir`).
fn sorted_entries(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    Ok(out)
}

fn list_into(
    layout: &SandboxLayout,
    sandbox: &str,
    host: &Path,
    depth: usize,
    out: &mut Vec<FileInfo>,
) -> io::Result<()> {
    for (name, child_host) in sorted_entries(host)? {
        let child_sandbox = child_path(sandbox, &name);
        let Ok(info) = entry_info(layout, &child_sandbox, &child_host) else {
            continue;
        };
        let real_dir = std::fs::symlink_metadata(&child_host).is_ok_and(|m| m.is_dir());
        out.push(info);
        if depth > 1 && real_dir {
            // A subdirectory that vanished or cannot be read is skipped, as the daemon does.
            let _ = list_into(layout, &child_sandbox, &child_host, depth - 1, out);
        }
    }
    Ok(())
}

/// `GET /files?path=&depth=`.
pub(crate) async fn list_files(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<FileQuery>,
) -> Result<Json<Vec<FileInfo>>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let layout = target.layout.clone();
    let depth = match q.depth.as_deref().filter(|d| !d.is_empty()) {
        None => 1,
        Some(d) => d
            .parse::<usize>()
            .ok()
            .filter(|d| *d >= 1)
            .ok_or_else(|| bad_request(format!("depth must be an integer >= 1, got {d:?}")))?,
    };
    let path = q
        .path
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| layout.home_dir().to_string());
    let resolved = layout.resolve(&path, true)?;
    let list = blocking(move || {
        let meta = std::fs::metadata(&resolved.host).map_err(|e| io_error(&e, &path))?;
        if !meta.is_dir() {
            return Err(bad_request(format!("{path} is not a directory")));
        }
        let mut out = Vec::new();
        list_into(&layout, &resolved.sandbox, &resolved.host, depth, &mut out)
            .map_err(|e| io_error(&e, &path))?;
        Ok(out)
    })
    .await?;
    Ok(Json(list))
}

/// `GET /files/info?path=`.
pub(crate) async fn file_info_route(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<FileQuery>,
) -> Result<Json<FileInfo>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let path = required(&q.path, "path")?.to_string();
    let resolved = target.layout.resolve(&path, true)?;
    let meta = tokio::fs::metadata(&resolved.host)
        .await
        .map_err(|e| io_error(&e, &path))?;
    Ok(Json(file_info(
        base_name(&resolved.sandbox),
        resolved.sandbox.clone(),
        &meta,
    )))
}

/// `DELETE /files?path=&recursive=`: 204.
pub(crate) async fn delete_file(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<FileQuery>,
) -> Result<StatusCode, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let path = required(&q.path, "path")?.to_string();
    let recursive = q.recursive.as_deref() == Some("true");
    let layout = target.layout.clone();
    let resolved = layout.resolve(&path, false)?;
    protect_root(&layout, &resolved)?;
    blocking(move || {
        let meta = std::fs::symlink_metadata(&resolved.host).map_err(|e| io_error(&e, &path))?;
        let result = if meta.is_dir() {
            if !recursive {
                return Err(bad_request(
                    "cannot delete directory without recursive flag",
                ));
            }
            std::fs::remove_dir_all(&resolved.host)
        } else {
            std::fs::remove_file(&resolved.host)
        };
        result.map_err(|e| io_error(&e, &path))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn parse_mode(mode: &str) -> Result<u32, ApiError> {
    u32::from_str_radix(mode, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| bad_request(format!("invalid mode format: {mode:?} (octal, e.g. 0755)")))
}

/// `POST /files/folder?path=&mode=`: 201.
pub(crate) async fn create_folder(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<FileQuery>,
) -> Result<StatusCode, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let path = required(&q.path, "path")?.to_string();
    let mode = parse_mode(
        q.mode
            .as_deref()
            .filter(|m| !m.is_empty())
            .unwrap_or("0755"),
    )?;
    let resolved = target.layout.resolve(&path, true)?;
    blocking(move || {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(&resolved.host)
            .map_err(|e| io_error(&e, &path))
    })
    .await?;
    Ok(StatusCode::CREATED)
}

/// `POST /files/move?source=&destination=`: 200, 409 when the destination exists.
pub(crate) async fn move_file(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<FileQuery>,
) -> Result<StatusCode, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let (Some(source), Some(destination)) = (
        q.source.filter(|s| !s.is_empty()),
        q.destination.filter(|d| !d.is_empty()),
    ) else {
        return Err(bad_request("source and destination paths are required"));
    };
    let layout = target.layout.clone();
    let from = layout.resolve(&source, false)?;
    let to = layout.resolve(&destination, false)?;
    protect_root(&layout, &from)?;
    protect_root(&layout, &to)?;
    blocking(move || {
        std::fs::symlink_metadata(&from.host).map_err(|e| io_error(&e, &source))?;
        let parent = to.host.parent().unwrap_or(&to.host);
        std::fs::metadata(parent).map_err(|e| io_error(&e, &destination))?;
        if std::fs::symlink_metadata(&to.host).is_ok() {
            return Err(ApiError::daemon(
                StatusCode::CONFLICT,
                codes::CONFLICT,
                format!("destination already exists: {destination}"),
            ));
        }
        std::fs::rename(&from.host, &to.host)
            .map_err(|e| bad_request(format!("failed to move file: {e}")))
    })
    .await?;
    Ok(StatusCode::OK)
}

fn lookup_id(value: &str, what: &str) -> Result<u32, ApiError> {
    if let Ok(n) = value.parse::<u32>() {
        return Ok(n);
    }
    let found = if what == "user" {
        nix::unistd::User::from_name(value)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw())
    } else {
        nix::unistd::Group::from_name(value)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw())
    };
    found.ok_or_else(|| bad_request(format!("{what} not found: {value}")))
}

/// `POST /files/permissions?path=&owner=&group=&mode=`: 200.
pub(crate) async fn set_permissions(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<FileQuery>,
) -> Result<StatusCode, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let path = required(&q.path, "path")?.to_string();
    let resolved = target.layout.resolve(&path, true)?;
    let mode = q
        .mode
        .as_deref()
        .filter(|m| !m.is_empty())
        .map(parse_mode)
        .transpose()?;
    let uid = q
        .owner
        .as_deref()
        .filter(|o| !o.is_empty())
        .map(|o| lookup_id(o, "user"))
        .transpose()?;
    let gid = q
        .group
        .as_deref()
        .filter(|g| !g.is_empty())
        .map(|g| lookup_id(g, "group"))
        .transpose()?;
    blocking(move || {
        std::fs::metadata(&resolved.host).map_err(|e| io_error(&e, &path))?;
        if let Some(mode) = mode {
            std::fs::set_permissions(&resolved.host, std::fs::Permissions::from_mode(mode))
                .map_err(|e| io_error(&e, &path))?;
        }
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::chown(&resolved.host, uid, gid).map_err(|e| io_error(&e, &path))?;
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::OK)
}

/// Visit every entry under `root` (not `root` itself) in lexical pre-order without following
/// symlinks; unreadable directories are skipped.
fn walk(root: &Path, visit: &mut dyn FnMut(&Path, &str, &std::fs::Metadata)) {
    fn inner(dir: &Path, rel: &str, visit: &mut dyn FnMut(&Path, &str, &std::fs::Metadata)) {
        let Ok(entries) = sorted_entries(dir) else {
            return;
        };
        for (name, host) in entries {
            let Ok(meta) = std::fs::symlink_metadata(&host) else {
                continue;
            };
            let child_rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            visit(&host, &child_rel, &meta);
            if meta.is_dir() {
                inner(&host, &child_rel, visit);
            }
        }
    }
    inner(root, "", visit);
}

/// Lines of a text file containing `pattern`; `None` for a binary file.
fn grep_file(host: &Path, pattern: &str) -> Option<Vec<(u64, String)>> {
    let data = std::fs::read(host).ok()?;
    if data[..data.len().min(BINARY_SNIFF)].contains(&0) {
        return None;
    }
    let mut out = Vec::new();
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        if text.contains(pattern) {
            out.push((i as u64 + 1, text.into_owned()));
        }
    }
    Some(out)
}

/// `GET /files/find?path=&pattern=`: lines containing `pattern` (literal) in text files.
pub(crate) async fn find_in_files(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<FileQuery>,
) -> Result<Json<Vec<Match>>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let (Some(path), Some(pattern)) = (
        q.path.filter(|s| !s.is_empty()),
        q.pattern.filter(|s| !s.is_empty()),
    ) else {
        return Err(bad_request("path and pattern are required"));
    };
    let resolved = target.layout.resolve(&path, true)?;
    let matches = blocking(move || {
        let mut matches = Vec::new();
        let mut check = |host: &Path, sandbox: String| {
            for (line, content) in grep_file(host, &pattern).unwrap_or_default() {
                matches.push(Match {
                    file: sandbox.clone(),
                    line,
                    content,
                });
            }
        };
        match std::fs::symlink_metadata(&resolved.host) {
            Ok(m) if m.is_file() => check(&resolved.host, resolved.sandbox.clone()),
            Ok(m) if m.is_dir() => walk(&resolved.host, &mut |host, rel, meta| {
                if meta.is_file() {
                    check(host, child_path(&resolved.sandbox, rel));
                }
            }),
            // A missing root finds nothing, as the daemon's walk does.
            _ => {}
        }
        Ok(matches)
    })
    .await?;
    Ok(Json(matches))
}

/// `GET /files/search?path=&pattern=`: files whose path relative to `path` matches the glob
/// (`*` and `?` within a segment, `**` across segments, `{a,b}`, `[...]`), like doublestar.
pub(crate) async fn search_files(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<FileQuery>,
) -> Result<Json<SearchFilesResponse>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let (Some(path), Some(pattern)) = (
        q.path.filter(|s| !s.is_empty()),
        q.pattern.filter(|s| !s.is_empty()),
    ) else {
        return Err(bad_request("path and pattern are required"));
    };
    let matcher = globset::GlobBuilder::new(&pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| bad_request(format!("invalid glob pattern: {pattern}: {e}")))?
        .compile_matcher();
    let resolved = target.layout.resolve(&path, true)?;
    let files = blocking(move || {
        let mut files = Vec::new();
        walk(&resolved.host, &mut |_, rel, meta| {
            if !meta.is_dir() && matcher.is_match(rel) {
                files.push(child_path(&resolved.sandbox, rel));
            }
        });
        Ok(files)
    })
    .await?;
    Ok(Json(SearchFilesResponse { files }))
}

fn replace_bytes(data: &[u8], pattern: &[u8], with: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(data.len());
    let mut count = 0;
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(pattern) {
            out.extend_from_slice(with);
            i += pattern.len();
            count += 1;
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    (out, count)
}

/// `POST /files/replace`: replace every occurrence of a literal in each file.
pub(crate) async fn replace_in_files(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Json<Vec<ReplaceResult>>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let req: ReplaceRequest = parse_json(&body)?;
    if req.pattern.is_empty() {
        return Err(bad_request("pattern must not be empty"));
    }
    let layout = target.layout.clone();
    let results = blocking(move || {
        let mut results = Vec::with_capacity(req.files.len());
        for file in req.files {
            let outcome = layout.resolve(&file, true).and_then(|r| {
                let data = std::fs::read(&r.host).map_err(|e| io_error(&e, &file))?;
                let (new, _) =
                    replace_bytes(&data, req.pattern.as_bytes(), req.new_value.as_bytes());
                std::fs::write(&r.host, new).map_err(|e| io_error(&e, &file))
            });
            results.push(match outcome {
                Ok(()) => ReplaceResult {
                    file: Some(file),
                    success: Some(true),
                    error: None,
                },
                Err(e) => ReplaceResult {
                    file: Some(file),
                    success: Some(false),
                    error: Some(e.message),
                },
            });
        }
        Ok(results)
    })
    .await?;
    Ok(Json(results))
}

/// Open a regular file for download: 404 when missing, 400 for a directory.
pub(crate) async fn open_for_download(
    layout: &SandboxLayout,
    path: &str,
) -> Result<(tokio::fs::File, u64), ApiError> {
    let resolved = layout.resolve(path, true)?;
    let file = tokio::fs::File::open(&resolved.host)
        .await
        .map_err(|e| io_error(&e, path))?;
    let meta = file.metadata().await.map_err(|e| io_error(&e, path))?;
    if meta.is_dir() {
        return Err(bad_request(format!("{path} is a directory")));
    }
    Ok((file, meta.len()))
}

/// `GET /files/download?path=`: the file's bytes, streamed.
pub(crate) async fn download_file(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<FileQuery>,
) -> Result<Response, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let path = required(&q.path, "path")?.to_string();
    let (file, len) = open_for_download(&target.layout, &path).await?;
    let name = base_name(&path).replace(['"', '\\', '\r', '\n'], "_");
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(ReaderStream::new(tokio::io::AsyncReadExt::take(file, len))),
    )
        .into_response())
}

/// Stream `body` into `dest` (parents created 0755): written to a temporary file next to it,
/// then renamed over it, so a reader never sees half a file. Returns the bytes written.
pub(crate) async fn write_stream<S, E>(dest: &Path, mut body: S) -> io::Result<u64>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    if tokio::fs::metadata(dest).await.is_ok_and(|m| m.is_dir()) {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "destination is a directory",
        ));
    }
    let parent = dest
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "destination has no parent"))?
        .to_path_buf();
    let dir = parent.clone();
    tokio::task::spawn_blocking(move || {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
    })
    .await
    .map_err(io::Error::other)??;
    let temp = tempfile::Builder::new()
        .prefix(".daytona-upload-")
        .tempfile_in(&parent)?;
    let (std_file, temp_path) = temp.into_parts();
    let mut file = tokio::fs::File::from_std(std_file);
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| io::Error::other(format!("reading the upload: {e}")))?;
        file.write_all(&chunk).await?;
        written += chunk.len() as u64;
    }
    file.flush().await?;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .await?;
    drop(file);
    let dest = dest.to_path_buf();
    tokio::task::spawn_blocking(move || temp_path.persist(&dest).map_err(|e| e.error))
        .await
        .map_err(io::Error::other)??;
    Ok(written)
}

/// `POST /files/upload?path=` and `POST /files/upload-v2?path=`: one file, as multipart field
/// `file` or as the raw body.
pub(crate) async fn upload_file(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<FileQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<UploadedFile>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let path = required(&q.path, "path")?.to_string();
    let resolved = target.layout.resolve(&path, true)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let write_err = |e: io::Error| bad_request(format!("failed to write {path}: {e}"));
    if content_type.starts_with("multipart/form-data") {
        let boundary = multer::parse_boundary(content_type)
            .map_err(|e| bad_request(format!("invalid multipart form: {e}")))?;
        let mut multipart = multer::Multipart::new(body.into_data_stream(), boundary);
        loop {
            let field = multipart
                .next_field()
                .await
                .map_err(|e| bad_request(format!("invalid multipart form: {e}")))?
                .ok_or_else(|| bad_request("multipart form has no `file` field"))?;
            if field.name() == Some("file") {
                write_stream(&resolved.host, field)
                    .await
                    .map_err(write_err)?;
                break;
            }
        }
    } else {
        write_stream(&resolved.host, body.into_data_stream())
            .await
            .map_err(write_err)?;
    }
    Ok(Json(UploadedFile {
        name: base_name(&resolved.sandbox),
        path: resolved.sandbox.clone(),
        kind: "file".to_string(),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn grep_finds_lines_and_skips_binaries() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t");
        std::fs::write(&t, "alpha\r\nbeta alpha\ngamma\n").unwrap();
        assert_eq!(
            grep_file(&t, "alpha").unwrap(),
            vec![(1, "alpha".to_string()), (2, "beta alpha".to_string())]
        );
        let b = dir.path().join("b");
        std::fs::write(&b, b"alpha\0").unwrap();
        assert!(grep_file(&b, "alpha").is_none());
    }

    #[test]
    fn replace_counts_and_rewrites() {
        let (out, n) = replace_bytes(b"a-b-a", b"a", b"xy");
        assert_eq!(out, b"xy-b-xy");
        assert_eq!(n, 2);
    }

    #[test]
    fn walk_is_sorted_preorder_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::write(dir.path().join("a"), "").unwrap();
        std::fs::write(dir.path().join("b/c/d"), "").unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("e")).unwrap();
        let mut seen = Vec::new();
        walk(dir.path(), &mut |_, rel, _| seen.push(rel.to_string()));
        assert_eq!(seen, ["a", "b", "b/c", "b/c/d", "e"]);
    }
}
