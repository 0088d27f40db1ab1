//! What a failed Daytona call says about the sandbox: the one place that decides whether a
//! failure means "the sandbox is not running" (restart and retry once) or "a lifecycle change is
//! under way" (wait and ask again).

use daytona_api::toolbox::codes;

use crate::error::DaytonaError;

/// How the provider treats a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// The sandbox is stopped, archived, gone, or its daemon unreachable: the request was
    /// refused without being acted on.
    SandboxUnavailable,
    /// The API refused a lifecycle request because another transition is running.
    StateChangeInProgress,
    /// Anything else.
    Other,
}

/// What the proxy and the API say, in words only, for the cases they give no status or code
/// for. Lower case; matched as substrings of the lower-cased message.
const UNAVAILABLE_PHRASES: &[&str] = &[
    "sandbox is not running",
    "is the sandbox started",
    "failed to resolve container ip",
    "sandbox already destroyed",
    "no ip address found",
];

const STATE_CHANGE_PHRASE: &str = "state change in progress";

/// Classify a failed call: typed status and daemon code first, message text only where Daytona
/// sends nothing else.
///
/// - A 404 that is not `FILE_NOT_FOUND` from the toolbox means the sandbox (or the session it
///   held, which dies with it) is gone; callers confirm with the control plane before acting,
///   since a plain 404 can also name a missing session of a running sandbox.
/// - 502 is the proxy failing to reach the daemon of a stopped sandbox.
/// - 410 `SESSION_ENDED` is a session that ended with its sandbox.
pub(crate) fn classify(err: &DaytonaError) -> Class {
    match err {
        DaytonaError::NotFound(_) | DaytonaError::BadGateway(_) => {
            return Class::SandboxUnavailable;
        }
        DaytonaError::Gone(d) if d.code.as_deref() == Some(codes::SESSION_ENDED) => {
            return Class::SandboxUnavailable;
        }
        DaytonaError::FileNotFound(_) => return Class::Other,
        _ => {}
    }
    let Some(details) = err.details() else {
        return Class::Other;
    };
    let message = details.message.to_ascii_lowercase();
    if message.contains(STATE_CHANGE_PHRASE) {
        return Class::StateChangeInProgress;
    }
    if UNAVAILABLE_PHRASES.iter().any(|p| message.contains(p)) {
        return Class::SandboxUnavailable;
    }
    Class::Other
}

/// Words the daemon uses when bulk upload refuses a destination it may not write. Bulk upload
/// folds every per-file failure into one 400 with the reasons as text (the real daemon too), so
/// a refused path can only be told from a malformed one by its words.
const ACCESS_DENIED_PHRASES: &[&str] = &["access denied", "permission denied"];

/// Whether a 400 from bulk upload means the destination may not be written (not a bad request).
pub(crate) fn upload_refused_access(err: &DaytonaError) -> bool {
    matches!(err, DaytonaError::BadRequest(_))
        && err.details().is_some_and(|d| {
            let message = d.message.to_ascii_lowercase();
            ACCESS_DENIED_PHRASES.iter().any(|p| message.contains(p))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_refusals_are_told_from_bad_requests() {
        assert!(upload_refused_access(&err(
            400,
            r#"{"message":"/etc/passwd: access denied: outside the sandbox","errors":["x"]}"#
        )));
        assert!(!upload_refused_access(&err(
            400,
            r#"{"message":"path[0]: empty path"}"#
        )));
        assert!(!upload_refused_access(&err(
            403,
            r#"{"message":"access denied"}"#
        )));
    }

    fn err(status: u16, body: &str) -> DaytonaError {
        DaytonaError::from_response(status, body.as_bytes(), None)
    }

    #[test]
    fn statuses_and_codes_decide_first() {
        assert_eq!(
            classify(&err(
                404,
                r#"{"message":"sandbox x not found","code":"NOT_FOUND"}"#
            )),
            Class::SandboxUnavailable
        );
        assert_eq!(
            classify(&err(
                404,
                r#"{"message":"not running","code":"FILE_NOT_FOUND"}"#
            )),
            Class::Other,
            "a missing file is never a dead sandbox, whatever the words"
        );
        assert_eq!(
            classify(&err(502, r#"{"message":"Bad Gateway"}"#)),
            Class::SandboxUnavailable
        );
        assert_eq!(
            classify(&err(410, r#"{"message":"x","code":"SESSION_ENDED"}"#)),
            Class::SandboxUnavailable
        );
        assert_eq!(
            classify(&err(
                410,
                r#"{"message":"x","code":"COMMAND_ALREADY_COMPLETED"}"#
            )),
            Class::Other
        );
    }

    #[test]
    fn words_only_where_nothing_else_is_sent() {
        assert_eq!(
            classify(&err(
                400,
                r#"{"message":"failed to resolve container IP after 3 attempts: no IP address found. Is the Sandbox started?"}"#
            )),
            Class::SandboxUnavailable
        );
        assert_eq!(
            classify(&err(400, r#"{"message":"State change in progress"}"#)),
            Class::StateChangeInProgress
        );
        assert_eq!(
            classify(&err(400, r#"{"message":"command must not be empty"}"#)),
            Class::Other
        );
        assert_eq!(
            classify(&DaytonaError::Transport {
                operation: "x",
                message: "sandbox is not running".into(),
                source: None
            }),
            Class::Other,
            "transport failures carry no server answer"
        );
    }
}
