//! `sandbox.git()`: git operations the toolbox runs inside the sandbox (`/git/*`). Every
//! `path` is the repository's path in the sandbox.
//!
//! Failures carry the daemon's git error codes; [`DaytonaError::git_error_kind`] names them
//! ([`GitErrorKind`]) on top of the usual status classification (a missing repository is also a
//! [`DaytonaError::NotFound`], a rejected push a [`DaytonaError::Conflict`], …).

use std::fmt;

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use daytona_api::git::{
    GitAddRequest, GitBranchRequest, GitCheckoutRequest, GitCloneRequest, GitCommitInfo,
    GitCommitRequest, GitCommitResponse, GitInitRequest, GitRemoteRequest, GitStatus,
    ListBranchResponse,
};

use crate::error::DaytonaError;
use crate::retry::Replay;
use crate::sandbox::Sandbox;
use crate::secret::Secret;
use crate::toolbox::Toolbox;
use crate::transport::Deadline;

/// What a git failure was, from the daemon's `GIT_*` error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GitErrorKind {
    /// `GIT_AUTH_FAILED`: the remote refused the credentials.
    AuthFailed,
    /// `GIT_REPO_NOT_FOUND`: no repository at the URL or path.
    RepoNotFound,
    /// `GIT_BRANCH_NOT_FOUND`: no such branch.
    BranchNotFound,
    /// `GIT_BRANCH_EXISTS`: the branch already exists.
    BranchExists,
    /// `GIT_PUSH_REJECTED`: the push was not a fast-forward.
    PushRejected,
    /// `GIT_DIRTY_WORKTREE`: local changes stand in the way.
    DirtyWorktree,
    /// `GIT_MERGE_CONFLICT`: a merge stopped on conflicts.
    MergeConflict,
    /// `GIT_TRANSPORT_FAILED`: the remote could not be reached.
    TransportFailed,
    /// `GIT_REMOTE_REJECTED`: the remote refused the update (e.g. a hook).
    RemoteRejected,
}

impl GitErrorKind {
    /// The kind for a daemon error code, if it is a git one.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "GIT_AUTH_FAILED" => GitErrorKind::AuthFailed,
            "GIT_REPO_NOT_FOUND" => GitErrorKind::RepoNotFound,
            "GIT_BRANCH_NOT_FOUND" => GitErrorKind::BranchNotFound,
            "GIT_BRANCH_EXISTS" => GitErrorKind::BranchExists,
            "GIT_PUSH_REJECTED" => GitErrorKind::PushRejected,
            "GIT_DIRTY_WORKTREE" => GitErrorKind::DirtyWorktree,
            "GIT_MERGE_CONFLICT" => GitErrorKind::MergeConflict,
            "GIT_TRANSPORT_FAILED" => GitErrorKind::TransportFailed,
            "GIT_REMOTE_REJECTED" => GitErrorKind::RemoteRejected,
            _ => return None,
        })
    }

    /// The daemon's code.
    pub fn code(self) -> &'static str {
        match self {
            GitErrorKind::AuthFailed => "GIT_AUTH_FAILED",
            GitErrorKind::RepoNotFound => "GIT_REPO_NOT_FOUND",
            GitErrorKind::BranchNotFound => "GIT_BRANCH_NOT_FOUND",
            GitErrorKind::BranchExists => "GIT_BRANCH_EXISTS",
            GitErrorKind::PushRejected => "GIT_PUSH_REJECTED",
            GitErrorKind::DirtyWorktree => "GIT_DIRTY_WORKTREE",
            GitErrorKind::MergeConflict => "GIT_MERGE_CONFLICT",
            GitErrorKind::TransportFailed => "GIT_TRANSPORT_FAILED",
            GitErrorKind::RemoteRejected => "GIT_REMOTE_REJECTED",
        }
    }
}

impl fmt::Display for GitErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl DaytonaError {
    /// Which git failure this is, when the daemon sent a `GIT_*` code.
    ///
    /// ```
    /// use workspace_daytona::{DaytonaError, GitErrorKind};
    /// let e = DaytonaError::from_response(404, br#"{"code":"GIT_REPO_NOT_FOUND","message":"repository not found"}"#, None);
    /// assert_eq!(e.git_error_kind(), Some(GitErrorKind::RepoNotFound));
    /// assert!(e.is_not_found());
    /// ```
    pub fn git_error_kind(&self) -> Option<GitErrorKind> {
        self.code().and_then(GitErrorKind::from_code)
    }
}

