//! How a [`crate::Workspace`] presents its tools: output budget, timeouts, names, which tools.

use std::collections::BTreeSet;
use std::time::Duration;

use workspace_core::{Result, SandboxError};

use crate::catalog::ToolKind;

/// Default bytes of tool output the model sees: 16 KiB.
pub const DEFAULT_OUTPUT_BUDGET: usize = 16 * 1024;
/// The smallest accepted output budget: below it the notes and markers crowd out the output.
pub const MIN_OUTPUT_BUDGET: usize = 1024;
/// Default timeout of `execute_command` when the model gives none: 300 s, the family's default.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// Default upper bound on the `timeout_seconds` a model may ask for: one hour.
pub const DEFAULT_MAX_COMMAND_TIMEOUT: Duration = Duration::from_secs(3600);
/// Default upper bound on `get_process_output`'s `wait_seconds`: two minutes.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(120);
/// Default bound on one approval-policy decision or result hook: five minutes, room for a
/// person to answer.
pub const DEFAULT_POLICY_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest tool name OpenAI and Anthropic accept.
const MAX_TOOL_NAME_LEN: usize = 64;

/// Options of a [`crate::Workspace`]. Build with the chaining methods; every value is checked
/// by [`WorkspaceToolsOptions::validate`] when the workspace is made.
///
/// ```
/// use std::time::Duration;
/// use workspace_tools::{ToolKind, WorkspaceToolsOptions};
///
/// let options = WorkspaceToolsOptions::new()
///     .output_budget(8 * 1024)
///     .command_timeout(Duration::from_secs(60))
///     .tool_prefix("sandbox_")
///     .allowed_tools([ToolKind::ExecuteCommand, ToolKind::ReadFile]);
/// assert!(options.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkspaceToolsOptions {
    /// Bytes of output one tool answer may hold, notes and markers included.
    pub output_budget: usize,
    /// Timeout of `execute_command` when the model gives none.
    pub command_timeout: Duration,
    /// The largest `timeout_seconds` the model may ask for.
    pub max_command_timeout: Duration,
    /// The largest `wait_seconds` of `get_process_output`.
    pub max_wait: Duration,
    /// Put before every tool name.
    pub tool_prefix: String,
    /// The tools that may be offered; `None`: all of them.
    pub allowed: Option<BTreeSet<ToolKind>>,
    /// Refuse to change an existing file the model has not read in this workspace, or that
    /// changed since it read it (default on).
    pub edit_safety: bool,
    /// How long a [`crate::ToolPolicy`] may take to decide, and a [`crate::ToolHook`] to run,
    /// before the call is denied (or its answer withheld).
    pub policy_timeout: Duration,
}

impl Default for WorkspaceToolsOptions {
    fn default() -> Self {
        WorkspaceToolsOptions {
            output_budget: DEFAULT_OUTPUT_BUDGET,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            max_command_timeout: DEFAULT_MAX_COMMAND_TIMEOUT,
            max_wait: DEFAULT_MAX_WAIT,
            tool_prefix: String::new(),
            allowed: None,
            edit_safety: true,
            policy_timeout: DEFAULT_POLICY_TIMEOUT,
        }
    }
}

impl WorkspaceToolsOptions {
    /// The defaults: 16 KiB budget, 300 s command timeout (at most 1 h on request), no prefix,
    /// every tool the sandbox supports.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of output one tool answer may hold, notes and markers included (at least
    /// [`MIN_OUTPUT_BUDGET`]).
    pub fn output_budget(mut self, bytes: usize) -> Self {
        self.output_budget = bytes;
        self
    }

    /// Timeout of `execute_command` when the model gives none.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The largest `timeout_seconds` the model may ask for.
    pub fn max_command_timeout(mut self, timeout: Duration) -> Self {
        self.max_command_timeout = timeout;
        self
    }

