//! Running a code snippet with the sandbox's language interpreter
//! (`POST /process/code-run`).
//!
//! The language is the sandbox's `code-toolbox-language` label (set at create time with
//! [`crate::CreateSandboxParams::language`]); the official SDKs read it from the sandbox and send
//! it in the request, and so does this client unless [`CodeRunOptions::language`] overrides it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use reqwest::Method;

use daytona_api::code_run::{CodeRunArtifacts, CodeRunRequest, CodeRunResponse};
use daytona_api::sandbox::Sandbox as SandboxDto;

use crate::error::DaytonaError;
use crate::params::{CodeLanguage, LANGUAGE_LABEL};
use crate::process::{Process, answer_deadline, whole_seconds};
use crate::retry::Replay;
use crate::transport::{Call, join};

/// Extra time the client waits beyond a run's own timeout, so the daemon's 408 (not the
/// client's deadline) reports it.
const RUN_GRACE: Duration = Duration::from_secs(5);

/// The language a sandbox without the label runs (the SDKs' default).
const DEFAULT_LANGUAGE: &str = "python";

/// Options of [`Process::code_run`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CodeRunOptions {
    /// Arguments after the program (`sys.argv[1:]` in Python, `process.argv.slice(1)` in
    /// JavaScript, which the daemon runs from stdin). The daemon joins them with spaces into
    /// a shell command line, unquoted: an argument with spaces splits and `$VAR` expands.
    pub argv: Vec<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Kill the run after this long (whole seconds on the wire, rounded up); `None` lets it
    /// run as long as it takes.
    pub timeout: Option<Duration>,
    /// Run with this language instead of the sandbox's `code-toolbox-language` label (which
    /// costs one `GET /sandbox/{id}` to read).
    pub language: Option<CodeLanguage>,
}

impl fmt::Debug for CodeRunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeRunOptions")
            .field("argv", &self.argv)
            .field(
                "env (values redacted)",
                &self.env.keys().collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("language", &self.language)
            .finish()
    }
}

impl CodeRunOptions {
    /// No arguments, no extra environment, no timeout, the sandbox's language.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a program argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.argv.push(arg.into());
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Overrides the language.
    pub fn language(mut self, language: CodeLanguage) -> Self {
        self.language = Some(language);
        self
    }
}

/// What [`Process::code_run`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeRunResult {
    /// The interpreter's exit code.
    pub exit_code: i32,
    /// stdout and stderr, interleaved.
    pub result: String,
    /// Charts the program produced (matplotlib figures on Daytona Cloud).
    pub artifacts: CodeRunArtifacts,
}

impl Process {
    /// Runs `code` with the sandbox's language interpreter and waits for it.
    ///
    /// Never replayed once sent: a program that may have run is not run again.
    ///
    /// # Errors
    /// [`DaytonaError::InvalidArgument`] for a zero timeout or a bad environment name;
    /// [`DaytonaError::BadRequest`] when the daemon does not know the sandbox's language;
    /// [`DaytonaError::Timeout`] when the run outlived `timeout` (the daemon killed it).
    pub async fn code_run(
        &self,
        code: &str,
        options: &CodeRunOptions,
    ) -> Result<CodeRunResult, DaytonaError> {
        if let Some(t) = options.timeout
            && t.is_zero()
        {
            return Err(DaytonaError::invalid(
                "timeout",
                "must be positive; use None for no timeout",
            ));
        }
        for key in options.env.keys() {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(DaytonaError::invalid(
                    format!("env.{key}"),
                    "names must be non-empty and contain no '=' or NUL",
                ));
            }
        }
        let language = match options.language {
            Some(l) => l.as_str().to_string(),
            None => self.label_language().await?,
        };
        let body = CodeRunRequest {
            code: code.to_string(),
            language: Some(language),
            argv: (!options.argv.is_empty()).then(|| options.argv.clone()),
            envs: (!options.env.is_empty()).then(|| options.env.clone()),
            timeout: options.timeout.map(whole_seconds),
        };
        let deadline = answer_deadline(options.timeout, RUN_GRACE);
        let url = self.tb.url(&["process", "code-run"]).await?;
        let call = self
            .tb
            .call("process.code_run", Method::POST, url)
            .json(&body)?
            .replay(Replay::ConnectOnly)
            .deadline(deadline);
        let resp: CodeRunResponse = self.tb.transport.call_json(&call).await?;
        Ok(CodeRunResult {
            exit_code: resp.exit_code,
            result: resp.result,
            artifacts: resp.artifacts.unwrap_or_default(),
        })
    }

    /// The sandbox's `code-toolbox-language` label, read fresh from the API.
    async fn label_language(&self) -> Result<String, DaytonaError> {
        let url = join(
            &self.tb.transport.config().api_url,
            &["sandbox", &self.tb.sandbox_id],
        )?;
        let call = Call::new("sandbox.get", Method::GET, url).sandbox(&self.tb.sandbox_id);
        let dto: SandboxDto = self.tb.transport.call_json(&call).await?;
        Ok(dto
            .labels
            .get(LANGUAGE_LABEL)
            .filter(|l| !l.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| DEFAULT_LANGUAGE.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_env_values() {
        let o = CodeRunOptions::new().env("KEY", "hunter2").arg("x");
        let d = format!("{o:?}");
        assert!(d.contains("KEY") && !d.contains("hunter2"));
    }
}
