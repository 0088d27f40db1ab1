//! Running checks: one per test (for the macro) or all in a row ([`run_all`]), always destroying
//! the sandboxes a check used, and recording markers and skips for the caller.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{CHECKS, Check, CheckKind, SandboxFactory, erase_factory};
use crate::sandbox::WorkspaceSandbox;

/// The longest a single check may take before the runner fails it. Generous: the 50 MB output
/// checks against a remote provider are the slowest.
const CHECK_DEADLINE: Duration = Duration::from_secs(900);

/// How long the runner gives `destroy()` after a check.
const DESTROY_DEADLINE: Duration = Duration::from_secs(180);

/// What happened to one check in [`run_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckOutcome {
    /// The check's name.
    pub name: &'static str,
    /// Why it was skipped (for example: the provider has no `filesystem()`), if it was.
    pub skipped: Option<String>,
}

/// What [`run_all`] did, when every check passed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SuiteReport {
    /// Every check, in the order it ran.
    pub checks: Vec<CheckOutcome>,
    /// Every process marker the checks used (see [`super::unique_marker`]). A provider that runs
    /// on the host can scan for these afterwards ([`super::host_processes_matching`]).
    pub markers: Vec<String>,
}

/// What the checks running in the current task report back to the runner.
#[derive(Default)]
struct Recorder {
    markers: Mutex<Vec<String>>,
    skipped: Mutex<Option<String>>,
}

tokio::task_local! {
    static RECORDER: Arc<Recorder>;
}

/// Note a marker the current check uses (no-op outside a runner).
pub(crate) fn record_marker(marker: &str) {
    let _ = RECORDER.try_with(|r| {
        r.markers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(marker.to_string());
    });
}

/// Print why `check` is skipped and tell the runner.
pub(crate) fn skip(check: &str, reason: &str) {
    eprintln!("conformance: skipping `{check}`: {reason}");
    let _ = RECORDER.try_with(|r| {
        *r.skipped.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_string());
    });
}

/// A check's failure: the panic payload, or a message of our own.
enum Failure {
    Panic(Box<dyn Any + Send>),
    Message(String),
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Failure::Panic(p) => p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked with a non-string payload".to_string()),
            Failure::Message(m) => m.clone(),
        }
    }

    fn raise(self) -> ! {
        match self {
            Failure::Panic(p) => std::panic::resume_unwind(p),
            Failure::Message(m) => panic!("{m}"),
        }
    }
}

async fn destroy_after_check(check: &str, sandbox: &dyn WorkspaceSandbox) -> Result<(), String> {
    match tokio::time::timeout(DESTROY_DEADLINE, sandbox.destroy()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "`{check}`: destroying sandbox {} afterwards failed: {e}",
            sandbox.id()
        )),
        Err(_) => Err(format!(
            "`{check}`: destroying sandbox {} afterwards took longer than {DESTROY_DEADLINE:?}",
            sandbox.id()
        )),
    }
}

/// Run one check with fresh sandboxes, destroy them all, and report the first failure.
async fn run_check(check: &Check, make: &SandboxFactory) -> Result<(), Failure> {
    let name = check.name;
    let made: Arc<Mutex<Vec<Arc<dyn WorkspaceSandbox>>>> = Arc::default();
    let tracking: SandboxFactory = {
        let make = make.clone();
        let made = made.clone();
        Arc::new(move || {
            let fut = make();
            let made = made.clone();
            Box::pin(async move {
                let sandbox = fut.await;
                made.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(sandbox.clone());
                sandbox
            }) as BoxFuture<'static, Arc<dyn WorkspaceSandbox>>
        })
    };
    let work: BoxFuture<'static, ()> = match check.kind {
        CheckKind::Sandbox(run) => {
            let sandbox = tracking().await;
            Box::pin(async move { run(&*sandbox).await })
        }
        CheckKind::Factory(run) => run(tracking),
    };
    let outcome = AssertUnwindSafe(tokio::time::timeout(CHECK_DEADLINE, work))
        .catch_unwind()
        .await;
    let sandboxes: Vec<_> = std::mem::take(&mut *made.lock().unwrap_or_else(|p| p.into_inner()));
    let mut destroy_failure = None;
    for sandbox in sandboxes {
        if let Err(msg) = destroy_after_check(name, &*sandbox).await {
            eprintln!("conformance: {msg}");
            destroy_failure.get_or_insert(msg);
        }
    }
    match outcome {
        Err(panic) => Err(Failure::Panic(panic)),
        Ok(Err(_)) => Err(Failure::Message(format!(
            "`{name}` did not finish within {CHECK_DEADLINE:?}"
        ))),
        Ok(Ok(())) => destroy_failure.map_or(Ok(()), |m| Err(Failure::Message(m))),
    }
}

fn find(name: &str) -> &'static Check {
    CHECKS
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no conformance check named `{name}`"))
}

/// Run the check called `name` on a fresh two-worker runtime; what each generated test calls.
pub fn run_named<F, Fut>(name: &str, make: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Arc<dyn WorkspaceSandbox>> + Send + 'static,
{
    let check = find(name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot build a tokio runtime for `{name}`: {e}"));
    let make = erase_factory(make);
    let recorder = Arc::new(Recorder::default());
    let result = runtime.block_on(RECORDER.scope(recorder, run_check(check, &make)));
    // Do not wait for tasks a provider left behind: they would only hide the real outcome.
    runtime.shutdown_timeout(Duration::from_secs(5));
    if let Err(failure) = result {
        failure.raise();
    }
}

/// Run every check in [`CHECKS`](super::CHECKS) in turn, each with fresh sandboxes from `make`
/// that are destroyed afterwards. Keeps going after a failure and panics at the end listing every
/// failed check; returns what ran, what was skipped and the markers used when all passed.
///
/// Must be called inside a multi-threaded tokio runtime (the checks use `tokio::time`).
pub async fn run_all<F, Fut>(make: F) -> SuiteReport
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Arc<dyn WorkspaceSandbox>> + Send + 'static,
{
    let make = erase_factory(make);
    let mut report = SuiteReport::default();
    let mut failures = Vec::new();
    for check in CHECKS {
        eprintln!("conformance: running `{}`", check.name);
        let recorder = Arc::new(Recorder::default());
        let result = RECORDER
            .scope(recorder.clone(), run_check(check, &make))
            .await;
        report.markers.extend(
            recorder
                .markers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .drain(..),
        );
        let skipped = recorder
            .skipped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        report.checks.push(CheckOutcome {
            name: check.name,
            skipped,
        });
        if let Err(failure) = result {
            let why = failure.describe();
            eprintln!("conformance: `{}` FAILED: {why}", check.name);
            failures.push(format!("- {}: {why}", check.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} conformance checks failed:\n{}",
        failures.len(),
        CHECKS.len(),
        failures.join("\n")
    );
    report
}
