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
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use daytona_api::toolbox::{
    FileInfo, Match, ReplaceRequest, ReplaceResult, SearchFilesResponse, UploadedFile, codes,
};
use futures::{Stream, StreamExt};
use percent_encoding::utf8_percent_encode;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::error::ApiError;
use crate::layout::{ResolvedPath, SandboxLayout};
use crate::state::AppState;
use crate::toolbox::file_info::file_info;
use crate::toolbox::go_fs::{go_clean, go_match, go_path_error, go_walk, lstat_name};
use crate::toolbox::serve_file::serve_file;
use crate::toolbox::transfer::{ATTR_CHAR_ESCAPES, latin1_filename};
use crate::toolbox::{SandboxPath, missing_field, parse_json};

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

/// Info on one directory entry, from `stat` as the daemon takes it: a symlink is described by
/// its target, and a dangling one is an error (the listing leaves it out). A link that leads
/// out of the sandbox is described by itself.
fn entry_info(layout: &SandboxLayout, sandbox: &str, host: &Path) -> io::Result<FileInfo> {
    let meta = stat_followed(layout, sandbox, host)?;
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
    // `os.Stat(path).Name()`: the name the client asked for, not a link's target.
    Ok(Json(file_info(
        lstat_name(&go_clean(&path)),
        resolved.sandbox.clone(),
        &meta,
    )))
}

/// `os.Stat` of a sandbox path: symlinks followed as the sandbox sees them. A link that leads
/// out of the sandbox is described by itself, so it can still be deleted or moved.
fn stat_followed(
    layout: &SandboxLayout,
    path: &str,
    entry: &Path,
) -> io::Result<std::fs::Metadata> {
    match layout.resolve(path, true) {
        Ok(r) => std::fs::metadata(r.host),
        Err(_) => std::fs::symlink_metadata(entry),
    }
}

/// `DELETE /files?path=&recursive=`: 204. Checked with `stat` (a dangling link is 404, a link
/// to a directory needs `recursive`), then the entry itself is removed, a link never its
/// target; a failed removal is a 400.
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
        let meta =
            stat_followed(&layout, &path, &resolved.host).map_err(|e| io_error(&e, &path))?;
        if meta.is_dir() && !recursive {
            return Err(bad_request(
                "cannot delete directory without recursive flag",
            ));
        }
        let own_dir = std::fs::symlink_metadata(&resolved.host).is_ok_and(|m| m.is_dir());
        let result = if own_dir {
            std::fs::remove_dir_all(&resolved.host)
        } else {
            std::fs::remove_file(&resolved.host)
        };
        result.map_err(|e| bad_request(go_path_error("remove", &path, &e)))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A mode as the daemon reads it: octal digits only (`strconv.ParseUint(mode, 8, 32)`), of which
/// Go's `os.Chmod`/`os.Mkdir` apply the permission bits alone (setuid, setgid and sticky are
/// separate Go flags that a number never sets).
fn parse_mode(mode: &str) -> Result<u32, ApiError> {
    let digits_ok = !mode.is_empty() && mode.bytes().all(|b| (b'0'..=b'7').contains(&b));
    digits_ok
        .then(|| u32::from_str_radix(mode, 8).ok())
        .flatten()
        .map(|m| m & 0o777)
        .ok_or_else(|| bad_request("invalid mode format"))
}

/// `POST /files/folder?path=&mode=`: 201, parents created; an existing directory is fine. Any
/// failure to create is a 400, as `os.MkdirAll`'s error is in the daemon.
pub(crate) async fn create_folder(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<FileQuery>,
) -> Result<StatusCode, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let path = required(&q.path, "path")?.to_string();
    let mode = match q.mode.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => parse_mode(m)?,
        None => 0o755,
    };
    let resolved = target.layout.resolve(&path, true)?;
    blocking(move || {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(&resolved.host)
            .map_err(|e| bad_request(go_path_error("mkdir", &path, &e)))
    })
    .await?;
    Ok(StatusCode::CREATED)
}

/// `POST /files/move?source=&destination=`: 200. A missing source (a dangling link too) or
/// destination directory is 404, an existing destination 409 `destination already exists`, a
/// failed rename 400.
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
        stat_followed(&layout, &source, &from.host).map_err(|e| io_error(&e, &source))?;
        let parent = to.host.parent().unwrap_or(&to.host);
        std::fs::metadata(parent).map_err(|e| io_error(&e, &destination))?;
        if stat_followed(&layout, &destination, &to.host).is_ok() {
            return Err(ApiError::daemon(
                StatusCode::CONFLICT,
                codes::CONFLICT,
                "destination already exists",
            ));
        }
        std::fs::rename(&from.host, &to.host)
            .map_err(|e| bad_request(format!("failed to move file: {e}")))
    })
    .await?;
    Ok(StatusCode::OK)
}

