//! The escape suite: what a command must not be able to do from inside an isolated
//! `LocalSandbox`, each checked on the host afterwards. Every escape is also tried with
//! `Isolation::None`, where it must *succeed* (the old behaviour), so each test proves it can
//! fail. Plus the settings: `Auto` falling back, `Required` refusing, what `get_info`, the
//! capabilities and the instructions report, and the file API agreeing with commands.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use workspace_core::{
    CommandResult, ExecuteCommandOptions, ProcessManager, SandboxError, SpawnOptions,
    WorkspaceSandbox, testkit,
};
use workspace_local::{Isolation, IsolationTier, LocalSandbox};

const BOTH: [Isolation; 2] = [Isolation::Required, Isolation::None];

/// A directory on the host outside every place the sandbox hides (the target dir of this test).
fn host_scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("escape-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

fn sandbox(mode: Isolation, fake_home: &Path) -> LocalSandbox {
    let sandbox = LocalSandbox::builder()
        .isolation(mode)
        .host_home(fake_home)
        .build()
        .unwrap_or_else(|e| panic!("{mode:?} sandbox builds (isolation needs bwrap): {e}"));
    let expected = match mode {
        Isolation::None => IsolationTier::None,
        _ => IsolationTier::Bubblewrap,
    };
    assert_eq!(sandbox.isolation_tier(), expected);
    sandbox
}

async fn sh(sandbox: &LocalSandbox, line: &str, env: &[(&str, &str)]) -> CommandResult {
    let mut opts = ExecuteCommandOptions::new().timeout(Duration::from_secs(30));
    for (k, v) in env {
        opts = opts.env(*k, *v);
    }
    sandbox.execute_command(line, &[], opts).await.unwrap()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", testkit::unique_suffix())
}

#[tokio::test]
async fn writes_outside_the_root_do_not_reach_the_host() {
    let home = std::env::var("HOME").unwrap();
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    for mode in BOTH {
        let fake_home = host_scratch();
        let s = sandbox(mode, fake_home.path());
        let targets = [
            PathBuf::from(&home).join(unique("ws-escape-home")),
            PathBuf::from("/tmp").join(unique("ws-escape-tmp")),
            PathBuf::from(crate_dir).join(unique("ws-escape-crate")),
        ];
        for target in &targets {
            let r = sh(
                &s,
                r#"printf escaped > "$TARGET"; echo "exit $?""#,
                &[("TARGET", target.to_str().unwrap())],
            )
            .await;
            let on_host = target.exists();
            let _ = std::fs::remove_file(target);
            match mode {
                Isolation::None => assert!(on_host, "unisolated write to {target:?}: {r:?}"),
                _ => assert!(
                    !on_host,
                    "isolated write reached the host at {target:?}: {r:?}"
                ),
            }
        }
        // The root itself is writable, and the host sees what was written there.
        let r = sh(&s, "printf inside > in-root.txt", &[]).await;
        assert!(r.success, "{r:?}");
        assert_eq!(
            std::fs::read_to_string(s.root().join("in-root.txt")).unwrap(),
            "inside"
        );
        s.destroy().await.unwrap();
    }
}

#[tokio::test]
async fn a_planted_secret_in_home_is_not_readable() {
    for mode in BOTH {
        let fake_home = host_scratch();
        let ssh = fake_home.path().join(".ssh");
        std::fs::create_dir(&ssh).unwrap();
        let secret = unique("SECRET");
        std::fs::write(ssh.join("id_ed25519"), &secret).unwrap();
        std::fs::create_dir(fake_home.path().join(".aws")).unwrap();
        std::fs::write(fake_home.path().join(".aws/credentials"), &secret).unwrap();
        let s = sandbox(mode, fake_home.path());
        let r = sh(
            &s,
            r#"cat "$H/.ssh/id_ed25519" "$H/.aws/credentials"; ls -A "$H""#,
            &[("H", fake_home.path().to_str().unwrap())],
        )
        .await;
        match mode {
            Isolation::None => assert!(r.stdout.contains(&secret), "{r:?}"),
            _ => {
                assert!(!r.stdout.contains(&secret), "secret read: {r:?}");
                assert!(r.stderr.contains("No such file"), "{r:?}");
            }
        }
        s.destroy().await.unwrap();
    }
}

#[tokio::test]
async fn the_real_home_is_hidden_by_default() {
    let home = std::env::var("HOME").unwrap();
    // Something must be there on the host for its absence inside to mean anything.
    let marker = PathBuf::from(&home).join(unique(".ws-isolation-visible"));
    std::fs::write(&marker, "x").unwrap();
    let s = LocalSandbox::builder()
        .isolation(Isolation::Required)
        .build()
        .unwrap();
    let r = sh(&s, r#"ls -A "$H""#, &[("H", &home)]).await;
    let name = marker.file_name().unwrap().to_str().unwrap().to_string();
    std::fs::remove_file(&marker).unwrap();
    assert!(!r.stdout.contains(&name), "host home visible: {r:?}");
    s.destroy().await.unwrap();
}

/// A loopback listener on the host that counts the connections it accepts.
struct Listener {
    port: u16,
    accepted: Arc<Mutex<usize>>,
}

fn listen() -> Listener {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(Mutex::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            *count.lock().unwrap() += 1;
            let _ = conn.write_all(b"hello from the host\n");
        }
    });
    Listener { port, accepted }
}

