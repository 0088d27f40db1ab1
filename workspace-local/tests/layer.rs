//! `workspace_core::layer::Hooked` over a real `LocalSandbox`: hooks after start (also on a
//! lazy start by a command) and before stop, a failing hook as a typed error naming it, the
//! environment overlay changed on a live sandbox, values kept out of `Debug`; and the whole
//! conformance suite through the layer.

use std::sync::Arc;

use workspace_core::layer::Hooked;
use workspace_core::{
    ExecuteCommandOptions, SandboxError, SpawnOptions, WorkspaceSandbox, WorkspaceSandboxExt,
};
use workspace_local::{Isolation, LocalSandbox};

fn local() -> Arc<LocalSandbox> {
    Arc::new(
        LocalSandbox::builder()
            .isolation(Isolation::None)
            .build()
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

async fn make_layered() -> Arc<dyn WorkspaceSandbox> {
    let inner: Arc<dyn WorkspaceSandbox> = local();
    Arc::new(Hooked::new(inner).after_start("mark", "printf started > .hooked"))
}

workspace_core::conformance_tests!(through_layer, make_layered);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_around_start_and_stop_and_the_overlay_applies() {
    let inner = local();
    let sandbox = Hooked::new(inner.clone())
        .after_start("setup", "printf '%s\\n' \"$GREETING\" >> setup.log")
        .after_start("deps", "printf 'deps\\n' >> setup.log")
        .before_stop("save", "printf saved > saved.txt");
    sandbox
        .set_env("GREETING", "hello")
        .unwrap_or_else(|e| panic!("{e}"));
    sandbox
        .set_env("API_TOKEN", "s3cr3t-value")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        sandbox.set_env("BAD NAME", "x"),
        Err(SandboxError::InvalidArgument { .. })
    ));
    let debug = format!("{sandbox:?}");
    assert!(
        debug.contains("API_TOKEN") && !debug.contains("s3cr3t-value"),
        "{debug}"
    );

    // A command starts the sandbox lazily; the hooks run first, once.
    let r = sandbox
        .run("cat setup.log; echo \"$API_TOKEN\"")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.stdout, "hello\ndeps\ns3cr3t-value\n");
    sandbox.run("true").await.unwrap_or_else(|e| panic!("{e}"));
    let r = sandbox
        .run("cat setup.log")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.stdout, "hello\ndeps\n", "hooks ran once: {r:?}");

    // The overlay changes on the live sandbox; a call's own variables win.
    sandbox
        .set_env("GREETING", "changed")
        .unwrap_or_else(|e| panic!("{e}"));
    sandbox.remove_env("API_TOKEN");
    let r = sandbox
        .execute_command(
            "echo \"$GREETING ${API_TOKEN:-unset} $OWN\"",
            &[],
            ExecuteCommandOptions::new().env("OWN", "mine"),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.stdout, "changed unset mine\n");
    let r = sandbox
        .execute_command(
            "echo $GREETING",
            &[],
            ExecuteCommandOptions::new().env("GREETING", "call"),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.stdout, "call\n");
    // Background processes get it too.
    let pm = sandbox.processes().unwrap_or_else(|| panic!("processes"));
    let p = pm
        .spawn("echo $GREETING", &[], SpawnOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    pm.wait(&p.id, Some(std::time::Duration::from_secs(10)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let out = pm
        .output(&p.id, Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.stdout_text(), "changed\n");

    // Stop runs the before-stop hook; a start after it runs the after-start hooks again.
    sandbox.stop().await.unwrap_or_else(|e| panic!("{e}"));
    let saved = std::fs::read_to_string(inner.root().join("saved.txt")).unwrap_or_default();
    assert_eq!(saved, "saved");
    sandbox.start().await.unwrap_or_else(|e| panic!("{e}"));
    let r = sandbox
        .run("cat setup.log")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.stdout, "hello\ndeps\nchanged\ndeps\n");
    sandbox.destroy().await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hook_is_a_typed_error_naming_it() {
    let sandbox = Hooked::new(local())
        .after_start("ok", "true")
        .after_start("install deps", "echo 'E: package not found' >&2; exit 3");
    match sandbox.run("echo never").await {
        Err(SandboxError::Hook {
            hook,
            phase,
            message,
        }) => {
            assert_eq!(hook, "install deps");
            assert_eq!(phase, "after start");
            assert!(
                message.contains("exited with code 3") && message.contains("package not found"),
                "{message}"
            );
        }
        other => panic!("expected a hook error, got {other:?}"),
    }
    let e = sandbox.start().await.expect_err("the hook fails again");
    assert!(
        e.to_string()
            .starts_with("after start hook `install deps` failed"),
        "{e}"
    );
    sandbox.destroy().await.unwrap_or_else(|e| panic!("{e}"));
}
