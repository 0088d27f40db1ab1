//! [`Workspace`]: a sandbox seen as a set of tools a model can call.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use futures::FutureExt;
use serde_json::Value;
use workspace_core::{CancellationToken, Result, WorkspaceSandbox};

use crate::args::{
    DeleteArgs, EditFileArgs, ExecuteCommandArgs, ExecuteCommandBackgroundArgs, FileStatArgs,
    GetProcessOutputArgs, GlobArgs, GrepArgs, KillProcessArgs, ListFilesArgs, MkdirArgs,
    MultiEditArgs, PortUrlArgs, ReadFileArgs, WriteFileArgs,
};
use crate::catalog::{Needs, ToolKind, ToolSpec, build_spec, tool_name};
use crate::options::WorkspaceToolsOptions;
use crate::output::{ToolError, ToolErrorKind, ToolOutput};
use crate::policy::{PolicyDecision, ToolCall, ToolHook, ToolPolicy};
use crate::tools::{self, Ctx};
use crate::validate::parse_args;

/// The arguments of a tool call as the model sent them: a JSON value, or the JSON text that
/// chat-completions APIs deliver (`"arguments": "{\"command\": \"ls\"}"`). An empty text means
/// no arguments (`{}`), which some models send for tools without required fields.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolArgs {
    /// Already-parsed JSON.
    Json(Value),
    /// JSON text, parsed by the call.
    Text(String),
}

impl From<Value> for ToolArgs {
    fn from(v: Value) -> Self {
        ToolArgs::Json(v)
    }
}

impl From<&Value> for ToolArgs {
    fn from(v: &Value) -> Self {
        ToolArgs::Json(v.clone())
    }
}

impl From<&str> for ToolArgs {
    fn from(s: &str) -> Self {
        ToolArgs::Text(s.to_string())
    }
}

impl From<String> for ToolArgs {
    fn from(s: String) -> Self {
        ToolArgs::Text(s)
    }
}

impl From<&String> for ToolArgs {
    fn from(s: &String) -> Self {
        ToolArgs::Text(s.clone())
    }
}

impl ToolArgs {
    fn into_value(self) -> std::result::Result<Value, ToolError> {
        match self {
            ToolArgs::Json(v) => Ok(v),
            ToolArgs::Text(s) if s.trim().is_empty() => Ok(Value::Object(Default::default())),
            ToolArgs::Text(s) => serde_json::from_str(&s).map_err(|e| {
                ToolError::InvalidArguments(format!(
                    "the arguments are not valid JSON ({e}); send one JSON object"
                ))
            }),
        }
    }
}

/// A sandbox exposed as tools for LLM tool calling.
///
/// It offers only what the sandbox supports: file tools need
/// [`WorkspaceSandbox::filesystem`], the process tools (and `execute_command`'s `background`
/// parameter) need [`WorkspaceSandbox::processes`]. [`Workspace::definitions_openai`] and
/// [`Workspace::definitions_anthropic`] describe them to the model, [`Workspace::call`] runs
/// what it asks for, and [`Workspace::instructions`] is the system-prompt text.
///
/// Cloning is cheap and clones share the sandbox. The workspace never starts, stops or destroys
/// the sandbox on its own (the first command starts it lazily): its lifecycle stays with the
/// caller.
#[derive(Clone)]
pub struct Workspace {
    inner: Arc<Inner>,
}

struct Inner {
    sandbox: Arc<dyn WorkspaceSandbox>,
    options: WorkspaceToolsOptions,
    specs: Vec<ToolSpec>,
    ledger: crate::ledger::Ledger,
    policy: RwLock<Option<Arc<dyn ToolPolicy>>>,
    hooks: RwLock<Vec<Arc<dyn ToolHook>>>,
}

impl fmt::Debug for Workspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workspace")
            .field("sandbox", &self.inner.sandbox.id())
            .field("provider", &self.inner.sandbox.provider())
            .field("tools", &self.tool_names())
            .field("options", &self.inner.options)
            .field("policy", &read(&self.inner.policy).is_some())
            .field("hooks", &read(&self.inner.hooks).len())
            .finish()
    }
}

