//! The workspace tools as rig tools: each one implements `rig_core::tool::Tool` (rig-core
//! 0.44), so a rig agent runtime can register them like any hand-written tool.
//!
//! ```sh
//! cargo run --example rig_adapter                      # prints the tools a rig agent gets
//! OPENAI_API_KEY=… cargo run --example rig_adapter     # runs a short task with them
//! ```
//!
//! With `OPENAI_API_KEY` it drives rig's OpenAI chat-completions model (`OPENAI_BASE_URL` and
//! `OPENAI_MODEL`, default `gpt-4o-mini`, are honoured) through a small agent loop that
//! dispatches every tool call through the rig tools below. rig-core is built without its
//! `reqwest` feature (which would add reqwest 0.13 and a C crypto build), so the example hands
//! rig a transport over the workspace's own reqwest 0.12 client.
//!
//! The sandbox is destroyed on every exit path, Ctrl-C included.

use std::error::Error;
use std::marker::PhantomData;
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use rig_core::completion::{CompletionRequest, ToolDefinition};
use rig_core::http_client::{self, HttpClientExt, LazyBody, MultipartForm, Request, Response};
use rig_core::message::Message;
use rig_core::providers::openai::OpenAIConfig;
use rig_core::tool::{
    ErasedTool, Tool, ToolContext, ToolExecutionError, ToolOutput as RigToolOutput, tool_definition,
};
use serde_json::Value;
use workspace_sandbox::{LocalSandbox, WorkspaceSandbox};
use workspace_tools::{PolicyDecision, ToolCall, ToolErrorKind, ToolPolicy, Workspace};

type BoxError = Box<dyn Error + Send + Sync>;

const TASK: &str = "Find out which operating system and shell this sandbox runs, write a short \
     report of it to `report.md`, and show me the report.";
const MAX_TURNS: usize = 12;

/// Names a workspace tool at the type level: rig's `Tool::NAME` is a constant, so each tool is
/// its own type. (The workspace must then use no tool-name prefix.)
trait WorkspaceToolName: Send + Sync + 'static {
    const NAME: &'static str;
}

macro_rules! tool_names {
    ($($ty:ident => $name:literal),* $(,)?) => {
        $(
            #[doc = concat!("The `", $name, "` tool.")]
            struct $ty;
            impl WorkspaceToolName for $ty {
                const NAME: &'static str = $name;
            }
        )*
    };
}

tool_names! {
    ExecuteCommand => "execute_command",
    GetProcessOutput => "get_process_output",
    KillProcess => "kill_process",
    ReadFile => "read_file",
    WriteFile => "write_file",
    EditFile => "edit_file",
    MultiEdit => "multi_edit",
    ListFiles => "list_files",
    Delete => "delete",
    Mkdir => "mkdir",
    FileStat => "file_stat",
    Grep => "grep",
    Glob => "glob",
    PortUrl => "port_url",
}

/// One workspace tool as a rig [`Tool`]. Description and schema come from the workspace, so
/// they match what it accepts; calls go through [`Workspace::call`].
struct RigWorkspaceTool<N> {
    workspace: Workspace,
    description: String,
    parameters: Value,
    _name: PhantomData<fn() -> N>,
}

impl<N: WorkspaceToolName> RigWorkspaceTool<N> {
    /// The tool, if the workspace offers it (the sandbox may lack files or processes).
    fn new(workspace: &Workspace) -> Option<Self> {
        let spec = workspace.tool(N::NAME)?;
        Some(RigWorkspaceTool {
            description: spec.description.clone(),
            parameters: spec.parameters.clone(),
            workspace: workspace.clone(),
            _name: PhantomData,
        })
    }
}

impl<N: WorkspaceToolName> Tool for RigWorkspaceTool<N> {
    const NAME: &'static str = N::NAME;
    type Args = Value;
    type Output = RigToolOutput;
    type Error = ToolExecutionError;

