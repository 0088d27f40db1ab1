//! The optional file API of a sandbox.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{Result, SandboxError};
use crate::search::{GlobRequest, GlobResult, GrepRequest, GrepResult};

/// What kind of filesystem object a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link (not followed).
    Symlink,
    /// Anything else (socket, device, fifo).
    Other,
}

/// Metadata of one path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct FileStat {
    /// The path as the sandbox names it.
    pub path: String,
    /// File, directory, …
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits (e.g. `0o644`), where known.
    pub mode: Option<u32>,
    /// Last modification, where known.
    pub modified: Option<DateTime<Utc>>,
}

impl FileStat {
    /// A stat with the required fields.
    pub fn new(path: impl Into<String>, kind: FileKind, size: u64) -> Self {
        FileStat {
            path: path.into(),
            kind,
            size,
            mode: None,
            modified: None,
        }
    }

    /// Is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Directory
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct DirEntry {
    /// The entry's file name (no directory part).
    pub name: String,
    /// Its metadata; `stat.path` is the full path.
    pub stat: FileStat,
}

impl DirEntry {
    /// An entry.
    pub fn new(name: impl Into<String>, stat: FileStat) -> Self {
        DirEntry {
            name: name.into(),
            stat,
        }
    }
}

/// Files inside the sandbox. Paths are POSIX strings: absolute, or relative to the sandbox's
/// working directory. Commands and this API see the same files.
///
/// Errors: a missing path is [`crate::SandboxError::NotFound`]; a path the sandbox may not touch
/// (outside its root, through an escaping symlink) is
/// [`crate::SandboxError::PermissionDenied`]; a malformed path is
/// [`crate::SandboxError::InvalidArgument`].
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait SandboxFilesystem: Send + Sync {
    /// Read a whole file.
    async fn read_file(&self, path: &str) -> Result<Vec<u8>>;
    /// Create or replace a file, creating missing parent directories.
    async fn write_file(&self, path: &str, data: &[u8]) -> Result<()>;
    /// List a directory (not recursive), sorted by name.
    async fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>>;
    /// Metadata of a path (symlinks not followed).
    async fn stat(&self, path: &str) -> Result<FileStat>;
    /// Create a directory and any missing parents; an existing directory is fine.
    async fn create_dir(&self, path: &str) -> Result<()>;
    /// Remove a file, or a directory (with everything in it when `recursive`).
    async fn remove(&self, path: &str, recursive: bool) -> Result<()>;
    /// Move or rename, replacing an existing file at `to`.
    async fn rename(&self, from: &str, to: &str) -> Result<()>;

    /// Search file contents under `request.path` with the rules of [`crate::search`]: the
    /// matching lines (and context) per file, counts exact, lines capped at `max_lines`.
    ///
    /// Errors: an invalid pattern or glob is `InvalidArgument` naming the field; a missing path
    /// `NotFound`; a path outside what the sandbox may touch `PermissionDenied`. Providers
    /// without a search return `Unsupported` (the default).
    async fn grep(&self, request: &GrepRequest) -> Result<GrepResult> {
        request.validate()?;
        Err(SandboxError::unsupported("filesystem.grep", "this"))
    }

    /// The files (and symlinks) under `request.path` whose relative paths match
    /// `request.pattern`, with the rules of [`crate::search`]. Errors as for
    /// [`SandboxFilesystem::grep`]; `Unsupported` by default.
    async fn glob(&self, request: &GlobRequest) -> Result<GlobResult> {
        request.validate()?;
        Err(SandboxError::unsupported("filesystem.glob", "this"))
    }
}
