//! LocalSandbox through the WorkspaceSandbox trait, against real processes and directories.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{pid_alive, read_pid, wait_dead};
use workspace_core::{
    CancellationToken, ExecuteCommandOptions, OutputOffsets, ProcessId, ProcessState, SandboxError,
    SandboxStatus, SpawnOptions, StartOutcome, WorkspaceSandbox, WorkspaceSandboxExt,
};
use workspace_local::{Isolation, LocalSandbox};

fn in_dir(dir: &std::path::Path) -> LocalSandbox {
    LocalSandbox::builder().root(dir).build().unwrap()
}

/// Unisolated, for the tests that check processes by the pids commands report (`echo $$`):
/// isolated commands see their own PID namespace's numbers. `conformance.rs` and
/// `isolation.rs` check the same guarantees under isolation by command line from the host.
fn unisolated() -> workspace_local::LocalSandboxBuilder {
    LocalSandbox::builder().isolation(Isolation::None)
}

fn invalid_field<T: std::fmt::Debug>(r: Result<T, SandboxError>) -> String {
    match r {
        Err(SandboxError::InvalidArgument { field, .. }) => field,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[tokio::test]
async fn runs_commands_with_quoted_args_in_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let sb = in_dir(dir.path());
    assert_eq!(sb.status(), SandboxStatus::Pending);
    let r = sb
        .execute_command(
            "printf '%s|'",
            &["a b".into(), "it's".into(), "$HOME".into(), "".into()],
            ExecuteCommandOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "a b|it's|$HOME||");
    assert_eq!(sb.status(), SandboxStatus::Running, "started lazily");
    let r = sb.run("pwd -P; exit 7").await.unwrap();
    assert_eq!(r.exit_code, 7);
    assert_eq!(
        r.stdout.trim_end(),
        dir.path().canonicalize().unwrap().to_str().unwrap()
    );
    sb.destroy().await.unwrap();
}

#[tokio::test]
async fn environment_is_minimal_by_default() {
    // SAFETY: set once before any thread of this test reads the environment; the name is unique
    // to this test.
    unsafe { std::env::set_var("WS_LOCAL_TEST_SECRET", "hunter2") };
    let dir = tempfile::tempdir().unwrap();
    let sb = LocalSandbox::builder()
        .root(dir.path())
        .env("CONFIGURED", "yes")
        .env("OVERRIDDEN", "sandbox")
        .build()
        .unwrap();
    let r = sb
        .execute_command(
            "env",
            &[],
            ExecuteCommandOptions::new().env("OVERRIDDEN", "command"),
        )
        .await
        .unwrap();
    let vars: std::collections::BTreeMap<&str, &str> =
        r.stdout.lines().filter_map(|l| l.split_once('=')).collect();
    assert!(
        !r.stdout.contains("hunter2"),
        "host secret leaked: {}",
        r.stdout
    );
    assert!(!vars.contains_key("WS_LOCAL_TEST_SECRET"));
    assert_eq!(vars["HOME"], dir.path().to_str().unwrap());
    assert_eq!(vars["LANG"], "C.UTF-8");
    assert_eq!(vars["LC_ALL"], "C.UTF-8");
    assert_eq!(vars["SHELL"], "/bin/sh");
    assert!(vars.contains_key("PATH") && vars.contains_key("TMPDIR") && vars.contains_key("USER"));
    assert_eq!(vars["CONFIGURED"], "yes");
    assert_eq!(vars["OVERRIDDEN"], "command");

    let inherit = LocalSandbox::builder()
        .root(dir.path())
        .inherit_env(true)
        .build()
        .unwrap();
    let r = inherit.run("echo $WS_LOCAL_TEST_SECRET").await.unwrap();
    assert_eq!(r.stdout, "hunter2\n");
}

#[tokio::test]
async fn bad_command_input_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let sb = in_dir(dir.path());
    let opts = ExecuteCommandOptions::new;
    assert_eq!(
        invalid_field(sb.execute_command("", &[], opts()).await),
        "command"
    );
    assert_eq!(
        invalid_field(sb.execute_command("  ", &[], opts()).await),
        "command"
    );
    assert_eq!(
        invalid_field(
            sb.execute_command("echo", &["ok".into(), "a\0b".into()], opts())
                .await
        ),
        "args[1]"
    );
    assert_eq!(
        invalid_field(
            sb.execute_command("echo", &[], opts().env("K", "v\0"))
                .await
        ),
        "env.K"
    );
    assert_eq!(
        invalid_field(
            sb.execute_command("echo", &[], opts().env("1BAD", "v"))
                .await
        ),
        "env.1BAD"
    );
    assert_eq!(
        invalid_field(
            sb.execute_command("echo", &[], opts().cwd("relative/dir"))
                .await
        ),
        "cwd"
    );
    assert_eq!(
        invalid_field(
            sb.execute_command("echo", &[], opts().timeout(Duration::ZERO))
                .await
        ),
        "timeout"
    );
    assert_eq!(
        invalid_field(
            sb.execute_command(
                "echo",
                &[],
                opts().timeout(Duration::from_secs(u32::MAX as u64))
            )
            .await
        ),
        "timeout"
    );
    let missing = dir.path().join("missing");
    let err = sb
        .execute_command("echo", &[], opts().cwd(missing.to_str().unwrap()))
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("cwd"), "{err}");
    std::fs::write(dir.path().join("file"), "").unwrap();
    let file = dir.path().join("file");
    assert_eq!(
        invalid_field(
            sb.execute_command("echo", &[], opts().cwd(file.to_str().unwrap()))
                .await
        ),
        "cwd"
    );
    assert_eq!(
        invalid_field(
            sb.execute_command("echo", &[], opts().output_limit(0))
                .await
        ),
        "output_limit"
    );
}