    /// The largest `wait_seconds` of `get_process_output`.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// Put `prefix` before every tool name (`sandbox_` gives `sandbox_execute_command`), to
    /// keep the names apart from other tools the model has.
    pub fn tool_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.tool_prefix = prefix.into();
        self
    }

    /// Offer only these tools (those the sandbox supports). Default: all of them.
    pub fn allowed_tools(mut self, tools: impl IntoIterator<Item = ToolKind>) -> Self {
        self.allowed = Some(tools.into_iter().collect());
        self
    }

    /// Whether `write_file`, `edit_file` and `multi_edit` refuse to change an existing file
    /// that was not read in this workspace or changed since (default `true`). Edits to one
    /// file are serialised either way.
    pub fn edit_safety(mut self, on: bool) -> Self {
        self.edit_safety = on;
        self
    }

    /// How long a policy may take to decide (and a hook to run) before the call is denied
    /// (default [`DEFAULT_POLICY_TIMEOUT`]).
    pub fn policy_timeout(mut self, timeout: Duration) -> Self {
        self.policy_timeout = timeout;
        self
    }

    /// Check every value: the budget is at least [`MIN_OUTPUT_BUDGET`], timeouts are whole
    /// seconds greater than zero, the default timeout is within the maximum, and prefixed names
    /// are valid tool names (`[A-Za-z0-9_-]`, at most 64 characters).
    pub fn validate(&self) -> Result<()> {
        if self.output_budget < MIN_OUTPUT_BUDGET {
            return Err(SandboxError::invalid(
                "output_budget",
                format!(
                    "must be at least {MIN_OUTPUT_BUDGET} bytes, got {}",
                    self.output_budget
                ),
            ));
        }
        for (field, d) in [
            ("command_timeout", self.command_timeout),
            ("max_command_timeout", self.max_command_timeout),
            ("max_wait", self.max_wait),
            ("policy_timeout", self.policy_timeout),
        ] {
            if d.as_secs() == 0 || d.subsec_nanos() != 0 {
                return Err(SandboxError::invalid(
                    field,
                    format!("must be a whole number of seconds, at least 1, got {d:?}"),
                ));
            }
        }
        if self.max_command_timeout > workspace_core::command::MAX_TIMEOUT {
            return Err(SandboxError::invalid(
                "max_command_timeout",
                format!(
                    "must be at most {:?}, got {:?}",
                    workspace_core::command::MAX_TIMEOUT,
                    self.max_command_timeout
                ),
            ));
        }
        if self.command_timeout > self.max_command_timeout {
            return Err(SandboxError::invalid(
                "command_timeout",
                format!(
                    "{:?} is above max_command_timeout ({:?})",
                    self.command_timeout, self.max_command_timeout
                ),
            ));
        }
        if let Some(c) = self
            .tool_prefix
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(SandboxError::invalid(
                "tool_prefix",
                format!("may hold only ASCII letters, digits, `_` and `-`, found {c:?}"),
            ));
        }
        let longest = ToolKind::ALL
            .iter()
            .map(|k| k.base_name().len())
            .max()
            .unwrap_or(0);
        if self.tool_prefix.len() + longest > MAX_TOOL_NAME_LEN {
            return Err(SandboxError::invalid(
                "tool_prefix",
                format!("is too long: tool names may have at most {MAX_TOOL_NAME_LEN} characters"),
            ));
        }
        if self.allowed.as_ref().is_some_and(|a| a.is_empty()) {
            return Err(SandboxError::invalid(
                "allowed_tools",
                "must name at least one tool",
            ));
        }
        Ok(())
    }

    /// Whether `kind` may be offered (the sandbox must support it too).
    pub fn is_allowed(&self, kind: ToolKind) -> bool {
        self.allowed.as_ref().is_none_or(|a| a.contains(&kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<()>) -> String {
        match r {
            Err(SandboxError::InvalidArgument { field, .. }) => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        WorkspaceToolsOptions::new().validate().expect("valid");
    }

    #[test]
    fn bad_values_are_named() {
        let o = WorkspaceToolsOptions::new;
        assert_eq!(field(o().output_budget(10).validate()), "output_budget");
        assert_eq!(
            field(o().command_timeout(Duration::ZERO).validate()),
            "command_timeout"
        );
        assert_eq!(
            field(o().command_timeout(Duration::from_millis(1500)).validate()),
            "command_timeout"
        );
        assert_eq!(
            field(o().command_timeout(Duration::from_secs(7200)).validate()),
            "command_timeout"
        );
        assert_eq!(field(o().max_wait(Duration::ZERO).validate()), "max_wait");
        assert_eq!(
            field(o().tool_prefix("bad prefix").validate()),
            "tool_prefix"
        );
        assert_eq!(
            field(o().tool_prefix("x".repeat(60)).validate()),
            "tool_prefix"
        );
        assert_eq!(field(o().allowed_tools([]).validate()), "allowed_tools");
    }
}
