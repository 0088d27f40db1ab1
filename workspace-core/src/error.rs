//! The one error type every provider returns.

use std::time::Duration;

use crate::sandbox::SandboxStatus;

/// Result alias used throughout the crate family.
pub type Result<T, E = SandboxError> = std::result::Result<T, E>;

/// The phase an operation was in when it ran out of time.
///
/// A command that exceeds its own timeout is *not* an error (it is a [`crate::CommandResult`]
/// with exit code 124); this names the provider-side phases that can time out instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutPhase {
    /// Creating or starting the sandbox.
    Start,
    /// Stopping the sandbox.
    Stop,
    /// Deleting the sandbox.
    Destroy,
    /// One HTTP request or other provider call.
    Request,
    /// Waiting for a background process.
    Wait,
    /// Any other phase.
    Other,
}

impl std::fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            TimeoutPhase::Start => "start",
            TimeoutPhase::Stop => "stop",
            TimeoutPhase::Destroy => "destroy",
            TimeoutPhase::Request => "request",
            TimeoutPhase::Wait => "wait",
            TimeoutPhase::Other => "operation",
        };
        f.write_str(s)
    }
}

/// Everything that can go wrong in a sandbox operation.
///
/// A command that runs and exits non-zero, times out or is cancelled is **not** an error: it is a
/// [`crate::CommandResult`]. Errors are for what prevented the operation from producing a result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// A sandbox, file, process or other named resource does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for, e.g. `file /tmp/x` or `sandbox abc`.
        what: String,
    },
    /// The resource exists already.
    #[error("already exists: {what}")]
    AlreadyExists {
        /// What already exists.
        what: String,
    },
    /// The sandbox is not in a state that allows the operation (for example after `destroy`).
    #[error("sandbox {id} is not ready (status: {status})")]
    NotReady {
        /// The sandbox id.
        id: String,
        /// Its status when the operation was refused.
        status: SandboxStatus,
    },
    /// A provider-side phase ran out of time.
    #[error("{phase} timed out after {after:?}")]
    Timeout {
        /// Which phase.
        phase: TimeoutPhase,
        /// How long it was given.
        after: Duration,
    },
    /// Credentials were missing or rejected.
    #[error("unauthorized: {message}")]
    Unauthorized {
        /// Why (never contains the credential).
        message: String,
    },
    /// The credentials are valid but do not allow this operation, or a path is outside what the
    /// sandbox may touch.
    #[error("permission denied: {message}")]
    PermissionDenied {
        /// Why.
        message: String,
    },
    /// The provider asked us to slow down.
    #[error("rate limited{}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    RateLimited {
        /// How long the provider asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// The caller passed something invalid; `field` names which argument.
    #[error("invalid argument `{field}`: {reason}")]
    InvalidArgument {
        /// The argument or option at fault, e.g. `args[2]`, `env.FOO`, `cwd`, `timeout`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The provider does not support the operation.
    #[error("{operation} is not supported by the {provider} provider")]
    Unsupported {
        /// The operation, e.g. `processes.write_stdin`.
        operation: String,
        /// The provider name.
        provider: String,
    },
    /// The state changed underneath the operation (e.g. a name already taken, a sandbox mid-transition).
    #[error("conflict: {message}")]
    Conflict {
        /// Details.
        message: String,
    },
    /// The sandbox was asked to isolate its commands from the host and cannot: the isolation
    /// mechanism is missing or does not work on this machine. Nothing ran unconfined.
    #[error("isolation unavailable: {reason}")]
    IsolationUnavailable {
        /// What failed, e.g. `bwrap not found` or `user namespaces are disabled`.
        reason: String,
    },
    /// A lifecycle hook ([`crate::layer::Hooked`]) failed; the sandbox is as the hook left it.
    #[error("{phase} hook `{hook}` failed: {message}")]
    Hook {
        /// The hook's name.
        hook: String,
        /// When it ran: `after start` or `before stop`.
        phase: String,
        /// What went wrong (exit code and the last lines of its output, or the error).
        message: String,
    },
    /// The connection to the provider failed.
    #[error("transport error: {message}")]
    Transport {
        /// Details (no secrets).
        message: String,
        /// Whether retrying the same request may succeed.
        retryable: bool,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The provider answered with an error that has no more specific variant.
    #[error("provider error{}{}: {message}", status.map(|s| format!(" {s}")).unwrap_or_default(), code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Provider {
        /// HTTP status, when the provider speaks HTTP.
        status: Option<u16>,
        /// The provider's own error code, when it sent one.
        code: Option<String>,
        /// The provider's message.
        message: String,
    },
    /// A local I/O error.
    #[error("i/o error while {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl SandboxError {
    /// Whether retrying the same operation unchanged may succeed.
    ///
    /// True for rate limiting, retryable transport failures, provider timeouts and 502/503/504
    /// answers. Whether a retry is *safe* (the operation is idempotent) is the caller's call.
    pub fn is_retryable(&self) -> bool {
        match self {
            SandboxError::RateLimited { .. } => true,
            SandboxError::Transport { retryable, .. } => *retryable,
            SandboxError::Timeout { phase, .. } => *phase == TimeoutPhase::Request,
            SandboxError::Provider {
                status: Some(s), ..
            } => matches!(s, 502..=504),
            _ => false,
        }
    }

    /// Shorthand for [`SandboxError::InvalidArgument`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SandboxError::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`SandboxError::NotFound`].
    pub fn not_found(what: impl Into<String>) -> Self {
        SandboxError::NotFound { what: what.into() }
    }

    /// Shorthand for [`SandboxError::Unsupported`].
    pub fn unsupported(operation: impl Into<String>, provider: impl Into<String>) -> Self {
        SandboxError::Unsupported {
            operation: operation.into(),
            provider: provider.into(),
        }
    }

    /// Shorthand for [`SandboxError::Io`].
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SandboxError::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classification() {
        assert!(SandboxError::RateLimited { retry_after: None }.is_retryable());
        assert!(
            SandboxError::Provider {
                status: Some(503),
                code: None,
                message: "x".into()
            }
            .is_retryable()
        );
        assert!(
            !SandboxError::Provider {
                status: Some(400),
                code: None,
                message: "x".into()
            }
            .is_retryable()
        );
        assert!(!SandboxError::invalid("cwd", "relative").is_retryable());
        assert_eq!(
            SandboxError::invalid("cwd", "must be absolute").to_string(),
            "invalid argument `cwd`: must be absolute"
        );
    }
}