const CONNECT: &str =
    r#"bash -c 'exec 3<>/dev/tcp/127.0.0.1/$PORT && head -n1 <&3' && echo connected"#;

async fn try_connect(s: &LocalSandbox, l: &Listener) -> (CommandResult, usize) {
    let before = *l.accepted.lock().unwrap();
    let r = sh(s, CONNECT, &[("PORT", &l.port.to_string())]).await;
    // The accept loop runs on its own thread: give it a moment to count.
    tokio::time::sleep(Duration::from_millis(100)).await;
    (r, *l.accepted.lock().unwrap() - before)
}

#[tokio::test]
async fn the_host_loopback_is_unreachable_unless_the_network_is_allowed() {
    let l = listen();
    for mode in BOTH {
        let fake_home = host_scratch();
        let s = sandbox(mode, fake_home.path());
        let (r, accepted) = try_connect(&s, &l).await;
        match mode {
            Isolation::None => {
                assert!(r.stdout.contains("connected"), "{r:?}");
                assert_eq!(accepted, 1);
            }
            _ => {
                assert!(!r.success && !r.stdout.contains("connected"), "{r:?}");
                assert_eq!(accepted, 0, "the host listener saw a connection");
            }
        }
        s.destroy().await.unwrap();
    }
    let s = LocalSandbox::builder()
        .isolation(Isolation::Required)
        .network(true)
        .build()
        .unwrap();
    let (r, accepted) = try_connect(&s, &l).await;
    assert!(r.stdout.contains("hello from the host"), "{r:?}");
    assert!(r.stdout.contains("connected"), "{r:?}");
    assert_eq!(accepted, 1);
    s.destroy().await.unwrap();
}

#[tokio::test]
async fn a_host_process_cannot_be_signalled() {
    for mode in BOTH {
        let fake_home = host_scratch();
        let s = sandbox(mode, fake_home.path());
        let mut victim = std::process::Command::new("sleep")
            .arg("300")
            .spawn()
            .unwrap();
        let r = sh(
            &s,
            r#"kill -KILL "$VICTIM"; echo "kill exit $?""#,
            &[("VICTIM", &victim.id().to_string())],
        )
        .await;
        // Reaped here if killed; give the signal a moment to land.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let still_running = victim.try_wait().unwrap().is_none();
        let _ = victim.kill();
        let _ = victim.wait();
        match mode {
            Isolation::None => assert!(!still_running, "unisolated kill failed: {r:?}"),
            _ => assert!(
                still_running,
                "a host process was killed from inside: {r:?}"
            ),
        }
        s.destroy().await.unwrap();
    }
}

