//! The git routes against real repositories: a bare repository on the host (outside the
//! sandbox, the source of clones and pulls, never written), and repositories inside the
//! sandbox for push and pull. No network.

#![allow(clippy::unwrap_used)]

mod toolbox_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use toolbox_support::Fixture;

/// Runs git on the host (test setup), panicking on failure; returns stdout.
fn host_git(cwd: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Host", "-c", "user.email=host@example.com"])
        .args(args)
        .current_dir(cwd)
        .env("LC_ALL", "C")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bare repository `origin.git` with one commit (`README.md`) on `main`, in a host temp dir.
fn bare_repo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("origin.git");
    host_git(dir.path(), &["init", "--bare", "-b", "main", "origin.git"]);
    let work = dir.path().join("work");
    host_git(dir.path(), &["clone", bare.to_str().unwrap(), "work"]);
    std::fs::write(work.join("README.md"), "hello\n").unwrap();
    host_git(&work, &["add", "README.md"]);
    host_git(&work, &["commit", "-m", "initial commit"]);
    host_git(&work, &["push", "origin", "HEAD:main"]);
    (dir, bare)
}

/// Everything under `dir` with its contents, to prove nothing changed.
fn tree_fingerprint(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path.clone());
                out.push((path, Vec::new()));
            } else {
                let data = std::fs::read(&path).unwrap_or_default();
                out.push((path, data));
            }
        }
    }
    out.sort();
    out
}

async fn call(
    fx: &Fixture,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = fx.req(method, path);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, body)
}

async fn post(fx: &Fixture, path: &str, body: Value) -> (u16, Value) {
    call(fx, reqwest::Method::POST, path, Some(body)).await
}

async fn get(fx: &Fixture, path: &str) -> (u16, Value) {
    call(fx, reqwest::Method::GET, path, None).await
}