/// Options of [`Git::clone_repo`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GitCloneOptions {
    /// Branch to check out (default: the remote's default branch).
    pub branch: Option<String>,
    /// Commit to check out (detached HEAD).
    pub commit_id: Option<String>,
    /// Username for HTTPS authentication.
    pub username: Option<String>,
    /// Password or token for HTTPS authentication; never printed.
    pub password: Option<Secret>,
    /// Shallow clone of this many commits.
    pub depth: Option<u32>,
    /// Skip TLS verification (only for trusted servers with private certificates).
    pub insecure_skip_tls: bool,
}

impl fmt::Debug for GitCloneOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitCloneOptions")
            .field("branch", &self.branch)
            .field("commit_id", &self.commit_id)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("depth", &self.depth)
            .field("insecure_skip_tls", &self.insecure_skip_tls)
            .finish()
    }
}

impl GitCloneOptions {
    /// The remote's default branch, no credentials, full history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks out `branch`.
    pub fn branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = Some(branch.into());
        self
    }

    /// Checks out `commit_id`.
    pub fn commit_id(mut self, commit_id: impl Into<String>) -> Self {
        self.commit_id = Some(commit_id.into());
        self
    }

    /// HTTPS credentials.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<Secret>) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// Shallow clone depth.
    pub fn depth(mut self, depth: u32) -> Self {
        self.depth = Some(depth);
        self
    }
}

/// Options of [`Git::push`] and [`Git::pull`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GitRemoteOptions {
    /// Username for HTTPS authentication.
    pub username: Option<String>,
    /// Password or token for HTTPS authentication; never printed.
    pub password: Option<Secret>,
    /// Remote (default `origin`).
    pub remote: Option<String>,
    /// Branch (default: the current branch, or its upstream for a pull).
    pub branch: Option<String>,
    /// On push: record the pushed branch as the upstream.
    pub set_upstream: bool,
}

impl fmt::Debug for GitRemoteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitRemoteOptions")
            .field("username", &self.username)
            .field("password", &self.password)
            .field("remote", &self.remote)
            .field("branch", &self.branch)
            .field("set_upstream", &self.set_upstream)
            .finish()
    }
}

impl GitRemoteOptions {
    /// `origin`, the current branch, no credentials.
    pub fn new() -> Self {
        Self::default()
    }

    /// HTTPS credentials.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<Secret>) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// Sets the remote.
    pub fn remote(mut self, remote: impl Into<String>) -> Self {
        self.remote = Some(remote.into());
        self
    }

    /// Sets the branch.
    pub fn branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = Some(branch.into());
        self
    }

    /// Records the upstream on push.
    pub fn set_upstream(mut self, set: bool) -> Self {
        self.set_upstream = set;
        self
    }

    fn to_wire(&self, path: &str) -> GitRemoteRequest {
        GitRemoteRequest {
            path: path.to_string(),
            username: self.username.clone(),
            password: self.password.as_ref().map(|p| p.expose().to_string()),
            remote: self.remote.clone(),
            branch: self.branch.clone(),
            set_upstream: self.set_upstream.then_some(true),
        }
    }
}

/// Git in one sandbox. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Git {
    tb: Toolbox,
}

impl Sandbox {
    /// Git operations in this sandbox.
    pub fn git(&self) -> Git {
        Git {
            tb: self.process().tb,
        }
    }
}

fn non_empty(field: &str, value: &str) -> Result<(), DaytonaError> {
    if value.trim().is_empty() {
        return Err(DaytonaError::invalid(field, "must not be empty"));
    }
    Ok(())
}

impl Git {
    async fn post<B: Serialize + ?Sized>(
        &self,
        op: &'static str,
        route: &str,
        body: &B,
        replay: Replay,
        deadline: Deadline,
    ) -> Result<bytes::Bytes, DaytonaError> {
        let url = self.tb.url(&["git", route]).await?;
        let call = self
            .tb
            .call(op, Method::POST, url)
            .json(body)?
            .replay(replay)
            .deadline(deadline);
        Ok(self.tb.transport.call(&call).await?.body)
    }

    async fn get<T: DeserializeOwned>(
        &self,
        op: &'static str,
        route: &str,
        path: &str,
    ) -> Result<T, DaytonaError> {
        non_empty("path", path)?;
        let url = self
            .tb
            .url_query(&["git", route], &[("path", path)])
            .await?;
        let call = self.tb.call(op, Method::GET, url);
        self.tb.transport.call_json(&call).await
    }