#[tokio::test]
async fn nothing_survives_destroy_not_even_a_setsid_daemon() {
    for mode in BOTH {
        let fake_home = host_scratch();
        let s = sandbox(mode, fake_home.path());
        let marker = testkit::unique_marker();
        let r = sh(
            &s,
            &format!("setsid sh -c 'exec {marker}' </dev/null >/dev/null 2>&1 & echo started"),
            &[],
        )
        .await;
        assert!(r.stdout.contains("started"), "{r:?}");
        let seen = wait_for_host(&marker, true, Duration::from_secs(5)).await;
        assert!(seen, "the daemon never started: {r:?}");
        s.destroy().await.unwrap();
        let gone = wait_for_host(&marker, false, Duration::from_secs(5)).await;
        // Clean up what the unisolated run leaves on purpose.
        for line in testkit::host_processes_matching(std::slice::from_ref(&marker)) {
            if let Some(pid) = line.split(':').next().and_then(|p| p.parse().ok()) {
                common::kill_pid(pid);
            }
        }
        match mode {
            Isolation::None => assert!(!gone, "the old behaviour: a setsid daemon outlives it"),
            _ => assert!(gone, "a process outlived destroy()"),
        }
    }
}

#[tokio::test]
async fn dropping_an_isolated_sandbox_kills_everything_in_it() {
    let fake_home = host_scratch();
    let s = sandbox(Isolation::Required, fake_home.path());
    let (spawned, daemon) = (testkit::unique_marker(), testkit::unique_marker());
    s.processes()
        .unwrap()
        .spawn(&spawned, &[], SpawnOptions::new())
        .await
        .unwrap();
    sh(
        &s,
        &format!("setsid sh -c 'exec {daemon}' </dev/null >/dev/null 2>&1 &"),
        &[],
    )
    .await;
    for m in [&spawned, &daemon] {
        assert!(
            wait_for_host(m, true, Duration::from_secs(5)).await,
            "{m} never ran"
        );
    }
    let root = s.root().to_path_buf();
    drop(s);
    for m in [&spawned, &daemon] {
        assert!(
            wait_for_host(m, false, Duration::from_secs(5)).await,
            "{m} outlived the drop"
        );
    }
    assert!(!root.exists());
}

