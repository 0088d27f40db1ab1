//! A complete tool-calling agent loop over a workspace sandbox.
//!
//! The model sees the sandbox's tools (`Workspace::definitions_openai`) and its instructions
//! (`Workspace::instructions`); every tool call it makes runs through `Workspace::call`, and the
//! answer goes back as a `role: tool` message, until the model answers without calling a tool.
//!
//! ```sh
//! cargo run --example agent_loop                          # offline: a scripted model
//! OPENAI_API_KEY=… cargo run --example agent_loop         # any OpenAI-compatible endpoint
//! cargo run --example agent_loop -- --provider daytona    # in a Daytona sandbox
//! ```
//!
//! With `OPENAI_API_KEY` set it talks to `OPENAI_BASE_URL` (default
//! `https://api.openai.com/v1`) with `OPENAI_MODEL` (default `gpt-4o-mini`). Without it, a
//! scripted model makes real tool calls: it writes a script with a bug, runs it, reads the
//! error, fixes the bug with `edit_file`, runs it again and reads the result.
//!
//! Flags: `--provider local|daytona` (default `local`), `--scripted` (ignore `OPENAI_API_KEY`),
//! `--max-turns N` (default 20), `--emulator` (with `daytona`: use the emulator even when
//! `DAYTONA_API_KEY` is set).
//!
//! `--provider daytona` runs the tools in a Daytona sandbox: on Daytona Cloud when
//! `DAYTONA_API_KEY` is set (`DAYTONA_API_URL` and `DAYTONA_TARGET` are honoured), otherwise on a
//! Daytona emulator this process starts, so it also works offline. The same `Workspace` code
//! drives both providers; only `make_sandbox` differs.
//!
//! The sandbox is destroyed (and the emulator shut down) on every exit path, Ctrl-C included.

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use workspace_sandbox::{LocalSandbox, WorkspaceSandbox};
use workspace_tools::Workspace;

#[path = "support/daytona_target.rs"]
mod daytona_target;

use daytona_target::DaytonaTarget;

type BoxError = Box<dyn Error + Send + Sync>;

/// What the agent is asked to do.
const TASK: &str = "In the working directory, create `numbers.txt` holding the numbers 3, 5, 8 \
     and 13, one per line, and a POSIX shell script `stats.sh` that adds up the numbers in \
     `numbers.txt`, prints the total and writes it to `result.txt`. Run the script, make sure it \
     works, and tell me the total.";

/// Longest a single model request may take.
const MODEL_TIMEOUT: Duration = Duration::from_secs(120);

/// Tool output is already trimmed for the model; for the console, show only the start of it.
const ECHO_LINES: usize = 8;

struct Cli {
    provider: String,
    scripted: bool,
    max_turns: usize,
    emulator: bool,
}

