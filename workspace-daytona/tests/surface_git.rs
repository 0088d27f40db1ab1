//! Git against the emulator: a bare repository made on the host with the machine's `git`,
//! cloned into the sandbox and worked on through the toolbox.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use workspace_daytona::api::git::GitFileState;
use workspace_daytona::{
    DaytonaError, ExecuteOptions, GitCloneOptions, GitErrorKind, GitRemoteOptions,
};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Host")
        .env("GIT_AUTHOR_EMAIL", "host@example.com")
        .env("GIT_COMMITTER_NAME", "Host")
        .env("GIT_COMMITTER_EMAIL", "host@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bare repository with one commit on `main`, under the target dir (which a sandbox can read,
/// unlike the host's /tmp).
fn origin_repo() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let bare = dir.path().join("origin.git");
    let work = dir.path().join("work");
    git(dir.path(), &["init", "--bare", "-b", "main", "origin.git"]);
    git(dir.path(), &["init", "-b", "main", "work"]);
    std::fs::write(work.join("README.md"), "# hello\n").unwrap();
    git(&work, &["add", "README.md"]);
    git(&work, &["commit", "-m", "initial commit"]);
    git(&work, &["push", bare.to_str().unwrap(), "main"]);
    (dir, format!("file://{}", bare.display()))
}

#[tokio::test]
async fn clone_status_add_commit_branches_checkout_history() {
    let (_emu, _client, sandbox) = setup().await;
    let (_origin_dir, origin) = origin_repo();
    let home = sandbox.user_home_dir().await.unwrap();
    let repo = format!("{home}/repo");
    let g = sandbox.git();

    g.clone_repo(&origin, &repo, &GitCloneOptions::new().branch("main"))
        .await
        .unwrap();
    let status = g.status(&repo).await.unwrap();
    assert_eq!(status.current_branch, "main");
    assert!(status.file_status.is_empty(), "{status:?}");

    let history = g.history(&repo).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].message.trim(), "initial commit");
    assert_eq!(history[0].author, "Host");

    sandbox
        .process()
        .execute(
            "echo new > new.txt && echo more >> README.md",
            &ExecuteOptions::new().cwd(repo.clone()),
        )
        .await
        .unwrap();
    let status = g.status(&repo).await.unwrap();
    let new = status
        .file_status
        .iter()
        .find(|f| f.name == "new.txt")
        .unwrap();
    assert_eq!(new.worktree, GitFileState::Untracked);
    let readme = status
        .file_status
        .iter()
        .find(|f| f.name == "README.md")
        .unwrap();
    assert_eq!(readme.worktree, GitFileState::Modified);

    g.add(&repo, ["new.txt", "README.md"]).await.unwrap();
    let status = g.status(&repo).await.unwrap();
    let new = status
        .file_status
        .iter()
        .find(|f| f.name == "new.txt")
        .unwrap();
    assert_eq!(new.staging, GitFileState::Added);

    let hash = g
        .commit(&repo, "add new.txt", "Agent", "agent@example.com")
        .await
        .unwrap();
    assert_eq!(hash.len(), 40, "{hash}");
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{hash}");
    let history = g.history(&repo).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].hash, hash);
    assert_eq!(history[0].email, "agent@example.com");
    assert!(g.status(&repo).await.unwrap().file_status.is_empty());

    // Nothing staged: refused unless empty commits are allowed.
    assert!(
        g.commit(&repo, "nothing", "Agent", "agent@example.com")
            .await
            .is_err()
    );
    let empty = g
        .commit_with(&repo, "empty", "Agent", "agent@example.com", true)
        .await
        .unwrap();
    assert_ne!(empty, hash);

    g.create_branch(&repo, "feature").await.unwrap();
    let branches = g.branches(&repo).await.unwrap();
    assert!(
        branches.branches.contains(&"feature".to_string()),
        "{branches:?}"
    );
    assert!(
        branches.branches.contains(&"main".to_string()),
        "{branches:?}"
    );
    let err = g.create_branch(&repo, "feature").await.unwrap_err();
    assert_eq!(
        err.git_error_kind(),
        Some(GitErrorKind::BranchExists),
        "{err:?}"
    );
    assert!(matches!(err, DaytonaError::Conflict(_)), "{err:?}");

    g.checkout(&repo, "feature").await.unwrap();
    assert_eq!(g.status(&repo).await.unwrap().current_branch, "feature");
    g.checkout(&repo, "main").await.unwrap();
    assert_eq!(
        g.branches(&repo).await.unwrap().current.as_deref(),
        Some("main")
    );
    g.delete_branch(&repo, "feature").await.unwrap();
    assert!(
        !g.branches(&repo)
            .await
            .unwrap()
            .branches
            .contains(&"feature".to_string())
    );
    let err = g.checkout(&repo, "no-such-branch").await.unwrap_err();
    assert!(
        err.status().is_some_and(|s| (400..500).contains(&s)),
        "{err:?}"
    );
}