/// Wait until the marker process itself (the `sleep` exec'd after `setsid`, not the `setsid` or
/// shell still on its way there) is running on the host, or until nothing carrying the marker
/// is.
async fn wait_for_host(marker: &str, present: bool, within: Duration) -> bool {
    let end = Instant::now() + within;
    loop {
        let lines = testkit::host_processes_matching(&[marker.to_string()]);
        let found = if present {
            lines.iter().any(|l| {
                l.split_once(": ")
                    .is_some_and(|(_, cmd)| cmd.starts_with(marker))
            })
        } else {
            !lines.is_empty()
        };
        if found == present {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The session id of a host process (field 6 of `/proc/<pid>/stat`).
fn session_of(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(3)?.parse().ok()
}

#[tokio::test]
async fn isolated_commands_run_in_a_session_of_their_own() {
    let ours = session_of(std::process::id()).unwrap();
    for mode in BOTH {
        let fake_home = host_scratch();
        let s = sandbox(mode, fake_home.path());
        let marker = testkit::unique_marker();
        let procs = s.processes().unwrap();
        procs
            .spawn(&marker, &[], SpawnOptions::new())
            .await
            .unwrap();
        assert!(wait_for_host(&marker, true, Duration::from_secs(5)).await);
        let line = testkit::host_processes_matching(std::slice::from_ref(&marker))
            .into_iter()
            .find(|l| {
                l.split_once(": ")
                    .is_some_and(|(_, c)| c.starts_with(&marker))
            })
            .unwrap();
        let pid: u32 = line.split(':').next().unwrap().parse().unwrap();
        let theirs = session_of(pid).unwrap();
        s.destroy().await.unwrap();
        match mode {
            // The caller's terminal, if it has one, belongs to its session.
            Isolation::None => assert_eq!(theirs, ours, "the old behaviour: same session"),
            _ => assert_ne!(
                theirs, ours,
                "an isolated command shares the caller's session"
            ),
        }
    }
}

#[tokio::test]
async fn symlinks_made_by_a_command_do_not_lead_the_file_api_out() {
    for mode in BOTH {
        let fake_home = host_scratch();
        let outside = host_scratch();
        let secret_path = outside.path().join("secret.txt");
        std::fs::write(&secret_path, "outside secret").unwrap();
        let s = sandbox(mode, fake_home.path());
        let r = sh(
            &s,
            r#"ln -s "$OUT/secret.txt" file-link && ln -s "$OUT" dir-link && ln -s /etc etc-link"#,
            &[("OUT", outside.path().to_str().unwrap())],
        )
        .await;
        assert!(r.success, "{r:?}");
        let fs = s.filesystem().unwrap();
        for path in ["file-link", "dir-link/secret.txt", "etc-link/hostname"] {
            let read = fs.read_file(path).await;
            assert!(
                matches!(read, Err(SandboxError::PermissionDenied { .. })),
                "{mode:?}: read through {path}: {read:?}"
            );
        }
        for path in ["file-link", "dir-link/new.txt"] {
            let write = fs.write_file(path, b"overwritten").await;
            assert!(
                matches!(write, Err(SandboxError::PermissionDenied { .. })),
                "{mode:?}: write through {path}: {write:?}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(&secret_path).unwrap(),
            "outside secret"
        );
        assert!(!outside.path().join("new.txt").exists());
        s.destroy().await.unwrap();
    }
}

#[tokio::test]
async fn the_file_api_and_commands_agree_on_paths() {
    let s = LocalSandbox::builder()
        .isolation(Isolation::Required)
        .build()
        .unwrap();
    let fs = s.filesystem().unwrap();
    // A command writes by absolute path (as `pwd` shows it) and by relative path...
    let r = sh(
        &s,
        "mkdir -p sub && printf a > \"$(pwd)/sub/abs.txt\" && printf r > sub/rel.txt && pwd",
        &[],
    )
    .await;
    assert!(r.success, "{r:?}");
    assert_eq!(
        r.stdout.trim(),
        s.root().canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(fs.read_file("sub/abs.txt").await.unwrap(), b"a");
    let abs = format!("{}/sub/rel.txt", r.stdout.trim());
    assert_eq!(fs.read_file(&abs).await.unwrap(), b"r");
    // ...and reads what the file API wrote.
    fs.write_file("from-api.txt", b"api").await.unwrap();
    let r = sh(&s, "cat from-api.txt", &[]).await;
    assert_eq!(r.stdout, "api");
    s.destroy().await.unwrap();
}

#[tokio::test]
async fn writable_and_readable_paths_are_honoured() {
    let writable = host_scratch();
    let fake_home = host_scratch();
    let readable = fake_home.path().join("tools");
    std::fs::create_dir(&readable).unwrap();
    std::fs::write(readable.join("tool.txt"), "tool").unwrap();
    std::fs::write(fake_home.path().join("hidden.txt"), "hidden").unwrap();
    let s = LocalSandbox::builder()
        .isolation(Isolation::Required)
        .host_home(fake_home.path())
        .writable_path(writable.path())
        .readable_path(&readable)
        .build()
        .unwrap();
    let env = [
        ("W", writable.path().to_str().unwrap()),
        ("R", readable.to_str().unwrap()),
        ("H", fake_home.path().to_str().unwrap()),
    ];
    let r = sh(
        &s,
        r#"printf w > "$W/out.txt"; cat "$R/tool.txt"; printf x > "$R/new.txt" 2>/dev/null || echo " ro"; cat "$H/hidden.txt""#,
        &env,
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(writable.path().join("out.txt")).unwrap(),
        "w"
    );
    assert!(r.stdout.starts_with("tool ro"), "{r:?}");
    assert!(!readable.join("new.txt").exists());
    assert!(!r.stdout.contains("hidden"), "{r:?}");
    s.destroy().await.unwrap();

    let bad = LocalSandbox::builder()
        .isolation(Isolation::Required)
        .writable_path("relative/dir")
        .build();
    assert!(
        matches!(&bad, Err(SandboxError::InvalidArgument { field, .. }) if field == "writable_paths[0]"),
        "{bad:?}"
    );
    let missing = LocalSandbox::builder()
        .isolation(Isolation::Required)
        .readable_path("/no/such/dir")
        .build();
    assert!(
        matches!(&missing, Err(SandboxError::NotFound { what }) if what.contains("readable_paths[0]")),
        "{missing:?}"
    );
}

#[tokio::test]
async fn a_background_server_answers_later_commands_with_the_network_off() {
    let s = LocalSandbox::builder()
        .isolation(Isolation::Required)
        .build()
        .unwrap();
    let procs = s.processes().unwrap();
    // A one-shot server in the sandbox's own network namespace (perl is essential on Debian).
    let server = r#"exec perl -MIO::Socket::INET -e '
$s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1) or die "$!";
$| = 1; print $s->sockport, "\n";
$c = $s->accept; print $c "from the sandbox\n"; close $c'"#;
    let info = procs.spawn(server, &[], SpawnOptions::new()).await.unwrap();
    let port = wait_for_line(procs, &info.id).await;
    let r = sh(&s, CONNECT, &[("PORT", &port)]).await;
    assert!(r.stdout.contains("from the sandbox"), "{r:?}");
    s.destroy().await.unwrap();
}

async fn wait_for_line(procs: &dyn ProcessManager, id: &workspace_core::ProcessId) -> String {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let out = procs.output(id, Default::default()).await.unwrap();
        if let Some(line) = String::from_utf8_lossy(&out.stdout).lines().next() {
            return line.trim().to_string();
        }
        assert!(Instant::now() < end, "no port printed: {out:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn info_capabilities_and_instructions_report_the_tier() {
    let s = LocalSandbox::builder()
        .isolation(Isolation::Required)
        .build()
        .unwrap();
    assert!(s.capabilities().isolated);
    let info = s.get_info().await.unwrap();
    assert_eq!(info.metadata["isolation"], "bubblewrap");
    assert_eq!(info.metadata["isolated"], true);
    assert_eq!(info.metadata["network"], false);
    let text = s.get_instructions();
    assert!(text.contains("isolated by bubblewrap"), "{text}");
    assert!(text.contains("network is disabled"), "{text}");
    assert!(text.contains("read-only"), "{text}");
    s.destroy().await.unwrap();

    let s = LocalSandbox::builder()
        .isolation(Isolation::None)
        .build()
        .unwrap();
    assert!(!s.capabilities().isolated);
    let info = s.get_info().await.unwrap();
    assert_eq!(info.metadata["isolation"], "none");
    assert_eq!(info.metadata["network"], true);
    assert!(s.get_instructions().contains("no isolation"));
    s.destroy().await.unwrap();
}

/// A stand-in `bwrap` that fails the way bubblewrap does where user namespaces are off.
fn failing_bwrap(dir: &Path) -> PathBuf {
    let path = dir.join("bwrap");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(
        f,
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1"
    )
    .unwrap();
    drop(f);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn required_refuses_and_auto_falls_back_when_bwrap_is_missing_or_broken() {
    let dir = host_scratch();
    let missing = dir.path().join("no-bwrap-here");
    let err = LocalSandbox::builder()
        .isolation(Isolation::Required)
        .bwrap_path(&missing)
        .build()
        .unwrap_err();
    match &err {
        SandboxError::IsolationUnavailable { reason } => {
            assert!(reason.contains("bwrap not found"), "{reason}")
        }
        other => panic!("expected IsolationUnavailable, got {other:?}"),
    }

    let broken = failing_bwrap(dir.path());
    let err = LocalSandbox::builder()
        .isolation(Isolation::Required)
        .bwrap_path(&broken)
        .build()
        .unwrap_err();
    match &err {
        SandboxError::IsolationUnavailable { reason } => {
            assert!(
                reason.contains("No permissions to create new namespace"),
                "{reason}"
            );
            assert!(reason.contains("user namespaces"), "{reason}");
        }
        other => panic!("expected IsolationUnavailable, got {other:?}"),
    }

    for bwrap in [&missing, &broken] {
        let s = LocalSandbox::builder()
            .isolation(Isolation::Auto)
            .bwrap_path(bwrap)
            .build()
            .unwrap();
        assert_eq!(s.isolation_tier(), IsolationTier::None);
        assert!(s.isolation_unavailable_reason().is_some());
        let info = s.get_info().await.unwrap();
        assert_eq!(info.metadata["isolation"], "none");
        assert!(info.metadata.contains_key("isolation_unavailable"));
        assert!(!s.capabilities().isolated);
        let r = sh(&s, "echo still runs", &[]).await;
        assert_eq!(r.stdout, "still runs\n");
        s.destroy().await.unwrap();
    }
}

#[test]
fn auto_warns_once_per_reason() {
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    let dir = host_scratch();
    let missing = dir.path().join("absent-bwrap");
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::WARN)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..3 {
            let s = LocalSandbox::builder()
                .isolation(Isolation::Auto)
                .bwrap_path(&missing)
                .build()
                .unwrap();
            assert_eq!(s.isolation_tier(), IsolationTier::None);
        }
    });
    let mut text = String::new();
    capture
        .0
        .lock()
        .unwrap()
        .as_slice()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text.matches("isolation unavailable").count(), 1, "{text}");
    assert!(text.contains("absent-bwrap"), "{text}");
}

#[test]
fn the_probe_reports_its_tier_and_cost() {
    let report = workspace_local::isolation::probe(None);
    assert_eq!(report.tier, IsolationTier::Bubblewrap, "{report:?}");
    assert!(report.reason.is_none());
    assert!(report.took > Duration::ZERO);
    let missing = workspace_local::isolation::probe(Some(Path::new("/nonexistent/bwrap")));
    assert_eq!(missing.tier, IsolationTier::None);
    assert_eq!(
        missing.reason.as_deref(),
        Some("bwrap not found at /nonexistent/bwrap")
    );
}

/// Set in the child that [`isolation_works_for_an_unprivileged_user`] re-runs as `nobody`.
const UNPRIVILEGED_CHILD: &str = "WS_ISOLATION_UNPRIVILEGED_CHILD";

/// The common case on a laptop: the caller is not root, so bubblewrap runs unprivileged and the
/// sandbox's namespaces belong to a user namespace the caller made. Run as root (as CI does),
/// this test re-runs itself as `nobody` (uid 65534) and checks the isolated sandbox there.
#[test]
fn isolation_works_for_an_unprivileged_user() {
    use std::os::unix::process::CommandExt;

    if std::env::var_os(UNPRIVILEGED_CHILD).is_some() {
        unprivileged_child();
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        // Already unprivileged: every other test of this file is this test.
        return;
    }
    let scratch = tempfile::Builder::new()
        .prefix("ws-unprivileged-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(&exe)
        .args([
            "--exact",
            "isolation_works_for_an_unprivileged_user",
            "--nocapture",
        ])
        .env(UNPRIVILEGED_CHILD, "1")
        .env("HOME", scratch.path())
        .env("TMPDIR", scratch.path())
        .uid(65534)
        .gid(65534)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            // The test binary lies where `nobody` cannot reach it (a checkout under /root).
            eprintln!(
                "skipped: {} is not executable by nobody: {e}",
                exe.display()
            );
            return;
        }
        Err(e) => panic!("re-running as nobody: {e}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "as nobody:\n{text}");
    assert!(text.contains("unprivileged isolation checked"), "{text}");
}

fn unprivileged_child() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        assert_ne!(nix::unistd::geteuid().as_raw(), 0);
        let s = LocalSandbox::builder()
            .isolation(Isolation::Required)
            .build()
            .unwrap_or_else(|e| panic!("isolated sandbox as nobody: {e}"));
        let outside = PathBuf::from("/tmp").join(unique("ws-unpriv-escape"));
        let r = sh(
            &s,
            r#"id -u; printf in > inside.txt; cat inside.txt; printf x > "$OUT" 2>/dev/null; grep CapEff /proc/self/status"#,
            &[("OUT", outside.to_str().unwrap())],
        )
        .await;
        assert!(r.stdout.starts_with("65534\nin"), "{r:?}");
        assert!(r.stdout.contains("CapEff:\t0000000000000000"), "{r:?}");
        assert!(!outside.exists(), "wrote the host's /tmp");
        let marker = testkit::unique_marker();
        sh(&s, &format!("setsid sh -c 'exec {marker}' </dev/null >/dev/null 2>&1 &"), &[]).await;
        assert!(wait_for_host(&marker, true, Duration::from_secs(5)).await);
        s.destroy().await.unwrap();
        assert!(wait_for_host(&marker, false, Duration::from_secs(5)).await);
        println!("unprivileged isolation checked");
    });
}
