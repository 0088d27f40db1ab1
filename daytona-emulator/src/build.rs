//! Emulated image builds: reading a Dockerfile, the build log clients stream, and the steps.
//!
//! **The emulator neither pulls nor builds images.** Sandboxes run on the machine's own system
//! whatever their image says. A build here walks the Dockerfile's instructions one step at a
//! time (one [`crate::EmulatorBuilder::build_step_delay`] each), logging each as
//! `Step 2/3 : RUN npm ci` like Docker's classic builder, so clients see real build states
//! (`pending_build` → `building_snapshot` → `started`, or `build_failed`) and a real log
//! stream. What the steps do:
//!
//! - `FROM`: recorded, not pulled.
//! - `ENV`: applied to the sandbox's environment (later values win; the create request's own
//!   `env` wins over all of them).
//! - `RUN`: not executed, with one exception kept for testing failure paths: `RUN false` or
//!   `RUN exit N` (N ≠ 0) fails the build at that step, as a failing command would.
//! - everything else: recorded.
//!
//! A Dockerfile that does not parse (an unknown instruction, an instruction before `FROM`
//! other than `ARG`, a `FROM` without an image) fails the build at once with the parse error
//! as `errorReason`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::sync::lock;

/// Instructions the Dockerfile reference defines.
const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// One instruction of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStep {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// The instruction, upper case (`RUN`).
    pub instruction: String,
    /// Its arguments, continuation lines joined with a space.
    pub args: String,
}

/// Reads a Dockerfile into its instructions. The error is the build's `errorReason`.
pub fn parse_dockerfile(text: &str) -> Result<Vec<BuildStep>, String> {
    let mut steps = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = raw.trim();
        if pending.is_none() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if pending.is_some() && trimmed.starts_with('#') {
            // Comment lines inside a continued instruction are dropped, as Docker does.
            continue;
        }
        let (continued, body) = match trimmed.strip_suffix('\\') {
            Some(body) => (true, body.trim_end()),
            None => (false, trimmed),
        };
        let (start, mut text) = pending.take().unwrap_or((number, String::new()));
        if !text.is_empty() && !body.is_empty() {
            text.push(' ');
        }
        text.push_str(body);
        if continued {
            pending = Some((start, text));
            continue;
        }
        steps.push(step(start, &text)?);
    }
    if let Some((start, text)) = pending {
        steps.push(step(start, &text)?);
    }
    let Some(first) = steps.iter().find(|s| s.instruction != "ARG") else {
        return Err("Dockerfile parse error: the Dockerfile has no FROM instruction".to_string());
    };
    if first.instruction != "FROM" {
        return Err(format!(
            "Dockerfile parse error on line {}: the first instruction must be FROM (found {})",
            first.line, first.instruction
        ));
    }
    Ok(steps)
}

fn step(line: usize, text: &str) -> Result<BuildStep, String> {
    let (word, args) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let instruction = word.to_ascii_uppercase();
    if !INSTRUCTIONS.contains(&instruction.as_str()) {
        return Err(format!(
            "Dockerfile parse error on line {line}: unknown instruction: {word}"
        ));
    }
    let args = args.trim().to_string();
    if instruction == "FROM" && args.is_empty() {
        return Err(format!(
            "Dockerfile parse error on line {line}: FROM requires an image"
        ));
    }
    Ok(BuildStep {
        line,
        instruction,
        args,
    })
}

/// The environment the `ENV` instructions set (`ENV A=1 B="two words"` and `ENV A 1`).
pub fn dockerfile_env(steps: &[BuildStep]) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for step in steps.iter().filter(|s| s.instruction == "ENV") {
        let args = step.args.trim();
        let first_word = args.split_whitespace().next().unwrap_or("");
        if !first_word.contains('=') {
            // Legacy `ENV KEY value with spaces`.
            if let Some((key, value)) = args.split_once(char::is_whitespace) {
                env.insert(key.to_string(), value.trim().to_string());
            }
            continue;
        }
        for pair in split_words(args) {
            if let Some((key, value)) = pair.split_once('=') {
                env.insert(key.to_string(), value.to_string());
            }
        }
    }
    env
}

/// Splits on whitespace outside double or single quotes, removing the quotes.
fn split_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (_, '\\') => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            (None, c) if c.is_whitespace() => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            (_, c) => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The exit code of a `RUN` step that stands for a failing command (`false`, `exit N`).
fn failing_run(step: &BuildStep) -> Option<i32> {
    if step.instruction != "RUN" {
        return None;
    }
    let cmd = step.args.trim();
    if cmd == "false" || cmd == "[\"false\"]" {
        return Some(1);
    }
    let code: i32 = cmd.strip_prefix("exit")?.trim().parse().ok()?;
    (code != 0).then_some(code)
}

/// What a build log holds so far: its lines and whether more will come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogProgress {
    /// Lines written.
    pub lines: usize,
    /// Whether the build is over.
    pub done: bool,
}

/// The log of one build (of a sandbox's image or a snapshot), line by line, followable.
#[derive(Debug)]
pub struct BuildLog {
    lines: Mutex<Vec<String>>,
    progress: watch::Sender<LogProgress>,
}

impl Default for BuildLog {
    fn default() -> Self {
        BuildLog {
            lines: Mutex::new(Vec::new()),
            progress: watch::Sender::new(LogProgress {
                lines: 0,
                done: false,
            }),
        }
    }
}

