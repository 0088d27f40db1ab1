//! `POST /process/code-run`: run a snippet with the interpreter of its language.
//!
//! As the v0.190.0 daemon (`toolbox/process/coderun/`): `language` is required and exactly
//! `python`, `javascript` or `typescript` (the SDKs send the sandbox's `code-toolbox-language`
//! label). Python and JavaScript read the program from stdin (`python3 -u -`, `node -`), so
//! `sys.argv[0]` is `-`, and JavaScript code first drops that `-` from `process.argv` (the
//! arguments start at `process.argv[1]`); `argv` is joined with spaces into the shell command
//! line, unquoted, so an argument with spaces splits and `$VAR` expands. Interpreters are the
//! host's, found on the sandbox's default `PATH`: `python3`, `node`, and for typescript `tsx`,
//! then `ts-node`, then a Node.js new enough to strip types itself (22.6+), where the daemon uses
//! `npx ts-node`. The emulator installs nothing: a missing interpreter is a 400 that says so.
//! The program goes to a file in the daemon's state directory and runs in the home dir with
//! `envs` added to the sandbox environment; output is stdout and stderr interleaved, as
//! `/process/execute`. Charts (matplotlib figures on the real daemon) are not captured, so
//! `artifacts` is absent, as the daemon leaves it when there are none.

use std::path::PathBuf;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use daytona_api::code_run::{CodeRunRequest, CodeRunResponse};
use daytona_api::toolbox::codes;
use tokio::sync::OnceCell;

use crate::error::ApiError;
use crate::layout::{find_program, shell_single_quote};
use crate::state::AppState;
use crate::toolbox::{SandboxPath, check_env_keys, missing_field, parse_json, sandbox_env};

/// Node.js versions from this one on run TypeScript with `--experimental-strip-types`.
const NODE_STRIP_TYPES: (u32, u32) = (22, 6);

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::daemon(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
}

/// How to run a language here: the interpreter command line (before the program), the file
/// extension, and whether the program is read from stdin (after `-`) rather than named.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Interpreter {
    argv: Vec<String>,
    extension: &'static str,
    from_stdin: bool,
}

/// The interpreter for `language`, or a 400 naming what is missing.
async fn interpreter(language: &str) -> Result<Interpreter, ApiError> {
    let missing = |what: &str| {
        bad_request(format!(
            "cannot run {language} code: {what} is not available on this machine (the Daytona \
             emulator runs code with the host's interpreters and installs nothing)"
        ))
    };
    let with = |program: PathBuf, extra: &[&str], extension| Interpreter {
        argv: std::iter::once(program.to_string_lossy().into_owned())
            .chain(extra.iter().map(|s| s.to_string()))
            .collect(),
        extension,
        from_stdin: extra.last() == Some(&"-"),
    };
    match language {
        "python" => find_program("python3")
            .map(|p| with(p, &["-u", "-"], "py"))
            .ok_or_else(|| missing("python3")),
        "javascript" => find_program("node")
            .map(|p| with(p, &["-"], "js"))
            .ok_or_else(|| missing("node")),
        "typescript" => {
            if let Some(p) = find_program("tsx") {
                return Ok(with(p, &[], "ts"));
            }
            if let Some(p) = find_program("ts-node") {
                return Ok(with(p, &["--transpile-only"], "ts"));
            }
            match find_program("node") {
                Some(node) if node_strips_types(&node).await => Ok(with(
                    node,
                    &["--experimental-strip-types", "--no-warnings"],
                    "ts",
                )),
                Some(_) => Err(missing(&format!(
                    "a TypeScript runner (tsx, ts-node, or Node.js {}.{}+)",
                    NODE_STRIP_TYPES.0, NODE_STRIP_TYPES.1
                ))),
                None => Err(missing("node")),
            }
        }
        other => Err(bad_request(format!("unsupported language: {other}"))),
    }
}

/// Whether this `node` can run TypeScript by itself (asked once per process).
async fn node_strips_types(node: &std::path::Path) -> bool {
    static ANSWER: OnceCell<bool> = OnceCell::const_new();
    let node = node.to_path_buf();
    *ANSWER
        .get_or_init(|| async move {
            let out = tokio::process::Command::new(&node)
                .arg("--version")
                .output()
                .await;
            match out {
                Ok(out) if out.status.success() => {
                    parse_node_version(&String::from_utf8_lossy(&out.stdout))
                        .is_some_and(|v| v >= NODE_STRIP_TYPES)
                }
                _ => false,
            }
        })
        .await
}

