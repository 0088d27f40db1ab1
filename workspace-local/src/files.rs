//! A [`SandboxFilesystem`] confined to one root directory of the host.
//!
//! Paths are POSIX strings: relative ones are resolved against the root, absolute ones must lie
//! inside it. Each path is resolved the way the kernel would (following every symlink, `..`
//! applied to the resolved directory) with a not-yet-existing tail resolved lexically, and the
//! result must stay inside the root, or the operation fails with
//! [`SandboxError::PermissionDenied`] before touching anything. Operations that act on a link
//! itself (`stat`, `remove`, `rename`) use the resolved parent plus the final name, and the link's
//! own target must stay inside the root too.
//!
//! Choices, documented because callers see them:
//! - `remove` of a non-empty directory without `recursive` is `InvalidArgument` (`path`).
//! - `rename` creates missing parent directories of `to`, like `write_file`.
//! - The root itself cannot be removed or renamed (`PermissionDenied`).
//!
//! The confinement is about the file API being predictable, not a security boundary: commands in
//! a local sandbox run unconfined as the same user, and one of them can swap a directory for a
//! symlink between our check and our use.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use workspace_core::{
    DirEntry, FileKind, FileStat, GlobRequest, GlobResult, GrepRequest, GrepResult, Result,
    SandboxError, SandboxFilesystem,
};

/// How many symlinks one resolution may follow (Linux's own limit).
const MAX_SYMLINKS: usize = 40;

/// Files under a root directory, with every path confined to it.
#[derive(Debug, Clone)]
pub struct LocalFilesystem {
    /// The root as the caller named it (absolute, normalised): paths are reported under it.
    root: PathBuf,
    /// The root with every symlink resolved: containment is checked against this.
    canonical: PathBuf,
}

/// A path resolved against the root.
#[derive(Debug)]
struct Resolved {
    /// Fully resolved, following a final symlink: what reads and writes touch.
    target: PathBuf,
    /// Resolved parent plus the final name: what acts on a link itself.
    entry: PathBuf,
    /// How the sandbox names the path.
    display: String,
}