#[tokio::test]
async fn cwd_env_stdin_and_callbacks_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let sb = in_dir(dir.path());
    let seen = Arc::new(std::sync::Mutex::new(String::new()));
    let s = seen.clone();
    let sub = dir.path().join("sub").canonicalize().unwrap();
    let r = sb
        .execute_command(
            "pwd -P; echo $X; cat",
            &[],
            ExecuteCommandOptions::new()
                .cwd(sub.to_str().unwrap())
                .env("X", "ex")
                .stdin("from stdin")
                .on_stdout(move |c| s.lock().unwrap().push_str(c)),
        )
        .await
        .unwrap();
    let expected = format!("{}\nex\nfrom stdin", sub.display());
    assert_eq!(r.stdout, expected);
    assert_eq!(*seen.lock().unwrap(), expected);
}

#[tokio::test]
async fn timeout_and_cancel_through_the_trait() {
    let dir = tempfile::tempdir().unwrap();
    let sb = unisolated().root(dir.path()).build().unwrap();
    let started = Instant::now();
    let r = sb
        .execute_command(
            "echo partial; sleep 30",
            &[],
            ExecuteCommandOptions::new().timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        (r.exit_code, r.timed_out, r.stdout.as_str()),
        (124, true, "partial\n")
    );

    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        t.cancel();
    });
    let r = sb
        .execute_command(
            "sleep 300 & echo $! > pid; wait",
            &[],
            ExecuteCommandOptions::new().cancel_token(token),
        )
        .await
        .unwrap();
    assert_eq!((r.exit_code, r.killed), (137, true));
    let pid = read_pid(&dir.path().join("pid")).await;
    assert!(wait_dead(pid, Duration::from_secs(2)).await);
}

#[tokio::test]
async fn default_timeout_applies() {
    let dir = tempfile::tempdir().unwrap();
    let sb = LocalSandbox::builder()
        .root(dir.path())
        .default_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let r = sb.run("sleep 30").await.unwrap();
    assert!(r.timed_out);
    assert!(sb.get_instructions().contains("Command timeout: 300ms"));
    let r = sb
        .execute_command(
            "sleep 0.5; echo ok",
            &[],
            ExecuteCommandOptions::new().no_timeout(),
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "ok\n");
}