/// `v22.6.0` → `(22, 6)`.
fn parse_node_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().trim_start_matches('v').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// What the daemon puts before JavaScript and TypeScript programs: the interpreter's argument
/// for the program (`-` or the file) leaves `process.argv`.
const JS_ARGV_FIX: &str = "process.argv.splice(1, 1);\n";

/// `POST /process/code-run`.
pub(crate) async fn code_run(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<SandboxPath>,
    body: Bytes,
) -> Result<Json<CodeRunResponse>, ApiError> {
    let target = state.toolbox_target(&p.sandbox_id)?;
    let req: CodeRunRequest = parse_json(&body)?;
    if req.code.is_empty() {
        return Err(missing_field("", "CodeRunRequest", "Code"));
    }
    let language = req.language.clone().unwrap_or_default();
    if language.is_empty() {
        return Err(missing_field("", "CodeRunRequest", "Language"));
    }
    let interpreter = interpreter(&language).await?;
    check_env_keys(req.envs.iter().flatten().map(|(k, _)| k))?;

    let dir = target.layout.state_host().join("code");
    let io_err = |e: std::io::Error| ApiError::daemon_internal("writing the program file", e);
    tokio::fs::create_dir_all(&dir).await.map_err(io_err)?;
    let file = tempfile::Builder::new()
        .prefix("run-")
        .suffix(&format!(".{}", interpreter.extension))
        .tempfile_in(&dir)
        .map_err(io_err)?
        .into_temp_path();
    let program = if language == "python" {
        req.code.clone()
    } else {
        format!("{JS_ARGV_FIX}{}", req.code)
    };
    tokio::fs::write(&file, program.as_bytes())
        .await
        .map_err(io_err)?;
    let in_sandbox = target
        .layout
        .state_path_for_command(&file)
        .ok_or_else(|| io_err(std::io::Error::other("program file outside the state dir")))?;

    let mut line = interpreter
        .argv
        .iter()
        .map(|w| shell_single_quote(w))
        .collect::<Vec<_>>()
        .join(" ");
    if !interpreter.from_stdin {
        line.push(' ');
        line.push_str(&shell_single_quote(&in_sandbox));
    }
    // Unquoted, as the daemon formats them into its command line.
    for arg in req.argv.iter().flatten() {
        line.push(' ');
        line.push_str(arg);
    }
    if interpreter.from_stdin {
        line.push_str(" < ");
        line.push_str(&shell_single_quote(&in_sandbox));
    }
    let mut env = sandbox_env(&target);
    env.extend(req.envs.clone().unwrap_or_default());
    let prepared = target
        .layout
        .command_spec(&format!("exec 2>&1; exec {line}"), None, &env)?;
    let timeout = req.timeout.filter(|t| *t > 0).map(Duration::from_secs);
    let outcome = target.runtime.run_foreground(prepared, timeout).await;
    drop(file);
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            return Ok(Json(CodeRunResponse {
                exit_code: -1,
                result: e.to_string(),
                artifacts: None,
            }));
        }
    };
    if outcome.result.timed_out {
        return Err(ApiError::daemon(
            StatusCode::REQUEST_TIMEOUT,
            codes::PROCESS_EXECUTION_TIMEOUT,
            "command execution timeout",
        ));
    }
    let mut result = outcome.result.stdout;
    result.push_str(&outcome.result.stderr);
    Ok(Json(CodeRunResponse {
        exit_code: outcome.result.exit_code,
        result,
        artifacts: None,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn node_versions_parse() {
        assert_eq!(parse_node_version("v22.6.0\n"), Some((22, 6)));
        assert_eq!(parse_node_version("v20.20.2"), Some((20, 20)));
        assert!(parse_node_version("v20.20.2").unwrap() < NODE_STRIP_TYPES);
        assert_eq!(parse_node_version("garbage"), None);
    }

    #[tokio::test]
    async fn unknown_languages_are_refused_by_name() {
        let err = interpreter("cobol").await.unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.message, "unsupported language: cobol");
        // Exact names, as the daemon's switch.
        assert!(interpreter("Python").await.is_err());
    }
}
