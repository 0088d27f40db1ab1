//! `sandbox.fs()`: file transfer and file operations in one sandbox.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use tokio::io::AsyncWriteExt;

use daytona_api::toolbox::{
    FileInfo, FilesDownloadRequest, Match, ReplaceRequest, ReplaceResult, SearchFilesResponse,
};

use crate::config::DEFAULT_TRANSFER_TIMEOUT;
use crate::error::DaytonaError;
use crate::multipart::{PartSink, read_bulk_download};
use crate::retry::Replay;
use crate::toolbox::Toolbox;
use crate::transport::{Deadline, FormFactory};

/// Where an upload's bytes come from.
#[derive(Debug, Clone)]
pub enum UploadSource {
    /// Bytes in memory.
    Bytes(Bytes),
    /// A local file, streamed from disk (never loaded whole).
    Path(PathBuf),
}

/// One file to upload.
#[derive(Debug, Clone)]
pub struct FileUpload {
    /// The content.
    pub source: UploadSource,
    /// Absolute (or work-dir relative) destination path in the sandbox.
    pub destination: String,
}

impl FileUpload {
    /// Uploads bytes.
    pub fn bytes(data: impl Into<Bytes>, destination: impl Into<String>) -> Self {
        FileUpload {
            source: UploadSource::Bytes(data.into()),
            destination: destination.into(),
        }
    }

    /// Uploads a local file.
    pub fn path(local: impl Into<PathBuf>, destination: impl Into<String>) -> Self {
        FileUpload {
            source: UploadSource::Path(local.into()),
            destination: destination.into(),
        }
    }
}

/// Owner, group and mode for [`FileSystem::set_file_permissions`]; unset fields are unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilePermissions {
    /// User name or uid.
    pub owner: Option<String>,
    /// Group name or gid.
    pub group: Option<String>,
    /// Octal mode, e.g. `755`.
    pub mode: Option<String>,
}

/// File operations in one sandbox. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FileSystem {
    pub(crate) tb: Toolbox,
}

impl FileSystem {
    /// Uploads files in one multipart request (`POST /files/bulk-upload`): for each `i`, a text
    /// field `files[i].path` and a file part `files[i].file` named after the destination.
    /// Parent directories are created and existing files overwritten. Local files are streamed.
    ///
    /// Uploads overwrite, so a failed attempt is retried (local files are reopened for it).
    pub async fn upload_files(&self, files: Vec<FileUpload>) -> Result<(), DaytonaError> {
        if files.is_empty() {
            return Ok(());
        }
        for (i, f) in files.iter().enumerate() {
            if f.destination.trim().is_empty() {
                return Err(DaytonaError::invalid(
                    format!("files[{i}].destination"),
                    "must not be empty",
                ));
            }
            if let UploadSource::Path(p) = &f.source {
                let meta = tokio::fs::metadata(p)
                    .await
                    .map_err(|e| DaytonaError::io(format!("reading {}", p.display()), e))?;
                if !meta.is_file() {
                    return Err(DaytonaError::invalid(
                        format!("files[{i}].source"),
                        format!("{} is not a regular file", p.display()),
                    ));
                }
            }
        }
        let files = Arc::new(files);
        let factory: FormFactory = Arc::new(move || {
            let files = Arc::clone(&files);
            Box::pin(async move { build_form(&files).await })
        });
        let url = self.tb.url(&["files", "bulk-upload"]).await?;
        let call = self
            .tb
            .call("fs.upload", Method::POST, url)
            .multipart(factory)
            .replay(Replay::Idempotent)
            .deadline(Deadline::After(DEFAULT_TRANSFER_TIMEOUT));
        self.tb.transport.call(&call).await?;
        Ok(())
    }

    /// Uploads bytes to `destination`.
    pub async fn upload_bytes(
        &self,
        data: impl Into<Bytes>,
        destination: &str,
    ) -> Result<(), DaytonaError> {
        self.upload_files(vec![FileUpload::bytes(data, destination)])
            .await
    }