    fn description(&self) -> String {
        self.description.clone()
    }

    fn parameters(&self) -> Value {
        self.parameters.clone()
    }

    async fn call(
        &self,
        _context: &mut ToolContext,
        args: Value,
    ) -> Result<RigToolOutput, ToolExecutionError> {
        let out = self.workspace.call(N::NAME, args).await;
        if !out.is_error {
            return Ok(RigToolOutput::text(out.text));
        }
        // rig's explicit constructors show their message to the model, which is what our
        // error texts are written for.
        Err(match out.error {
            Some(ToolErrorKind::InvalidArguments) => ToolExecutionError::invalid_args(out.text),
            Some(ToolErrorKind::UnknownTool) => ToolExecutionError::not_found(out.text),
            _ => ToolExecutionError::other(out.text),
        })
    }
}

/// Every tool the workspace offers, type-erased the way rig dispatches them.
fn rig_tools(workspace: &Workspace) -> Vec<Box<dyn ErasedTool>> {
    fn add<N: WorkspaceToolName>(ws: &Workspace, tools: &mut Vec<Box<dyn ErasedTool>>) {
        if let Some(tool) = RigWorkspaceTool::<N>::new(ws) {
            tools.push(Box::new(tool));
        }
    }
    let mut tools = Vec::new();
    add::<ExecuteCommand>(workspace, &mut tools);
    add::<GetProcessOutput>(workspace, &mut tools);
    add::<KillProcess>(workspace, &mut tools);
    add::<ReadFile>(workspace, &mut tools);
    add::<WriteFile>(workspace, &mut tools);
    add::<EditFile>(workspace, &mut tools);
    add::<MultiEdit>(workspace, &mut tools);
    add::<ListFiles>(workspace, &mut tools);
    add::<Delete>(workspace, &mut tools);
    add::<Mkdir>(workspace, &mut tools);
    add::<FileStat>(workspace, &mut tools);
    add::<Grep>(workspace, &mut tools);
    add::<Glob>(workspace, &mut tools);
    add::<PortUrl>(workspace, &mut tools);
    tools
}

/// An approval policy: no recursive deletes from the model.
struct NoRecursiveDelete;

#[async_trait::async_trait]
impl ToolPolicy for NoRecursiveDelete {
    async fn check(&self, call: &ToolCall) -> PolicyDecision {
        let line = call.arguments["command"].as_str().unwrap_or_default();
        if line.contains("rm -rf") || line.contains("rm -r ") {
            return PolicyDecision::deny("recursive deletes need a person; ask the user");
        }
        PolicyDecision::Allow
    }
}

/// The definitions rig sends to the model, from the erased tools.
fn definitions(tools: &[Box<dyn ErasedTool>]) -> Result<Vec<ToolDefinition>, BoxError> {
    tools
        .iter()
        .map(|t| {
            let name = rig_core::message::ToolName::new(t.name())?;
            Ok(ToolDefinition::new(name, t.description(), t.parameters()))
        })
        .collect()
}