#[tokio::test]
async fn start_outcomes() {
    let sb = LocalSandbox::builder().build().unwrap();
    assert_eq!(sb.start().await.unwrap(), StartOutcome::Created);
    assert_eq!(sb.start().await.unwrap(), StartOutcome::Connected);
    sb.stop().await.unwrap();
    assert_eq!(sb.status(), SandboxStatus::Stopped);
    assert_eq!(sb.start().await.unwrap(), StartOutcome::Connected);
    sb.destroy().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let sb = in_dir(dir.path());
    assert_eq!(sb.start().await.unwrap(), StartOutcome::Connected);
}

#[tokio::test]
async fn stop_keeps_files_and_kills_everything_running() {
    let sb = Arc::new(
        unisolated()
            .kill_grace(Duration::from_millis(100))
            .build()
            .unwrap(),
    );
    let root = sb.root().to_path_buf();
    sb.filesystem()
        .unwrap()
        .write_file("keep.txt", b"kept")
        .await
        .unwrap();
    // A daemon left behind by a finished command.
    sb.run("sleep 300 >/dev/null 2>&1 & echo $! > daemon.pid")
        .await
        .unwrap();
    let daemon = read_pid(&root.join("daemon.pid")).await;
    assert!(pid_alive(daemon));
    // A background process.
    let procs = sb.processes().unwrap();
    let p = procs
        .spawn(
            "sleep 300 & echo $! > bg.pid; wait",
            &[],
            SpawnOptions::new(),
        )
        .await
        .unwrap();
    let bg = read_pid(&root.join("bg.pid")).await;
    // A command still running.
    let running = tokio::spawn({
        let sb = sb.clone();
        async move { sb.run("echo $$ > fg.pid; sleep 300").await }
    });
    let fg = read_pid(&root.join("fg.pid")).await;

    let started = Instant::now();
    sb.stop().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    for pid in [daemon, bg, fg] {
        assert!(
            wait_dead(pid, Duration::from_secs(2)).await,
            "pid {pid} survived stop"
        );
    }
    let r = running.await.unwrap().unwrap();
    assert_eq!(r.exit_code, 137);
    assert_eq!(
        procs.get(&p.id).await.unwrap().state,
        ProcessState::Exited(137)
    );

    // Files persist and the next command starts it again.
    let r = sb.run("cat keep.txt").await.unwrap();
    assert_eq!(r.stdout, "kept");
    assert_eq!(sb.status(), SandboxStatus::Running);
    sb.destroy().await.unwrap();
}

#[tokio::test]
async fn destroy_removes_an_owned_root_and_is_final() {
    let sb = LocalSandbox::builder().build().unwrap();
    let root = sb.root().to_path_buf();
    sb.run("echo hi > f").await.unwrap();
    let p = sb
        .processes()
        .unwrap()
        .spawn("sleep 300", &[], SpawnOptions::new())
        .await
        .unwrap();
    let info = sb.processes().unwrap().get(&p.id).await.unwrap();
    assert_eq!(info.state, ProcessState::Running);
    sb.destroy().await.unwrap();
    assert!(!root.exists(), "owned temp root removed");
    sb.destroy().await.unwrap();
    assert_eq!(sb.status(), SandboxStatus::Destroyed);

    let not_ready = |e: SandboxError| assert!(matches!(e, SandboxError::NotReady { .. }), "{e:?}");
    not_ready(sb.run("echo").await.unwrap_err());
    not_ready(sb.start().await.unwrap_err());
    not_ready(sb.stop().await.unwrap_err());
    not_ready(sb.get_info().await.unwrap_err());
    let fs = sb.filesystem().unwrap();
    not_ready(fs.read_file("f").await.unwrap_err());
    not_ready(fs.write_file("f", b"x").await.unwrap_err());
    not_ready(fs.list_dir(".").await.unwrap_err());
    let procs = sb.processes().unwrap();
    not_ready(procs.list().await.unwrap_err());
    not_ready(procs.get(&p.id).await.unwrap_err());
    not_ready(
        procs
            .spawn("true", &[], SpawnOptions::new())
            .await
            .unwrap_err(),
    );
}

