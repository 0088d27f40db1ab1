//! Edit safety: what this workspace has read, so that `write_file`, `edit_file` and
//! `multi_edit` refuse to change a file the model has not seen, or that changed since it did,
//! and one lock per file so that edits to it run one at a time.
//!
//! A file counts as seen once `read_file` showed it, or once one of these tools wrote it (the
//! model knows what it wrote). "Changed" is a different size or modification time from the
//! file's stat, or, where the tool has the bytes anyway (the edits), a different content hash,
//! which also catches a same-size rewrite within the provider's time resolution.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use workspace_core::FileStat;

use crate::output::ToolError;

/// What was seen of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    size: u64,
    modified: Option<DateTime<Utc>>,
    hash: u64,
}

/// The files a [`crate::Workspace`] (and its clones) has seen, and the per-file edit locks.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    seen: Mutex<HashMap<String, Seen>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A hash of a file's bytes, to notice a rewrite that kept size and time.
pub(crate) fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Ledger {
    /// Remember `stat` and the hash of the bytes that were shown or written.
    pub(crate) fn record(&self, stat: &FileStat, hash: u64) {
        lock(&self.seen).insert(
            stat.path.clone(),
            Seen {
                size: stat.size,
                modified: stat.modified,
                hash,
            },
        );
    }

    /// Forget a file (deleted or moved away).
    pub(crate) fn forget(&self, key: &str) {
        lock(&self.seen).remove(key);
    }

    /// The edit lock of the file the sandbox calls `key`, held until the guard drops.
    pub(crate) async fn lock_file(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = lock(&self.locks)
            .entry(key.to_string())
            .or_default()
            .clone();
        m.lock_owned().await
    }

    /// Refuse unless the file was seen and its stat (and, with `hash`, its content) is what
    /// was seen. `shown` is the path as the model named it; `read_tool` the read tool's name.
    pub(crate) fn check(
        &self,
        shown: &str,
        stat: &FileStat,
        hash: Option<u64>,
        read_tool: &str,
    ) -> Result<(), ToolError> {
        let seen = lock(&self.seen).get(&stat.path).cloned();
        let Some(seen) = seen else {
            return Err(ToolError::Rejected(format!(
                "`{shown}` exists and you have not read it in this session, so it was not \
                 changed: read it with `{read_tool}` first, then make the change"
            )));
        };
        let changed = seen.size != stat.size
            || (seen.modified.is_some()
                && stat.modified.is_some()
                && seen.modified != stat.modified)
            || hash.is_some_and(|h| h != seen.hash);
        if changed {
            return Err(ToolError::Rejected(format!(
                "file changed since you read it: `{shown}` is now {} bytes{}; nothing was \
                 changed. Read it again with `{read_tool}`, then redo the change on what it \
                 holds now",
                stat.size,
                stat.modified
                    .map(|t| format!(", modified {}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ")))
                    .unwrap_or_default()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use workspace_core::FileKind;

    use super::*;

    #[test]
    fn unseen_and_changed_files_are_refused() {
        let ledger = Ledger::default();
        let stat = FileStat::new("/w/a.txt", FileKind::File, 3);
        let e = ledger
            .check("a.txt", &stat, None, "read_file")
            .expect_err("unseen");
        assert!(format!("{e:?}").contains("have not read it"));
        ledger.record(&stat, content_hash(b"abc"));
        ledger
            .check("a.txt", &stat, Some(content_hash(b"abc")), "read_file")
            .expect("same");
        let e = ledger
            .check("a.txt", &stat, Some(content_hash(b"abd")), "read_file")
            .expect_err("rewritten");
        assert!(format!("{e:?}").contains("file changed since you read it"));
        let grown = FileStat::new("/w/a.txt", FileKind::File, 4);
        assert!(ledger.check("a.txt", &grown, None, "read_file").is_err());
        ledger.forget("/w/a.txt");
        assert!(ledger.check("a.txt", &stat, None, "read_file").is_err());
    }
}