fn q(path: &str) -> String {
    url::form_urlencoded::byte_serialize(path.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_from_the_host_then_status_add_commit_history_and_branches() {
    let (host_dir, bare) = bare_repo();
    let before = tree_fingerprint(&bare);
    let fx = Fixture::start().await;

    let (status, body) = post(
        &fx,
        "/git/clone",
        json!({"url": bare.to_str().unwrap(), "path": "repo"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let readme = fx.target().layout.home_host().join("repo/README.md");
    assert_eq!(std::fs::read_to_string(readme).unwrap(), "hello\n");
    // Bubblewrap made a mount point for the host repository inside the sandbox's /tmp for
    // the clone; it is gone again.
    let tmp_entries: Vec<_> = std::fs::read_dir(fx.target().layout.tmp_host())
        .unwrap()
        .collect();
    assert!(tmp_entries.is_empty(), "{tmp_entries:?}");

    let (status, st) = get(&fx, "/git/status?path=repo").await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["currentBranch"], "main");
    assert_eq!(st["fileStatus"], json!([]));
    assert_eq!(st["upstream"], "origin/main");
    assert_eq!(st["branchPublished"], true);
    assert_eq!(
        (st["ahead"].clone(), st["behind"].clone()),
        (json!(0), json!(0))
    );

    fx.exec("cd repo && echo new > new.txt && echo more >> README.md")
        .await;
    let (_, st) = get(&fx, "/git/status?path=repo").await;
    let files = st["fileStatus"].as_array().unwrap();
    let find = |name: &str| files.iter().find(|f| f["name"] == name).cloned().unwrap();
    assert_eq!(find("new.txt")["worktree"], "Untracked");
    assert_eq!(find("README.md")["worktree"], "Modified");

    let (status, _) = post(
        &fx,
        "/git/add",
        json!({"path": "repo", "files": ["new.txt", "README.md"]}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, st) = get(&fx, "/git/status?path=repo").await;
    let files = st["fileStatus"].as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["name"] == "new.txt" && f["staging"] == "Added"),
        "{st}"
    );
    assert!(
        files
            .iter()
            .any(|f| f["name"] == "README.md" && f["staging"] == "Modified"),
        "{st}"
    );

    let (status, commit) = post(
        &fx,
        "/git/commit",
        json!({"path": "repo", "message": "add new.txt", "author": "Agent Smith", "email": "agent@example.com"}),
    )
    .await;
    assert_eq!(status, 200, "{commit}");
    let hash = commit["hash"].as_str().unwrap().to_string();
    assert_eq!(hash.len(), 40);
    let (_, st) = get(&fx, "/git/status?path=repo").await;
    assert_eq!(st["ahead"], 1);
    let (status, log) = get(&fx, "/git/history?path=repo").await;
    assert_eq!(status, 200);
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["hash"], hash.as_str());
    assert_eq!(log[0]["message"], "add new.txt");
    assert_eq!(log[0]["author"], "Agent Smith");
    assert_eq!(log[0]["email"], "agent@example.com");
    assert!(log[0]["timestamp"].as_str().unwrap().contains('T'));
    // go-git's raw message: the host's CLI commit ends in a newline, the route's does not.
    assert_eq!(log[1]["message"], "initial commit\n");
    let first = log[1]["hash"].as_str().unwrap().to_string();

    // Branches: create switches to the new branch; duplicates and unknown names are typed.
    let (status, _) = post(
        &fx,
        "/git/branches",
        json!({"path": "repo", "name": "feature"}),
    )
    .await;
    assert_eq!(status, 201);
    let (_, branches) = get(&fx, "/git/branches?path=repo").await;
    assert_eq!(
        branches,
        json!({"branches": ["feature", "main"], "current": "feature"})
    );
    let (status, err) = post(
        &fx,
        "/git/branches",
        json!({"path": "repo", "name": "feature"}),
    )
    .await;
    assert_eq!(
        (status, err["code"].clone()),
        (409, json!("GIT_BRANCH_EXISTS")),
        "{err}"
    );
    let (status, _) = post(
        &fx,
        "/git/checkout",
        json!({"path": "repo", "branch": "main"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, err) = post(
        &fx,
        "/git/checkout",
        json!({"path": "repo", "branch": "nope"}),
    )
    .await;
    assert_eq!(
        (status, err["code"].clone()),
        (404, json!("GIT_BRANCH_NOT_FOUND")),
        "{err}"
    );
    let (status, _) = post(
        &fx,
        "/git/checkout",
        json!({"path": "repo", "branch": first}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, st) = get(&fx, "/git/status?path=repo").await;
    assert_eq!(
        (st["detached"].clone(), st["currentBranch"].clone()),
        (json!(true), json!("HEAD"))
    );
    post(
        &fx,
        "/git/checkout",
        json!({"path": "repo", "branch": "main"}),
    )
    .await;
    let (status, _) = call(
        &fx,
        reqwest::Method::DELETE,
        "/git/branches",
        Some(json!({"path": "repo", "name": "feature"})),
    )
    .await;
    assert_eq!(status, 204);
    let (status, err) = call(
        &fx,
        reqwest::Method::DELETE,
        "/git/branches",
        Some(json!({"path": "repo", "name": "feature"})),
    )
    .await;
    assert_eq!(
        (status, err["code"].clone()),
        (404, json!("GIT_BRANCH_NOT_FOUND")),
        "{err}"
    );

    // The host repository is a read-only source: pushing to it is refused.
    let (status, err) = post(&fx, "/git/push", json!({"path": "repo"})).await;
    assert_eq!(status, 403, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("outside the sandbox")
    );

    // A file:// URL works the same, and a pull from the host source is allowed.
    let url = format!("file://{}", bare.display());
    let (status, body) = post(
        &fx,
        "/git/clone",
        json!({"url": url, "path": "repo2", "branch": "main"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    host_git(
        &host_dir.path().join("work"),
        &["commit", "--allow-empty", "-m", "upstream change"],
    );
    host_git(
        &host_dir.path().join("work"),
        &["push", "origin", "HEAD:main"],
    );
    let before_pull = tree_fingerprint(&bare);
    let (status, body) = post(&fx, "/git/pull", json!({"path": "repo2"})).await;
    assert_eq!(status, 200, "{body}");
    let (_, log) = get(&fx, "/git/history?path=repo2").await;
    assert_eq!(log[0]["message"], "upstream change\n");
    assert_eq!(
        tree_fingerprint(&bare),
        before_pull,
        "pull only read the host repository"
    );
    assert_ne!(before, before_pull);
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_pull_between_repositories_inside_the_sandbox() {
    let fx = Fixture::start().await;
    let hub = format!("{}/hub.git", fx.tmp());
    let (status, body) = post(
        &fx,
        "/git/init",
        json!({"path": hub, "bare": true, "initial_branch": "main"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // go-git's `repo.Head()` fails without a commit (pkg/git/log.go, pkg/git/status.go).
    let (status, log) = get(&fx, &format!("/git/history?path={}", q(&hub))).await;
    assert_eq!(
        (status, log["message"].clone()),
        (404, json!("reference not found")),
        "an empty repository has no HEAD"
    );

    for name in ["a", "b"] {
        let (status, body) = post(&fx, "/git/clone", json!({"url": hub, "path": name})).await;
        assert_eq!(status, 200, "{body}");
    }
    let commit = |repo: &'static str, message: &'static str| json!({"path": repo, "message": message, "author": "A", "email": "a@example.com"});
    fx.exec("cd a && printf 'line one\\n' > shared.txt").await;
    post(&fx, "/git/add", json!({"path": "a", "files": ["."]})).await;
    post(&fx, "/git/commit", commit("a", "first")).await;
    let (status, body) = post(&fx, "/git/push", json!({"path": "a", "set_upstream": true})).await;
    assert_eq!(status, 200, "{body}");
    let (_, st) = get(&fx, "/git/status?path=a").await;
    assert_eq!(st["upstream"], "origin/main");

    let (status, body) = post(
        &fx,
        "/git/pull",
        json!({"path": "b", "remote": "origin", "branch": "main"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, log) = get(&fx, "/git/history?path=b").await;
    assert_eq!(log[0]["message"], "first");

    // b falls behind, so its push is rejected; after a pull (no conflict) it goes through.
    fx.exec("cd a && echo a >> a-only.txt").await;
    post(
        &fx,
        "/git/add",
        json!({"path": "a", "files": ["a-only.txt"]}),
    )
    .await;
    post(&fx, "/git/commit", commit("a", "from a")).await;
    post(&fx, "/git/push", json!({"path": "a"})).await;
    fx.exec("cd b && git branch -u origin/main >/dev/null && echo b >> b-only.txt")
        .await;
    post(
        &fx,
        "/git/add",
        json!({"path": "b", "files": ["b-only.txt"]}),
    )
    .await;
    post(&fx, "/git/commit", commit("b", "from b")).await;
    let (status, err) = post(&fx, "/git/push", json!({"path": "b"})).await;
    assert_eq!(
        (status, err["code"].clone()),
        (409, json!("GIT_PUSH_REJECTED")),
        "{err}"
    );
    let (status, body) = post(&fx, "/git/pull", json!({"path": "b"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&fx, "/git/push", json!({"path": "b"})).await;
    assert_eq!(status, 200, "{body}");

    // Both change the same line: the pull stops on the conflict.
    post(&fx, "/git/pull", json!({"path": "a"})).await;
    fx.exec("cd a && printf 'from a\\n' > shared.txt").await;
    post(
        &fx,
        "/git/add",
        json!({"path": "a", "files": ["shared.txt"]}),
    )
    .await;
    post(&fx, "/git/commit", commit("a", "a edits shared")).await;
    post(&fx, "/git/push", json!({"path": "a"})).await;
    fx.exec("cd b && printf 'from b\\n' > shared.txt").await;
    post(
        &fx,
        "/git/add",
        json!({"path": "b", "files": ["shared.txt"]}),
    )
    .await;
    post(&fx, "/git/commit", commit("b", "b edits shared")).await;
    let (status, err) = post(&fx, "/git/pull", json!({"path": "b"})).await;
    assert_eq!(
        (status, err["code"].clone()),
        (409, json!("GIT_MERGE_CONFLICT")),
        "{err}"
    );
    let (_, st) = get(&fx, "/git/status?path=b").await;
    let shared = st["fileStatus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "shared.txt")
        .cloned()
        .unwrap();
    assert_eq!(shared["staging"], "Updated but unmerged");
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_git_codes_and_touches_nothing_outside() {
    let (_host_dir, bare) = bare_repo();
    let before = tree_fingerprint(&bare);
    let fx = Fixture::start().await;

    let missing = bare.with_file_name("does-not-exist.git");
    let (status, err) = post(
        &fx,
        "/git/clone",
        json!({"url": missing.to_str().unwrap(), "path": "x"}),
    )
    .await;
    assert_eq!(
        (status, err["code"].clone()),
        (404, json!("GIT_REPO_NOT_FOUND")),
        "{err}"
    );
    assert_eq!(err["source"], "DAYTONA_DAEMON");
    let (status, err) = post(
        &fx,
        "/git/clone",
        json!({"url": "file:///nonexistent/repo.git", "path": "x"}),
    )
    .await;
    assert_eq!(
        (status, err["code"].clone()),
        (404, json!("GIT_REPO_NOT_FOUND")),
        "{err}"
    );

    // The destination must be inside the sandbox.
    let (status, err) = post(
        &fx,
        "/git/clone",
        json!({"url": bare.to_str().unwrap(), "path": "/etc/cloned"}),
    )
    .await;
    assert_eq!(status, 403, "{err}");
    assert!(!Path::new("/etc/cloned").exists());
    let (status, _) = post(
        &fx,
        "/git/clone",
        json!({"url": "../../../../etc", "path": "y"}),
    )
    .await;
    assert_eq!(status, 403);

    let (status, _) = post(
        &fx,
        "/git/clone",
        json!({"url": bare.to_str().unwrap(), "path": "repo"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, err) = post(
        &fx,
        "/git/clone",
        json!({"url": bare.to_str().unwrap(), "path": "repo"}),
    )
    .await;
    assert_eq!(status, 409, "cloning over a non-empty directory: {err}");
    let (status, err) = post(
        &fx,
        "/git/clone",
        json!({"url": bare.to_str().unwrap(), "path": "z", "branch": "nope"}),
    )
    .await;
    assert_eq!(
        (status, err["code"].clone()),
        (404, json!("GIT_BRANCH_NOT_FOUND")),
        "{err}"
    );

    fx.exec("mkdir -p plain").await;
    let (status, err) = get(&fx, "/git/status?path=plain").await;
    assert_eq!(
        (status, err["code"].clone()),
        (404, json!("GIT_REPO_NOT_FOUND")),
        "{err}"
    );
    let (status, err) = get(&fx, "/git/status?path=nowhere").await;
    assert_eq!(
        (status, err["code"].clone()),
        (404, json!("GIT_REPO_NOT_FOUND")),
        "{err}"
    );
    let (status, _) = get(&fx, "/git/status?path=%2Fetc").await;
    assert_eq!(status, 403);
    let (status, _) = get(&fx, "/git/status").await;
    assert_eq!(status, 400, "path is required");

    let (status, err) = post(
        &fx,
        "/git/commit",
        json!({"path": "repo", "message": "nothing", "author": "A", "email": "a@example.com"}),
    )
    .await;
    assert_eq!(status, 400, "nothing to commit: {err}");
    let (status, _) = post(
        &fx,
        "/git/commit",
        json!({"path": "repo", "message": "m", "author": "", "email": "a@b"}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, err) = post(
        &fx,
        "/git/add",
        json!({"path": "repo", "files": ["missing.txt"]}),
    )
    .await;
    assert_eq!(
        (status, err["code"].clone()),
        (400, json!("BAD_REQUEST")),
        "{err}"
    );
    let (status, _) = post(&fx, "/git/add", json!({"path": "repo", "files": []})).await;
    assert_eq!(status, 400);
    let (status, err) = post(&fx, "/git/push", json!({"path": "repo", "remote": "nope"})).await;
    assert_eq!(
        (status, err["code"].clone()),
        (404, json!("GIT_REPO_NOT_FOUND")),
        "{err}"
    );
    let (status, err) = post(&fx, "/git/clone", json!({"path": "q"})).await;
    assert_eq!(
        (status, err["code"].clone()),
        (400, json!("INVALID_REQUEST_BODY")),
        "{err}"
    );

    assert_eq!(
        tree_fingerprint(&bare),
        before,
        "the host repository is untouched"
    );
    assert_eq!(fx.settle_processes().await, 0);
    fx.shutdown().await;
}

/// `pkg/git/status.go`, `pkg/git/log.go`, `pkg/git/commit.go` (go-git): every untracked file
/// listed (no directory entries), no status or history without a commit, the commit message
/// stored verbatim, and history times as Go writes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_history_and_commit_follow_go_git() {
    let fx = Fixture::start().await;
    let out = fx
        .exec("git init -q -b main fresh && mkdir -p fresh/dir/sub && echo x > fresh/dir/sub/f && echo y > fresh/top")
        .await;
    assert_eq!(out["exitCode"], 0, "{out}");
    let (status, body) = get(&fx, "/git/status?path=fresh").await;
    assert_eq!(
        (status, body["message"].clone()),
        (404, json!("reference not found"))
    );

    post(&fx, "/git/add", json!({"path": "fresh", "files": ["top"]})).await;
    let message = "  subject  \n\n\n# not a comment\n";
    let (status, body) = post(
        &fx,
        "/git/commit",
        json!({"path": "fresh", "message": message, "author": "A", "email": "a@example.com"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, st) = get(&fx, "/git/status?path=fresh").await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(
        st["fileStatus"],
        json!([{"name": "dir/sub/f", "staging": "Untracked", "worktree": "Untracked", "extra": ""}])
    );
    let (_, log) = get(&fx, "/git/history?path=fresh").await;
    assert_eq!(log[0]["message"], message);
    let time = log[0]["timestamp"].as_str().unwrap();
    assert!(
        !time.ends_with("+00:00") && !time.ends_with("-00:00"),
        "{time}"
    );
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
    fx.shutdown().await;
}