#[tokio::test]
async fn destroy_never_deletes_a_callers_root() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.txt"), "keep").unwrap();
    let sb = in_dir(dir.path());
    sb.run("echo made > made.txt").await.unwrap();
    sb.destroy().await.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mine.txt")).unwrap(),
        "keep"
    );
    assert!(dir.path().join("made.txt").is_file());
}

#[tokio::test]
async fn dropping_the_sandbox_cleans_up() {
    let sb = unisolated().build().unwrap();
    let root = sb.root().to_path_buf();
    sb.processes()
        .unwrap()
        .spawn("echo $$ > p.pid; sleep 300", &[], SpawnOptions::new())
        .await
        .unwrap();
    sb.run("sleep 300 >/dev/null 2>&1 & echo $! > d.pid")
        .await
        .unwrap();
    let p = read_pid(&root.join("p.pid")).await;
    let d = read_pid(&root.join("d.pid")).await;
    drop(sb);
    assert!(wait_dead(p, Duration::from_secs(2)).await);
    assert!(wait_dead(d, Duration::from_secs(2)).await);
    assert!(!root.exists());
}

#[tokio::test]
async fn info_instructions_and_capabilities() {
    let dir = tempfile::tempdir().unwrap();
    // The isolated tier's report is checked in isolation.rs.
    let sb = unisolated()
        .root(dir.path())
        .id("local-test")
        .name("Tester")
        .build()
        .unwrap();
    assert_eq!(
        (sb.id(), sb.name(), sb.provider()),
        ("local-test", "Tester", "local")
    );
    let info = sb.get_info().await.unwrap();
    assert_eq!(info.status, SandboxStatus::Pending);
    assert!(info.last_used_at.is_none());
    sb.run("true").await.unwrap();
    let info = sb.get_info().await.unwrap();
    assert_eq!(info.status, SandboxStatus::Running);
    assert!(info.last_used_at.is_some());
    let res = info.resources.unwrap();
    assert!(res.cpu_cores.unwrap() >= 1.0);
    assert!(res.memory_mb.unwrap() > 0);
    assert!(res.disk_mb.unwrap() > 0);
    assert_eq!(info.metadata["root"], dir.path().to_str().unwrap());
    assert_eq!(info.metadata["shell"], "/bin/sh");
    assert_eq!(info.metadata["inherit_env"], false);

    let text = sb.get_instructions();
    assert_eq!(text, sb.get_instructions(), "deterministic");
    assert!(text.contains("no isolation"), "{text}");
    assert!(text.contains(dir.path().to_str().unwrap()));
    assert!(text.contains("300s"));

    let caps = sb.capabilities();
    assert!(caps.filesystem && caps.processes && !caps.isolated);
    let dbg = format!("{sb:?}");
    assert!(dbg.contains("local-test"));
}

#[tokio::test]
async fn debug_output_hides_env_values() {
    let builder = LocalSandbox::builder().env("API_KEY", "s3cr3t-value");
    assert!(!format!("{builder:?}").contains("s3cr3t-value"));
    let sb = builder.build().unwrap();
    assert!(!format!("{sb:?}").contains("s3cr3t-value"));
}

#[test]
fn builder_rejects_bad_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let err = LocalSandbox::builder()
        .root(dir.path().join("missing"))
        .build()
        .unwrap_err();
    assert!(matches!(err, SandboxError::NotFound { .. }), "{err:?}");
    std::fs::write(dir.path().join("f"), "").unwrap();
    assert_eq!(
        invalid_field(LocalSandbox::builder().root(dir.path().join("f")).build()),
        "root"
    );
    assert_eq!(
        invalid_field(
            LocalSandbox::builder()
                .default_timeout(Duration::ZERO)
                .build()
        ),
        "default_timeout"
    );
    assert_eq!(
        invalid_field(LocalSandbox::builder().env("BAD-NAME", "x").build()),
        "env.BAD-NAME"
    );
    assert_eq!(
        invalid_field(LocalSandbox::builder().env("OK", "a\0").build()),
        "env.OK"
    );
    assert_eq!(
        invalid_field(LocalSandbox::builder().shell("sh").build()),
        "shell"
    );
    let err = LocalSandbox::builder()
        .shell("/no/such/shell")
        .build()
        .unwrap_err();
    assert!(matches!(err, SandboxError::NotFound { .. }), "{err:?}");
    assert_eq!(invalid_field(LocalSandbox::builder().id("").build()), "id");
}

