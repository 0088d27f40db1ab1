//! An emulator for a whole test binary: [`EmulatorBuilder::start_detached`] serves from a
//! thread and runtime of its own until the process exits, so tests that each build a runtime of
//! their own can share one (an emulator started on a test's runtime ends with that runtime), and
//! [`process_data_dir`] gives it a data dir that later runs clean up, as nothing shuts it down.

use std::path::{Path, PathBuf};

use crate::server::{EmulatorBuilder, EmulatorError};

impl EmulatorBuilder {
    /// Start serving on a thread and multi-threaded runtime of its own, for as long as the
    /// process lives; returns the API URL once connections are accepted. Nothing shuts it
    /// down, so a default temporary data dir would outlive the process: give it one from
    /// [`process_data_dir`].
    ///
    /// ```
    /// use daytona_emulator::{Emulator, process_data_dir};
    /// let dir = process_data_dir(&std::env::temp_dir(), "daytona-emulator-doc-");
    /// let url = Emulator::builder()
    ///     .api_key("doc-key")
    ///     .data_dir(dir)
    ///     .start_detached()?;
    /// assert!(url.ends_with("/api"));
    /// # Ok::<(), daytona_emulator::EmulatorError>(())
    /// ```
    pub fn start_detached(self) -> Result<String, EmulatorError> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("daytona-emulator".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = tx.send(Err(EmulatorError::Thread(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match self.start().await {
                        Ok(emulator) => {
                            let _ = tx.send(Ok(emulator.api_url()));
                            // Serve until the process exits: the handle must stay alive, as
                            // dropping it shuts the emulator down.
                            std::future::pending::<()>().await;
                            drop(emulator);
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(EmulatorError::Thread)?;
        rx.recv().unwrap_or_else(|_| {
            Err(EmulatorError::Thread(std::io::Error::other(
                "the emulator's thread ended before the emulator started",
            )))
        })
    }
}

/// This process's data dir under `parent`, `<prefix><pid>`, for an emulator nothing shuts down
/// (see [`EmulatorBuilder::start_detached`]). The dirs of earlier processes with the same
/// prefix that are gone are removed first, so runs do not pile up.
pub fn process_data_dir(parent: &Path, prefix: &str) -> PathBuf {
    let own = std::process::id();
    if let Ok(entries) = std::fs::read_dir(parent) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(prefix))
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != own && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    parent.join(format!("{prefix}{own}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_the_dirs_of_gone_processes_are_removed() {
        let parent = tempfile::tempdir().unwrap();
        let own = std::process::id();
        // Above the largest pid Linux hands out (2^22), so never a live process.
        let gone = parent.path().join("emu-4194305");
        let alive = parent.path().join(format!("emu-{own}"));
        let other = parent.path().join("other-4194305");
        let not_a_pid = parent.path().join("emu-x");
        for dir in [&gone, &alive, &other, &not_a_pid] {
            std::fs::create_dir(dir).unwrap();
        }
        assert_eq!(process_data_dir(parent.path(), "emu-"), alive);
        assert!(!gone.exists());
        assert!(alive.exists() && other.exists() && not_a_pid.exists());
    }
}
