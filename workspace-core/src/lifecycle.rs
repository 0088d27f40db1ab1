//! Coalesced lifecycle state, so every provider gets the same start/stop/destroy semantics.
//!
//! A provider keeps one [`Lifecycle`] and routes its `start`, `stop`, `destroy` and lazy starts
//! through it, passing the provider-specific work as a closure. The cell guarantees:
//! concurrent calls of one operation run the work once; a running sandbox answers `start` at once;
//! `destroy` is idempotent; after `destroy` everything else fails with `NotReady`; a failed or
//! abandoned (dropped) operation leaves the status `Error`, never stuck in a transition.

use std::future::Future;
use std::sync::Mutex;

use crate::error::{Result, SandboxError};
use crate::sandbox::{SandboxStatus, StartOutcome};

/// Shared lifecycle state of one sandbox handle.
#[derive(Debug)]
pub struct Lifecycle {
    id: String,
    status: Mutex<SandboxStatus>,
    ops: tokio::sync::Mutex<()>,
}

/// Resets the status to `Error` if the operation's future is dropped before it finishes.
struct TransitionGuard<'a> {
    cell: &'a Lifecycle,
    armed: bool,
}

impl Drop for TransitionGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.cell.set_status(SandboxStatus::Error);
        }
    }
}

impl Lifecycle {
    /// A new cell in `Pending`.
    pub fn new(id: impl Into<String>) -> Self {
        Lifecycle {
            id: id.into(),
            status: Mutex::new(SandboxStatus::Pending),
            ops: tokio::sync::Mutex::new(()),
        }
    }

    /// The sandbox id this cell reports in errors.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Current status.
    pub fn status(&self) -> SandboxStatus {
        *self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Set the status directly (e.g. when the provider learns the sandbox stopped underneath).
    /// A destroyed sandbox stays destroyed.
    pub fn set_status(&self, status: SandboxStatus) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if *s != SandboxStatus::Destroyed {
            *s = status;
        }
    }

    /// The `NotReady` error for the current status.
    pub fn not_ready(&self) -> SandboxError {
        SandboxError::NotReady {
            id: self.id.clone(),
            status: self.status(),
        }
    }

    /// Fail with `NotReady` if destroyed or being destroyed.
    pub fn check_usable(&self) -> Result<()> {
        match self.status() {
            SandboxStatus::Destroyed | SandboxStatus::Destroying => Err(self.not_ready()),
            _ => Ok(()),
        }
    }

    /// Run `work` to start the sandbox unless it is running; concurrent callers share one run.
    ///
    /// Only the caller whose call ran `work` hears its outcome (`Created` or `Connected`); callers
    /// that joined it, or found the sandbox running, hear `Connected`, so one-time setup keyed on
    /// `Created` runs once.
    pub async fn start<F, Fut>(&self, work: F) -> Result<StartOutcome>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<StartOutcome>>,
    {
        self.check_usable()?;
        if self.status() == SandboxStatus::Running {
            return Ok(StartOutcome::Connected);
        }
        let _op = self.ops.lock().await;
        self.check_usable()?;
        if self.status() == SandboxStatus::Running {
            // Joined a start that finished while we waited.
            return Ok(StartOutcome::Connected);
        }
        self.set_status(SandboxStatus::Starting);
        let mut guard = TransitionGuard {
            cell: self,
            armed: true,
        };
        let res = work().await;
        guard.armed = false;
        match res {
            Ok(outcome) => {
                self.set_status(SandboxStatus::Running);
                Ok(outcome)
            }
            Err(e) => {
                self.set_status(SandboxStatus::Error);
                Err(e)
            }
        }
    }

    /// Run `work` to stop the sandbox unless it is stopped or was never started.
    pub async fn stop<F, Fut>(&self, work: F) -> Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        self.check_usable()?;
        let _op = self.ops.lock().await;
        self.check_usable()?;
        if matches!(
            self.status(),
            SandboxStatus::Stopped | SandboxStatus::Pending
        ) {
            return Ok(());
        }
        self.set_status(SandboxStatus::Stopping);
        let mut guard = TransitionGuard {
            cell: self,
            armed: true,
        };
        let res = work().await;
        guard.armed = false;
        self.set_status(if res.is_ok() {
            SandboxStatus::Stopped
        } else {
            SandboxStatus::Error
        });
        res
    }

    /// Run `work` to destroy the sandbox unless it is destroyed already.
    pub async fn destroy<F, Fut>(&self, work: F) -> Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        if self.status() == SandboxStatus::Destroyed {
            return Ok(());
        }
        let _op = self.ops.lock().await;
        if self.status() == SandboxStatus::Destroyed {
            return Ok(());
        }
        self.set_status(SandboxStatus::Destroying);
        let mut guard = TransitionGuard {
            cell: self,
            armed: true,
        };
        let res = work().await;
        guard.armed = false;
        if res.is_ok() {
            *self.status.lock().unwrap_or_else(|p| p.into_inner()) = SandboxStatus::Destroyed;
        } else {
            self.set_status(SandboxStatus::Error);
        }
        res
    }

    /// Start lazily before an operation: `Ok` at once when running, `NotReady` when destroyed,
    /// otherwise `work` runs as for [`Lifecycle::start`].
    pub async fn ensure_running<F, Fut>(&self, work: F) -> Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<StartOutcome>>,
    {
        if self.status() == SandboxStatus::Running {
            return Ok(());
        }
        self.start(work).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_starts_run_once() {
        let cell = Arc::new(Lifecycle::new("x"));
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let cell = cell.clone();
            let runs = runs.clone();
            tasks.push(tokio::spawn(async move {
                cell.start(|| async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(StartOutcome::Created)
                })
                .await
            }));
        }
        let mut created = 0;
        for t in tasks {
            if t.await.expect("join").expect("start") == StartOutcome::Created {
                created += 1;
            }
        }
        assert_eq!(
            created, 1,
            "only the caller that ran the start hears Created"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(cell.status(), SandboxStatus::Running);
    }

    #[tokio::test]
    async fn destroy_is_final_and_idempotent() {
        let cell = Lifecycle::new("x");
        cell.start(|| async { Ok(StartOutcome::Created) })
            .await
            .expect("start");
        cell.destroy(|| async { Ok(()) }).await.expect("destroy");
        cell.destroy(|| async { panic!("must not run twice") })
            .await
            .expect("destroy again");
        let err = cell
            .start(|| async { Ok(StartOutcome::Created) })
            .await
            .expect_err("must be rejected");
        assert!(matches!(
            err,
            SandboxError::NotReady {
                status: SandboxStatus::Destroyed,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn dropped_start_leaves_error_not_starting() {
        let cell = Lifecycle::new("x");
        let fut = cell.start(|| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(StartOutcome::Created)
        });
        let _ = tokio::time::timeout(Duration::from_millis(20), fut).await;
        assert_eq!(cell.status(), SandboxStatus::Error);
        cell.start(|| async { Ok(StartOutcome::Connected) })
            .await
            .expect("restart");
        assert_eq!(cell.status(), SandboxStatus::Running);
    }
}