#[tokio::test]
async fn push_and_pull_through_a_remote_in_the_sandbox() {
    let (_emu, _client, sandbox) = setup().await;
    let home = sandbox.user_home_dir().await.unwrap();
    let g = sandbox.git();
    let remote = format!("{home}/remote.git");
    g.init(&remote, true, Some("main")).await.unwrap();

    // A first clone pushes the first commit...
    let (a, b) = (format!("{home}/a"), format!("{home}/b"));
    g.clone_repo(&format!("file://{remote}"), &a, &GitCloneOptions::new())
        .await
        .unwrap();
    sandbox
        .process()
        .execute("echo one > one.txt", &ExecuteOptions::new().cwd(a.clone()))
        .await
        .unwrap();
    g.add(&a, ["."]).await.unwrap();
    let first = g.commit(&a, "one", "A", "a@example.com").await.unwrap();
    g.push(
        &a,
        &GitRemoteOptions::new().branch("main").set_upstream(true),
    )
    .await
    .unwrap();

    // ...a second clone sees it, adds another and pushes...
    g.clone_repo(&format!("file://{remote}"), &b, &GitCloneOptions::new())
        .await
        .unwrap();
    assert_eq!(g.history(&b).await.unwrap()[0].hash, first);
    sandbox
        .process()
        .execute("echo two > two.txt", &ExecuteOptions::new().cwd(b.clone()))
        .await
        .unwrap();
    g.add(&b, ["two.txt"]).await.unwrap();
    let second = g.commit(&b, "two", "B", "b@example.com").await.unwrap();
    g.push(&b, &GitRemoteOptions::new()).await.unwrap();

    // ...and the first pulls it.
    g.pull(&a, &GitRemoteOptions::new()).await.unwrap();
    let history = g.history(&a).await.unwrap();
    assert_eq!(history[0].hash, second);
    assert_eq!(history.len(), 2);
}

#[tokio::test]
async fn missing_repositories_and_bad_input_are_typed_errors() {
    let (emu, _client, sandbox) = setup().await;
    let home = sandbox.user_home_dir().await.unwrap();
    let g = sandbox.git();
    let missing = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let url = format!("file://{}/nope.git", missing.path().display());
    let err = g
        .clone_repo(
            &url,
            &format!("{home}/nope"),
            &GitCloneOptions::new().credentials("user", "hunter2-secret"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.git_error_kind(),
        Some(GitErrorKind::RepoNotFound),
        "{err:?}"
    );
    assert!(err.is_not_found(), "{err:?}");
    assert!(!format!("{err:?}").contains("hunter2-secret"));

    // Status of a directory that is no repository.
    let err = g.status(&home).await.unwrap_err();
    assert!(
        err.status().is_some_and(|s| (400..500).contains(&s)),
        "{err:?}"
    );

    emu.clear_requests();
    for err in [
        g.clone_repo("", "/x", &GitCloneOptions::new())
            .await
            .unwrap_err(),
        g.status(" ").await.unwrap_err(),
        g.add(&home, Vec::<String>::new()).await.unwrap_err(),
        g.commit(&home, "", "a", "b").await.unwrap_err(),
        g.create_branch(&home, "").await.unwrap_err(),
    ] {
        assert!(
            matches!(err, DaytonaError::InvalidArgument { .. }),
            "{err:?}"
        );
    }
    assert!(
        emu.requests().iter().all(|r| !r.path.contains("/git/")),
        "invalid input must not be sent"
    );
}