impl Workspace {
    /// The tools of `sandbox` with the default options.
    pub fn new(sandbox: Arc<dyn WorkspaceSandbox>) -> Self {
        Self::build(sandbox, WorkspaceToolsOptions::default())
    }

    /// The tools of `sandbox` with `options`, once they pass
    /// [`WorkspaceToolsOptions::validate`]; an invalid value is `InvalidArgument` naming it.
    pub fn with_options(
        sandbox: Arc<dyn WorkspaceSandbox>,
        options: WorkspaceToolsOptions,
    ) -> Result<Self> {
        options.validate()?;
        Ok(Self::build(sandbox, options))
    }

    fn build(sandbox: Arc<dyn WorkspaceSandbox>, options: WorkspaceToolsOptions) -> Self {
        let has_fs = sandbox.filesystem().is_some();
        let has_processes = sandbox.processes().is_some();
        let has_ports = sandbox.capabilities().ports;
        let offered = |k: ToolKind| {
            options.is_allowed(k)
                && match k.needs() {
                    Needs::Nothing => true,
                    Needs::Filesystem => has_fs,
                    Needs::Processes => has_processes,
                    Needs::Ports => has_ports,
                }
        };
        // `background` is only worth offering when the model can also read and stop what it
        // starts.
        let background = offered(ToolKind::GetProcessOutput) && offered(ToolKind::KillProcess);
        let specs = ToolKind::ALL
            .into_iter()
            .filter(|k| offered(*k))
            .map(|k| build_spec(&options, k, background))
            .collect();
        Workspace {
            inner: Arc::new(Inner {
                sandbox,
                options,
                specs,
                ledger: Default::default(),
                policy: RwLock::new(None),
                hooks: RwLock::new(Vec::new()),
            }),
        }
    }

    /// Ask `policy` before every tool call from now on (replacing any earlier one), on this
    /// workspace and its clones. See [`crate::policy`].
    pub fn set_policy(&self, policy: Arc<dyn ToolPolicy>) {
        *write(&self.inner.policy) = Some(policy);
    }

    /// Stop asking a policy: every call runs.
    pub fn clear_policy(&self) {
        *write(&self.inner.policy) = None;
    }

    /// Run `hook` on every answer from now on, after the hooks added before it.
    pub fn add_hook(&self, hook: Arc<dyn ToolHook>) {
        write(&self.inner.hooks).push(hook);
    }

    /// The sandbox behind the tools.
    pub fn sandbox(&self) -> &Arc<dyn WorkspaceSandbox> {
        &self.inner.sandbox
    }

    /// The options in force.
    pub fn options(&self) -> &WorkspaceToolsOptions {
        &self.inner.options
    }

    /// The offered tools, in a stable order.
    pub fn tools(&self) -> &[ToolSpec] {
        &self.inner.specs
    }

    /// The offered tool called `name`.
    pub fn tool(&self, name: &str) -> Option<&ToolSpec> {
        self.inner.specs.iter().find(|s| s.name == name)
    }

    /// The names of the offered tools.
    pub fn tool_names(&self) -> Vec<&str> {
        self.inner.specs.iter().map(|s| s.name.as_str()).collect()
    }

    /// The tools for the OpenAI chat-completions `tools` field:
    /// `[{"type":"function","function":{"name","description","parameters"}}, …]`.
    pub fn definitions_openai(&self) -> Vec<Value> {
        self.inner.specs.iter().map(ToolSpec::openai).collect()
    }

    /// The tools for the Anthropic Messages `tools` field:
    /// `[{"name","description","input_schema"}, …]`.
    pub fn definitions_anthropic(&self) -> Vec<Value> {
        self.inner.specs.iter().map(ToolSpec::anthropic).collect()
    }