/// A uid or gid as the daemon reads `owner`/`group`: a number (`-1` = leave unchanged), else a
/// user or group name; an unknown name is 400 `user not found` / `group not found`.
fn lookup_id(value: &str, what: &str) -> Result<Option<u32>, ApiError> {
    if let Ok(n) = value.parse::<i64>() {
        return match n {
            -1 => Ok(None),
            n => u32::try_from(n).map(Some).map_err(|_| {
                bad_request(format!("failed to change ownership: invalid {what} id {n}"))
            }),
        };
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
    found
        .map(Some)
        .ok_or_else(|| bad_request(format!("{what} not found")))
}

/// `POST /files/permissions?path=&owner=&group=&mode=`: 200, in the daemon's order: the path
/// must exist (404), then `mode` is parsed and applied, then `owner`/`group` looked up and
/// applied; so a valid mode is applied even when the owner turns out unknown. Failures to change
/// are 400.
pub(crate) async fn set_permissions(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<FileQuery>,
) -> Result<StatusCode, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let path = required(&q.path, "path")?.to_string();
    let resolved = target.layout.resolve(&path, true)?;
    let non_empty = |v: Option<String>| v.filter(|v| !v.is_empty());
    let (mode, owner, group) = (non_empty(q.mode), non_empty(q.owner), non_empty(q.group));
    blocking(move || {
        std::fs::metadata(&resolved.host).map_err(|e| io_error(&e, &path))?;
        if let Some(mode) = mode {
            let mode = parse_mode(&mode)?;
            std::fs::set_permissions(&resolved.host, std::fs::Permissions::from_mode(mode))
                .map_err(|e| {
                    bad_request(format!(
                        "failed to change mode: {}",
                        go_path_error("chmod", &path, &e)
                    ))
                })?;
        }
        if owner.is_none() && group.is_none() {
            return Ok(());
        }
        let uid = owner
            .as_deref()
            .map(|o| lookup_id(o, "user"))
            .transpose()?
            .flatten();
        let gid = group
            .as_deref()
            .map(|g| lookup_id(g, "group"))
            .transpose()?
            .flatten();
        std::os::unix::fs::chown(&resolved.host, uid, gid).map_err(|e| {
            bad_request(format!(
                "failed to change ownership: {}",
                go_path_error("chown", &path, &e)
            ))
        })
    })
    .await?;
    Ok(StatusCode::OK)
}

/// Longest line Go's `bufio.Scanner` returns by default: at a longer line the daemon's scan of
/// that file stops (the matches before it are kept).
const MAX_SCAN_LINE: usize = 64 * 1024;

/// The daemon's grep of one file: `None` for an empty or binary file (NUL in the first 512
/// bytes), else the 1-based numbers and text of the lines that contain `pattern`. Lines end at
/// `\n`, a `\r` before it is dropped, and scanning stops at a line of 64 KiB or more.
fn grep_file(host: &Path, pattern: &[u8]) -> Option<Vec<(u64, String)>> {
    let data = std::fs::read(host).ok()?;
    if data.is_empty() || data[..data.len().min(BINARY_SNIFF)].contains(&0) {
        return None;
    }
    let mut out = Vec::new();
    let mut rest = &data[..];
    let mut number = 0u64;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        if line.len() >= MAX_SCAN_LINE {
            break;
        }
        number += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.windows(pattern.len()).any(|w| w == pattern) {
            out.push((number, String::from_utf8_lossy(line).into_owned()));
        }
        rest = next;
    }
    Some(out)
}

/// `path` and `pattern` of find and search, both required.
fn path_and_pattern(q: FileQuery) -> Result<(String, String), ApiError> {
    match (
        q.path.filter(|s| !s.is_empty()),
        q.pattern.filter(|s| !s.is_empty()),
    ) {
        (Some(path), Some(pattern)) => Ok((path, pattern)),
        _ => Err(bad_request("path and pattern are required")),
    }
}

