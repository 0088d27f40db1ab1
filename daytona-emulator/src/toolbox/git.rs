//! Git routes (`/git/clone`, `/git/status`, `/git/add`, `/git/commit`, `/git/branches`,
//! `/git/checkout`, `/git/push`, `/git/pull`, `/git/history`, `/git/init`), run with the
//! machine's `git` inside the sandbox's layout (bubblewrap when available), so repositories,
//! hooks and config stay within the sandbox like any other command.
//!
//! Paths are sandbox paths, confined like the file API (403 outside). Local repositories
//! outside the sandbox (a host path or `file://` URL) may be the *source* of a clone or pull
//! (an absolute path means the sandbox's own entry when it has one, else the host's):
//! under bubblewrap a source that the sandbox's own directories hide (say, under the host's
//! `/tmp`) is shown read-only at its own path for that one command. They are never a push
//! target (403): a push would write outside the sandbox. Network remotes work as the machine's
//! network allows; `username`/`password` reach git through an askpass helper, never the
//! command line.
//!
//! Errors carry the daemon's `GIT_*` codes (see [`super::git_parse::classify_failure`]).
//! `POST /git/branches` creates the branch and switches to it, as the Daytona daemon does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use daytona_api::git::{
    GitAddRequest, GitBranchRequest, GitCheckoutRequest, GitCloneRequest, GitCommitInfo,
    GitCommitRequest, GitCommitResponse, GitInitRequest, GitRemoteRequest, GitStatus,
    ListBranchResponse,
};
use daytona_api::toolbox::codes;
use serde::Deserialize;

use crate::error::ApiError;
use crate::layout::{CommandExtras, Isolation, ResolvedPath, SandboxLayout, shell_single_quote};
use crate::state::{AppState, ToolboxTarget};
use crate::toolbox::git_parse::{LOG_FORMAT, classify_failure, parse_history, parse_status};
use crate::toolbox::{SandboxPath, parse_json, sandbox_env};

/// Longest a git command may run (a clone over a slow network).
const GIT_TIMEOUT: Duration = Duration::from_secs(300);
/// The askpass helper, in the daemon's state dir: answers git's prompts from the environment.
const ASKPASS_SCRIPT: &str = "#!/bin/sh\ncase \"$1\" in\n  Username*|username*) printf '%s\\n' \"$DAYTONA_GIT_USERNAME\" ;;\n  *) printf '%s\\n' \"$DAYTONA_GIT_PASSWORD\" ;;\nesac\n";

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::daemon(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
}

fn repo_not_found(what: impl std::fmt::Display) -> ApiError {
    ApiError::daemon(
        StatusCode::NOT_FOUND,
        codes::GIT_REPO_NOT_FOUND,
        format!("repository not found: {what}"),
    )
}

/// go-git's `repo.Head()` failure in a repository without commits, which v0.190.0's status and
/// history routes answer with a plain 404.
fn no_head() -> ApiError {
    ApiError::daemon(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        "reference not found",
    )
}

fn required<'a>(name: &str, value: &'a str) -> Result<&'a str, ApiError> {
    if value.trim().is_empty() {
        Err(bad_request(format!("{name} is required")))
    } else {
        Ok(value)
    }
}

/// `?path=` of the GET routes.
#[derive(Debug, Deserialize)]
pub(crate) struct PathQuery {
    path: Option<String>,
}

/// A repository on the machine named by a clone URL or remote URL.
#[derive(Debug)]
struct LocalRepo {
    /// Host path.
    host: PathBuf,
    /// Whether it lies outside the sandbox's directories.
    outside: bool,
}

/// The local repository `url` names, if it names one (a path or `file://` URL rather than a
/// network URL). A relative path that escapes the sandbox is refused (403).
fn local_repo(layout: &SandboxLayout, url: &str) -> Result<Option<LocalRepo>, ApiError> {
    let path = if let Some(rest) = url.strip_prefix("file://") {
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        percent_encoding::percent_decode_str(rest)
            .decode_utf8_lossy()
            .into_owned()
    } else if url.contains("://") {
        return Ok(None);
    } else if url
        .split_once(':')
        .is_some_and(|(before, _)| !before.contains('/') && !before.is_empty())
    {
        // scp-like `user@host:repo`.
        return Ok(None);
    } else {
        url.to_string()
    };
    // An absolute path names the sandbox's own file when there is one there, else the host's
    // (under bubblewrap `/tmp/x` could be either: the sandbox's /tmp hides the host's).
    match layout.resolve(&path, true) {
        Ok(resolved) if resolved.host.exists() || !path.starts_with('/') => Ok(Some(LocalRepo {
            host: resolved.host,
            outside: false,
        })),
        Ok(resolved) if !Path::new(&path).exists() => Ok(Some(LocalRepo {
            host: resolved.host,
            outside: false,
        })),
        Ok(_) => Ok(Some(LocalRepo {
            host: PathBuf::from(&path),
            outside: true,
        })),
        Err(_) if path.starts_with('/') => Ok(Some(LocalRepo {
            host: PathBuf::from(&path),
            outside: true,
        })),
        Err(e) => Err(e),
    }
}

