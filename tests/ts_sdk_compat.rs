//! The official Daytona TypeScript SDK (`@daytonaio/sdk`, pinned in `tests/ts-sdk`) driven
//! against `daytona-emulator`: proves the emulator speaks the wire the real clients speak.
//!
//! Needs `node` and `npm`; installs the pinned packages with `npm ci` when they are missing.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const API_KEY: &str = "compat-test-key";

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ts-sdk")
}

async fn ensure_node_modules(dir: &Path) {
    if dir
        .join("node_modules/@daytonaio/sdk/package.json")
        .is_file()
    {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .await
        .expect("npm must be installed to run the TypeScript SDK compatibility test");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

/// Runs git on the host for test setup, panicking on failure.
fn host_git(cwd: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=Compat",
            "-c",
            "user.email=compat@example.com",
        ])
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("git must be installed to run the TypeScript SDK compatibility test");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bare repository with one commit on `main`, for the SDK's `git.clone` check.
fn bare_repo(dir: &Path) -> PathBuf {
    let bare = dir.join("origin.git");
    host_git(dir, &["init", "--bare", "-b", "main", "origin.git"]);
    let work = dir.join("work");
    host_git(dir, &["clone", "origin.git", "work"]);
    std::fs::write(work.join("README.md"), "compat\n").expect("write README");
    host_git(&work, &["add", "README.md"]);
    host_git(&work, &["commit", "-m", "initial"]);
    host_git(&work, &["push", "origin", "HEAD:main"]);
    bare
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_typescript_sdk_passes_against_the_emulator() {
    let emulator = daytona_emulator::Emulator::builder()
        .api_key(API_KEY)
        .start()
        .await
        .expect("emulator starts");
    run_compat(emulator, &[]).await;
}

/// The same checks over HTTPS and WSS, the SDK trusting the emulator's generated CA through
/// `NODE_EXTRA_CA_CERTS` as it would a private CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_typescript_sdk_passes_over_https() {
    let emulator = daytona_emulator::Emulator::builder()
        .api_key(API_KEY)
        .tls_self_signed()
        .start()
        .await
        .expect("emulator starts");
    assert!(emulator.api_url().starts_with("https://"));
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("emulator-ca.pem");
    std::fs::write(&ca, emulator.tls_ca_pem().expect("a generated CA")).expect("write the CA");
    run_compat(emulator, &[("NODE_EXTRA_CA_CERTS", ca.as_os_str())]).await;
}

/// Runs `compat.mjs` against `emulator` (with `extra_env` set) and checks its tally; shuts the
/// emulator down.
async fn run_compat(emulator: daytona_emulator::EmulatorHandle, extra_env: &[(&str, &OsStr)]) {
    let dir = sdk_dir();
    ensure_node_modules(&dir).await;
    let repos = tempfile::tempdir().expect("temp dir");
    let git_repo = bare_repo(repos.path());

    let mut child = Command::new("node")
        .arg("compat.mjs")
        .current_dir(&dir)
        // Only what the script needs: no host DAYTONA_* settings may leak into the SDK.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .env("DAYTONA_API_URL", emulator.api_url())
        .env("DAYTONA_API_KEY", API_KEY)
        .env("COMPAT_GIT_REPO", &git_repo)
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node must be installed to run the TypeScript SDK compatibility test");

    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut transcript = Vec::new();
    let mut tally_at = None;
    let run = async {
        while let Some(line) = lines.next_line().await.expect("read node output") {
            println!("{line}");
            if line.starts_with("compat: ") {
                tally_at = Some(Instant::now());
            }
            transcript.push(line);
        }
        child.wait().await.expect("node exits")
    };
    let status = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the SDK script finished within 180 s");

    let exited_after = tally_at.map(|t| t.elapsed());
    emulator.shutdown().await;

    let failures: Vec<_> = transcript
        .iter()
        .filter(|l| l.starts_with("FAIL"))
        .collect();
    assert!(failures.is_empty(), "SDK checks failed:\n{failures:#?}");
    assert!(status.success(), "node exited with {status}");
    let tally = transcript
        .iter()
        .find(|l| l.starts_with("compat: "))
        .expect("the script printed its tally");
    assert!(tally.ends_with(" 0 failed"), "{tally}");
    let exited_after = exited_after.expect("tally seen");
    assert!(
        exited_after < Duration::from_secs(5),
        "node took {exited_after:?} to exit after finishing: something (socket.io?) kept it alive"
    );
}