    /// The system-prompt text: the sandbox's own
    /// [`get_instructions`](WorkspaceSandbox::get_instructions), the offered tools with one line
    /// each, and how output is shaped.
    pub fn instructions(&self) -> String {
        let mut s = self.inner.sandbox.get_instructions();
        s.push_str("\n\nTools for working in this sandbox:\n");
        for spec in &self.inner.specs {
            s.push_str(&format!("- `{}`: {}\n", spec.name, spec.kind.summary()));
        }
        if self
            .tool(&tool_name(&self.inner.options, ToolKind::ReadFile))
            .is_some()
        {
            s.push_str(
                "Relative paths in file tools and commands both start from the working \
                 directory, so both see the same files.\n",
            );
        }
        if let Some(ports) = self.tool(&tool_name(&self.inner.options, ToolKind::PortUrl)) {
            s.push_str(&format!(
                "Servers you start are reachable inside the sandbox at `http://localhost:PORT`; \
                 to give the user an address for one, call `{}` with its port.\n",
                ports.name
            ));
        }
        s.push_str(&format!(
            "Command output is cleaned of terminal escape codes and each tool answer is limited \
             to {} bytes: longer output is cut in the middle, and the cut is marked with the \
             number of bytes and lines left out.",
            self.inner.options.output_budget
        ));
        s
    }

    /// Run the tool `name` with `args` (a [`serde_json::Value`] or the JSON text the model
    /// sent).
    ///
    /// This never fails and never panics: an unknown tool, bad arguments or a sandbox error is
    /// an output with `is_error: true` whose text says what went wrong and what to do, ready to
    /// hand back to the model. (A panic inside a provider is caught and reported the same way.)
    /// Dropping the future abandons the call; providers kill a command whose call is dropped.
    pub async fn call(&self, name: &str, args: impl Into<ToolArgs>) -> ToolOutput {
        self.dispatch(name, args.into(), None).await
    }

    /// [`Workspace::call`], with a token that kills a running `execute_command` (exit code 137)
    /// and ends a `get_process_output` wait early, e.g. when the user aborts the agent's turn.
    pub async fn call_with_cancel(
        &self,
        name: &str,
        args: impl Into<ToolArgs>,
        cancel: CancellationToken,
    ) -> ToolOutput {
        self.dispatch(name, args.into(), Some(cancel)).await
    }

    async fn dispatch(
        &self,
        name: &str,
        args: ToolArgs,
        cancel: Option<CancellationToken>,
    ) -> ToolOutput {
        let Some(spec) = self.tool(name) else {
            return self.unknown_tool(name);
        };
        let value = match args.into_value() {
            Ok(v) => v,
            Err(e) => return e.into_output(name, spec.kind),
        };
        let call = ToolCall {
            tool: name.to_string(),
            kind: spec.kind,
            arguments: value,
        };
        let limit = self.inner.options.policy_timeout;
        let policy = read(&self.inner.policy).clone();
        let verdict = match policy {
            None => Ok(call.arguments.clone()),
            Some(policy) => match crate::policy::decide(policy.as_ref(), &call, limit).await {
                PolicyDecision::Allow => Ok(call.arguments.clone()),
                PolicyDecision::Modify(v) => Ok(v),
                PolicyDecision::Deny { reason } => Err(reason),
            },
        };
        let out = match verdict {
            Ok(value) => self.run(spec, name, value, cancel).await,
            Err(reason) => crate::policy::denied(&call, &reason),
        };
        let hooks = read(&self.inner.hooks).clone();
        let mut out = out;
        for hook in hooks {
            out = crate::policy::run_hook(hook.as_ref(), &call, out, limit).await;
        }
        out
    }