/// What a git command left.
struct GitOutput {
    stdout: String,
    stderr: String,
    exit_code: i32,
}

/// Runs git commands for one request in one sandbox.
struct Git {
    target: ToolboxTarget,
    env: BTreeMap<String, String>,
    extras: CommandExtras,
}

impl Git {
    fn new(target: ToolboxTarget) -> Self {
        let mut env = sandbox_env(&target);
        // English messages, which the error mapping reads; never wait for a prompt.
        env.insert("LC_ALL".into(), "C".into());
        env.insert("GIT_TERMINAL_PROMPT".into(), "0".into());
        if target.layout.isolation() == Isolation::Host {
            // Sandbox paths are host paths here: never pick up a repository the emulator's
            // data directory happens to live in.
            env.insert(
                "GIT_CEILING_DIRECTORIES".into(),
                target.layout.root().to_string_lossy().into_owned(),
            );
        }
        // An identity fallback for merge commits when the sandbox configured none.
        env.entry("EMAIL".into())
            .or_insert_with(|| format!("{}@sandbox.invalid", target.user));
        Git {
            target,
            env,
            extras: CommandExtras::default(),
        }
    }

    fn layout(&self) -> &SandboxLayout {
        &self.target.layout
    }

    /// Lets git read the host repository at `host` (outside the sandbox) for this request.
    fn show_read_only(&mut self, host: &Path) -> Result<(), ApiError> {
        let host = host
            .canonicalize()
            .map_err(|_| repo_not_found(host.display()))?;
        if self.layout().hides_host_path(&host) {
            self.extras.ro_binds.push(host);
        }
        Ok(())
    }

    /// Hands `username`/`password` to git through the askpass helper.
    fn credentials(
        &mut self,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<(), ApiError> {
        if username.is_none() && password.is_none() {
            return Ok(());
        }
        let script = self.layout().state_host().join("git-askpass.sh");
        let io_err = |e: std::io::Error| ApiError::daemon_internal("preparing git credentials", e);
        std::fs::write(&script, ASKPASS_SCRIPT).map_err(io_err)?;
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(io_err)?;
        let in_sandbox = self
            .layout()
            .state_path_for_command(&script)
            .ok_or_else(|| io_err(std::io::Error::other("askpass outside the state dir")))?;
        self.env.insert("GIT_ASKPASS".into(), in_sandbox);
        self.env.insert(
            "DAYTONA_GIT_USERNAME".into(),
            username.unwrap_or_default().to_string(),
        );
        self.env.insert(
            "DAYTONA_GIT_PASSWORD".into(),
            password.unwrap_or_default().to_string(),
        );
        Ok(())
    }

    /// `git <args>` in the sandbox path `cwd` (default: the home dir).
    async fn run(&self, cwd: Option<&str>, args: &[String]) -> Result<GitOutput, ApiError> {
        let mut line = String::from("exec git -c safe.directory='*'");
        for arg in args {
            line.push(' ');
            line.push_str(&shell_single_quote(arg));
        }
        let prepared = self
            .layout()
            .command_spec_with(&line, cwd, &self.env, &self.extras)?;
        let litter = self.mount_point_litter();
        let outcome = self
            .target
            .runtime
            .run_foreground(prepared, Some(GIT_TIMEOUT))
            .await;
        clean_litter(&litter);
        let outcome = outcome.map_err(|e| ApiError::daemon_internal("running git", e))?;
        if outcome.result.timed_out {
            return Err(ApiError::daemon(
                StatusCode::REQUEST_TIMEOUT,
                codes::REQUEST_TIMEOUT,
                format!(
                    "git {} timed out after {} s",
                    args.first().map(String::as_str).unwrap_or(""),
                    GIT_TIMEOUT.as_secs()
                ),
            ));
        }
        Ok(GitOutput {
            stdout: outcome.result.stdout,
            stderr: outcome.result.stderr,
            exit_code: outcome.result.exit_code,
        })
    }

    /// [`Git::run`], with a failure turned into its daemon error; the stdout on success.
    async fn ok(
        &self,
        cwd: Option<&str>,
        args: &[&str],
        about_refs: bool,
    ) -> Result<String, ApiError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = self.run(cwd, &args).await?;
        if out.exit_code == 0 {
            Ok(out.stdout)
        } else {
            Err(classify_failure(&out.stderr, &out.stdout, about_refs))
        }
    }

