//! What a tool call gives back: text for the model, an error flag, and structured facts for the
//! host program.

use serde::Serialize;
use serde_json::{Value, json};
use workspace_core::{OutputOffsets, ProcessId, SandboxError};

use crate::catalog::ToolKind;

/// Why a tool call failed, for the host program (the model reads [`ToolOutput::text`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToolErrorKind {
    /// No offered tool has that name.
    UnknownTool,
    /// The arguments were not valid JSON, missed a required field, had a field of the wrong
    /// type or an unknown field, or had a value out of range.
    InvalidArguments,
    /// The sandbox refused or failed the operation (not found, permission denied, …).
    Sandbox,
    /// The tool ran but could not do what was asked (e.g. `edit_file`'s text matched twice).
    Rejected,
    /// The application's [`crate::ToolPolicy`] refused the call, or a [`crate::ToolHook`]
    /// withheld its answer.
    Denied,
}

/// The answer of one tool call.
///
/// `text` is what the model should see, already cleaned and trimmed to the output budget.
/// `is_error` marks calls that did nothing useful; a command that ran and exited non-zero is
/// **not** an error (the exit code is in the text and in `exit_code`), as for the sandbox itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ToolOutput {
    /// The tool name as called.
    pub tool: String,
    /// Text for the model.
    pub text: String,
    /// The call failed; `text` says why and what to do.
    pub is_error: bool,
    /// Why it failed, when it did.
    pub error: Option<ToolErrorKind>,
    /// Exit code of the command or process, when there is one.
    pub exit_code: Option<i32>,
    /// The command ran past its timeout and was killed.
    pub timed_out: bool,
    /// Some output is not in `text`: cut to fit the budget, dropped by the sandbox's own cap,
    /// or no longer retained by a background process.
    pub truncated: bool,
    /// The background process this call started or looked at.
    pub process_id: Option<ProcessId>,
    /// For background process output: the offsets to pass as `since` next time.
    pub next: Option<OutputOffsets>,
}

impl ToolOutput {
    /// A successful answer with this text.
    pub(crate) fn ok(tool: &str, text: String) -> Self {
        ToolOutput {
            tool: tool.to_string(),
            text,
            is_error: false,
            error: None,
            exit_code: None,
            timed_out: false,
            truncated: false,
            process_id: None,
            next: None,
        }
    }

    /// A failed answer.
    pub(crate) fn failed(tool: &str, kind: ToolErrorKind, text: String) -> Self {
        ToolOutput {
            is_error: true,
            error: Some(kind),
            ..ToolOutput::ok(tool, text)
        }
    }

    /// The OpenAI chat-completions message that carries this answer back:
    /// `{"role":"tool","tool_call_id":…,"content":…}`. That API has no error flag; error texts
    /// start with `error:` so the model can tell.
    pub fn openai_message(&self, tool_call_id: &str) -> Value {
        json!({
            "role": "tool",
            "tool_call_id": tool_call_id,
            "content": self.text,
        })
    }

    /// The Anthropic Messages content block that carries this answer back:
    /// `{"type":"tool_result","tool_use_id":…,"content":…,"is_error":…}`.
    pub fn anthropic_block(&self, tool_use_id: &str) -> Value {
        json!({
            "type": "tool_result",
            "tool_use_id": tool_use_id,
            "content": self.text,
            "is_error": self.is_error,
        })
    }
}

/// A failure inside a tool, before it is rendered for the model.
#[derive(Debug)]
pub(crate) enum ToolError {
    /// Bad arguments; the message names the argument and what was expected.
    InvalidArguments(String),
    /// The sandbox failed the operation.
    Sandbox(SandboxError),
    /// The tool could not do what was asked; the message says why and what to do.
    Rejected(String),
}

impl ToolError {
    /// The same error with `prefix` before its message (a sandbox error becomes a rejection
    /// that quotes it).
    pub(crate) fn prefixed(self, prefix: &str) -> ToolError {
        match self {
            ToolError::InvalidArguments(m) => ToolError::InvalidArguments(format!("{prefix}{m}")),
            ToolError::Rejected(m) => ToolError::Rejected(format!("{prefix}{m}")),
            ToolError::Sandbox(e) => ToolError::Rejected(format!("{prefix}{e}")),
        }
    }
}

impl From<SandboxError> for ToolError {
    fn from(e: SandboxError) -> Self {
        ToolError::Sandbox(e)
    }
}

impl ToolError {
    /// The answer the model gets for this failure of `tool`, a tool of `kind` (which picks the
    /// hint).
    pub(crate) fn into_output(self, tool: &str, kind: ToolKind) -> ToolOutput {
        match self {
            ToolError::InvalidArguments(message) => ToolOutput::failed(
                tool,
                ToolErrorKind::InvalidArguments,
                format!("error: invalid arguments for `{tool}`: {message}"),
            ),
            ToolError::Rejected(message) => ToolOutput::failed(
                tool,
                ToolErrorKind::Rejected,
                format!("error: `{tool}` did nothing: {message}"),
            ),
            ToolError::Sandbox(e) => {
                let hint = sandbox_hint(&e, kind);
                let mut text = format!("error: `{tool}` failed: {e}");
                if !hint.is_empty() {
                    text.push_str(". ");
                    text.push_str(hint);
                }
                ToolOutput::failed(tool, ToolErrorKind::Sandbox, text)
            }
        }
    }
}

/// What the model can do about a sandbox error.
fn sandbox_hint(e: &SandboxError, kind: ToolKind) -> &'static str {
    let about_processes = matches!(kind, ToolKind::GetProcessOutput | ToolKind::KillProcess);
    match e {
        SandboxError::NotFound { .. } if about_processes => {
            "Use the process id that starting the background command returned."
        }
        SandboxError::NotFound { .. } if kind == ToolKind::ExecuteCommand => {
            "Check that the working directory exists."
        }
        SandboxError::NotFound { .. } => "Check the path (list the directory to see what exists).",
        SandboxError::AlreadyExists { .. } => {
            "Choose another name, or delete the existing one first."
        }
        SandboxError::PermissionDenied { .. } => {
            "Stay inside the sandbox's working directory; use paths relative to it."
        }
        SandboxError::InvalidArgument { .. } => "Fix that argument and call the tool again.",
        SandboxError::NotReady { .. } => {
            "The sandbox is not available any more; no tool will work until it is restarted."
        }
        SandboxError::Unsupported { .. } => "Use another tool or a shell command instead.",
        e if e.is_retryable() => "This is probably temporary: try again.",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_shapes() {
        let out = ToolOutput::failed("read_file", ToolErrorKind::Sandbox, "error: x".into());
        assert_eq!(
            out.openai_message("call_1"),
            json!({"role": "tool", "tool_call_id": "call_1", "content": "error: x"})
        );
        assert_eq!(
            out.anthropic_block("toolu_1"),
            json!({"type": "tool_result", "tool_use_id": "toolu_1", "content": "error: x", "is_error": true})
        );
    }

    #[test]
    fn sandbox_errors_carry_a_hint() {
        let out = ToolError::from(SandboxError::PermissionDenied {
            message: "path \"../x\" resolves outside the sandbox root".into(),
        })
        .into_output("read_file", ToolKind::ReadFile);
        assert!(out.is_error);
        assert_eq!(out.error, Some(ToolErrorKind::Sandbox));
        assert!(
            out.text
                .starts_with("error: `read_file` failed: permission denied: ")
        );
        assert!(out.text.contains("Stay inside"));
    }
}