    /// Uploads the local file `local` to `destination`, streaming it.
    pub async fn upload_file(
        &self,
        local: impl AsRef<Path>,
        destination: &str,
    ) -> Result<(), DaytonaError> {
        self.upload_files(vec![FileUpload::path(local.as_ref(), destination)])
            .await
    }

    /// Downloads files in one request (`POST /files/bulk-download`), into memory.
    ///
    /// The outer error is for the request as a whole; each path then has its content or its own
    /// error ([`DaytonaError::FileNotFound`], [`DaytonaError::MissingFile`], …), in request order.
    pub async fn download_files(
        &self,
        paths: &[&str],
    ) -> Result<Vec<Result<Bytes, DaytonaError>>, DaytonaError> {
        let mut sink = crate::multipart::MemorySink::new(paths.len());
        let outcomes = self.bulk_download(paths, &mut sink).await?;
        Ok(outcomes
            .into_iter()
            .zip(sink.files)
            .map(|(o, buf): (Result<(), DaytonaError>, BytesMut)| o.map(|()| buf.freeze()))
            .collect())
    }

    /// Downloads one file into memory.
    pub async fn download_bytes(&self, path: &str) -> Result<Bytes, DaytonaError> {
        single(self.download_files(&[path]).await?, path)
    }

    /// Downloads one file to a local path, streaming it to disk (parent directories are
    /// created). Nothing is left at `local` when the download fails.
    pub async fn download_to_path(
        &self,
        path: &str,
        local: impl AsRef<Path>,
    ) -> Result<(), DaytonaError> {
        let local = local.as_ref().to_path_buf();
        single(
            self.download_files_to(&[(path, local.as_path())]).await?,
            path,
        )
    }

    /// Downloads several files to local paths in one request, streaming each to disk.
    /// Returns one outcome per pair, in order; the outer error is for the whole request.
    pub async fn download_files_to(
        &self,
        pairs: &[(&str, &Path)],
    ) -> Result<Vec<Result<(), DaytonaError>>, DaytonaError> {
        let paths: Vec<&str> = pairs.iter().map(|(r, _)| *r).collect();
        let mut sink = FileSink {
            targets: pairs.iter().map(|(_, l)| l.to_path_buf()).collect(),
            open: None,
        };
        let result = self.bulk_download(&paths, &mut sink).await;
        if result.is_err() {
            sink.discard_partial().await;
        }
        result
    }