    async fn run(
        &self,
        spec: &ToolSpec,
        name: &str,
        value: Value,
        cancel: Option<CancellationToken>,
    ) -> ToolOutput {
        let ctx = Ctx {
            sandbox: self.inner.sandbox.as_ref(),
            options: &self.inner.options,
            tool: name,
            cancel,
            ledger: &self.inner.ledger,
        };
        let run = async {
            let schema = &spec.parameters;
            match spec.kind {
                ToolKind::ExecuteCommand if self.offers_background() => {
                    let a: ExecuteCommandBackgroundArgs = parse_args(schema, value)?;
                    tools::command::execute(&ctx, a).await
                }
                ToolKind::ExecuteCommand => {
                    let a: ExecuteCommandArgs = parse_args(schema, value)?;
                    tools::command::execute(&ctx, a.into()).await
                }
                ToolKind::GetProcessOutput => {
                    let a: GetProcessOutputArgs = parse_args(schema, value)?;
                    tools::process::get_output(&ctx, a).await
                }
                ToolKind::KillProcess => {
                    let a: KillProcessArgs = parse_args(schema, value)?;
                    tools::process::kill(&ctx, a).await
                }
                ToolKind::ReadFile => {
                    let a: ReadFileArgs = parse_args(schema, value)?;
                    tools::files::read_file(&ctx, a).await
                }
                ToolKind::WriteFile => {
                    let a: WriteFileArgs = parse_args(schema, value)?;
                    tools::files::write_file(&ctx, a).await
                }
                ToolKind::EditFile => {
                    let a: EditFileArgs = parse_args(schema, value)?;
                    tools::files::edit_file(&ctx, a).await
                }
                ToolKind::MultiEdit => {
                    let a: MultiEditArgs = parse_args(schema, value)?;
                    tools::files::multi_edit(&ctx, a).await
                }
                ToolKind::ListFiles => {
                    let a: ListFilesArgs = parse_args(schema, value)?;
                    tools::listing::list_files(&ctx, a).await
                }
                ToolKind::Delete => {
                    let a: DeleteArgs = parse_args(schema, value)?;
                    tools::files::delete(&ctx, a).await
                }
                ToolKind::Mkdir => {
                    let a: MkdirArgs = parse_args(schema, value)?;
                    tools::files::mkdir(&ctx, a).await
                }
                ToolKind::FileStat => {
                    let a: FileStatArgs = parse_args(schema, value)?;
                    tools::files::file_stat(&ctx, a).await
                }
                ToolKind::Grep => {
                    let a: GrepArgs = parse_args(schema, value)?;
                    tools::search::grep(&ctx, a).await
                }
                ToolKind::Glob => {
                    let a: GlobArgs = parse_args(schema, value)?;
                    tools::search::glob(&ctx, a).await
                }
                ToolKind::PortUrl => {
                    let a: PortUrlArgs = parse_args(schema, value)?;
                    tools::process::port_url(&ctx, a).await
                }
            }
        };
        match AssertUnwindSafe(run).catch_unwind().await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => e.into_output(name, spec.kind),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".into());
                ToolOutput::failed(
                    name,
                    ToolErrorKind::Sandbox,
                    format!("error: `{name}` failed: the sandbox provider panicked ({what})"),
                )
            }
        }
    }

    fn offers_background(&self) -> bool {
        self.tool(&tool_name(&self.inner.options, ToolKind::GetProcessOutput))
            .is_some()
            && self
                .tool(&tool_name(&self.inner.options, ToolKind::KillProcess))
                .is_some()
    }

    fn unknown_tool(&self, name: &str) -> ToolOutput {
        let names = self
            .tool_names()
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut text = format!("error: there is no tool named `{name}`. The tools are: {names}.");
        let prefix = &self.inner.options.tool_prefix;
        let base = name.strip_prefix(prefix.as_str()).unwrap_or(name);
        if let Some(kind) = ToolKind::from_base_name(base) {
            let offered = tool_name(&self.inner.options, kind);
            if self.tool(&offered).is_some() {
                text.push_str(&format!(" Did you mean `{offered}`?"));
            } else {
                text.push_str(&format!(
                    " `{}` is not available with this sandbox.",
                    kind.base_name()
                ));
            }
        }
        ToolOutput::failed(name, ToolErrorKind::UnknownTool, text)
    }
}

/// The policy and hooks are set rarely and read on every call; a poisoned lock (a panic while
/// one was being set) still holds a usable value.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
