//! Which tools exist, what the model is told about each, and their definitions in the shapes
//! the OpenAI and Anthropic APIs expect.

use std::fmt;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::args::{
    DeleteArgs, EditFileArgs, ExecuteCommandArgs, ExecuteCommandBackgroundArgs, FileStatArgs,
    GetProcessOutputArgs, GlobArgs, GrepArgs, KillProcessArgs, ListFilesArgs, MkdirArgs,
    MultiEditArgs, PortUrlArgs, ReadFileArgs, WriteFileArgs,
};
use crate::options::WorkspaceToolsOptions;

/// One of the workspace tools, independent of the name it is offered under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ToolKind {
    /// Run a shell command (or, where the sandbox has processes, start one in the background).
    ExecuteCommand,
    /// Read a background process's output and state.
    GetProcessOutput,
    /// Kill a background process.
    KillProcess,
    /// Read a text file with line numbers.
    ReadFile,
    /// Create or replace a file.
    WriteFile,
    /// Replace exact text in a file.
    EditFile,
    /// Several exact replacements in one file, all or none.
    MultiEdit,
    /// List a directory tree, optionally filtered by a glob.
    ListFiles,
    /// Delete a file or directory.
    Delete,
    /// Create a directory.
    Mkdir,
    /// Describe a path.
    FileStat,
    /// Search file contents.
    Grep,
    /// Find files by a path pattern.
    Glob,
    /// The URL that reaches a sandbox port from outside.
    PortUrl,
}

/// What a tool needs from the sandbox to be offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    Nothing,
    Filesystem,
    Processes,
    Ports,
}

impl ToolKind {
    /// Every tool, in the order they are offered.
    pub const ALL: [ToolKind; 14] = [
        ToolKind::ExecuteCommand,
        ToolKind::GetProcessOutput,
        ToolKind::KillProcess,
        ToolKind::ReadFile,
        ToolKind::WriteFile,
        ToolKind::EditFile,
        ToolKind::MultiEdit,
        ToolKind::ListFiles,
        ToolKind::Delete,
        ToolKind::Mkdir,
        ToolKind::FileStat,
        ToolKind::Grep,
        ToolKind::Glob,
        ToolKind::PortUrl,
    ];

    /// The tool's name without a prefix, e.g. `execute_command`.
    pub fn base_name(self) -> &'static str {
        match self {
            ToolKind::ExecuteCommand => "execute_command",
            ToolKind::GetProcessOutput => "get_process_output",
            ToolKind::KillProcess => "kill_process",
            ToolKind::ReadFile => "read_file",
            ToolKind::WriteFile => "write_file",
            ToolKind::EditFile => "edit_file",
            ToolKind::MultiEdit => "multi_edit",
            ToolKind::ListFiles => "list_files",
            ToolKind::Delete => "delete",
            ToolKind::Mkdir => "mkdir",
            ToolKind::FileStat => "file_stat",
            ToolKind::Grep => "grep",
            ToolKind::Glob => "glob",
            ToolKind::PortUrl => "port_url",
        }
    }

    /// The kind whose base name is `name`.
    pub fn from_base_name(name: &str) -> Option<ToolKind> {
        ToolKind::ALL.into_iter().find(|k| k.base_name() == name)
    }

    /// One line for the system prompt.
    pub fn summary(self) -> &'static str {
        match self {
            ToolKind::ExecuteCommand => "run a shell command and get its exit code and output",
            ToolKind::GetProcessOutput => "read new output and the state of a background process",
            ToolKind::KillProcess => "stop a background process and everything it started",
            ToolKind::ReadFile => "read a text file, with line numbers",
            ToolKind::WriteFile => "create or overwrite a file",
            ToolKind::EditFile => "replace an exact, unique piece of text in a file",
            ToolKind::MultiEdit => "apply several exact replacements to one file, all or none",
            ToolKind::ListFiles => "list a directory tree, optionally filtered by a glob",
            ToolKind::Delete => "delete a file or directory",
            ToolKind::Mkdir => "create a directory and its parents",
            ToolKind::FileStat => "show a path's kind, size, permissions and modification time",
            ToolKind::Grep => {
                "search file contents by regex or text (respects .gitignore); paths, lines or counts"
            }
            ToolKind::Glob => "find files by a path pattern such as `**/*.rs`",
            ToolKind::PortUrl => {
                "get the address that reaches a server's port from outside the sandbox"
            }
        }
    }

    pub(crate) fn needs(self) -> Needs {
        match self {
            ToolKind::ExecuteCommand => Needs::Nothing,
            ToolKind::GetProcessOutput | ToolKind::KillProcess => Needs::Processes,
            ToolKind::PortUrl => Needs::Ports,
            ToolKind::ReadFile
            | ToolKind::WriteFile
            | ToolKind::EditFile
            | ToolKind::MultiEdit
            | ToolKind::ListFiles
            | ToolKind::Delete
            | ToolKind::Mkdir
            | ToolKind::FileStat
            | ToolKind::Grep
            | ToolKind::Glob => Needs::Filesystem,
        }
    }
}