#[tokio::test]
async fn files_and_commands_see_the_same_tree() {
    let sb = LocalSandbox::builder().build().unwrap();
    let fs = sb.filesystem().unwrap();
    fs.write_file("dir/from-api.txt", b"api").await.unwrap();
    let r = sb
        .run("cat dir/from-api.txt; echo cmd > dir/from-cmd.txt")
        .await
        .unwrap();
    assert_eq!(r.stdout, "api");
    assert_eq!(fs.read_file("dir/from-cmd.txt").await.unwrap(), b"cmd\n");
    let names: Vec<_> = fs
        .list_dir("dir")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["from-api.txt", "from-cmd.txt"]);
    let err = fs.read_file("/etc/passwd").await.unwrap_err();
    assert!(matches!(err, SandboxError::PermissionDenied { .. }));
    sb.destroy().await.unwrap();
}

#[tokio::test]
async fn process_manager_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("work")).unwrap();
    let sb = in_dir(dir.path());
    let procs = sb.processes().unwrap();
    let work = dir.path().join("work");
    let a = procs
        .spawn(
            "echo \"$GREETING from $(basename \"$PWD\")\"; echo",
            &["arg with space".into()],
            SpawnOptions::new()
                .cwd(work.to_str().unwrap())
                .env("GREETING", "hi"),
        )
        .await
        .unwrap();
    assert_eq!(a.id, ProcessId::from("proc-1"));
    assert!(a.command.contains("'arg with space'"));
    let b = procs
        .spawn("cat", &[], SpawnOptions::new().with_stdin())
        .await
        .unwrap();
    assert_eq!(b.id, ProcessId::from("proc-2"));

    let done = procs
        .wait(&a.id, Some(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(done.state, ProcessState::Exited(0));
    let out = procs.output(&a.id, OutputOffsets::default()).await.unwrap();
    assert_eq!(out.stdout_text(), "hi from work\narg with space\n");

    procs.write_stdin(&b.id, b"ping\n").await.unwrap();
    procs.close_stdin(&b.id).await.unwrap();
    let info = procs
        .wait(&b.id, Some(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(info.state, ProcessState::Exited(0));
    let out = procs.output(&b.id, OutputOffsets::default()).await.unwrap();
    assert_eq!(out.stdout_text(), "ping\n");

    let c = procs
        .spawn("sleep 300", &[], SpawnOptions::new())
        .await
        .unwrap();
    let still = procs
        .wait(&c.id, Some(Duration::from_millis(100)))
        .await
        .unwrap();
    assert_eq!(still.state, ProcessState::Running);
    let killed = procs.kill(&c.id).await.unwrap();
    assert_eq!(killed.state, ProcessState::Exited(137));
    let killed_again = procs.kill(&c.id).await.unwrap();
    assert_eq!(killed_again.state, ProcessState::Exited(137));

    let ids: Vec<_> = procs
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id.0)
        .collect();
    assert_eq!(ids, ["proc-1", "proc-2", "proc-3"]);

    for missing in ["proc-99", "nonsense", ""] {
        let err = procs.get(&ProcessId::from(missing)).await.unwrap_err();
        assert!(matches!(err, SandboxError::NotFound { .. }), "{err:?}");
    }
    assert_eq!(
        invalid_field(procs.spawn("", &[], SpawnOptions::new()).await),
        "command"
    );
    assert_eq!(
        invalid_field(
            procs
                .spawn("true", &[], SpawnOptions::new().cwd("rel"))
                .await
        ),
        "cwd"
    );
    assert_eq!(
        invalid_field(
            procs
                .spawn("true", &[], SpawnOptions::new().env("A B", "x"))
                .await
        ),
        "env.A B"
    );
    let err = procs.write_stdin(&a.id, b"x").await.unwrap_err();
    assert!(
        matches!(err, SandboxError::InvalidArgument { .. }),
        "{err:?}"
    );
    sb.destroy().await.unwrap();
}