/// `GET /files/find?path=&pattern=`: every line containing `pattern` (literally) in the regular
/// files of the walk from `path` (the root too, when it is a file), reported under the path as
/// the client spelled it. A root that does not exist finds nothing.
pub(crate) async fn find_in_files(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<FileQuery>,
) -> Result<Json<Vec<Match>>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let (path, pattern) = path_and_pattern(q)?;
    let resolved = target.layout.resolve(&path, false)?;
    let matches = blocking(move || {
        let mut matches = Vec::new();
        go_walk(&resolved.host, &path, &mut |entry| {
            if !entry.meta.is_file() {
                return;
            }
            for (line, content) in grep_file(entry.host, pattern.as_bytes()).unwrap_or_default() {
                matches.push(Match {
                    file: entry.shown.to_string(),
                    line,
                    content,
                });
            }
        });
        Ok(matches)
    })
    .await?;
    Ok(Json(matches))
}

/// `GET /files/search?path=&pattern=`: every entry of the walk from `path` (the root, files,
/// directories and symlinks alike) whose own *name* matches `pattern` with Go's
/// `filepath.Match`, so `*.go` finds Go files at any depth and a pattern with `/` finds
/// nothing. A malformed pattern or a missing root gives an empty list, as in the daemon.
pub(crate) async fn search_files(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<FileQuery>,
) -> Result<Json<SearchFilesResponse>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let (path, pattern) = path_and_pattern(q)?;
    let resolved = target.layout.resolve(&path, false)?;
    let files = blocking(move || {
        let mut files = Vec::new();
        go_walk(&resolved.host, &path, &mut |entry| {
            if go_match(&pattern, entry.name) {
                files.push(entry.shown.to_string());
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

/// Reads a file for `replace`, failing with the text Go's `os.ReadFile` gives.
fn read_for_replace(host: &Path, shown: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut file = std::fs::File::open(host).map_err(|e| go_path_error("open", shown, &e))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| go_path_error("read", shown, &e))?;
    Ok(data)
}

/// `POST /files/replace` `{files, pattern, newValue}`: every occurrence of the literal `pattern`
/// replaced in each file; a file that cannot be read or written is reported in its result with
/// Go's error text, not as a failed request. `pattern` must not be empty (the daemon's
/// validator requires it).
pub(crate) async fn replace_in_files(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Json<Vec<ReplaceResult>>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let req: ReplaceRequest = parse_json(&body)?;
    if req.pattern.is_empty() {
        return Err(missing_field(
            "invalid request body: ",
            "ReplaceRequest",
            "Pattern",
        ));
    }
    let layout = target.layout.clone();
    let results = blocking(move || {
        let mut results = Vec::with_capacity(req.files.len());
        for file in req.files {
            let outcome = layout
                .resolve(&file, true)
                .map_err(|e| e.message)
                .and_then(|r| {
                    let data = read_for_replace(&r.host, &file)?;
                    let (new, _) =
                        replace_bytes(&data, req.pattern.as_bytes(), req.new_value.as_bytes());
                    std::fs::write(&r.host, new).map_err(|e| go_path_error("open", &file, &e))
                });
            results.push(ReplaceResult {
                file: Some(file),
                success: Some(outcome.is_ok()),
                error: outcome.err(),
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
        return Err(bad_request("path must be a file"));
    }
    Ok((file, meta.len()))
}

/// `GET /files/download?path=`: the file's bytes, streamed, with the daemon's headers
/// (`attachment` with a Latin-1 `filename` and an RFC 5987 `filename*`), then served as Go's
/// `http.ServeFile` serves it (ranges, conditional requests; see [`serve_file`]).
pub(crate) async fn download_file(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<FileQuery>,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let path = required(&q.path, "path")?.to_string();
    let (file, len) = open_for_download(&target.layout, &path).await?;
    let modified = file
        .metadata()
        .await
        .and_then(|m| m.modified())
        .map_err(|e| io_error(&e, &path))?;
    let name = lstat_name(&go_clean(&path));
    let mut disposition = b"attachment; filename=\"".to_vec();
    disposition.extend(latin1_filename(&name));
    disposition.extend_from_slice(b"\"; filename*=utf-8''");
    disposition.extend(
        utf8_percent_encode(&name, ATTR_CHAR_ESCAPES)
            .to_string()
            .into_bytes(),
    );
    let disposition = HeaderValue::from_bytes(&disposition)
        .map_err(|e| ApiError::daemon_internal("building the download headers", e))?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    for (name, value) in [
        ("content-description", "File Transfer"),
        ("content-type", "application/octet-stream"),
        ("content-transfer-encoding", "binary"),
        ("expires", "0"),
        ("cache-control", "must-revalidate"),
        ("pragma", "public"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    Ok(serve_file(&request_headers, headers, file, len, modified).await)
}

/// Stream `body` into `dest` (parents created 0755): written to a temporary file next to it,
/// then renamed over it, so a reader never sees half a file; an existing file's mode is kept.
/// Returns the bytes written.
pub(crate) async fn write_stream<S, E>(dest: &Path, mut body: S) -> io::Result<u64>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let existing = tokio::fs::metadata(dest).await.ok();
    if existing.as_ref().is_some_and(|m| m.is_dir()) {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "destination is a directory",
        ));
    }
    // The daemon truncates an existing file in place (`os.Create`), so it keeps its mode; a
    // new one gets 0644.
    let mode = existing.map_or(0o644, |m| m.permissions().mode() & 0o7777);
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
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .await?;
    drop(file);
    let dest = dest.to_path_buf();
    tokio::task::spawn_blocking(move || temp_path.persist(&dest).map_err(|e| e.error))
        .await
        .map_err(io::Error::other)??;
    Ok(written)
}

/// Writes the multipart field `file` of `body` to `dest`; the errors Go's `c.FormFile("file")`
/// gives when the body is not multipart or has no such field.
async fn write_file_field(
    dest: &Path,
    content_type: &str,
    body: Body,
    write_err: impl Fn(io::Error) -> ApiError,
) -> Result<(), ApiError> {
    if !content_type.starts_with("multipart/form-data") {
        return Err(bad_request(
            "request Content-Type isn't multipart/form-data",
        ));
    }
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| bad_request(format!("invalid multipart form: {e}")))?;
    let mut multipart = multer::Multipart::new(body.into_data_stream(), boundary);
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| bad_request(format!("invalid multipart form: {e}")))?
            .ok_or_else(|| bad_request("http: no such file"))?;
        if field.name() == Some("file") {
            write_stream(dest, field).await.map_err(write_err)?;
            return Ok(());
        }
    }
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// `POST /files/upload?path=`: multipart field `file` only (else 400), parents created;
/// 200 with no body, as the v0.190.0 daemon answers.
pub(crate) async fn upload_file(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<FileQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let path = required(&q.path, "path")?.to_string();
    let resolved = target.layout.resolve(&path, true)?;
    let write_err = |e: io::Error| bad_request(go_path_error("open", &path, &e));
    write_file_field(&resolved.host, content_type(&headers), body, write_err).await?;
    Ok(StatusCode::OK)
}

/// `POST /files/upload-v2?path=` (newer daemons): one file, as multipart field `file` or as
/// the raw body; 200 `{name, path, type}`.
pub(crate) async fn upload_file_v2(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<FileQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<UploadedFile>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let path = required(&q.path, "path")?.to_string();
    let resolved = target.layout.resolve(&path, true)?;
    let content_type = content_type(&headers);
    let write_err = |e: io::Error| bad_request(format!("failed to write {path}: {e}"));
    if content_type.starts_with("multipart/form-data") {
        write_file_field(&resolved.host, content_type, body, write_err).await?;
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
            grep_file(&t, b"alpha").unwrap(),
            vec![(1, "alpha".to_string()), (2, "beta alpha".to_string())]
        );
        let b = dir.path().join("b");
        std::fs::write(&b, b"alpha\0").unwrap();
        assert!(grep_file(&b, b"alpha").is_none());
        // Go's scanner gives up at a line of 64 KiB: matches before it count, none after.
        let long = dir.path().join("long");
        let mut data = b"alpha 1\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_SCAN_LINE));
        data.extend_from_slice(b"\nalpha 3\n");
        std::fs::write(&long, data).unwrap();
        assert_eq!(
            grep_file(&long, b"alpha").unwrap(),
            vec![(1, "alpha 1".to_string())]
        );
        let just_fits = dir.path().join("fits");
        let mut data = vec![b'x'; MAX_SCAN_LINE - 1];
        data.extend_from_slice(b"\nalpha\n");
        std::fs::write(&just_fits, data).unwrap();
        assert_eq!(
            grep_file(&just_fits, b"alpha").unwrap(),
            vec![(2, "alpha".to_string())]
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert!(grep_file(&empty, b"alpha").is_none());
    }

    #[test]
    fn replace_counts_and_rewrites() {
        let (out, n) = replace_bytes(b"a-b-a", b"a", b"xy");
        assert_eq!(out, b"xy-b-xy");
        assert_eq!(n, 2);
    }
}