    /// Directories bubblewrap will create inside the sandbox's own directories as mount points
    /// for the read-only binds (deepest last), so they can be removed afterwards.
    fn mount_point_litter(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for bind in &self.extras.ro_binds {
            let Some(path) = bind.to_str() else { continue };
            let Ok(resolved) = self.layout().resolve(path, false) else {
                continue;
            };
            let mut missing = Vec::new();
            let mut dir = resolved.host.as_path();
            while !dir.exists() {
                missing.push(dir.to_path_buf());
                match dir.parent() {
                    Some(parent) => dir = parent,
                    None => break,
                }
            }
            missing.reverse();
            out.extend(missing);
        }
        out
    }

    /// The repository at the sandbox path `path`: 403 outside the sandbox, 404 when missing.
    fn repo(&self, path: Option<&str>) -> Result<ResolvedPath, ApiError> {
        let path = required("path", path.unwrap_or(""))?;
        let resolved = self.layout().resolve(path, true)?;
        if !resolved.host.is_dir() {
            return Err(repo_not_found(path));
        }
        Ok(resolved)
    }

    /// The checked-out branch, `None` when HEAD is detached.
    async fn current_branch(&self, repo: &str) -> Result<Option<String>, ApiError> {
        let out = self
            .run(
                Some(repo),
                &[
                    "symbolic-ref".into(),
                    "--short".into(),
                    "-q".into(),
                    "HEAD".into(),
                ],
            )
            .await?;
        if out.exit_code == 0 {
            Ok(Some(out.stdout.trim().to_string()).filter(|b| !b.is_empty()))
        } else if out.exit_code == 1 {
            Ok(None)
        } else {
            Err(classify_failure(&out.stderr, &out.stdout, false))
        }
    }

    /// The URL of `remote` and, when it is a local repository, that repository.
    async fn remote(
        &self,
        repo: &str,
        remote: &str,
    ) -> Result<(String, Option<LocalRepo>), ApiError> {
        let url = self
            .ok(Some(repo), &["remote", "get-url", remote], false)
            .await?
            .trim()
            .to_string();
        let local = local_repo(self.layout(), &url)?;
        if let Some(local) = &local
            && !local.host.exists()
        {
            return Err(repo_not_found(&url));
        }
        Ok((url, local))
    }
}

/// Removes the mount-point directories bubblewrap created (only if still empty).
fn clean_litter(dirs: &[PathBuf]) {
    for dir in dirs.iter().rev() {
        let _ = std::fs::remove_dir(dir);
    }
}

fn empty(status: StatusCode) -> Response {
    status.into_response()
}

/// `POST /git/clone` `{url, path, branch?, commit_id?, username?, password?, depth?,
/// insecure_skip_tls?}`: 200.
pub(crate) async fn clone(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let req: GitCloneRequest = parse_json(&body)?;
    let url = required("url", &req.url)?.trim().to_string();
    let dest = target.layout.resolve(required("path", &req.path)?, true)?;
    let mut git = Git::new(target);
    if let Some(local) = local_repo(git.layout(), &url)? {
        if !local.host.exists() {
            return Err(repo_not_found(&url));
        }
        if local.outside {
            git.show_read_only(&local.host)?;
        }
    }
    git.credentials(req.username.as_deref(), req.password.as_deref())?;
    let mut args: Vec<String> = Vec::new();
    if req.insecure_skip_tls == Some(true) {
        args.extend(["-c".into(), "http.sslVerify=false".into()]);
    }
    args.extend(["clone".into(), "--no-hardlinks".into()]);
    if let Some(branch) = req.branch.as_deref().filter(|b| !b.is_empty()) {
        args.extend(["--branch".into(), branch.to_string()]);
    }
    if let Some(depth) = req.depth.filter(|d| *d > 0) {
        args.extend(["--depth".into(), depth.to_string()]);
    }
    args.extend(["--".into(), url.clone(), dest.sandbox.clone()]);
    let out = git.run(None, &args).await?;
    if out.exit_code != 0 {
        return Err(classify_failure(&out.stderr, &out.stdout, true));
    }
    if let Some(commit) = req.commit_id.as_deref().filter(|c| !c.is_empty()) {
        git.ok(
            Some(&dest.sandbox),
            &["-c", "advice.detachedHead=false", "checkout", commit, "--"],
            true,
        )
        .await?;
    }
    Ok(empty(StatusCode::OK))
}