impl fmt::Display for ToolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base_name())
    }
}

/// A tool as offered to the model: its name (with the configured prefix), description and JSON
/// Schema of its arguments.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ToolSpec {
    /// Which tool.
    pub kind: ToolKind,
    /// The name the model calls it by.
    pub name: String,
    /// What the model is told about it.
    pub description: String,
    /// JSON Schema (draft 7) of its arguments: an object with `additionalProperties: false`.
    pub parameters: Value,
}

impl ToolSpec {
    /// The OpenAI chat-completions shape: `{"type":"function","function":{name,description,parameters}}`.
    pub fn openai(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            }
        })
    }

    /// The Anthropic Messages shape: `{name, description, input_schema}`.
    pub fn anthropic(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "input_schema": self.parameters,
        })
    }
}

/// The offered name of `kind` under `options`.
pub(crate) fn tool_name(options: &WorkspaceToolsOptions, kind: ToolKind) -> String {
    format!("{}{}", options.tool_prefix, kind.base_name())
}

/// Build the spec of one tool. `background` says whether `execute_command` gets its
/// `background` parameter (the sandbox has processes and they are offered).
pub(crate) fn build_spec(
    options: &WorkspaceToolsOptions,
    kind: ToolKind,
    background: bool,
) -> ToolSpec {
    let mut parameters = match kind {
        ToolKind::ExecuteCommand if background => schema_of::<ExecuteCommandBackgroundArgs>(),
        ToolKind::ExecuteCommand => schema_of::<ExecuteCommandArgs>(),
        ToolKind::GetProcessOutput => schema_of::<GetProcessOutputArgs>(),
        ToolKind::KillProcess => schema_of::<KillProcessArgs>(),
        ToolKind::ReadFile => schema_of::<ReadFileArgs>(),
        ToolKind::WriteFile => schema_of::<WriteFileArgs>(),
        ToolKind::EditFile => schema_of::<EditFileArgs>(),
        ToolKind::MultiEdit => schema_of::<MultiEditArgs>(),
        ToolKind::ListFiles => schema_of::<ListFilesArgs>(),
        ToolKind::Delete => schema_of::<DeleteArgs>(),
        ToolKind::Mkdir => schema_of::<MkdirArgs>(),
        ToolKind::FileStat => schema_of::<FileStatArgs>(),
        ToolKind::Grep => schema_of::<GrepArgs>(),
        ToolKind::Glob => schema_of::<GlobArgs>(),
        ToolKind::PortUrl => schema_of::<PortUrlArgs>(),
    };
    // Limits that come from the options rather than the types.
    match kind {
        ToolKind::ExecuteCommand => set_maximum(
            &mut parameters,
            "timeout_seconds",
            options.max_command_timeout.as_secs(),
        ),
        ToolKind::GetProcessOutput => {
            set_maximum(&mut parameters, "wait_seconds", options.max_wait.as_secs())
        }
        _ => {}
    }
    ToolSpec {
        kind,
        name: tool_name(options, kind),
        description: describe(options, kind, background),
        parameters,
    }
}

/// The JSON Schema of `T` as a tool's parameters: draft 7, subschemas inlined (a tool schema
/// must stand alone), no `$schema`/`title`/top-level `description` (the tool has its own), and
/// optional fields typed as their value type alone: `null` is still accepted when parsing,
/// but a schema without `["x", "null"]` unions is understood by more models and gateways.
pub(crate) fn schema_of<T: JsonSchema>() -> Value {
    let settings = SchemaSettings::draft07().with(|s| {
        s.inline_subschemas = true;
        s.meta_schema = None;
    });
    let mut value = settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.remove("title");
        obj.remove("description");
        // Explicit even when empty: some validators want the key on every object schema.
        obj.entry("required")
            .or_insert_with(|| Value::Array(Vec::new()));
    }
    tidy_object_schema(&mut value);
    tidy_text(&mut value);
    value
}

