//! The sandbox's file API over the toolbox file routes: the same disk the commands see.

use std::sync::Arc;

use async_trait::async_trait;
use daytona_api::toolbox::FileInfo;
use workspace_core::{
    DirEntry, FileKind, FileStat, GlobRequest, GlobResult, GrepRequest, GrepResult, Result,
    SandboxError, SandboxFilesystem,
};

use crate::error::DaytonaError;

use super::shared::{OpError, Shared, download, file_error};

/// [`SandboxFilesystem`] of a [`super::DaytonaSandbox`]. Relative paths resolve against the
/// sandbox's working directory; every call starts the sandbox lazily and is retried once if the
/// sandbox stopped underneath.
pub(crate) struct DaytonaFiles {
    shared: Arc<Shared>,
}

fn check_path(path: &str) -> Result<()> {
    if path.trim().is_empty() {
        return Err(SandboxError::invalid("path", "must not be empty"));
    }
    if path.contains('\0') {
        return Err(SandboxError::invalid("path", "contains a NUL byte"));
    }
    Ok(())
}

fn kind_of(info: &FileInfo) -> FileKind {
    if info.is_dir {
        return FileKind::Directory;
    }
    // Go's FileMode string: `-` regular, `L` symlink, `d` directory, other letters for
    // devices, pipes and sockets.
    match info.mode.chars().next() {
        Some('-') | None => FileKind::File,
        Some('L') | Some('l') => FileKind::Symlink,
        Some('d') => FileKind::Directory,
        Some(_) => FileKind::Other,
    }
}

fn stat_of(info: &FileInfo, path: String) -> FileStat {
    let mut stat = FileStat::new(path, kind_of(info), info.size);
    stat.mode = u32::from_str_radix(info.permissions.trim_start_matches("0o"), 8).ok();
    stat.modified = chrono::DateTime::parse_from_rfc3339(&info.modified_at)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc));
    stat
}

impl DaytonaFiles {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        DaytonaFiles { shared }
    }
}

#[async_trait]
impl SandboxFilesystem for DaytonaFiles {
    async fn read_file(&self, path: &str) -> Result<Vec<u8>> {
        check_path(path)?;
        let shared = &*self.shared;
        shared
            .with_retry(|attached| async move {
                let p = shared.absolute(&attached, path).await?;
                Ok(download(&attached, &p).await?.to_vec())
            })
            .await
    }

    async fn write_file(&self, path: &str, data: &[u8]) -> Result<()> {
        check_path(path)?;
        let shared = &*self.shared;
        let data = bytes::Bytes::copy_from_slice(data);
        shared
            .with_retry(|attached| {
                let data = data.clone();
                async move {
                    let p = shared.absolute(&attached, path).await?;
                    attached
                        .sandbox
                        .fs()
                        .upload_bytes(data, &p)
                        .await
                        .map_err(|e| file_error(e, &p))
                }
            })
            .await
    }

    async fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        check_path(path)?;
        let shared = &*self.shared;
        shared
            .with_retry(|attached| async move {
                let dir = shared.absolute(&attached, path).await?;
                let infos = attached
                    .sandbox
                    .fs()
                    .list_files(&dir)
                    .await
                    .map_err(|e| file_error(e, &dir))?;
                let mut entries: Vec<DirEntry> = infos
                    .iter()
                    .map(|info| {
                        let full = info.path.clone().unwrap_or_else(|| {
                            format!("{}/{}", dir.trim_end_matches('/'), info.name)
                        });
                        DirEntry::new(info.name.clone(), stat_of(info, full))
                    })
                    .collect();
                entries.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(entries)
            })
            .await
    }

    async fn stat(&self, path: &str) -> Result<FileStat> {
        check_path(path)?;
        let shared = &*self.shared;
        shared
            .with_retry(|attached| async move {
                let p = shared.absolute(&attached, path).await?;
                let info = attached
                    .sandbox
                    .fs()
                    .get_file_info(&p)
                    .await
                    .map_err(|e| file_error(e, &p))?;
                Ok(stat_of(&info, p))
            })
            .await
    }

    async fn create_dir(&self, path: &str) -> Result<()> {
        check_path(path)?;
        let shared = &*self.shared;
        shared
            .with_retry(|attached| async move {
                let p = shared.absolute(&attached, path).await?;
                attached
                    .sandbox
                    .fs()
                    .create_folder(&p, "755")
                    .await
                    .map_err(|e| file_error(e, &p))
            })
            .await
    }

    async fn remove(&self, path: &str, recursive: bool) -> Result<()> {
        check_path(path)?;
        let shared = &*self.shared;
        shared
            .with_retry(|attached| async move {
                let p = shared.absolute(&attached, path).await?;
                let fs = attached.sandbox.fs();
                match fs.delete_file(&p, recursive).await {
                    Ok(()) => Ok(()),
                    // Daytona refuses every directory without `recursive`, empty ones too;
                    // removing an empty directory is what a non-recursive remove means.
                    Err(DaytonaError::BadRequest(refusal)) if !recursive => {
                        let info = fs.get_file_info(&p).await.map_err(|e| file_error(e, &p))?;
                        if !info.is_dir {
                            return Err(file_error(DaytonaError::BadRequest(refusal), &p));
                        }
                        let entries = fs.list_files(&p).await.map_err(|e| file_error(e, &p))?;
                        if !entries.is_empty() {
                            return Err(OpError::Final(SandboxError::invalid(
                                format!("path {p}"),
                                "the directory is not empty (remove it recursively)",
                            )));
                        }
                        fs.delete_file(&p, true)
                            .await
                            .map_err(|e| file_error(e, &p))
                    }
                    Err(e) => Err(file_error(e, &p)),
                }
            })
            .await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        check_path(from)?;
        check_path(to)?;
        let shared = &*self.shared;
        shared
            .with_retry(|attached| async move {
                let src = shared.absolute(&attached, from).await?;
                let dst = shared.absolute(&attached, to).await?;
                let fs = attached.sandbox.fs();
                match fs.move_files(&src, &dst).await {
                    Ok(()) => Ok(()),
                    // Daytona refuses to move onto an existing path; replacing a file is what
                    // a rename means, so make room and move again.
                    Err(DaytonaError::Conflict(_)) => {
                        let existing = fs
                            .get_file_info(&dst)
                            .await
                            .map_err(|e| file_error(e, &dst))?;
                        if existing.is_dir {
                            return Err(OpError::Final(SandboxError::AlreadyExists {
                                what: format!("directory {dst}"),
                            }));
                        }
                        fs.delete_file(&dst, false)
                            .await
                            .map_err(|e| file_error(e, &dst))?;
                        fs.move_files(&src, &dst)
                            .await
                            .map_err(|e| file_error(e, &src))
                    }
                    Err(e) => Err(file_error(e, &src)),
                }
            })
            .await
    }

    async fn grep(&self, request: &GrepRequest) -> Result<GrepResult> {
        super::search::grep(&self.shared, request).await
    }

    async fn glob(&self, request: &GlobRequest) -> Result<GlobResult> {
        super::search::glob(&self.shared, request).await
    }
}
