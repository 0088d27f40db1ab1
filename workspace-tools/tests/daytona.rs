//! Every tool check of [`workspace_tools::testkit`] on `DaytonaSandbox`, against an in-process
//! Daytona emulator: the tools drive a remote sandbox over real HTTP and WebSocket, through the
//! same `Workspace` calls as on the local machine. Each check gets a fresh sandbox that is
//! destroyed afterwards.

use std::sync::{Arc, LazyLock};

use daytona_emulator::Emulator;
use workspace_core::WorkspaceSandbox;
use workspace_daytona::DaytonaSandbox;

const API_KEY: &str = "workspace-tools-test-key";

/// The API URL of one emulator shared by the whole test binary. Every check runs on a runtime
/// of its own (see `run_check`), and a runtime's end would take an emulator started on it
/// down, so the emulator serves from a thread and runtime of its own until the process exits.
static EMULATOR_API_URL: LazyLock<String> = LazyLock::new(|| {
    let parent = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    Emulator::builder()
        .api_key(API_KEY)
        .data_dir(daytona_emulator::process_data_dir(
            parent,
            "tools-daytona-emulator-",
        ))
        .start_detached()
        .expect("the emulator starts")
});

async fn daytona_sandbox() -> Arc<dyn WorkspaceSandbox> {
    let sandbox = DaytonaSandbox::builder()
        .api_key(API_KEY)
        .api_url(EMULATOR_API_URL.as_str())
        .label("suite", "workspace-tools")
        .build()
        .expect("a DaytonaSandbox against the emulator builds");
    Arc::new(sandbox)
}

workspace_tools::tool_checks!(daytona_sandbox);

/// Paths outside the sandbox's directories (home, `/tmp`, `/workspace`) are the toolbox's
/// access-denied, which every file tool reports as `PermissionDenied` text. A relative path that
/// climbs out of the home dir is checked too: it must not slip past as relative.
#[test]
fn path_outside_root_is_denied() {
    for outside in ["/etc/passwd", "/root/notes.txt", "../../../etc/hostname"] {
        workspace_tools::testkit::run_check(daytona_sandbox, |sandbox| {
            Box::pin(async move {
                workspace_tools::testkit::path_outside_root_is_denied(sandbox, outside).await
            })
        });
    }
}

/// What the model is told matches what it gets: the Daytona sandbox offers every tool, and its
/// own instructions (the working directory) reach the system-prompt text.
#[test]
fn daytona_offers_every_tool() {
    workspace_tools::testkit::run_check(daytona_sandbox, |sandbox| {
        Box::pin(async move {
            let workspace = workspace_tools::Workspace::new(sandbox.clone());
            let names = workspace.tool_names();
            for tool in [
                "execute_command",
                "get_process_output",
                "kill_process",
                "read_file",
                "write_file",
                "edit_file",
                "list_files",
                "delete",
                "mkdir",
                "file_stat",
            ] {
                assert!(names.contains(&tool), "{tool} missing from {names:?}");
            }
            let instructions = workspace.instructions();
            assert!(
                instructions.contains(&sandbox.get_instructions()),
                "the sandbox's instructions are part of the prompt text: {instructions}"
            );
        })
    });
}