    async fn bulk_download<K: PartSink + Send>(
        &self,
        paths: &[&str],
        sink: &mut K,
    ) -> Result<Vec<Result<(), DaytonaError>>, DaytonaError> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(i) = paths.iter().position(|p| p.trim().is_empty()) {
            return Err(DaytonaError::invalid(
                format!("paths[{i}]"),
                "must not be empty",
            ));
        }
        let requested: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        let url = self.tb.url(&["files", "bulk-download"]).await?;
        let call = self
            .tb
            .call("fs.download", Method::POST, url)
            .json(&FilesDownloadRequest {
                paths: requested.clone(),
            })?
            .replay(Replay::Idempotent)
            .deadline(Deadline::After(DEFAULT_TRANSFER_TIMEOUT));
        let resp = self.tb.transport.call_streaming(&call).await?;
        let content_type = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let boundary = multer::parse_boundary(&content_type).map_err(|_| {
            DaytonaError::decode(
                "fs.download",
                format!("expected a multipart/form-data answer, got content type {content_type:?}"),
            )
        })?;
        read_bulk_download(resp.bytes_stream(), &boundary, &requested, sink).await
    }

    /// Lists a directory.
    pub async fn list_files(&self, path: &str) -> Result<Vec<FileInfo>, DaytonaError> {
        let url = self.tb.url_query(&["files"], &[("path", path)]).await?;
        let call = self.tb.call("fs.list", Method::GET, url);
        self.tb.transport.call_json(&call).await
    }

    /// Details of one file or directory.
    pub async fn get_file_info(&self, path: &str) -> Result<FileInfo, DaytonaError> {
        let url = self
            .tb
            .url_query(&["files", "info"], &[("path", path)])
            .await?;
        let call = self.tb.call("fs.info", Method::GET, url);
        self.tb.transport.call_json(&call).await
    }

    /// Creates a directory (and its parents) with an octal `mode` such as `755`.
    pub async fn create_folder(&self, path: &str, mode: &str) -> Result<(), DaytonaError> {
        if mode.is_empty() || !mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(DaytonaError::invalid(
                "mode",
                format!("`{mode}` is not an octal mode"),
            ));
        }
        let url = self
            .tb
            .url_query(&["files", "folder"], &[("path", path), ("mode", mode)])
            .await?;
        // Creating a directory that exists is fine, so a replay is harmless.
        let call = self
            .tb
            .call("fs.mkdir", Method::POST, url)
            .replay(Replay::Idempotent);
        self.tb.transport.call(&call).await?;
        Ok(())
    }

    /// Deletes a file, or a directory with `recursive`.
    pub async fn delete_file(&self, path: &str, recursive: bool) -> Result<(), DaytonaError> {
        let mut query = vec![("path", path)];
        if recursive {
            query.push(("recursive", "true"));
        }
        let url = self.tb.url_query(&["files"], &query).await?;
        let call = self.tb.call("fs.delete", Method::DELETE, url);
        let (result, stats) = self.tb.transport.call_with_stats(&call).await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() && stats.unknown_outcome => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Moves or renames. Not replayed after an unknown outcome (the source would be gone).
    pub async fn move_files(&self, source: &str, destination: &str) -> Result<(), DaytonaError> {
        let url = self
            .tb
            .url_query(
                &["files", "move"],
                &[("source", source), ("destination", destination)],
            )
            .await?;
        let call = self.tb.call("fs.move", Method::POST, url);
        self.tb.transport.call(&call).await?;
        Ok(())
    }

    /// Changes owner, group and/or mode.
    pub async fn set_file_permissions(
        &self,
        path: &str,
        permissions: &FilePermissions,
    ) -> Result<(), DaytonaError> {
        if let Some(mode) = &permissions.mode
            && (mode.is_empty() || !mode.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        {
            return Err(DaytonaError::invalid(
                "mode",
                format!("`{mode}` is not an octal mode"),
            ));
        }
        let mut query = vec![("path", path)];
        if let Some(o) = &permissions.owner {
            query.push(("owner", o));
        }
        if let Some(g) = &permissions.group {
            query.push(("group", g));
        }
        if let Some(m) = &permissions.mode {
            query.push(("mode", m));
        }
        let url = self.tb.url_query(&["files", "permissions"], &query).await?;
        let call = self
            .tb
            .call("fs.chmod", Method::POST, url)
            .replay(Replay::Idempotent);
        self.tb.transport.call(&call).await?;
        Ok(())
    }

    /// Lines containing `pattern` in files under `path` (grep).
    pub async fn find_files(&self, path: &str, pattern: &str) -> Result<Vec<Match>, DaytonaError> {
        let url = self
            .tb
            .url_query(&["files", "find"], &[("path", path), ("pattern", pattern)])
            .await?;
        let call = self.tb.call("fs.find", Method::GET, url);
        self.tb.transport.call_json(&call).await
    }

    /// Paths under `path` whose names match the glob `pattern`.
    pub async fn search_files(
        &self,
        path: &str,
        pattern: &str,
    ) -> Result<Vec<String>, DaytonaError> {
        let url = self
            .tb
            .url_query(
                &["files", "search"],
                &[("path", path), ("pattern", pattern)],
            )
            .await?;
        let call = self.tb.call("fs.search", Method::GET, url);
        let resp: SearchFilesResponse = self.tb.transport.call_json(&call).await?;
        Ok(resp.files)
    }

    /// Replaces `pattern` with `new_value` in each file; one result per file.
    /// Not replayed after an unknown outcome (a second pass could change text again).
    pub async fn replace_in_files(
        &self,
        files: &[&str],
        pattern: &str,
        new_value: &str,
    ) -> Result<Vec<ReplaceResult>, DaytonaError> {
        if pattern.is_empty() {
            return Err(DaytonaError::invalid("pattern", "must not be empty"));
        }
        let url = self.tb.url(&["files", "replace"]).await?;
        let call = self
            .tb
            .call("fs.replace", Method::POST, url)
            .json(&ReplaceRequest {
                files: files.iter().map(|f| f.to_string()).collect(),
                pattern: pattern.to_string(),
                new_value: new_value.to_string(),
            })?;
        self.tb.transport.call_json(&call).await
    }
}

fn single<T>(mut outcomes: Vec<Result<T, DaytonaError>>, path: &str) -> Result<T, DaytonaError> {
    match outcomes.pop() {
        Some(r) if outcomes.is_empty() => r,
        _ => Err(DaytonaError::MissingFile {
            path: path.to_string(),
        }),
    }
}

async fn build_form(files: &[FileUpload]) -> Result<Form, DaytonaError> {
    let mut form = Form::new();
    for (i, f) in files.iter().enumerate() {
        let part = match &f.source {
            UploadSource::Bytes(b) => {
                Part::stream_with_length(reqwest::Body::from(b.clone()), b.len() as u64)
            }
            UploadSource::Path(p) => {
                let file = tokio::fs::File::open(p)
                    .await
                    .map_err(|e| DaytonaError::io(format!("opening {}", p.display()), e))?;
                let len = file
                    .metadata()
                    .await
                    .map_err(|e| DaytonaError::io(format!("reading {}", p.display()), e))?
                    .len();
                Part::stream_with_length(reqwest::Body::from(file), len)
            }
        };
        let part = part
            .file_name(f.destination.clone())
            .mime_str("application/octet-stream")
            .map_err(|e| DaytonaError::invalid("upload", e.to_string()))?;
        form = form
            .text(format!("files[{i}].path"), f.destination.clone())
            .part(format!("files[{i}].file"), part);
    }
    Ok(form)
}

/// Streams each file part to its local path.
struct FileSink {
    targets: Vec<PathBuf>,
    open: Option<(usize, tokio::fs::File)>,
}

impl FileSink {
    /// Removes a file whose part did not finish.
    async fn discard_partial(&mut self) {
        if let Some((i, file)) = self.open.take() {
            drop(file);
            let _ = tokio::fs::remove_file(&self.targets[i]).await;
        }
    }
}

impl PartSink for FileSink {
    async fn begin(&mut self, index: usize) -> Result<(), DaytonaError> {
        let path = &self.targets[index];
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| DaytonaError::io(format!("creating {}", parent.display()), e))?;
        }
        let file = tokio::fs::File::create(path)
            .await
            .map_err(|e| DaytonaError::io(format!("creating {}", path.display()), e))?;
        self.open = Some((index, file));
        Ok(())
    }

    async fn chunk(&mut self, index: usize, bytes: Bytes) -> Result<(), DaytonaError> {
        match &mut self.open {
            Some((i, file)) if *i == index => file.write_all(&bytes).await.map_err(|e| {
                DaytonaError::io(format!("writing {}", self.targets[index].display()), e)
            }),
            _ => Err(DaytonaError::decode(
                "fs.download",
                "file data outside a file part",
            )),
        }
    }

    async fn end(&mut self, _index: usize) -> Result<(), DaytonaError> {
        if let Some((i, file)) = &mut self.open
            && let Err(e) = file.flush().await
        {
            // The file stays registered as open, so `discard_partial` removes it.
            let path = self.targets[*i].display().to_string();
            return Err(DaytonaError::io(format!("writing {path}"), e));
        }
        self.open = None;
        Ok(())
    }
}