/// `GET /git/status?path=`.
pub(crate) async fn status(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<PathQuery>,
) -> Result<Json<GitStatus>, ApiError> {
    let git = Git::new(state.toolbox_target(&p.sandbox_id)?);
    let repo = git.repo(q.path.as_deref())?;
    let raw = git
        .ok(
            Some(&repo.sandbox),
            // go-git lists every untracked file, never a directory of them.
            &[
                "status",
                "--porcelain=v2",
                "--branch",
                "--untracked-files=all",
                "-z",
            ],
            false,
        )
        .await?;
    if raw.split('\0').any(|r| r == "# branch.oid (initial)") {
        return Err(no_head());
    }
    Ok(Json(parse_status(&raw)))
}

/// `POST /git/add` `{path, files}`: 200.
pub(crate) async fn add(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let git = Git::new(state.toolbox_target(&p.sandbox_id)?);
    let req: GitAddRequest = parse_json(&body)?;
    let repo = git.repo(Some(&req.path))?;
    if req.files.is_empty() {
        return Err(bad_request("files is required (use \".\" for everything)"));
    }
    let mut args = vec!["add", "--"];
    args.extend(req.files.iter().map(String::as_str));
    git.ok(Some(&repo.sandbox), &args, false).await?;
    Ok(empty(StatusCode::OK))
}

