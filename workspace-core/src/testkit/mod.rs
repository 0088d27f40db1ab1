//! The conformance suite every provider runs (feature `testkit`).
//!
//! Each check is a public async function that drives a sandbox only through the
//! [`WorkspaceSandbox`] trait and panics with a descriptive message when the provider breaks the
//! contract. Checks that need a fresh sandbox (lifecycle, destroy) take a factory instead.
//!
//! A provider proves itself with one macro call in an integration test:
//!
//! ```no_run
//! use std::sync::Arc;
//! use workspace_core::WorkspaceSandbox;
//!
//! async fn make() -> Arc<dyn WorkspaceSandbox> {
//!     // Build a fresh, unstarted sandbox of your provider here.
//!     unimplemented!()
//! }
//!
//! // One `#[test]` per check, in `mod conformance`, each on its own multi-threaded runtime with a
//! // fresh sandbox that is destroyed afterwards, pass or fail.
//! workspace_core::conformance_tests!(make);
//! # fn main() {}
//! ```
//!
//! or runs everything sequentially with [`run_all`].
//!
//! Ground rules the checks follow, so they hold for any provider:
//! - only POSIX `sh` and coreutils inside the sandbox (`printf`, `head`, `tr`, `cat`, `wc`, `yes`,
//!   `cksum`, `sleep`, `mkdir`, `test`); no bash-isms, no interpreters;
//! - the working directory is discovered with `pwd` ([`working_dir`]); files live under
//!   uniquely named directories relative to it;
//! - long-running commands carry a unique marker ([`unique_marker`]) so that a leak can be
//!   detected from inside the sandbox by scanning `/proc` ([`assert_no_process_matching`]);
//! - file and process checks skip, with a note on stderr, when the provider returns `None` from
//!   [`WorkspaceSandbox::filesystem`] or [`WorkspaceSandbox::processes`].
//!
//! The suite is a test helper: it is not a stable API and it writes into the sandboxes it is given.

mod cksum;
mod commands;
mod files;
mod harness;
mod inputs;
mod leaks;
mod lifecycle;
mod probe;
mod processes;
mod random;
mod search;
mod streams;
mod termination;

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::sandbox::WorkspaceSandbox;

pub use cksum::posix_cksum;
pub use commands::{command_not_found, concurrent_commands, echo, exit_codes, stderr_only};
pub use files::{file_operations, files_round_trip};
pub use harness::{CheckOutcome, SuiteReport, run_all};
pub use inputs::{
    args_arrive_exact, bad_input, env_vars, non_utf8_output, stdin_bytes, stdin_closed_by_default,
    working_directory,
};
pub use leaks::{
    assert_no_process_matching, host_processes_matching, processes_matching, unique_marker,
    wait_for_process_matching,
};
pub use lifecycle::{destroy_kills_background_processes, lazy_start, lifecycle};
pub use probe::working_dir;
pub use processes::{
    background_process, background_process_exit, process_output_stream, process_wait_for_port,
};
pub use random::{pseudo_random_bytes, unique_suffix};
pub use search::{search_glob, search_grep};
pub use streams::{
    callbacks_route_streams, large_output_default_cap, large_output_small_cap, large_stderr,
    streaming_callbacks,
};
pub use termination::{
    background_with_redirected_output_returns, cancel_kills_tree, dropped_future_kills_tree,
    timeout, timeout_kills_tree,
};

/// A type-erased sandbox factory, as the checks that need fresh sandboxes receive it.
pub type SandboxFactory =
    Arc<dyn Fn() -> BoxFuture<'static, Arc<dyn WorkspaceSandbox>> + Send + Sync>;

/// A check that runs against one sandbox.
pub type SandboxCheck = for<'a> fn(&'a dyn WorkspaceSandbox) -> BoxFuture<'a, ()>;

/// A check that makes its own sandboxes.
pub type FactoryCheck = fn(SandboxFactory) -> BoxFuture<'static, ()>;

/// How a check gets its sandbox.
#[derive(Clone, Copy)]
pub enum CheckKind {
    /// Runs against one sandbox that the runner makes and destroys.
    Sandbox(SandboxCheck),
    /// Makes its own sandboxes from the factory; the runner destroys every one it made.
    Factory(FactoryCheck),
}

/// One entry of the suite.
#[derive(Clone, Copy)]
pub struct Check {
    /// The check's name, which is also the name of its function and of its generated test.
    pub name: &'static str,
    /// How it runs.
    pub kind: CheckKind,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            CheckKind::Sandbox(_) => "sandbox",
            CheckKind::Factory(_) => "factory",
        };
        f.debug_struct("Check")
            .field("name", &self.name)
            .field("kind", &kind)
            .finish()
    }
}