impl LocalFilesystem {
    /// A filesystem rooted at `root`, which must be an existing directory.
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let given = root.as_ref();
        let absolute = if given.is_absolute() {
            given.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| SandboxError::io("reading the current directory", e))?
                .join(given)
        };
        let canonical = fs::canonicalize(&absolute).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                SandboxError::not_found(format!("root directory {}", absolute.display()))
            }
            _ => SandboxError::io(
                format!("resolving root directory {}", absolute.display()),
                e,
            ),
        })?;
        if !canonical.is_dir() {
            return Err(SandboxError::invalid(
                "root",
                format!("{} is not a directory", absolute.display()),
            ));
        }
        Ok(LocalFilesystem {
            root: lexical_normalize(&absolute),
            canonical,
        })
    }

    /// The root as it was named.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The root with symlinks resolved.
    pub fn canonical_root(&self) -> &Path {
        &self.canonical
    }

    /// Resolve `path` (argument `field`) to a location inside the root.
    fn resolve(&self, field: &str, path: &str) -> Result<Resolved> {
        if path.is_empty() {
            return Err(SandboxError::invalid(field, "must not be empty"));
        }
        if path.contains('\0') {
            return Err(SandboxError::invalid(field, "contains a NUL byte"));
        }
        let given = Path::new(path);
        let absolute = if given.is_absolute() {
            given.to_path_buf()
        } else {
            self.root.join(given)
        };
        let display = lexical_normalize(&absolute).to_string_lossy().into_owned();
        let resolve = |p: &Path| resolve_following(p).map_err(|e| map_io(e, "resolving", path));
        let target = resolve(&absolute)?;
        let mut entry = match (absolute.file_name(), absolute.parent()) {
            // `file_name` is None for paths ending in `..`: those name a directory, not a link.
            (Some(name), Some(parent)) => resolve(parent)?.join(name),
            _ => target.clone(),
        };
        if target == self.canonical && !entry.starts_with(&self.canonical) {
            // The root itself, named through the link the caller gave as the root.
            entry = target.clone();
        }
        if !target.starts_with(&self.canonical) || !entry.starts_with(&self.canonical) {
            return Err(SandboxError::PermissionDenied {
                message: format!(
                    "{field} {path:?} resolves outside the sandbox root {}",
                    self.root.display()
                ),
            });
        }
        Ok(Resolved {
            target,
            entry,
            display,
        })
    }

    fn deny_root(&self, what: &str, r: &Resolved) -> Result<()> {
        if r.entry == self.canonical || r.target == self.canonical {
            return Err(SandboxError::PermissionDenied {
                message: format!("refusing to {what} the sandbox root {}", r.display),
            });
        }
        Ok(())
    }

    fn read_sync(&self, path: &str) -> Result<Vec<u8>> {
        let r = self.resolve("path", path)?;
        fs::read(&r.target).map_err(|e| map_io(e, "reading", &r.display))
    }

    fn write_sync(&self, path: &str, data: &[u8]) -> Result<()> {
        let r = self.resolve("path", path)?;
        if r.target == self.canonical {
            return Err(SandboxError::invalid(
                "path",
                format!("{} is a directory", r.display),
            ));
        }
        if let Some(parent) = r.target.parent() {
            fs::create_dir_all(parent).map_err(|e| map_io(e, "creating parents of", &r.display))?;
        }
        fs::write(&r.target, data).map_err(|e| map_io(e, "writing", &r.display))
    }

    fn list_sync(&self, path: &str) -> Result<Vec<DirEntry>> {
        let r = self.resolve("path", path)?;
        let dir = fs::read_dir(&r.target).map_err(|e| map_io(e, "listing", &r.display))?;
        let mut entries = Vec::new();
        for item in dir {
            let item = item.map_err(|e| map_io(e, "listing", &r.display))?;
            let name = item.file_name().to_string_lossy().into_owned();
            let display = join_display(&r.display, &name);
            let meta = match item.path().symlink_metadata() {
                Ok(m) => m,
                // Deleted between readdir and lstat: it is not there any more.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(map_io(e, "reading metadata of", &display)),
            };
            entries.push(DirEntry::new(name, file_stat(display, &meta)));
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn stat_sync(&self, path: &str) -> Result<FileStat> {
        let r = self.resolve("path", path)?;
        let meta = r
            .entry
            .symlink_metadata()
            .map_err(|e| map_io(e, "reading metadata of", &r.display))?;
        Ok(file_stat(r.display, &meta))
    }

    fn create_dir_sync(&self, path: &str) -> Result<()> {
        let r = self.resolve("path", path)?;
        fs::create_dir_all(&r.target).map_err(|e| map_io(e, "creating directory", &r.display))
    }

    fn remove_sync(&self, path: &str, recursive: bool) -> Result<()> {
        let r = self.resolve("path", path)?;
        self.deny_root("remove", &r)?;
        let meta = r
            .entry
            .symlink_metadata()
            .map_err(|e| map_io(e, "removing", &r.display))?;
        let res = if meta.is_dir() {
            if recursive {
                fs::remove_dir_all(&r.entry)
            } else {
                fs::remove_dir(&r.entry)
            }
        } else {
            fs::remove_file(&r.entry)
        };
        res.map_err(|e| map_io(e, "removing", &r.display))
    }

    fn rename_sync(&self, from: &str, to: &str) -> Result<()> {
        let src = self.resolve("from", from)?;
        let dst = self.resolve("to", to)?;
        self.deny_root("move", &src)?;
        self.deny_root("replace", &dst)?;
        src.entry
            .symlink_metadata()
            .map_err(|e| map_io(e, "moving", &src.display))?;
        if let Some(parent) = dst.entry.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| map_io(e, "creating parents of", &dst.display))?;
        }
        fs::rename(&src.entry, &dst.entry)
            .map_err(|e| map_io(e, "moving", &format!("{} to {}", src.display, dst.display)))
    }
}

impl LocalFilesystem {
    fn grep_sync(&self, request: &GrepRequest) -> Result<GrepResult> {
        let r = self.resolve("path", &request.path)?;
        crate::search::grep(&r.target, &r.display, request)
    }

    fn glob_sync(&self, request: &GlobRequest) -> Result<GlobResult> {
        let r = self.resolve("path", &request.path)?;
        crate::search::glob(&r.target, &r.display, request)
    }
}

/// Run a blocking filesystem operation off the async threads.
async fn blocking<T, F>(fs: &LocalFilesystem, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&LocalFilesystem) -> Result<T> + Send + 'static,
{
    let fs = fs.clone();
    tokio::task::spawn_blocking(move || f(&fs))
        .await
        .map_err(|e| SandboxError::io("running a filesystem task", io::Error::other(e)))?
}

#[async_trait]
impl SandboxFilesystem for LocalFilesystem {
    async fn read_file(&self, path: &str) -> Result<Vec<u8>> {
        let path = path.to_string();
        blocking(self, move |fs| fs.read_sync(&path)).await
    }

    async fn write_file(&self, path: &str, data: &[u8]) -> Result<()> {
        let path = path.to_string();
        let data = data.to_vec();
        blocking(self, move |fs| fs.write_sync(&path, &data)).await
    }

