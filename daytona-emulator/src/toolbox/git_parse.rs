//! Reading `git`'s output: `status --porcelain=v2 -z`, the history format, and which daemon
//! error (`GIT_*` code and status) a failure's message means.

use axum::http::StatusCode;
use daytona_api::git::{FileStatus, GitCommitInfo, GitFileState, GitStatus};
use daytona_api::toolbox::codes;

use crate::error::ApiError;

/// Separates fields of one history entry (`%x00`).
pub(crate) const LOG_FIELD: char = '\0';
/// Ends one history entry (`%x1e`).
pub(crate) const LOG_RECORD: char = '\u{1e}';
/// The `git log --format` that [`parse_history`] reads.
pub(crate) const LOG_FORMAT: &str = "--format=%H%x00%an%x00%ae%x00%aI%x00%B%x1e";

fn state(c: char) -> GitFileState {
    match c {
        'M' | 'T' => GitFileState::Modified,
        'A' => GitFileState::Added,
        'D' => GitFileState::Deleted,
        'R' => GitFileState::Renamed,
        'C' => GitFileState::Copied,
        'U' => GitFileState::UpdatedButUnmerged,
        '?' => GitFileState::Untracked,
        _ => GitFileState::Unmodified,
    }
}

/// `git status --porcelain=v2 --branch -z` → [`GitStatus`]. Unknown lines are skipped, so a
/// newer git that adds headers still parses.
pub(crate) fn parse_status(raw: &str) -> GitStatus {
    let mut status = GitStatus {
        current_branch: String::new(),
        file_status: Vec::new(),
        ahead: Some(0),
        behind: Some(0),
        branch_published: Some(false),
        upstream: Some(String::new()),
        detached: Some(false),
    };
    let mut records = raw.split('\0').filter(|r| !r.is_empty());
    while let Some(record) = records.next() {
        if let Some(header) = record.strip_prefix("# ") {
            let (key, value) = header.split_once(' ').unwrap_or((header, ""));
            match key {
                "branch.head" => {
                    if value == "(detached)" {
                        status.current_branch = "HEAD".to_string();
                        status.detached = Some(true);
                    } else {
                        status.current_branch = value.to_string();
                    }
                }
                "branch.upstream" => {
                    status.upstream = Some(value.to_string());
                    status.branch_published = Some(true);
                }
                "branch.ab" => {
                    for part in value.split_whitespace() {
                        if let Some(n) = part.strip_prefix('+') {
                            status.ahead = n.parse().ok();
                        } else if let Some(n) = part.strip_prefix('-') {
                            status.behind = n.parse().ok();
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        let mut kind_rest = record.splitn(2, ' ');
        let kind = kind_rest.next().unwrap_or("");
        let rest = kind_rest.next().unwrap_or("");
        match kind {
            "1" => {
                // XY sub mH mI mW hH hI path
                let fields: Vec<&str> = rest.splitn(8, ' ').collect();
                if let (Some(xy), Some(path)) = (fields.first(), fields.get(7)) {
                    status.file_status.push(entry(xy, path, String::new()));
                }
            }
            "2" => {
                // XY sub mH mI mW hH hI Xscore path, then the original path as its own record.
                let fields: Vec<&str> = rest.splitn(9, ' ').collect();
                let original = records.next().unwrap_or("").to_string();
                if let (Some(xy), Some(path)) = (fields.first(), fields.get(8)) {
                    status.file_status.push(entry(xy, path, original));
                }
            }
            "u" => {
                // XY sub m1 m2 m3 mW h1 h2 h3 path
                let fields: Vec<&str> = rest.splitn(10, ' ').collect();
                if let Some(path) = fields.get(9) {
                    status.file_status.push(FileStatus {
                        name: (*path).to_string(),
                        staging: GitFileState::UpdatedButUnmerged,
                        worktree: GitFileState::UpdatedButUnmerged,
                        extra: String::new(),
                    });
                }
            }
            "?" => status.file_status.push(FileStatus {
                name: rest.to_string(),
                staging: GitFileState::Untracked,
                worktree: GitFileState::Untracked,
                extra: String::new(),
            }),
            _ => {}
        }
    }
    status
}

fn entry(xy: &str, path: &str, extra: String) -> FileStatus {
    let mut chars = xy.chars();
    FileStatus {
        name: path.to_string(),
        staging: state(chars.next().unwrap_or('.')),
        worktree: state(chars.next().unwrap_or('.')),
        extra,
    }
}

/// Output of `git log` with [`LOG_FORMAT`] → entries, newest first.
pub(crate) fn parse_history(raw: &str) -> Vec<GitCommitInfo> {
    raw.split(LOG_RECORD)
        .map(|r| r.trim_start_matches('\n'))
        .filter(|r| !r.is_empty())
        .filter_map(|record| {
            let mut fields = record.splitn(5, LOG_FIELD);
            Some(GitCommitInfo {
                hash: fields.next()?.to_string(),
                author: fields.next()?.to_string(),
                email: fields.next()?.to_string(),
                timestamp: go_json_time(fields.next()?),
                // The raw message, as go-git's `commit.Message` (a CLI commit ends in `\n`).
                message: fields.next()?.to_string(),
            })
        })
        .collect()
}

/// git's strict ISO 8601 time as Go's JSON writes a `time.Time`: the same, except that a zero
/// offset is `Z`.
fn go_json_time(iso: &str) -> String {
    match iso
        .strip_suffix("+00:00")
        .or_else(|| iso.strip_suffix("-00:00"))
    {
        Some(base) => format!("{base}Z"),
        None => iso.to_string(),
    }
}

/// The daemon error for a failed git command: its `GIT_*` code and status from git's message
/// (git runs with `LC_ALL=C`, so the messages are the English ones matched here). The message
/// is git's own, trimmed. `about_refs` says whether the command names branches or commits
/// (so "did not match" means a missing branch rather than a missing file, as for `git add`).
pub(crate) fn classify_failure(stderr: &str, stdout: &str, about_refs: bool) -> ApiError {
    // git splits a failure between the streams (a pull prints `From ...` on stderr and the
    // `CONFLICT` lines on stdout), so both are read.
    let text = [stderr.trim(), stdout.trim()]
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let lower = text.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    let (status, code) = if has(&[
        "authentication failed",
        "could not read username",
        "could not read password",
        "invalid username or password",
        "permission denied (publickey",
    ]) {
        (StatusCode::UNAUTHORIZED, codes::GIT_AUTH_FAILED)
    } else if has(&[
        "[remote rejected]",
        "pre-receive hook declined",
        "hook declined",
    ]) {
        (StatusCode::UNPROCESSABLE_ENTITY, codes::GIT_REMOTE_REJECTED)
    } else if has(&[
        "[rejected]",
        "non-fast-forward",
        "fetch first",
        "updates were rejected",
    ]) {
        (StatusCode::CONFLICT, codes::GIT_PUSH_REJECTED)
    } else if has(&["conflict (", "automatic merge failed", "fix conflicts"]) {
        (StatusCode::CONFLICT, codes::GIT_MERGE_CONFLICT)
    } else if has(&[
        "would be overwritten by",
        "please commit your changes or stash them",
        "your local changes",
    ]) {
        (StatusCode::CONFLICT, codes::GIT_DIRTY_WORKTREE)
    } else if has(&["a branch named", "already exists"]) && has(&["branch"]) {
        (StatusCode::CONFLICT, codes::GIT_BRANCH_EXISTS)
    } else if about_refs
        && has(&[
            "remote branch",
            "invalid reference",
            "did not match any",
            "couldn't find remote ref",
            "not a valid branch",
            "branch '",
        ])
        && has(&[
            "not found",
            "invalid reference",
            "did not match",
            "couldn't find",
        ])
    {
        (StatusCode::NOT_FOUND, codes::GIT_BRANCH_NOT_FOUND)
    } else if has(&[
        "does not appear to be a git repository",
        "not a git repository",
        "repository not found",
        "not found",
        "does not exist",
        "no such remote",
    ]) {
        (StatusCode::NOT_FOUND, codes::GIT_REPO_NOT_FOUND)
    } else if has(&[
        "could not resolve host",
        "unable to access",
        "connection refused",
        "connection timed out",
        "could not read from remote repository",
        "network is unreachable",
    ]) {
        (StatusCode::BAD_GATEWAY, codes::GIT_TRANSPORT_FAILED)
    } else if has(&["already exists and is not an empty directory"]) {
        (StatusCode::CONFLICT, codes::CONFLICT)
    } else {
        (StatusCode::BAD_REQUEST, codes::BAD_REQUEST)
    };
    let message = if text.is_empty() {
        "git failed without a message".to_string()
    } else {
        text
    };
    ApiError::daemon(status, code, message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn porcelain_v2_status_is_read() {
        let raw = "# branch.oid 1234\0# branch.head main\0# branch.upstream origin/main\0\
                   # branch.ab +2 -1\0\
                   1 M. N... 100644 100644 100644 aaa bbb staged.txt\0\
                   1 .M N... 100644 100644 100644 aaa bbb dir/with space.txt\0\
                   2 R. N... 100644 100644 100644 aaa bbb R100 new.txt\0old.txt\0\
                   u UU N... 100644 100644 100644 100644 a b c both.txt\0\
                   ? untracked.txt\0";
        let st = parse_status(raw);
        assert_eq!(st.current_branch, "main");
        assert_eq!(st.upstream.as_deref(), Some("origin/main"));
        assert_eq!((st.ahead, st.behind), (Some(2), Some(1)));
        assert_eq!(st.branch_published, Some(true));
        let names: Vec<_> = st.file_status.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "staged.txt",
                "dir/with space.txt",
                "new.txt",
                "both.txt",
                "untracked.txt"
            ]
        );
        assert_eq!(st.file_status[0].staging, GitFileState::Modified);
        assert_eq!(st.file_status[0].worktree, GitFileState::Unmodified);
        assert_eq!(st.file_status[1].worktree, GitFileState::Modified);
        assert_eq!(st.file_status[2].staging, GitFileState::Renamed);
        assert_eq!(st.file_status[2].extra, "old.txt");
        assert_eq!(st.file_status[3].staging, GitFileState::UpdatedButUnmerged);
        assert_eq!(st.file_status[4].worktree, GitFileState::Untracked);
    }

    #[test]
    fn detached_head_is_reported() {
        let st = parse_status("# branch.oid abc\0# branch.head (detached)\0");
        assert_eq!(st.current_branch, "HEAD");
        assert_eq!(st.detached, Some(true));
        assert_eq!(st.branch_published, Some(false));
    }

    #[test]
    fn history_is_read_with_multiline_messages() {
        let raw = "h2\0Ann\0ann@x\x002026-01-02T00:00:00+02:00\0second\n\nbody\n\u{1e}\n\
                   h1\0Bob\0bob@x\x002026-01-01T00:00:00+00:00\0first\u{1e}\n";
        let log = parse_history(raw);
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].hash, "h2");
        // Raw messages, as go-git gives them; Go's RFC 3339 times (`Z` for a zero offset).
        assert_eq!(log[0].message, "second\n\nbody\n");
        assert_eq!(log[0].timestamp, "2026-01-02T00:00:00+02:00");
        assert_eq!(log[1].author, "Bob");
        assert_eq!(log[1].message, "first");
        assert_eq!(log[1].timestamp, "2026-01-01T00:00:00Z");
    }

    #[test]
    fn failures_map_to_daemon_codes() {
        let cases = [
            (
                "fatal: repository '/nope' does not exist",
                codes::GIT_REPO_NOT_FOUND,
                404,
            ),
            (
                "fatal: '/x' does not appear to be a git repository",
                codes::GIT_REPO_NOT_FOUND,
                404,
            ),
            (
                "fatal: Remote branch nope not found in upstream origin",
                codes::GIT_BRANCH_NOT_FOUND,
                404,
            ),
            (
                "fatal: invalid reference: nope",
                codes::GIT_BRANCH_NOT_FOUND,
                404,
            ),
            (
                "error: branch 'nope' not found",
                codes::GIT_BRANCH_NOT_FOUND,
                404,
            ),
            (
                "fatal: a branch named 'x' already exists",
                codes::GIT_BRANCH_EXISTS,
                409,
            ),
            (
                " ! [rejected]        main -> main (fetch first)\nerror: failed to push some refs",
                codes::GIT_PUSH_REJECTED,
                409,
            ),
            (
                "CONFLICT (content): Merge conflict in a.txt\nAutomatic merge failed",
                codes::GIT_MERGE_CONFLICT,
                409,
            ),
            (
                "error: Your local changes to the following files would be overwritten by checkout",
                codes::GIT_DIRTY_WORKTREE,
                409,
            ),
            (
                "fatal: Authentication failed for 'https://x'",
                codes::GIT_AUTH_FAILED,
                401,
            ),
            (
                "fatal: unable to access 'https://x/': Could not resolve host: x",
                codes::GIT_TRANSPORT_FAILED,
                502,
            ),
            (
                " ! [remote rejected] main -> main (pre-receive hook declined)",
                codes::GIT_REMOTE_REJECTED,
                422,
            ),
            (
                "nothing to commit, working tree clean",
                codes::BAD_REQUEST,
                400,
            ),
        ];
        for (message, code, status) in cases {
            let e = classify_failure(message, "", true);
            assert_eq!(e.code.as_deref(), Some(code), "{message}");
            assert_eq!(e.status.as_u16(), status, "{message}");
        }
        assert_eq!(
            classify_failure("", "nothing to commit", false).message,
            "nothing to commit"
        );
        let add = classify_failure("fatal: pathspec 'x' did not match any files", "", false);
        assert_eq!(add.code.as_deref(), Some(codes::BAD_REQUEST));
    }
}
