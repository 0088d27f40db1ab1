//! Git DTOs (toolbox `/git/*`) beyond the request bodies in [`crate::toolbox`]
//! (`GitCloneRequest`, `GitCommitRequest`, `GitAddRequest`, `GitRemoteRequest`,
//! `GitInitRequest`, re-exported here): status, branches, checkout and history.
//!
//! Field names follow `toolbox.json`: camelCase in responses (`currentBranch`, `fileStatus`,
//! `branchPublished`), snake_case in a few request fields.

use serde::{Deserialize, Serialize};

use crate::sandbox::wire_enum;
pub use crate::toolbox::{
    GitAddRequest, GitCloneRequest, GitCommitRequest, GitCommitResponse, GitInitRequest,
    GitRemoteRequest,
};

/// `POST /git/push` body (same fields as [`GitRemoteRequest`]).
pub type GitPushRequest = GitRemoteRequest;
/// `POST /git/pull` body (same fields as [`GitRemoteRequest`]; `set_upstream` is ignored).
pub type GitPullRequest = GitRemoteRequest;

wire_enum! {
    /// `Status`: the state of a file in the index (`staging`) or the work tree (`worktree`).
    GitFileState {
        /// No change.
        Unmodified => "Unmodified",
        /// Not tracked.
        Untracked => "Untracked",
        /// Changed.
        Modified => "Modified",
        /// Newly added.
        Added => "Added",
        /// Removed.
        Deleted => "Deleted",
        /// Renamed (`extra` holds the old name).
        Renamed => "Renamed",
        /// Copied (`extra` holds the source).
        Copied => "Copied",
        /// In a merge conflict.
        UpdatedButUnmerged => "Updated but unmerged",
    }
}

/// `FileStatus`: one changed file in [`GitStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStatus {
    /// Path relative to the repository root.
    pub name: String,
    /// State in the index.
    pub staging: GitFileState,
    /// State in the work tree.
    pub worktree: GitFileState,
    /// Extra detail: the original path of a rename or copy, else empty.
    #[serde(default)]
    pub extra: String,
}

/// `GitStatus`: `GET /git/status?path=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitStatus {
    /// Checked-out branch (`HEAD` when detached).
    pub current_branch: String,
    /// Every file that is not unmodified.
    pub file_status: Vec<FileStatus>,
    /// Commits ahead of the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ahead: Option<u32>,
    /// Commits behind the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behind: Option<u32>,
    /// Whether the branch has an upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_published: Option<bool>,
    /// The upstream (e.g. `origin/main`), empty when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Whether `HEAD` is detached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detached: Option<bool>,
}

/// `ListBranchResponse`: `GET /git/branches?path=`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListBranchResponse {
    /// Local branch names.
    pub branches: Vec<String>,
    /// The checked-out branch (empty when detached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
}

/// `GitBranchRequest`: body of `POST /git/branches` (create the branch and switch to it).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GitBranchRequest {
    /// Repository path.
    pub path: String,
    /// Branch name.
    pub name: String,
}

/// `GitDeleteBranchRequest`: body of `DELETE /git/branches`.
pub type GitDeleteBranchRequest = GitBranchRequest;

/// `GitCheckoutRequest`: body of `POST /git/checkout`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GitCheckoutRequest {
    /// Repository path.
    pub path: String,
    /// Branch (or commit) to check out.
    pub branch: String,
}

/// `GitCommitInfo`: one entry of `GET /git/history?path=` (newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitCommitInfo {
    /// Full hash.
    pub hash: String,
    /// Author name.
    pub author: String,
    /// Author email.
    pub email: String,
    /// Full commit message.
    pub message: String,
    /// Author time, RFC 3339.
    pub timestamp: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_uses_the_spec_names() {
        let status = GitStatus {
            current_branch: "main".into(),
            file_status: vec![FileStatus {
                name: "a.txt".into(),
                staging: GitFileState::Added,
                worktree: GitFileState::UpdatedButUnmerged,
                extra: String::new(),
            }],
            ahead: Some(1),
            behind: Some(0),
            branch_published: Some(true),
            upstream: Some("origin/main".into()),
            detached: Some(false),
        };
        let v = serde_json::to_value(&status).unwrap();
        assert_eq!(v["currentBranch"], "main");
        assert_eq!(v["fileStatus"][0]["worktree"], "Updated but unmerged");
        assert_eq!(v["branchPublished"], true);
        let back: GitStatus = serde_json::from_value(v).unwrap();
        assert_eq!(back, status);
    }

    #[test]
    fn branch_list_reads_without_current() {
        let list: ListBranchResponse =
            serde_json::from_value(json!({"branches": ["main"]})).unwrap();
        assert_eq!(list.current, None);
    }
}