impl BuildLog {
    /// Appends one line (without its newline).
    pub fn push(&self, line: impl Into<String>) {
        let mut lines = lock(&self.lines);
        lines.push(line.into());
        let count = lines.len();
        self.progress.send_modify(|p| p.lines = count);
    }

    /// Marks the log complete.
    pub fn finish(&self) {
        self.progress.send_modify(|p| p.done = true);
    }

    /// Lines from index `from` on.
    pub fn lines_from(&self, from: usize) -> Vec<String> {
        let lines = lock(&self.lines);
        lines
            .get(from..)
            .map(<[String]>::to_vec)
            .unwrap_or_default()
    }

    /// Follows the log's growth.
    pub fn subscribe(&self) -> watch::Receiver<LogProgress> {
        self.progress.subscribe()
    }

    /// The whole log so far, one line per `\n`.
    pub fn text(&self) -> String {
        lock(&self.lines).iter().map(|l| format!("{l}\n")).collect()
    }
}

/// Walks `steps` into `log`, one `step_delay` per step; the error is the `errorReason` of a
/// failed build. `image_ref` names the result. Ends early (with an error) on `cancel`.
pub async fn run_build(
    log: &BuildLog,
    steps: &[BuildStep],
    image_ref: &str,
    step_delay: Duration,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let total = steps.len();
    for (index, step) in steps.iter().enumerate() {
        tokio::select! {
            _ = tokio::time::sleep(step_delay) => {}
            _ = cancel.cancelled() => return Err("the build was cancelled".to_string()),
        }
        log.push(format!(
            "Step {}/{} : {} {}",
            index + 1,
            total,
            step.instruction,
            step.args
        ));
        if let Some(code) = failing_run(step) {
            log.push(" ---> Running in emulator".to_string());
            let reason = format!(
                "The command '/bin/sh -c {}' returned a non-zero code: {code}",
                step.args
            );
            log.push(reason.clone());
            return Err(reason);
        }
        log.push(match step.instruction.as_str() {
            "FROM" => format!(
                " ---> {}: not pulled (emulated: sandboxes run on this machine's own system)",
                step.args
            ),
            "RUN" => " ---> Skipped (emulated: RUN steps are not executed)".to_string(),
            "ENV" => " ---> Set in the sandbox environment".to_string(),
            _ => " ---> Recorded (emulated)".to_string(),
        });
    }
    log.push(format!("Successfully built {image_ref}"));
    Ok(())
}

/// A stable content hash for a build's image reference (FNV-1a; only needs to be
/// deterministic).
pub fn build_ref(dockerfile: &str, hashes: &[String]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in dockerfile
        .bytes()
        .chain(hashes.iter().flat_map(|s| s.bytes().chain([0])))
    {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("daytona-{h:016x}:0.0.1")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dockerfiles_parse_with_continuations_and_comments() {
        let steps = parse_dockerfile(
            "# syntax=docker/dockerfile:1\nARG V=20\nFROM node:${V}-slim\n\nRUN apt-get update && \\\n    apt-get install -y git\n# done\nenv A=1\n",
        )
        .unwrap();
        let names: Vec<_> = steps.iter().map(|s| s.instruction.as_str()).collect();
        assert_eq!(names, ["ARG", "FROM", "RUN", "ENV"]);
        assert_eq!(steps[2].args, "apt-get update && apt-get install -y git");
        assert_eq!(steps[2].line, 5);
    }

    #[test]
    fn bad_dockerfiles_are_refused_with_the_line() {
        let err = parse_dockerfile("FORM node:20\n").unwrap_err();
        assert_eq!(
            err,
            "Dockerfile parse error on line 1: unknown instruction: FORM"
        );
        let err = parse_dockerfile("RUN echo\nFROM x\n").unwrap_err();
        assert!(err.contains("first instruction must be FROM"), "{err}");
        assert!(parse_dockerfile("# only a comment\n").is_err());
        assert!(parse_dockerfile("FROM\n").is_err());
    }

    #[test]
    fn env_instructions_become_the_environment() {
        let steps =
            parse_dockerfile("FROM x\nENV A=1 B=\"two words\"\nENV LEGACY some value\nENV A=3\n")
                .unwrap();
        let env = dockerfile_env(&steps);
        assert_eq!(env["A"], "3");
        assert_eq!(env["B"], "two words");
        assert_eq!(env["LEGACY"], "some value");
    }

    #[tokio::test]
    async fn builds_log_each_step_and_fail_on_the_marker() {
        let log = BuildLog::default();
        let steps = parse_dockerfile("FROM node:20-slim\nRUN npm ci\nCMD [\"node\"]\n").unwrap();
        run_build(
            &log,
            &steps,
            "ref",
            Duration::ZERO,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        let text = log.text();
        assert!(text.starts_with("Step 1/3 : FROM node:20-slim\n"), "{text}");
        assert!(text.contains("Step 2/3 : RUN npm ci\n"));
        assert!(text.ends_with("Successfully built ref\n"));

        let log = BuildLog::default();
        let steps = parse_dockerfile("FROM x\nRUN exit 7\nRUN never\n").unwrap();
        let err = run_build(
            &log,
            &steps,
            "ref",
            Duration::ZERO,
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(err.contains("returned a non-zero code: 7"), "{err}");
        assert!(!log.text().contains("never"));
    }
}