    async fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        let path = path.to_string();
        blocking(self, move |fs| fs.list_sync(&path)).await
    }

    async fn stat(&self, path: &str) -> Result<FileStat> {
        let path = path.to_string();
        blocking(self, move |fs| fs.stat_sync(&path)).await
    }

    async fn create_dir(&self, path: &str) -> Result<()> {
        let path = path.to_string();
        blocking(self, move |fs| fs.create_dir_sync(&path)).await
    }

    async fn remove(&self, path: &str, recursive: bool) -> Result<()> {
        let path = path.to_string();
        blocking(self, move |fs| fs.remove_sync(&path, recursive)).await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let from = from.to_string();
        let to = to.to_string();
        blocking(self, move |fs| fs.rename_sync(&from, &to)).await
    }

    async fn grep(&self, request: &GrepRequest) -> Result<GrepResult> {
        let request = request.clone();
        blocking(self, move |fs| fs.grep_sync(&request)).await
    }

    async fn glob(&self, request: &GlobRequest) -> Result<GlobResult> {
        let request = request.clone();
        blocking(self, move |fs| fs.glob_sync(&request)).await
    }
}

enum Part {
    Parent,
    Name(OsString),
}

fn parts(path: &Path) -> impl Iterator<Item = Part> + '_ {
    path.components().filter_map(|c| match c {
        Component::ParentDir => Some(Part::Parent),
        Component::Normal(n) => Some(Part::Name(n.to_os_string())),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

/// Resolve an absolute path as the kernel would, following every symlink; once a component does
/// not exist, the rest is applied lexically (nothing below a missing directory can be a link).
fn resolve_following(path: &Path) -> io::Result<PathBuf> {
    let mut queue: VecDeque<Part> = parts(path).collect();
    let mut out = PathBuf::from("/");
    let mut links = 0;
    let mut missing = false;
    while let Some(part) = queue.pop_front() {
        let name = match part {
            Part::Parent => {
                out.pop();
                continue;
            }
            Part::Name(n) => n,
        };
        let candidate = out.join(&name);
        if missing {
            out = candidate;
            continue;
        }
        match candidate.symlink_metadata() {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::from_raw_os_error(nix::libc::ELOOP));
                }
                let link = fs::read_link(&candidate)?;
                if link.is_absolute() {
                    out = PathBuf::from("/");
                }
                for p in parts(&link).collect::<Vec<_>>().into_iter().rev() {
                    queue.push_front(p);
                }
            }
            Ok(_) => out = candidate,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                missing = true;
                out = candidate;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Apply `.` and `..` without looking at the filesystem (for display only).
fn lexical_normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in parts(path) {
        match part {
            Part::Parent => {
                out.pop();
            }
            Part::Name(n) => out.push(n),
        }
    }
    out
}

fn join_display(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn file_stat(display: String, meta: &Metadata) -> FileStat {
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        FileKind::Symlink
    } else if ft.is_dir() {
        FileKind::Directory
    } else if ft.is_file() {
        FileKind::File
    } else {
        FileKind::Other
    };
    let mut stat = FileStat::new(display, kind, meta.len());
    stat.mode = Some(meta.permissions().mode() & 0o7777);
    stat.modified = meta.modified().ok().map(DateTime::<Utc>::from);
    stat
}

/// Map an I/O error of `op` on `path` to the error a caller can act on.
fn map_io(e: io::Error, op: &str, path: &str) -> SandboxError {
    if e.raw_os_error() == Some(nix::libc::ELOOP) {
        return SandboxError::invalid("path", format!("{path}: too many levels of symbolic links"));
    }
    match e.kind() {
        io::ErrorKind::NotFound => SandboxError::not_found(format!("path {path}")),
        io::ErrorKind::PermissionDenied => SandboxError::PermissionDenied {
            message: format!("{op} {path}: {e}"),
        },
        io::ErrorKind::AlreadyExists => SandboxError::AlreadyExists {
            what: format!("{path} (not a directory)"),
        },
        io::ErrorKind::NotADirectory => {
            SandboxError::invalid("path", format!("{op} {path}: not a directory"))
        }
        io::ErrorKind::IsADirectory => {
            SandboxError::invalid("path", format!("{op} {path}: is a directory"))
        }
        io::ErrorKind::DirectoryNotEmpty => SandboxError::invalid(
            "path",
            format!("{op} {path}: directory not empty (remove it with recursive = true)"),
        ),
        _ => SandboxError::io(format!("{op} {path}"), e),
    }
}