    /// Clones `url` into `path` (`POST /git/clone`; the official SDKs call it `clone`).
    ///
    /// No client deadline applies (a large clone takes as long as it takes); never replayed
    /// once sent.
    ///
    /// # Errors
    /// [`DaytonaError::git_error_kind`] is [`GitErrorKind::RepoNotFound`] for a missing
    /// repository, [`GitErrorKind::AuthFailed`] for refused credentials.
    pub async fn clone_repo(
        &self,
        url: &str,
        path: &str,
        options: &GitCloneOptions,
    ) -> Result<(), DaytonaError> {
        non_empty("url", url)?;
        non_empty("path", path)?;
        let body = GitCloneRequest {
            url: url.to_string(),
            path: path.to_string(),
            branch: options.branch.clone(),
            commit_id: options.commit_id.clone(),
            username: options.username.clone(),
            password: options.password.as_ref().map(|p| p.expose().to_string()),
            depth: options.depth,
            insecure_skip_tls: options.insecure_skip_tls.then_some(true),
        };
        self.post(
            "git.clone",
            "clone",
            &body,
            Replay::ConnectOnly,
            Deadline::Unbounded,
        )
        .await?;
        Ok(())
    }

    /// Creates a repository at `path` (`POST /git/init`).
    pub async fn init(
        &self,
        path: &str,
        bare: bool,
        initial_branch: Option<&str>,
    ) -> Result<(), DaytonaError> {
        non_empty("path", path)?;
        let body = GitInitRequest {
            path: path.to_string(),
            bare: bare.then_some(true),
            initial_branch: initial_branch.map(str::to_string),
        };
        self.post(
            "git.init",
            "init",
            &body,
            Replay::ConnectOnly,
            Deadline::Default,
        )
        .await?;
        Ok(())
    }

    /// The work tree's status (`GET /git/status`).
    pub async fn status(&self, path: &str) -> Result<GitStatus, DaytonaError> {
        self.get("git.status", "status", path).await
    }