fn parse_cli() -> Result<Cli, String> {
    let mut cli = Cli {
        provider: "local".into(),
        scripted: false,
        max_turns: 20,
        emulator: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--provider" => cli.provider = args.next().ok_or("--provider needs a value")?,
            "--scripted" => cli.scripted = true,
            "--emulator" => cli.emulator = true,
            "--max-turns" => {
                let n = args.next().ok_or("--max-turns needs a value")?;
                cli.max_turns = n
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("--max-turns must be a positive number, got {n:?}"))?;
            }
            "-h" | "--help" => {
                return Err(
                    "usage: agent_loop [--provider local|daytona] [--scripted] [--max-turns N] \
                     [--emulator]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(cli)
}

/// A sandbox, and the Daytona target to shut down after it (for `daytona`).
struct Provided {
    sandbox: Arc<dyn WorkspaceSandbox>,
    daytona: Option<DaytonaTarget>,
}

/// The one place a provider is chosen: add a branch here for a new one.
async fn make_sandbox(cli: &Cli) -> Result<Provided, String> {
    match cli.provider.as_str() {
        "local" => {
            let sandbox = LocalSandbox::builder()
                .build()
                .map_err(|e| format!("could not create a local sandbox: {e}"))?;
            Ok(Provided {
                sandbox: Arc::new(sandbox),
                daytona: None,
            })
        }
        "daytona" => {
            let target = DaytonaTarget::from_env(cli.emulator)
                .await
                .map_err(|e| format!("could not reach Daytona: {e}"))?;
            println!("daytona: {}", target.describe());
            // Nothing is created yet: the first tool call starts the sandbox.
            match target.builder().label("example", "agent_loop").build() {
                Ok(sandbox) => Ok(Provided {
                    sandbox: Arc::new(sandbox),
                    daytona: Some(target),
                }),
                Err(e) => {
                    target.shutdown().await;
                    Err(format!("could not configure a Daytona sandbox: {e}"))
                }
            }
        }
        other => Err(format!(
            "unknown provider {other:?}: expected `local` or `daytona`"
        )),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let made = tokio::select! {
        made = make_sandbox(&cli) => made,
        _ = tokio::signal::ctrl_c() => Err("interrupted by Ctrl-C".into()),
    };
    let Provided { sandbox, daytona } = match made {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("error: {msg}");
            return ExitCode::from(2);
        }
    };

    let outcome = tokio::select! {
        r = run(&cli, sandbox.clone()) => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted by Ctrl-C".into()),
    };
    // Whatever happened above, the sandbox goes (dropping `run` already killed its commands).
    match sandbox.destroy().await {
        Ok(()) => println!("\nsandbox {} destroyed", sandbox.id()),
        Err(e) => eprintln!("warning: destroying sandbox {} failed: {e}", sandbox.id()),
    }
    if let Some(target) = daytona {
        let emulated = target.is_emulator();
        target.shutdown().await;
        if emulated {
            println!("emulator shut down");
        }
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli, sandbox: Arc<dyn WorkspaceSandbox>) -> Result<(), BoxError> {
    let workspace = Workspace::new(sandbox);
    let api_key = std::env::var("OPENAI_API_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty());
    let answer = match api_key {
        Some(key) if !cli.scripted => {
            let mut model = OpenAiModel::from_env(key)?;
            agent_loop(&mut model, &workspace, TASK, cli.max_turns).await?
        }
        _ => {
            let mut model = ScriptedModel::default();
            agent_loop(&mut model, &workspace, TASK, cli.max_turns).await?
        }
    };
    println!("\nfinal answer: {answer}");
    Ok(())
}

/// A chat model: given the conversation so far (OpenAI chat-completions messages) and the tool
/// definitions, it answers with one assistant message, which may call tools.
trait Model {
    /// Shown in the log.
    fn describe(&self) -> String;
    /// The next assistant message: `{"role":"assistant","content":…,"tool_calls":[…]}`.
    async fn complete(&mut self, messages: &[Value], tools: &[Value]) -> Result<Value, BoxError>;
}

/// Run `task` to a final answer: ask the model, run the tools it calls, feed the answers back,
/// until it answers without a tool call or `max_turns` model turns have passed.
async fn agent_loop<M: Model>(
    model: &mut M,
    workspace: &Workspace,
    task: &str,
    max_turns: usize,
) -> Result<String, BoxError> {
    let tools = workspace.definitions_openai();
    let system = format!(
        "You are a careful software agent working in a sandbox. Use the tools to do the task; \
         check your work by running it. When you are done, answer without calling a tool.\n\n{}",
        workspace.instructions()
    );
    println!("model: {}", model.describe());
    println!(
        "sandbox: {} ({}), tools: {}",
        workspace.sandbox().id(),
        workspace.sandbox().provider(),
        workspace.tool_names().join(", ")
    );
    println!("task: {task}");
    let mut messages = vec![
        json!({"role": "system", "content": system}),
        json!({"role": "user", "content": task}),
    ];
    for turn in 1..=max_turns {
        let reply = model.complete(&messages, &tools).await?;
        println!("\n── turn {turn}");
        if let Some(text) = reply["content"].as_str().filter(|t| !t.trim().is_empty()) {
            println!("model: {}", text.trim());
        }
        let calls = reply["tool_calls"].as_array().cloned().unwrap_or_default();
        messages.push(reply.clone());
        if calls.is_empty() {
            return Ok(reply["content"].as_str().unwrap_or("").trim().to_string());
        }
        for call in calls {
            let id = call["id"].as_str().unwrap_or_default().to_string();
            let name = call["function"]["name"].as_str().unwrap_or_default();
            // Chat completions deliver the arguments as JSON text; `call` parses it and answers
            // with an error text the model can act on if it is broken.
            let args = match &call["function"]["arguments"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            println!("  → {name} {args}");
            let out = workspace.call(name, args).await;
            let marker = if out.is_error { "✗" } else { "←" };
            for (i, line) in out.text.lines().enumerate() {
                if i == ECHO_LINES {
                    let rest = out.text.lines().count() - ECHO_LINES;
                    let s = if rest == 1 { "" } else { "s" };
                    println!("    … ({rest} more line{s} for the model)");
                    break;
                }
                let lead = if i == 0 { marker } else { " " };
                println!("  {lead} {line}");
            }
            messages.push(out.openai_message(&id));
        }
    }
    Err(format!("no final answer after {max_turns} turns").into())
}

/// Any OpenAI-compatible chat-completions endpoint.
struct OpenAiModel {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    model: String,
}

// Written by hand so the key can never reach a log.
impl std::fmt::Debug for OpenAiModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiModel")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

impl OpenAiModel {
    fn from_env(api_key: String) -> Result<Self, BoxError> {
        let base_url = std::env::var("OPENAI_BASE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| "https://api.openai.com/v1".into());
        let model = std::env::var("OPENAI_MODEL")
            .ok()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| "gpt-4o-mini".into());
        let http = reqwest::Client::builder().timeout(MODEL_TIMEOUT).build()?;
        Ok(OpenAiModel {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            model,
        })
    }
}

impl Model for OpenAiModel {
    fn describe(&self) -> String {
        format!("{} at {}", self.model, self.base_url)
    }

    async fn complete(&mut self, messages: &[Value], tools: &[Value]) -> Result<Value, BoxError> {
        let body = json!({
            "model": self.model,
            "messages": messages,
            "tools": tools,
            "tool_choice": "auto",
        });
        let response = self
            .http
            .post(format!("{}/chat/completions", self.base_url))
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            let cut: String = text.chars().take(800).collect();
            return Err(format!("the model endpoint answered HTTP {status}: {cut}").into());
        }
        let parsed: Value = serde_json::from_str(&text)
            .map_err(|e| format!("the model endpoint sent invalid JSON ({e})"))?;
        let message = &parsed["choices"][0]["message"];
        if !message.is_object() {
            let cut: String = text.chars().take(800).collect();
            return Err(format!("no choices[0].message in the answer: {cut}").into());
        }
        // Keep only what goes back into the conversation.
        let mut reply = json!({"role": "assistant", "content": message["content"].clone()});
        if let Some(calls) = message["tool_calls"].as_array().filter(|c| !c.is_empty()) {
            reply["tool_calls"] = Value::Array(calls.clone());
        }
        Ok(reply)
    }
}

/// The buggy first version the scripted model writes: `$totl` is unset, and `set -u` makes
/// that an error.
const BUGGY_SCRIPT: &str = "#!/bin/sh
# Add up the numbers in numbers.txt; print the total and write it to result.txt.
set -eu
total=0
while read -r n; do
  total=$((total + n))
done < numbers.txt
echo \"total: $totl\"
echo \"$total\" > result.txt
";

/// Where the scripted model is in its plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Step {
    #[default]
    Write,
    FirstRun,
    Diagnose,
    Fix {
        variable: String,
    },
    SecondRun,
    ReadResult,
    Answer,
    Done,
}

/// A stand-in for a real model that needs no network: it follows a plan, but reads the tool
/// answers like a model would, diagnosing the failure from the error text and finding the
/// line to fix in what `read_file` showed.
#[derive(Debug, Default)]
struct ScriptedModel {
    step: Step,
    next_call: u32,
    /// The variable it fixed, for the final answer.
    fixed: Option<String>,
}

impl ScriptedModel {
    fn call(&mut self, name: &str, args: Value) -> Value {
        self.next_call += 1;
        json!({
            "id": format!("call_{}", self.next_call),
            "type": "function",
            "function": {"name": name, "arguments": args.to_string()},
        })
    }

    fn say(content: &str, calls: Vec<Value>) -> Value {
        let mut m = json!({"role": "assistant", "content": content});
        if !calls.is_empty() {
            m["tool_calls"] = Value::Array(calls);
        }
        m
    }

    fn give_up(&mut self, why: &str, tool_text: &str) -> Value {
        self.step = Step::Done;
        Self::say(
            &format!("I could not finish: {why}. The last tool said:\n{tool_text}"),
            vec![],
        )
    }
}

/// The answers to the previous turn's tool calls, in order.
fn tool_results(messages: &[Value]) -> Vec<&str> {
    let start = messages
        .iter()
        .rposition(|m| m["role"] == "assistant")
        .map_or(messages.len(), |i| i + 1);
    messages[start..]
        .iter()
        .filter(|m| m["role"] == "tool")
        .filter_map(|m| m["content"].as_str())
        .collect()
}

/// `exit code: N` from the first line of an `execute_command` answer.
fn exit_code(text: &str) -> Option<i32> {
    text.lines()
        .next()?
        .strip_prefix("exit code: ")?
        .trim()
        .parse()
        .ok()
}

/// The variable a shell complained about: `x: parameter not set` (dash) or
/// `x: unbound variable` (bash).
fn unset_variable(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let before = line
            .strip_suffix(": parameter not set")
            .or_else(|| line.strip_suffix(": unbound variable"))?;
        let name = before.rsplit(": ").next()?.trim();
        let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        ok.then(|| name.to_string())
    })
}

impl Model for ScriptedModel {
    fn describe(&self) -> String {
        "scripted (offline; set OPENAI_API_KEY to use a real model)".into()
    }

    async fn complete(&mut self, messages: &[Value], _tools: &[Value]) -> Result<Value, BoxError> {
        let results = tool_results(messages);
        let last = results.last().copied().unwrap_or("");
        if let Some(err) = results.iter().find(|t| t.starts_with("error:")) {
            return Ok(self.give_up("a tool call failed", err));
        }
        let reply = match self.step.clone() {
            Step::Write => {
                self.step = Step::FirstRun;
                let calls = vec![
                    self.call(
                        "write_file",
                        json!({"path": "numbers.txt", "content": "3\n5\n8\n13\n"}),
                    ),
                    self.call(
                        "write_file",
                        json!({"path": "stats.sh", "content": BUGGY_SCRIPT}),
                    ),
                ];
                Self::say("I'll create the input file and the script.", calls)
            }
            Step::FirstRun => {
                self.step = Step::Diagnose;
                let calls = vec![self.call("execute_command", json!({"command": "sh stats.sh"}))];
                Self::say("Now let me run it.", calls)
            }
            Step::Diagnose => match (exit_code(last), unset_variable(last)) {
                (Some(0), _) => {
                    self.step = Step::Answer;
                    let calls = vec![self.call("read_file", json!({"path": "result.txt"}))];
                    Self::say("It worked first time; let me check the result.", calls)
                }
                (Some(_), Some(variable)) => {
                    self.step = Step::Fix {
                        variable: variable.clone(),
                    };
                    let calls = vec![self.call("read_file", json!({"path": "stats.sh"}))];
                    Self::say(
                        &format!(
                            "It failed: `{variable}` is not set. That looks like a typo; \
                             let me look at the script."
                        ),
                        calls,
                    )
                }
                _ => return Ok(self.give_up("the script failed in a way I did not expect", last)),
            },
            Step::Fix { variable } => {
                // Find the numbered line that uses the variable and drop the `     7\t` prefix.
                let needle = format!("${variable}");
                let Some(line) = last
                    .lines()
                    .filter_map(|l| l.split_once('\t').map(|(_, code)| code))
                    .find(|code| code.contains(&needle))
                else {
                    return Ok(self.give_up(&format!("no line of stats.sh uses {needle}"), last));
                };
                let fixed_line = line.replace(&needle, "$total");
                self.fixed = Some(variable);
                self.step = Step::SecondRun;
                let calls = vec![self.call(
                    "edit_file",
                    json!({"path": "stats.sh", "old_string": line, "new_string": fixed_line}),
                )];
                Self::say(&format!("Fixing `{line}`."), calls)
            }
            Step::SecondRun => {
                self.step = Step::ReadResult;
                let calls = vec![self.call("execute_command", json!({"command": "sh stats.sh"}))];
                Self::say("Running it again.", calls)
            }
            Step::ReadResult => {
                if exit_code(last) != Some(0) {
                    return Ok(self.give_up("the script still fails", last));
                }
                self.step = Step::Answer;
                let calls = vec![self.call("read_file", json!({"path": "result.txt"}))];
                Self::say("It passes now. Let me read the output file.", calls)
            }
            Step::Answer => {
                self.step = Step::Done;
                // `read_file` shows `     1\t29`.
                let total = last
                    .lines()
                    .next()
                    .and_then(|l| l.split_once('\t'))
                    .map(|(_, v)| v.trim().to_string())
                    .unwrap_or_default();
                let fix = match &self.fixed {
                    Some(v) => format!(
                        " The first run failed because `${v}` was a typo for `$total`; I fixed \
                         it with edit_file and the second run exited 0."
                    ),
                    None => String::new(),
                };
                Self::say(
                    &format!(
                        "Done: stats.sh adds up numbers.txt and writes the total to result.txt. \
                         The total is {total}.{fix}"
                    ),
                    vec![],
                )
            }
            Step::Done => Self::say("I have already answered.", vec![]),
        };
        Ok(reply)
    }
}