/// Join the lines of wrapped doc comments (a description is prose, not source layout; blank
/// lines stay as paragraph breaks) and drop `format` annotations such as `uint64`, which say
/// nothing a model needs and which some strict-mode validators reject.
fn tidy_text(schema: &mut Value) {
    match schema {
        Value::Object(obj) => {
            if obj.get("format").is_some_and(Value::is_string) {
                obj.remove("format");
            }
            if let Some(Value::String(d)) = obj.get_mut("description") {
                *d = d
                    .split("\n\n")
                    .map(|para| {
                        para.split('\n')
                            .map(str::trim)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect::<Vec<_>>()
                    .join("\n\n");
            }
            for (_, v) in obj.iter_mut() {
                tidy_text(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tidy_text),
        _ => {}
    }
}

/// Drop `null` from the types of optional properties and `default: null`, recursively.
fn tidy_object_schema(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    let required: Vec<String> = obj
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for (name, prop) in props.iter_mut() {
        let Some(p) = prop.as_object_mut() else {
            continue;
        };
        if !required.contains(name) {
            strip_null_type(p);
            if p.get("default") == Some(&Value::Null) {
                p.remove("default");
            }
        }
        consts_to_enum(p);
        tidy_object_schema(prop);
    }
}

/// `"type": ["integer", "null"]` → `"type": "integer"`; `anyOf: [{…}, {"type": "null"}]` → `{…}`.
fn strip_null_type(p: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = p.get("type") {
        let rest: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        let new = match rest.len() {
            1 => rest.into_iter().next().unwrap_or(Value::Null),
            _ => Value::Array(rest),
        };
        p.insert("type".into(), new);
    }
    if let Some(Value::Array(any)) = p.get("anyOf") {
        let rest: Vec<Value> = any
            .iter()
            .filter(|s| s.get("type").and_then(Value::as_str) != Some("null"))
            .cloned()
            .collect();
        if rest.len() == 1
            && let Some(Value::Object(only)) = rest.into_iter().next()
        {
            p.remove("anyOf");
            for (k, v) in only {
                p.entry(k).or_insert(v);
            }
        }
    }
}

/// `oneOf: [{const: "a"}, {const: "b"}]` (what a documented unit enum becomes) →
/// `type: string, enum: ["a", "b"]`, the form every model and gateway reads; the field's own
/// description already says what each value means.
fn consts_to_enum(p: &mut Map<String, Value>) {
    let Some(Value::Array(alternatives)) = p.get("oneOf") else {
        return;
    };
    let values: Option<Vec<Value>> = alternatives
        .iter()
        .map(|a| a.get("const").filter(|c| c.is_string()).cloned())
        .collect();
    if let Some(values) = values {
        p.remove("oneOf");
        p.insert("type".into(), "string".into());
        p.insert("enum".into(), Value::Array(values));
    }
}

fn set_maximum(schema: &mut Value, property: &str, maximum: u64) {
    if let Some(p) = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut(property))
        .and_then(Value::as_object_mut)
    {
        p.insert("maximum".into(), maximum.into());
    }
}

/// The description of `kind`, with the limits and sibling tool names of this configuration.
fn describe(options: &WorkspaceToolsOptions, kind: ToolKind, background: bool) -> String {
    let name = |k: ToolKind| tool_name(options, k);
    let budget = options.output_budget;
    match kind {
        ToolKind::ExecuteCommand => {
            let mut d = format!(
                "Run a shell command in the sandbox and return its exit code, stdout and stderr. \
                 The command line is run by a POSIX shell (`sh -c`), in the sandbox's working \
                 directory unless `cwd` is given. It is killed after `timeout_seconds` \
                 (default {}s, at most {}s). Standard input is closed, so interactive programs \
                 see end-of-file: pass flags such as `-y` instead. Output is cleaned of terminal \
                 colour codes and, past {budget} bytes, cut in the middle with a note saying \
                 how much was cut; narrow it down with grep, head or tail when you need a part.",
                options.command_timeout.as_secs(),
                options.max_command_timeout.as_secs(),
            );
            if background {
                d.push_str(&format!(
                    " Set `background: true` for servers, watchers and other long-running \
                     programs: it returns a process id at once; read the output with `{}` and \
                     stop it with `{}`.",
                    name(ToolKind::GetProcessOutput),
                    name(ToolKind::KillProcess),
                ));
            }
            d
        }
        ToolKind::GetProcessOutput => format!(
            "Read the output and state (running, or its exit code) of a background process \
             started with `{}` and `background: true`. Each answer ends with `next` offsets: \
             pass them as `since` to get only newer output. `wait_seconds` (at most {}) waits \
             for new output or for the process to exit before answering. `wait_for` (a \
             regular expression) waits until the output matches it, e.g. a server's \
             `Listening on` line, so one call replaces a polling loop.",
            name(ToolKind::ExecuteCommand),
            options.max_wait.as_secs(),
        ),
        ToolKind::KillProcess => format!(
            "Stop a background process started with `{}`, together with every process it \
             started. Killing a process that already exited is fine.",
            name(ToolKind::ExecuteCommand),
        ),
        ToolKind::ReadFile => format!(
            "Read a text file. Lines are shown numbered, like `     1\\tfirst line` (the number \
             and tab are not part of the file). `offset` is the first line to show (from 1), \
             `limit` the number of lines (default {}). When the file is longer than what is \
             shown, a last line says how to read on. Paths are relative to the sandbox's \
             working directory unless absolute.",
            crate::tools::files::DEFAULT_READ_LIMIT,
        ),
        ToolKind::WriteFile => {
            let mut d = "Create a file or replace its whole content, creating missing parent \
                 directories. Paths are relative to the sandbox's working directory unless \
                 absolute."
                .to_string();
            if options.edit_safety {
                d.push_str(&format!(
                    " To replace an existing file, read it with `{}` first; if it changed \
                     since, you are told to read it again.",
                    name(ToolKind::ReadFile)
                ));
            }
            d
        }
        ToolKind::EditFile => format!(
            "Replace exact text in a file. `old_string` must match the file exactly, including \
             whitespace and indentation (without the line-number prefix `{}` shows), and must \
             occur exactly once unless `replace_all` is true; otherwise nothing changes and you \
             are told how many times it matched. Read the file first{}.",
            name(ToolKind::ReadFile),
            if options.edit_safety {
                " (an edit to a file not read in this session, or changed since, is refused)"
            } else {
                ""
            },
        ),
        ToolKind::MultiEdit => format!(
            "Make several exact replacements in one file in one call: `edits` are applied in \
             order, each to the text the previous ones left, with the rules of `{}`. If any \
             edit fails, the file is left as it was and you are told which edit failed and \
             why. Read the file with `{}` first.",
            name(ToolKind::EditFile),
            name(ToolKind::ReadFile),
        ),
        ToolKind::ListFiles => "List a directory as an indented tree with file sizes, `depth` \
             levels deep. With `glob` (e.g. `**/*.rs`, `src/*.{ts,tsx}`), list only the \
             matching files, as paths relative to `path`. `.git` and `node_modules` are shown \
             but not descended into."
            .to_string(),
        ToolKind::Delete => "Delete a file, or a directory: a non-empty directory only with \
             `recursive: true`."
            .to_string(),
        ToolKind::Mkdir => {
            "Create a directory and any missing parents. An existing directory is fine.".to_string()
        }
        ToolKind::FileStat => "Show whether a path is a file, directory or symlink, its size in \
             bytes, its permissions and when it was last modified."
            .to_string(),
        ToolKind::Grep => format!(
            "Search the contents of files under a directory (or one file) for a regular \
             expression or, with `fixed_strings`, literal text. Faster and more precise than \
             running grep with `{}`. Files excluded by `.gitignore`, the `.git` directory, \
             binary files and symlinks are skipped. `include`/`exclude` globs narrow the files. \
             `output_mode`: `files_with_matches` (default) lists matching paths with counts, \
             `content` shows `path:line:text` (with `context` lines as `path-line-text`), \
             `count` gives matches per file. At most `head_limit` entries are shown and a last \
             line says how many more there are. Paths are relative to `path`; read a hit with \
             `{}` and its line number as `offset`.",
            name(ToolKind::ExecuteCommand),
            name(ToolKind::ReadFile),
        ),
        ToolKind::Glob => "Find files by a path pattern matched against paths relative to \
             `path`: `**/*.rs` (any depth), `src/*.{ts,tsx}`, `*.md` (top level only). Files \
             excluded by `.gitignore` and the `.git` directory are left out. `sort: newest` \
             puts recently modified files first. At most `head_limit` paths are shown, with the \
             total."
            .to_string(),
        ToolKind::PortUrl => "Get the address at which a server listening on `port` inside the \
             sandbox can be reached from outside it, to give to the user. Inside the sandbox \
             (in commands) use `http://localhost:PORT` instead. Start the server in the \
             background first; the address exists even before anything listens."
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in ToolKind::ALL {
            assert_eq!(ToolKind::from_base_name(k.base_name()), Some(k));
            assert_eq!(k.to_string(), k.base_name());
        }
        assert_eq!(ToolKind::from_base_name("nope"), None);
    }

    #[test]
    fn optional_fields_lose_their_null_type() {
        let s = schema_of::<ReadFileArgs>();
        assert_eq!(s["properties"]["offset"]["type"], "integer");
        assert_eq!(s["properties"]["path"]["type"], "string");
        assert!(s.get("$schema").is_none() && s.get("title").is_none());
        assert_eq!(schema_of::<ListFilesArgs>()["required"], json!([]));
        let s = schema_of::<GetProcessOutputArgs>();
        let since = &s["properties"]["since"];
        assert_eq!(since["type"], "object", "{since}");
        assert_eq!(since["additionalProperties"], false);
        assert!(since.get("format").is_none());
        let d = s["properties"]["since"]["description"]
            .as_str()
            .expect("described");
        assert!(!d.contains('\n'), "{d}");
    }
}