    /// Stages `files` (relative to the repository; `.` for everything) (`POST /git/add`).
    pub async fn add<I, S>(&self, path: &str, files: I) -> Result<(), DaytonaError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        non_empty("path", path)?;
        let files: Vec<String> = files.into_iter().map(Into::into).collect();
        if files.is_empty() {
            return Err(DaytonaError::invalid("files", "name at least one file"));
        }
        if files.iter().any(|f| f.trim().is_empty()) {
            return Err(DaytonaError::invalid(
                "files",
                "file names must not be empty",
            ));
        }
        let body = GitAddRequest {
            path: path.to_string(),
            files,
        };
        // Staging the same files twice is the same as once.
        self.post(
            "git.add",
            "add",
            &body,
            Replay::Idempotent,
            Deadline::Default,
        )
        .await?;
        Ok(())
    }

    /// Commits what is staged (`POST /git/commit`); returns the new commit's hash.
    pub async fn commit(
        &self,
        path: &str,
        message: &str,
        author: &str,
        email: &str,
    ) -> Result<String, DaytonaError> {
        self.commit_with(path, message, author, email, false).await
    }

    /// [`commit`](Self::commit), allowing a commit with nothing staged when `allow_empty`.
    pub async fn commit_with(
        &self,
        path: &str,
        message: &str,
        author: &str,
        email: &str,
        allow_empty: bool,
    ) -> Result<String, DaytonaError> {
        non_empty("path", path)?;
        non_empty("message", message)?;
        non_empty("author", author)?;
        non_empty("email", email)?;
        let body = GitCommitRequest {
            path: path.to_string(),
            message: message.to_string(),
            author: author.to_string(),
            email: email.to_string(),
            allow_empty: allow_empty.then_some(true),
        };
        let reply = self
            .post(
                "git.commit",
                "commit",
                &body,
                Replay::ConnectOnly,
                Deadline::Default,
            )
            .await?;
        let resp: GitCommitResponse = crate::transport::decode_json("git.commit", &reply)?;
        Ok(resp.hash)
    }

    /// Local branches and the current one (`GET /git/branches`).
    pub async fn branches(&self, path: &str) -> Result<ListBranchResponse, DaytonaError> {
        self.get("git.branches", "branches", path).await
    }

    /// Creates branch `name` (`POST /git/branches`).
    ///
    /// # Errors
    /// [`GitErrorKind::BranchExists`] (a [`DaytonaError::Conflict`]) when it exists.
    pub async fn create_branch(&self, path: &str, name: &str) -> Result<(), DaytonaError> {
        non_empty("path", path)?;
        non_empty("name", name)?;
        let body = GitBranchRequest {
            path: path.to_string(),
            name: name.to_string(),
        };
        self.post(
            "git.create_branch",
            "branches",
            &body,
            Replay::ConnectOnly,
            Deadline::Default,
        )
        .await?;
        Ok(())
    }

    /// Deletes branch `name` (`DELETE /git/branches`).
    ///
    /// # Errors
    /// [`GitErrorKind::BranchNotFound`] when there is no such branch.
    pub async fn delete_branch(&self, path: &str, name: &str) -> Result<(), DaytonaError> {
        non_empty("path", path)?;
        non_empty("name", name)?;
        let body = GitBranchRequest {
            path: path.to_string(),
            name: name.to_string(),
        };
        let url = self.tb.url(&["git", "branches"]).await?;
        // A replay after a lost answer would meet "not found" for a branch it did delete, so
        // only connect failures are retried.
        let call = self
            .tb
            .call("git.delete_branch", Method::DELETE, url)
            .json(&body)?
            .replay(Replay::ConnectOnly);
        self.tb.transport.call(&call).await?;
        Ok(())
    }

    /// Checks out `branch` (or a commit) (`POST /git/checkout`).
    pub async fn checkout(&self, path: &str, branch: &str) -> Result<(), DaytonaError> {
        non_empty("path", path)?;
        non_empty("branch", branch)?;
        let body = GitCheckoutRequest {
            path: path.to_string(),
            branch: branch.to_string(),
        };
        self.post(
            "git.checkout",
            "checkout",
            &body,
            Replay::Idempotent,
            Deadline::Default,
        )
        .await?;
        Ok(())
    }

    /// Pushes (`POST /git/push`). No client deadline; never replayed once sent.
    pub async fn push(&self, path: &str, options: &GitRemoteOptions) -> Result<(), DaytonaError> {
        non_empty("path", path)?;
        self.post(
            "git.push",
            "push",
            &options.to_wire(path),
            Replay::ConnectOnly,
            Deadline::Unbounded,
        )
        .await?;
        Ok(())
    }

    /// Pulls (`POST /git/pull`). No client deadline; never replayed once sent.
    pub async fn pull(&self, path: &str, options: &GitRemoteOptions) -> Result<(), DaytonaError> {
        non_empty("path", path)?;
        let mut body = options.to_wire(path);
        body.set_upstream = None;
        self.post(
            "git.pull",
            "pull",
            &body,
            Replay::ConnectOnly,
            Deadline::Unbounded,
        )
        .await?;
        Ok(())
    }

    /// The commit history of the current branch, newest first (`GET /git/history`).
    pub async fn history(&self, path: &str) -> Result<Vec<GitCommitInfo>, DaytonaError> {
        self.get("git.history", "history", path).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_git_code_round_trips() {
        for code in [
            "GIT_AUTH_FAILED",
            "GIT_REPO_NOT_FOUND",
            "GIT_BRANCH_NOT_FOUND",
            "GIT_BRANCH_EXISTS",
            "GIT_PUSH_REJECTED",
            "GIT_DIRTY_WORKTREE",
            "GIT_MERGE_CONFLICT",
            "GIT_TRANSPORT_FAILED",
            "GIT_REMOTE_REJECTED",
        ] {
            assert_eq!(GitErrorKind::from_code(code).unwrap().code(), code);
        }
        assert_eq!(GitErrorKind::from_code("FILE_NOT_FOUND"), None);
    }

    #[test]
    fn classification_keeps_the_status_class() {
        let e = DaytonaError::from_response(
            409,
            br#"{"code":"GIT_BRANCH_EXISTS","message":"exists"}"#,
            None,
        );
        assert!(matches!(e, DaytonaError::Conflict(_)));
        assert_eq!(e.git_error_kind(), Some(GitErrorKind::BranchExists));
        let e = DaytonaError::from_response(
            502,
            br#"{"code":"GIT_TRANSPORT_FAILED","message":"x"}"#,
            None,
        );
        assert_eq!(e.git_error_kind(), Some(GitErrorKind::TransportFailed));
        assert_eq!(
            DaytonaError::from_response(404, b"{}", None).git_error_kind(),
            None
        );
    }

    #[test]
    fn passwords_are_redacted_but_sent() {
        let o = GitCloneOptions::new().credentials("me", "hunter2");
        assert!(!format!("{o:?}").contains("hunter2"));
        let r = GitRemoteOptions::new()
            .credentials("me", "s3cret")
            .set_upstream(true);
        assert!(!format!("{r:?}").contains("s3cret"));
        let wire = r.to_wire("/repo");
        assert_eq!(wire.password.as_deref(), Some("s3cret"));
        assert_eq!(
            serde_json::to_value(&wire).unwrap()["set_upstream"],
            serde_json::json!(true)
        );
    }
}