/// Erase a factory closure or `async fn` into a [`SandboxFactory`].
pub fn erase_factory<F, Fut>(make: F) -> SandboxFactory
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Arc<dyn WorkspaceSandbox>> + Send + 'static,
{
    Arc::new(move || Box::pin(make()) as BoxFuture<'static, Arc<dyn WorkspaceSandbox>>)
}

/// The single list of checks. Both [`CHECKS`] and [`conformance_tests!`](crate::conformance_tests)
/// expand from it, so the generated tests and [`run_all`] cannot drift apart.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_check_list {
    ($callback:ident { $($state:tt)* }) => {
        $crate::$callback! {
            { $($state)* }
            sandbox: [
                echo,
                exit_codes,
                stderr_only,
                command_not_found,
                concurrent_commands,
                args_arrive_exact,
                env_vars,
                working_directory,
                bad_input,
                non_utf8_output,
                stdin_closed_by_default,
                stdin_bytes,
                timeout,
                timeout_kills_tree,
                cancel_kills_tree,
                dropped_future_kills_tree,
                background_with_redirected_output_returns,
                large_output_default_cap,
                large_output_small_cap,
                large_stderr,
                streaming_callbacks,
                callbacks_route_streams,
                files_round_trip,
                file_operations,
                search_grep,
                search_glob,
                background_process,
                background_process_exit,
                process_output_stream,
                process_wait_for_port,
            ]
            factory: [
                lifecycle,
                lazy_start,
                destroy_kills_background_processes,
            ]
        }
    };
}

/// Builds the [`CHECKS`] table from the check list.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_check_table {
    ({} sandbox: [$($s:ident),* $(,)?] factory: [$($f:ident),* $(,)?]) => {
        /// Every check of the suite, in the order [`run_all`] runs them.
        pub static CHECKS: &[Check] = &[
            $(
                Check {
                    name: stringify!($s),
                    kind: CheckKind::Sandbox({
                        fn boxed<'a>(sandbox: &'a dyn WorkspaceSandbox) -> BoxFuture<'a, ()> {
                            Box::pin($s(sandbox))
                        }
                        boxed
                    }),
                },
            )*
            $(
                Check {
                    name: stringify!($f),
                    kind: CheckKind::Factory({
                        fn boxed(make: SandboxFactory) -> BoxFuture<'static, ()> {
                            Box::pin($f(move || make()))
                        }
                        boxed
                    }),
                },
            )*
        ];
    };
}

__conformance_check_list!(__conformance_check_table {});

/// Generates one test per conformance check for a provider.
///
/// `conformance_tests!(factory)` expands, where it is invoked, into `mod conformance { … }` holding
/// one `#[test]` per check (so they run in parallel and report separately). Each test builds a
/// multi-threaded tokio runtime with two workers, makes a sandbox with the factory, runs the
/// check, and destroys the sandbox whether the check passed or not. The tests are generated from
/// the same list as [`testkit::CHECKS`], so they always cover the whole suite.
///
/// The factory is an expression evaluating to a closure or `async fn` with no arguments whose
/// future yields an `Arc<dyn WorkspaceSandbox>`; it must be `Send + Sync + 'static` and its
/// future `Send`. Items of the invoking module are visible to it (the generated module does
/// `use super::*`). `conformance_tests!(name, factory)` names the module `name` instead, so one
/// file can run the suite against several configurations.
///
/// The caller needs only `workspace-core` with feature `testkit`: the runtime comes from this
/// crate's own tokio.
///
/// [`testkit::CHECKS`]: crate::testkit::CHECKS
#[macro_export]
macro_rules! conformance_tests {
    ($module:ident, $make:expr $(,)?) => {
        $crate::__conformance_check_list!(__conformance_tests_expand { $module ($make) });
    };
    ($make:expr $(,)?) => {
        $crate::conformance_tests!(conformance, $make);
    };
}

/// Expands the check list into tests; see [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests_expand {
    ({ $module:ident ($make:expr) } sandbox: [$($s:ident),* $(,)?] factory: [$($f:ident),* $(,)?]) => {
        #[cfg(test)]
        mod $module {
            #[allow(unused_imports)]
            use super::*;

            $(
                #[test]
                fn $s() {
                    $crate::testkit::__private::run_named(stringify!($s), $make);
                }
            )*
            $(
                #[test]
                fn $f() {
                    $crate::testkit::__private::run_named(stringify!($f), $make);
                }
            )*

        }
    };
}

/// What the macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use super::harness::run_named;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn assert_send<T: Send>(_: &T) {}

    /// Compile-time proof that the suite accepts `Arc<dyn WorkspaceSandbox>` and that its futures
    /// are `Send`, so providers can run them on any runtime or spawn them.
    #[allow(dead_code)]
    fn checks_accept_arc_dyn_sandbox(sandbox: Arc<dyn WorkspaceSandbox>) {
        let check = async move {
            echo(&*sandbox).await;
            files_round_trip(sandbox.as_ref()).await;
            assert_no_process_matching(&*sandbox, &unique_marker()).await;
        };
        assert_send(&check);
        let factory = erase_factory(|| async { unreachable!("never called") });
        let made = async move { lifecycle(move || factory()).await };
        assert_send(&made);
        let all = run_all(|| async { unreachable!("never called") });
        assert_send(&all);
    }

    #[test]
    fn check_names_are_unique_and_complete() {
        let names: BTreeSet<&str> = CHECKS.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), CHECKS.len(), "duplicate check names");
        assert!(names.contains("lifecycle") && names.contains("timeout_kills_tree"));
        let factories = CHECKS
            .iter()
            .filter(|c| matches!(c.kind, CheckKind::Factory(_)))
            .count();
        assert_eq!(factories, 3);
    }
}
