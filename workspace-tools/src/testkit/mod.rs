//! The tool checks, as public functions over any sandbox (feature `testkit`).
//!
//! Each check takes an `Arc<dyn WorkspaceSandbox>`, drives it only through [`Workspace`](crate::Workspace), and
//! panics with a descriptive message when a tool misbehaves. A provider runs them all with one
//! macro call in an integration test:
//!
//! ```ignore
//! async fn make() -> std::sync::Arc<dyn workspace_core::WorkspaceSandbox> {
//!     std::sync::Arc::new(my_provider::MySandbox::new_for_tests())
//! }
//! // One #[test] per check, each with a fresh sandbox that is destroyed afterwards.
//! workspace_tools::tool_checks!(make);
//! ```
//!
//! Ground rules, so the checks hold for any provider: only POSIX `sh` and coreutils in commands;
//! every check works in its own uniquely named directory under the sandbox's working directory;
//! relative paths only (file tools and commands must agree on the working directory).
//! [`path_outside_root_is_denied`] takes the escaping path as an argument, since what lies
//! outside differs per provider, and is not part of the macro.
//!
//! This is test support: it panics by design and is not a stable API.

mod commands;
mod edits;
mod files;
mod processes;
mod search;
mod support;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use workspace_core::WorkspaceSandbox;

pub use commands::{
    ansi_is_stripped, commands_only_sandbox_offers_execute_command, execute_command_bad_arguments,
    execute_command_basics, instructions_list_the_tools, output_is_trimmed_to_budget,
    sandbox_output_cap_is_flagged, schemas_are_strict_objects, timeout_and_cancel_are_flagged,
    unknown_tool_lists_the_tools,
};
pub use edits::edit_safety;
pub use files::{
    edit_file_matches, file_tools_bad_arguments, file_tools_round_trip, list_files_glob_and_depth,
    path_outside_root_is_denied, read_file_ranges,
};
pub use processes::{
    background_process_lifecycle, port_url_tool, process_tools_bad_arguments, process_wait_for,
};
pub use search::search_tools;
pub use support::{CommandsOnly, unique_name};

/// A check: one async function over a sandbox.
pub type Check = fn(Arc<dyn WorkspaceSandbox>) -> BoxFuture<'static, ()>;

/// The single list of checks; [`CHECKS`] and [`tool_checks!`](crate::tool_checks) both expand
/// from it, so they cannot drift apart.
#[doc(hidden)]
#[macro_export]
macro_rules! __tool_check_list {
    ($callback:path { $($state:tt)* }) => {
        $callback! {
            { $($state)* }
            schemas_are_strict_objects,
            instructions_list_the_tools,
            unknown_tool_lists_the_tools,
            execute_command_basics,
            execute_command_bad_arguments,
            output_is_trimmed_to_budget,
            sandbox_output_cap_is_flagged,
            ansi_is_stripped,
            timeout_and_cancel_are_flagged,
            commands_only_sandbox_offers_execute_command,
            file_tools_round_trip,
            file_tools_bad_arguments,
            read_file_ranges,
            edit_file_matches,
            edit_safety,
            list_files_glob_and_depth,
            search_tools,
            background_process_lifecycle,
            process_tools_bad_arguments,
            process_wait_for,
            port_url_tool,
        }
    };
}

/// Builds [`CHECKS`] from the check list.
#[doc(hidden)]
#[macro_export]
macro_rules! __tool_check_table {
    ({} $($check:ident),* $(,)?) => {
        /// Every check with its name, in the order the list gives them.
        pub static CHECKS: &[(&str, Check)] = &[
            $(
                (stringify!($check), {
                    fn boxed(sandbox: Arc<dyn WorkspaceSandbox>) -> BoxFuture<'static, ()> {
                        Box::pin($check(sandbox))
                    }
                    boxed
                }),
            )*
        ];
    };
}

__tool_check_list!(__tool_check_table {});

/// Generates one `#[test]` per check for a provider.
///
/// `tool_checks!(make)` expands into `mod tool_checks { … }`; `tool_checks!(name, make)` names
/// the module. `make` is a closure or `async fn` with no arguments whose future yields an
/// `Arc<dyn WorkspaceSandbox>`. Each test builds a two-worker tokio runtime, makes a sandbox,
/// runs the check, and destroys the sandbox whether the check passed or not.
#[macro_export]
macro_rules! tool_checks {
    ($module:ident, $make:expr $(,)?) => {
        $crate::__tool_check_list!($crate::__tool_check_tests { $module ($make) });
    };
    ($make:expr $(,)?) => {
        $crate::tool_checks!(tool_checks, $make);
    };
}

/// Expands the check list into tests; see [`tool_checks!`](crate::tool_checks).
#[doc(hidden)]
#[macro_export]
macro_rules! __tool_check_tests {
    ({ $module:ident ($make:expr) } $($check:ident),* $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $check() {
                    $crate::testkit::run_check($make, |sandbox| {
                        Box::pin($crate::testkit::$check(sandbox))
                    });
                }
            )*
        }
    };
}

/// How long a check may take before the runner fails it.
const CHECK_DEADLINE: Duration = Duration::from_secs(300);
/// How long the runner gives `destroy()` afterwards.
const DESTROY_DEADLINE: Duration = Duration::from_secs(120);

/// Run one check on a fresh sandbox from `make` on its own runtime, then destroy the sandbox,
/// pass or fail; a failed check's panic is re-raised after the cleanup.
pub fn run_check<F, Fut, C>(make: F, check: C)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Arc<dyn WorkspaceSandbox>>,
    C: FnOnce(Arc<dyn WorkspaceSandbox>) -> BoxFuture<'static, ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the check");
    runtime.block_on(async {
        let sandbox = make().await;
        let outcome =
            AssertUnwindSafe(tokio::time::timeout(CHECK_DEADLINE, check(sandbox.clone())))
                .catch_unwind()
                .await;
        let destroyed = tokio::time::timeout(DESTROY_DEADLINE, sandbox.destroy()).await;
        match outcome {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(Err(_)) => panic!("the check took longer than {CHECK_DEADLINE:?}"),
            Ok(Ok(())) => {}
        }
        match destroyed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("destroy after the check failed: {e}"),
            Err(_) => panic!("destroy after the check took longer than {DESTROY_DEADLINE:?}"),
        }
    });
}