/// `POST /git/commit` `{path, message, author, email, allow_empty?}`: 200 `{hash}`.
pub(crate) async fn commit(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Json<GitCommitResponse>, ApiError> {
    let mut git = Git::new(state.toolbox_target(&p.sandbox_id)?);
    let req: GitCommitRequest = parse_json(&body)?;
    let repo = git.repo(Some(&req.path))?;
    required("message", &req.message)?;
    let author = required("author", &req.author)?.to_string();
    let email = required("email", &req.email)?.to_string();
    for key in ["GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"] {
        git.env.insert(key.into(), author.clone());
    }
    for key in ["GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"] {
        git.env.insert(key.into(), email.clone());
    }
    // go-git stores the message as given: no whitespace clean-up and, unlike `-m`, no newline
    // added; so the message goes through a file, kept verbatim.
    let io_err = |e: std::io::Error| ApiError::daemon_internal("writing the commit message", e);
    let mut message_file = tempfile::Builder::new()
        .prefix("commit-msg-")
        .tempfile_in(git.layout().state_host())
        .map_err(io_err)?;
    std::io::Write::write_all(&mut message_file, req.message.as_bytes()).map_err(io_err)?;
    let message_path = git
        .layout()
        .state_path_for_command(message_file.path())
        .ok_or_else(|| io_err(std::io::Error::other("message file outside the state dir")))?;
    let mut args = vec!["commit", "--cleanup=verbatim", "-F", message_path.as_str()];
    if req.allow_empty == Some(true) {
        args.push("--allow-empty");
    }
    git.ok(Some(&repo.sandbox), &args, false).await?;
    drop(message_file);
    let hash = git
        .ok(Some(&repo.sandbox), &["rev-parse", "HEAD"], false)
        .await?;
    Ok(Json(GitCommitResponse {
        hash: hash.trim().to_string(),
    }))
}

/// `GET /git/branches?path=`: local branches and the current one.
pub(crate) async fn list_branches(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<PathQuery>,
) -> Result<Json<ListBranchResponse>, ApiError> {
    let git = Git::new(state.toolbox_target(&p.sandbox_id)?);
    let repo = git.repo(q.path.as_deref())?;
    let raw = git
        .ok(
            Some(&repo.sandbox),
            &["for-each-ref", "--format=%(refname:short)", "refs/heads"],
            false,
        )
        .await?;
    let branches = raw
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let current = git.current_branch(&repo.sandbox).await?;
    Ok(Json(ListBranchResponse {
        branches,
        current: Some(current.unwrap_or_default()),
    }))
}

/// `POST /git/branches` `{path, name}`: creates the branch and switches to it; 201.
pub(crate) async fn create_branch(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let git = Git::new(state.toolbox_target(&p.sandbox_id)?);
    let req: GitBranchRequest = parse_json(&body)?;
    let repo = git.repo(Some(&req.path))?;
    let name = required("name", &req.name)?;
    git.ok(Some(&repo.sandbox), &["switch", "-c", name], true)
        .await?;
    Ok(empty(StatusCode::CREATED))
}

/// `DELETE /git/branches` `{path, name}`: 204; 404 `GIT_BRANCH_NOT_FOUND` when missing.
pub(crate) async fn delete_branch(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let git = Git::new(state.toolbox_target(&p.sandbox_id)?);
    let req: GitBranchRequest = parse_json(&body)?;
    let repo = git.repo(Some(&req.path))?;
    let name = required("name", &req.name)?;
    git.ok(Some(&repo.sandbox), &["branch", "-D", "--", name], true)
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /git/checkout` `{path, branch}`: a branch (a remote one is tracked), else a commit
/// (detached); 404 `GIT_BRANCH_NOT_FOUND` when neither exists.
pub(crate) async fn checkout(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let git = Git::new(state.toolbox_target(&p.sandbox_id)?);
    let req: GitCheckoutRequest = parse_json(&body)?;
    let repo = git.repo(Some(&req.path))?;
    let branch = required("branch", &req.branch)?;
    let as_branch = git
        .run(Some(&repo.sandbox), &["switch".into(), branch.to_string()])
        .await?;
    if as_branch.exit_code == 0 {
        return Ok(empty(StatusCode::OK));
    }
    let err = classify_failure(&as_branch.stderr, &as_branch.stdout, true);
    let names_a_commit = as_branch.stderr.contains("a branch is expected");
    if err.code.as_deref() != Some(codes::GIT_BRANCH_NOT_FOUND) && !names_a_commit {
        return Err(err);
    }
    // Not a branch: a commit, checked out detached.
    let detached = git
        .run(
            Some(&repo.sandbox),
            &["switch".into(), "--detach".into(), branch.to_string()],
        )
        .await?;
    if detached.exit_code == 0 {
        return Ok(empty(StatusCode::OK));
    }
    let second = classify_failure(&detached.stderr, &detached.stdout, true);
    if second.code.as_deref() == Some(codes::GIT_BRANCH_NOT_FOUND) {
        return Err(ApiError::daemon(
            StatusCode::NOT_FOUND,
            codes::GIT_BRANCH_NOT_FOUND,
            format!("branch or commit {branch} not found"),
        ));
    }
    Err(second)
}

/// `POST /git/push` `{path, remote?, branch?, set_upstream?, username?, password?}`: 200.
/// A local remote outside the sandbox is refused (403).
pub(crate) async fn push(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut git = Git::new(state.toolbox_target(&p.sandbox_id)?);
    let req: GitRemoteRequest = parse_json(&body)?;
    let repo = git.repo(Some(&req.path))?;
    let remote = req
        .remote
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "origin".to_string());
    let (url, local) = git.remote(&repo.sandbox, &remote).await?;
    if local.is_some_and(|l| l.outside) {
        return Err(ApiError::daemon(
            StatusCode::FORBIDDEN,
            codes::FORBIDDEN,
            format!(
                "cannot push to {url}: it is a local repository outside the sandbox, which the \
                 emulator never writes to (push to a repository inside the sandbox, or a \
                 network remote)"
            ),
        ));
    }
    let branch = match req.branch.clone().filter(|b| !b.is_empty()) {
        Some(b) => b,
        None => git
            .current_branch(&repo.sandbox)
            .await?
            .ok_or_else(|| bad_request("HEAD is detached: name the branch to push"))?,
    };
    git.credentials(req.username.as_deref(), req.password.as_deref())?;
    let mut args = vec!["push"];
    if req.set_upstream == Some(true) {
        args.push("--set-upstream");
    }
    args.extend(["--", remote.as_str(), branch.as_str()]);
    git.ok(Some(&repo.sandbox), &args, true).await?;
    Ok(empty(StatusCode::OK))
}

/// `POST /git/pull` `{path, remote?, branch?, username?, password?}`: a merge (never a rebase);
/// 200, 409 `GIT_MERGE_CONFLICT` on conflicts.
pub(crate) async fn pull(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut git = Git::new(state.toolbox_target(&p.sandbox_id)?);
    let req: GitRemoteRequest = parse_json(&body)?;
    let repo = git.repo(Some(&req.path))?;
    let named_remote = req.remote.clone().filter(|r| !r.is_empty());
    let branch = req.branch.clone().filter(|b| !b.is_empty());
    let remote = match &named_remote {
        Some(r) => r.clone(),
        None => {
            // The current branch's upstream remote, else origin.
            let current = git.current_branch(&repo.sandbox).await?;
            let configured = match current {
                Some(b) => git
                    .run(
                        Some(&repo.sandbox),
                        &[
                            "config".into(),
                            "--get".into(),
                            format!("branch.{b}.remote"),
                        ],
                    )
                    .await?
                    .stdout
                    .trim()
                    .to_string(),
                None => String::new(),
            };
            if configured.is_empty() {
                "origin".to_string()
            } else {
                configured
            }
        }
    };
    let (_, local) = git.remote(&repo.sandbox, &remote).await?;
    if let Some(local) = local
        && local.outside
    {
        git.show_read_only(&local.host)?;
    }
    git.credentials(req.username.as_deref(), req.password.as_deref())?;
    let mut args = vec!["pull", "--no-rebase", "--no-edit"];
    if named_remote.is_some() || branch.is_some() {
        args.push(remote.as_str());
    }
    if let Some(b) = &branch {
        args.push(b.as_str());
    }
    git.ok(Some(&repo.sandbox), &args, true).await?;
    Ok(empty(StatusCode::OK))
}

/// `GET /git/history?path=`: commits, newest first (`[]` for a repository without commits).
pub(crate) async fn history(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    Query(q): Query<PathQuery>,
) -> Result<Json<Vec<GitCommitInfo>>, ApiError> {
    let git = Git::new(state.toolbox_target(&p.sandbox_id)?);
    let repo = git.repo(q.path.as_deref())?;
    let out = git
        .run(Some(&repo.sandbox), &["log".into(), LOG_FORMAT.into()])
        .await?;
    if out.exit_code == 0 {
        return Ok(Json(parse_history(&out.stdout)));
    }
    if out.stderr.contains("does not have any commits yet") {
        return Err(no_head());
    }
    Err(classify_failure(&out.stderr, &out.stdout, false))
}

/// `POST /git/init` `{path, bare?, initial_branch?}`: 201.
pub(crate) async fn init(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let git = Git::new(state.toolbox_target(&p.sandbox_id)?);
    let req: GitInitRequest = parse_json(&body)?;
    let dest = git.layout().resolve(required("path", &req.path)?, true)?;
    let mut args = vec!["init"];
    if req.bare == Some(true) {
        args.push("--bare");
    }
    if let Some(branch) = req.initial_branch.as_deref().filter(|b| !b.is_empty()) {
        args.extend(["--initial-branch", branch]);
    }
    args.extend(["--", dest.sandbox.as_str()]);
    git.ok(None, &args, false).await?;
    Ok(empty(StatusCode::CREATED))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let layout = SandboxLayout::create_with(
            &dir.path().join("sb"),
            "/home/daytona",
            Isolation::Bubblewrap,
        )
        .unwrap();
        assert!(
            local_repo(&layout, "https://github.com/a/b.git")
                .unwrap()
                .is_none()
        );
        assert!(
            local_repo(&layout, "git@github.com:a/b.git")
                .unwrap()
                .is_none()
        );
        let inside = local_repo(&layout, "repos/x.git").unwrap().unwrap();
        assert!(!inside.outside);
        assert_eq!(inside.host, layout.home_host().join("repos/x.git"));
        let outside = local_repo(&layout, "file:///srv/my%20repo.git")
            .unwrap()
            .unwrap();
        assert!(outside.outside);
        assert_eq!(outside.host, PathBuf::from("/srv/my repo.git"));
        let err = local_repo(&layout, "../../../etc").unwrap_err();
        assert_eq!(err.status, StatusCode::FORBIDDEN);
    }
}