#[tokio::main]
async fn main() -> ExitCode {
    let sandbox: Arc<dyn WorkspaceSandbox> = match LocalSandbox::builder().build() {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("error: could not create a local sandbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = tokio::select! {
        r = run(sandbox.clone()) => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted by Ctrl-C".into()),
    };
    if let Err(e) = sandbox.destroy().await {
        eprintln!("warning: destroying sandbox {} failed: {e}", sandbox.id());
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(sandbox: Arc<dyn WorkspaceSandbox>) -> Result<(), BoxError> {
    let workspace = Workspace::new(sandbox);
    let tools = rig_tools(&workspace);
    let has_key = std::env::var("OPENAI_API_KEY").is_ok_and(|k| !k.trim().is_empty());
    if !has_key {
        println!("Tools a rig agent gets for this sandbox (rig-core 0.44 `Tool` implementations):");
        for tool in &tools {
            let required = tool.parameters()["required"].clone();
            println!("- {}: required {required}", tool.name());
        }
        // The typed path: rig's own definition of one tool, exactly as a runtime builds it.
        if let Some(exec) = RigWorkspaceTool::<ExecuteCommand>::new(&workspace) {
            let def = tool_definition(&exec);
            println!(
                "\nrig's definition of `{}`:\n{}",
                def.name,
                serde_json::to_string_pretty(&def)?
            );
        }
        // And one call through rig's erased dispatch, as a runtime would make it.
        if let Some(exec) = tools.iter().find(|t| t.name() == "execute_command") {
            let result = exec
                .execute(r#"{"command": "uname -s"}"#.into(), &mut ToolContext::new())
                .await;
            println!("\nexecute_command via rig: {}", result.output().render());
        }
        // Content search through the same dispatch: the sandbox searches, the model reads hits.
        workspace
            .call(
                "write_file",
                serde_json::json!({"path": "src/app.py", "content": "x = 1\n# TODO: handle errors\n"}),
            )
            .await;
        if let Some(grep) = tools.iter().find(|t| t.name() == "grep") {
            let result = grep
                .execute(
                    r#"{"pattern": "TODO", "output_mode": "content"}"#.into(),
                    &mut ToolContext::new(),
                )
                .await;
            println!("\ngrep via rig: {}", result.output().render());
        }
        // The application's approval policy applies to rig's calls too: they go through
        // `Workspace::call`.
        workspace.set_policy(Arc::new(NoRecursiveDelete));
        if let Some(exec) = tools.iter().find(|t| t.name() == "execute_command") {
            let result = exec
                .execute(
                    r#"{"command": "rm -rf src"}"#.into(),
                    &mut ToolContext::new(),
                )
                .await;
            println!(
                "\nrm -rf via rig, under a policy: {}",
                result.output().render()
            );
            if !result.is_error() {
                return Err("the policy should have denied `rm -rf`".into());
            }
        }
        workspace.clear_policy();
        println!(
            "\nSet OPENAI_API_KEY (and optionally OPENAI_BASE_URL, OPENAI_MODEL) to run an agent with them."
        );
        return Ok(());
    }
    agent(&workspace, &tools).await
}

/// A small agent loop on rig's chat-completions model: send the conversation and the tool
/// definitions, run the calls through the rig tools, append the results, repeat.
async fn agent(workspace: &Workspace, tools: &[Box<dyn ErasedTool>]) -> Result<(), BoxError> {
    let model_name = std::env::var("OPENAI_MODEL")
        .ok()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| "gpt-4o-mini".into());
    // Reads OPENAI_API_KEY and OPENAI_BASE_URL; the key stays inside rig's `Secret`.
    let client = OpenAIConfig::from_env()?.connect(ReqwestTransport::new()?);
    let model = client.chat(model_name.clone());
    let definitions = definitions(tools)?;
    println!(
        "model: {model_name}; tools: {}",
        workspace.tool_names().join(", ")
    );
    println!("task: {TASK}");

    let mut history = vec![
        Message::system(format!(
            "You are a careful agent working in a sandbox. Use the tools; answer without a tool \
             call when done.\n\n{}",
            workspace.instructions()
        )),
        Message::user(TASK),
    ];
    for turn in 1..=MAX_TURNS {
        let mut request = CompletionRequest::new(Message::user(TASK)).tools(definitions.clone());
        request.chat_history = history.clone();
        let response = model.call(request).await?;
        let calls: Vec<_> = response.tool_calls().cloned().collect();
        if let Some(message) = response.message() {
            history.push(message);
        }
        println!("\n── turn {turn}");
        let text = response.text();
        if !text.trim().is_empty() {
            println!("model: {}", text.trim());
        }
        if calls.is_empty() {
            return Ok(());
        }
        let mut results = Vec::new();
        for call in calls {
            let name = call.function.name.to_string();
            // Broken JSON reaches the tool as sent, so its error can say what is wrong.
            let args = call
                .function
                .invalid_arguments
                .clone()
                .unwrap_or_else(|| call.function.arguments_value().to_string());
            println!("  → {name} {args}");
            let result = match tools.iter().find(|t| t.name() == name) {
                Some(tool) => tool.execute(args, &mut ToolContext::new()).await,
                None => {
                    // Let the workspace word the "no such tool" answer, with the valid names.
                    let out = workspace.call(&name, args).await;
                    rig_core::tool::ToolResult::failed(ToolExecutionError::not_found(out.text))
                }
            };
            let shown = result.output().render();
            println!("  ← {}", shown.lines().next().unwrap_or(""));
            let content = result.output().clone().into_content();
            results.push(if result.is_error() {
                call.error_result(content)
            } else {
                call.result(content)
            });
        }
        history.push(Message::tool_results(results));
    }
    Err(format!("no final answer after {MAX_TURNS} turns").into())
}

/// rig's HTTP transport contract over the workspace's reqwest 0.12 client.
#[derive(Clone)]
struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    fn new() -> Result<Self, BoxError> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()?;
        Ok(ReqwestTransport { client })
    }

    fn request<T: Into<Bytes>>(&self, req: Request<T>) -> reqwest::RequestBuilder {
        let (parts, body) = req.into_parts();
        self.client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body.into())
    }
}

/// Send, and turn a non-success status into rig's error with status, headers and body.
async fn send_checked(builder: reqwest::RequestBuilder) -> http_client::Result<reqwest::Response> {
    let response = builder.send().await.map_err(http_client::Error::instance)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    Err(http_client::Error::non_success_with_details(
        status, headers, body,
    ))
}

/// An HTTP response with `response`'s status and headers, and `body`.
fn with_head<B>(response: &reqwest::Response, body: B) -> Response<B> {
    let mut out = Response::new(body);
    *out.status_mut() = response.status();
    *out.headers_mut() = response.headers().clone();
    out
}

impl HttpClientExt for ReqwestTransport {
    fn send<T, U>(
        &self,
        req: Request<T>,
    ) -> impl Future<Output = http_client::Result<Response<LazyBody<U>>>> + Send + 'static
    where
        T: Into<Bytes> + Send,
        U: From<Bytes> + Send + 'static,
    {
        let builder = self.request(req);
        async move {
            let response = send_checked(builder).await?;
            let head = with_head(&response, ());
            let body: LazyBody<U> = Box::pin(async move {
                let bytes = response
                    .bytes()
                    .await
                    .map_err(http_client::Error::instance)?;
                Ok(U::from(bytes))
            });
            Ok(head.map(|()| body))
        }
    }

    fn send_multipart<U>(
        &self,
        _req: Request<MultipartForm>,
    ) -> impl Future<Output = http_client::Result<Response<LazyBody<U>>>> + Send + 'static
    where
        U: From<Bytes> + Send + 'static,
    {
        // Chat completions never upload forms; say so rather than half-implement it.
        std::future::ready(Err(http_client::Error::Instance(
            "multipart requests are not supported by this example's transport".into(),
        )))
    }

    // The item type is rig's: its error is large, and the trait fixes it.
    #[allow(clippy::result_large_err)]
    fn send_streaming<T>(
        &self,
        req: Request<T>,
    ) -> impl Future<Output = http_client::Result<http_client::StreamingResponse>> + Send
    where
        T: Into<Bytes> + Send,
    {
        let builder = self.request(req);
        async move {
            let response = send_checked(builder).await?;
            let head = with_head(&response, ());
            let stream = response
                .bytes_stream()
                .map(|chunk| chunk.map_err(http_client::Error::instance));
            let body: http_client::BoxedStream = Box::pin(stream);
            Ok(head.map(|()| body))
        }
    }
}
