//! Emulated shell sessions: a session, its commands, and the wrapper each command runs in.
//!
//! A real Daytona session is one long-lived shell that runs its commands one after another, so
//! `cd` and `export` in one command are seen by the next. The emulator runs each command as its
//! own process (so each has its own exit code, process group and output pipes) and carries the
//! shell state across in files of the sandbox's daemon state dir:
//!
//! - commands of a session run **one at a time, in submission order**, like lines fed to one
//!   shell: an async command that keeps running (a server) holds up later commands of the same
//!   session, as it does on Daytona; use one session per long-running process;
//! - before a command, the previous command's exported environment is restored (variables it
//!   `unset` are unset) and its working directory entered; after it, an `EXIT` trap saves them;
//! - the command text is sourced (`. file`), so `cd`, `export` and `exit N` act on that shell;
//! - a command that ends the shell instead of running to its end (`exit`, `set -e` tripping,
//!   `kill $$`) ends the session's shell as on Daytona (`pkg/session/execute.go` writes each
//!   command into the one shell's stdin): that command never gets an exit code and its log
//!   stays open, commands queued behind it never run, a new command is listed but refused
//!   (500, the daemon's failed write to the dead shell), and a synchronous request waiting on
//!   any of them answers only when the session is deleted;
//! - a synchronous command's stdin is a FIFO whose writer has closed, as the daemon makes it:
//!   it reads end-of-file at once, and input sent while it runs can still be read after that.
//!
//! Not carried over: unexported shell variables, functions, aliases, shell options (`set -e`),
//! and a command that replaces the `EXIT` trap saves no state. Members of a command's process
//! group that outlive it (`server &`) keep running until the session is deleted or the sandbox
//! stops.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use daytona_api::toolbox::{self as dto, STDOUT_MARKER, codes};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use workspace_core::{OutputOffsets, ProcessState};
use workspace_local::background::{BackgroundOptions, BackgroundProcess};

use super::TASK_SETTLE;
use crate::error::ApiError;
use crate::layout::{SandboxLayout, shell_single_quote};
use crate::runtime::command_log::{CommandLog, Labeller, Stream};
use crate::runtime::process_tree;
use crate::sync::lock;

/// Bytes of each stream a session command's process may hold unread by the log pump; past
/// that the process blocks writing (as the daemon's labelling pipes make it), so the log gets
/// every byte however far the pump falls behind.
const SESSION_BUFFER: usize = 1024 * 1024;

/// One session in a [`super::RuntimeSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSnapshot {
    /// Session id.
    pub id: String,
    /// `(cmd_id, command text exactly as received, exit code once finished)`.
    pub commands: Vec<(String, String, Option<i32>)>,
}

/// One emulated shell session.
#[derive(Debug)]
pub(crate) struct Session {
    id: String,
    /// Host dir holding command files, logs and saved shell state.
    dir: PathBuf,
    /// Held by the running command: commands of a session run one at a time.
    turn: Arc<tokio::sync::Mutex<()>>,
    commands: Mutex<Vec<Arc<SessionCommand>>>,
    ended: CancellationToken,
    /// Set once a command ended the session's shell (see the module docs).
    shell_exited: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// One command of a session.
#[derive(Debug)]
pub(crate) struct SessionCommand {
    id: String,
    command: String,
    exit: watch::Sender<Option<i32>>,
    /// Where input sent to it goes.
    stdin: CommandStdin,
    /// Whether input sent to it is also written to its log as stdout (the daemon's default;
    /// `suppressInputEcho` turns it off).
    echo_input: bool,
    /// The process, once the command got its turn.
    process: Mutex<Option<Arc<BackgroundProcess>>>,
    /// Input sent while the command waited for its turn; held while input is written, so
    /// writes keep their order.
    input: tokio::sync::Mutex<Vec<u8>>,
    log: CommandLog,
}

/// Where a session command's input goes.
#[derive(Debug)]
enum CommandStdin {
    /// An async command's stdin pipe, open for `/input` (input sent before the command's turn
    /// is queued for it).
    Pipe,
    /// A sync command reads from a FIFO at this host path, whose first writer closes at once.
    Fifo(PathBuf),
}

/// How a session command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExecMode {
    /// Answer at once and keep stdin open for `/input`.
    pub(crate) run_async: bool,
    /// Write input sent to the command into its log too.
    pub(crate) echo_input: bool,
}

impl ExecMode {
    /// A synchronous command (stdin closed).
    #[cfg(test)]
    pub(crate) const SYNC: ExecMode = ExecMode {
        run_async: false,
        echo_input: true,
    };
}

/// How `POST /process/session/{id}/exec` fails when the session service does: the daemon's
/// handler wraps the error (`failed to execute command: %w`), so its error middleware no
/// longer recognises the type and answers 500 with the text (`process/session/execute.go`,
/// `libs/common-go/pkg/errors/middleware.go`), whatever the status the cause had.
pub(crate) fn exec_failed(cause: &str) -> ApiError {
    ApiError::daemon(
        StatusCode::INTERNAL_SERVER_ERROR,
        codes::INTERNAL_SERVER_ERROR,
        format!("failed to execute command: {cause}"),
    )
}

/// The daemon's 500 when a command's input pipe cannot be opened.
fn no_input_pipe(cause: &str) -> ApiError {
    ApiError::daemon(
        StatusCode::INTERNAL_SERVER_ERROR,
        codes::INTERNAL_SERVER_ERROR,
        format!("failed to open input pipe: {cause}"),
    )
}

/// The daemon's 404 for an unknown session id.
pub(super) fn session_not_found() -> ApiError {
    ApiError::daemon(StatusCode::NOT_FOUND, codes::NOT_FOUND, "session not found")
}

impl Session {
    /// A session with no commands yet, its files in `dir`.
    pub(super) fn new(id: &str, dir: PathBuf) -> Self {
        Session {
            id: id.to_string(),
            dir,
            turn: Arc::new(tokio::sync::Mutex::new(())),
            commands: Mutex::new(Vec::new()),
            ended: CancellationToken::new(),
            shell_exited: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// The session for a [`super::RuntimeSnapshot`], and how many of its commands' process
    /// groups have live members.
    pub(super) fn snapshot(&self) -> (SessionSnapshot, usize) {
        let commands = lock(&self.commands).clone();
        let mut live = 0;
        let mut out = Vec::with_capacity(commands.len());
        for c in &commands {
            if c.process().is_some_and(|p| p.group().is_alive()) {
                live += 1;
            }
            out.push((c.id.clone(), c.command.clone(), c.exit_code()));
        }
        let snapshot = SessionSnapshot {
            id: self.id.clone(),
            commands: out,
        };
        (snapshot, live)
    }

    /// Kill every command's process group at once, without waiting (a runtime dropped
    /// without its shutdown).
    pub(super) fn kill_now(&self) {
        for command in lock(&self.commands).iter() {
            if let Some(process) = command.process() {
                process.group().kill();
            }
        }
    }

    /// Queue `command` with the sandbox env `env`. Returns at once; the command
    /// runs when the session's previous commands are done. The caller has checked that the
    /// command is not blank.
    pub(crate) fn exec(
        self: &Arc<Self>,
        layout: &Arc<SandboxLayout>,
        command: &str,
        mode: ExecMode,
        env: BTreeMap<String, String>,
    ) -> Result<Arc<SessionCommand>, ApiError> {
        if self.ended.is_cancelled() {
            return Err(ApiError::daemon(
                StatusCode::GONE,
                codes::SESSION_ENDED,
                format!("session {} is no longer accepting commands", self.id),
            ));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let cmd_file = self.dir.join(format!("{id}.sh"));
        std::fs::write(&cmd_file, command)
            .map_err(|e| ApiError::daemon_internal("writing the command file", e))?;
        let log = CommandLog::create(self.dir.join(format!("{id}.log")))
            .map_err(|e| ApiError::daemon_internal("creating the command log", e))?;
        let shell_alive = !self.shell_exited();
        let stdin = if mode.run_async {
            CommandStdin::Pipe
        } else {
            let fifo = self.dir.join(format!("{id}.in"));
            if shell_alive {
                nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU)
                    .map_err(|e| ApiError::daemon_internal("making the command's stdin FIFO", e))?;
            }
            CommandStdin::Fifo(fifo)
        };
        let cmd = Arc::new(SessionCommand {
            id,
            command: command.to_string(),
            exit: watch::Sender::new(None),
            stdin,
            echo_input: mode.echo_input,
            process: Mutex::new(None),
            input: tokio::sync::Mutex::new(Vec::new()),
            log,
        });
        lock(&self.commands).push(cmd.clone());
        if !shell_alive {
            // The daemon lists the command, then fails writing it into the dead shell's stdin.
            return Err(exec_failed(
                "failed to write command: write |1: broken pipe",
            ));
        }
        let task = tokio::spawn(run_session_command(
            layout.clone(),
            self.clone(),
            cmd.clone(),
            cmd_file,
            env,
        ));
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        Ok(cmd)
    }

    /// The command with this id: 404 if unknown.
    pub(crate) fn command(&self, cmd_id: &str) -> Result<Arc<SessionCommand>, ApiError> {
        lock(&self.commands)
            .iter()
            .find(|c| c.id == cmd_id)
            .cloned()
            .ok_or_else(|| {
                ApiError::daemon(StatusCode::NOT_FOUND, codes::NOT_FOUND, "command not found")
            })
    }

    /// The session as the API shows it.
    pub(crate) fn to_dto(&self) -> dto::Session {
        dto::Session {
            session_id: self.id.clone(),
            commands: lock(&self.commands).iter().map(|c| c.to_dto()).collect(),
        }
    }

    /// Whether the session was deleted (or its sandbox stopped).
    pub(crate) fn ended(&self) -> &CancellationToken {
        &self.ended
    }

    /// Whether a command ended the session's shell.
    pub(crate) fn shell_exited(&self) -> bool {
        self.shell_exited.load(Ordering::Acquire)
    }

    /// Stop accepting commands, kill every process the session started, wait for its command
    /// tasks, and delete its files.
    pub(super) async fn end(&self) {
        self.ended.cancel();
        let commands = lock(&self.commands).clone();
        let processes: Vec<_> = commands.iter().filter_map(|c| c.process()).collect();
        futures::future::join_all(
            processes
                .iter()
                .map(|p| process_tree::kill_with_escapees(p, None)),
        )
        .await;
        let tasks = std::mem::take(&mut *lock(&self.tasks));
        for task in tasks {
            if tokio::time::timeout(TASK_SETTLE, task).await.is_err() {
                tracing::warn!(session = %self.id, "a session command task did not finish");
            }
        }
        // Commands of a shell that died never finish on their own; their followers end here.
        for command in &commands {
            command.log.finish();
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(session = %self.id, error = %e, "removing the session dir failed");
        }
    }
}

impl SessionCommand {
    /// The command id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    fn process(&self) -> Option<Arc<BackgroundProcess>> {
        lock(&self.process).clone()
    }

    /// Exit code once finished.
    pub(crate) fn exit_code(&self) -> Option<i32> {
        *self.exit.borrow()
    }

    /// The log of this command.
    pub(crate) fn log(&self) -> &CommandLog {
        &self.log
    }

    /// Wait for the exit code; `None` if the session ended first.
    pub(crate) async fn wait(&self, ended: &CancellationToken) -> Option<i32> {
        let mut rx = self.exit.subscribe();
        tokio::select! {
            code = rx.wait_for(Option::is_some) => code.ok().and_then(|c| *c),
            _ = ended.cancelled() => self.exit_code(),
        }
    }

    /// The command as the API shows it.
    pub(crate) fn to_dto(&self) -> dto::Command {
        dto::Command {
            id: self.id.clone(),
            command: self.command.clone(),
            exit_code: self.exit_code(),
        }
    }

    /// Write `data` to the command's stdin, with a newline added when it lacks one (for
    /// `read`), and echo it to the log as stdout unless the command suppresses that
    /// (`pkg/session/input.go`): 410 once it finished; 500 where the daemon finds no input
    /// pipe (a sync command not started yet, a command of a shell that died).
    pub(crate) async fn send_input(&self, session: &Session, data: &[u8]) -> Result<(), ApiError> {
        if let Some(code) = self.exit_code() {
            return Err(ApiError::daemon(
                StatusCode::GONE,
                codes::COMMAND_ALREADY_COMPLETED,
                format!("command has already completed with exit code {code}"),
            ));
        }
        let mut line = data.to_vec();
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        if session.shell_exited() {
            // The dead shell's exit trap removed the command's pipes; queued ones never made them.
            return Err(no_input_pipe("no such file or directory"));
        }
        match &self.stdin {
            CommandStdin::Pipe => self.write_input(&line).await?,
            CommandStdin::Fifo(path) => self.write_fifo(path, line.clone()).await?,
        }
        if self.echo_input {
            let mut echoed = STDOUT_MARKER.to_vec();
            echoed.extend_from_slice(&line);
            let mut writer = self
                .log
                .writer()
                .await
                .map_err(|e| ApiError::daemon_internal("echoing input to the log", e))?;
            writer
                .append(&echoed)
                .await
                .map_err(|e| ApiError::daemon_internal("echoing input to the log", e))?;
        }
        Ok(())
    }

    /// Writes `data` into a sync command's stdin FIFO while the command has it open. The write
    /// blocks while the FIFO is full, as the daemon's does, until the command reads or exits.
    async fn write_fifo(&self, path: &std::path::Path, data: Vec<u8>) -> Result<(), ApiError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        if self.process().is_none() {
            // The daemon's wrapper makes the FIFO when the command's turn comes.
            return Err(no_input_pipe("no such file or directory"));
        }
        let path = path.to_path_buf();
        let written = tokio::task::spawn_blocking(move || {
            // Non-blocking open: with nobody reading (the command closed its stdin or is gone)
            // it fails at once instead of waiting for a reader that will not come.
            let mut fifo = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
                .open(&path)
                .map_err(|e| no_input_pipe(&e.to_string()))?;
            nix::fcntl::fcntl(
                &fifo,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
            )
            .map_err(|e| no_input_pipe(&e.to_string()))?;
            fifo.write_all(&data).map_err(|e| {
                ApiError::daemon(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    codes::INTERNAL_SERVER_ERROR,
                    format!("failed to write to input pipe: {e}"),
                )
            })
        })
        .await;
        written.map_err(|e| ApiError::daemon_internal("writing input", e))?
    }

    /// Hands `data` to the process, or queues it until the command gets its turn.
    async fn write_input(&self, data: &[u8]) -> Result<(), ApiError> {
        let mut queued = self.input.lock().await;
        let Some(process) = self.process() else {
            queued.extend_from_slice(data);
            return Ok(());
        };
        process.write_stdin(data).await.map_err(|e| {
            ApiError::daemon(
                StatusCode::GONE,
                codes::COMMAND_ALREADY_COMPLETED,
                format!("command {} no longer reads input: {e}", self.id),
            )
        })
    }
}

/// Sandbox paths of what one session command's wrapper reads and writes.
struct WrapperPaths<'a> {
    /// The session's state dir.
    state_dir: &'a str,
    /// The command text.
    cmd_file: &'a str,
    /// Made once the command text ran to its end; missing after the shell itself was ended.
    done_file: &'a str,
    /// A sync command's stdin FIFO.
    stdin_fifo: Option<&'a str>,
}

/// The shell text that runs one session command with the session's saved state.
fn session_wrapper(paths: &WrapperPaths<'_>, bash: bool) -> String {
    let state_dir = paths.state_dir;
    let env_file = shell_single_quote(&format!("{state_dir}/env"));
    let cmd_file = shell_single_quote(paths.cmd_file);
    let done_file = shell_single_quote(paths.done_file);
    // As the daemon's wrapper: a writer opens the FIFO and closes it at once, so the command
    // reads end-of-file, and input written later is there for a later read.
    let run = match paths.stdin_fifo {
        Some(fifo) => {
            let fifo = shell_single_quote(fifo);
            format!(": > {fifo} &\n. {cmd_file} < {fifo}")
        }
        None => format!(". {cmd_file}"),
    };
    let clear_exports = if bash {
        // So a variable the previous command unset stays unset.
        "for __dtn_v in $(compgen -e); do unset \"$__dtn_v\" 2>/dev/null; done; unset __dtn_v\n"
    } else {
        ""
    };
    format!(
        "if [ -r {env_file} ]; then\n\
         {clear_exports}. {env_file}\n\
         cd -- \"$__DTN_CWD\" 2>/dev/null\n\
         unset __DTN_CWD\n\
         fi\n\
         __dtn_save() {{ __dtn_ec=$?; export __DTN_CWD=\"$PWD\"; export -p > {env_file}; exit \"$__dtn_ec\"; }}\n\
         trap __dtn_save EXIT\n\
         {run}\n\
         __dtn_ec=$?; : > {done_file}; exit \"$__dtn_ec\"\n"
    )
}

/// Wait for the session's turn, run the command, pump its output into the log, record its exit.
async fn run_session_command(
    layout: Arc<SandboxLayout>,
    session: Arc<Session>,
    cmd: Arc<SessionCommand>,
    cmd_file: PathBuf,
    env: BTreeMap<String, String>,
) {
    // Held until this command is done: the next one waits for it.
    let _turn = tokio::select! {
        turn = session.turn.clone().lock_owned() => turn,
        _ = session.ended.cancelled() => {
            cmd.log.finish();
            return;
        }
    };
    if session.ended.is_cancelled() {
        cmd.log.finish();
        return;
    }
    if session.shell_exited() {
        // Written into the shell's stdin before it died, never read: no exit code, ever, and
        // the log stays open until `Session::end` closes it.
        return;
    }
    let code = match start_and_pump(&layout, &session, &cmd, &cmd_file, env).await {
        Ok(Ran::Completed(code)) => code,
        Ok(Ran::EndedShell) => {
            // No exit code, and the log stays open until `Session::end` closes it.
            session.shell_exited.store(true, Ordering::Release);
            return;
        }
        Err(message) => {
            // As the daemon reports a command it could not start: on stderr, exit code -1.
            let mut line = Vec::new();
            let mut labeller = Labeller::new(Stream::Stderr);
            labeller.push(message.as_bytes(), &mut line);
            labeller.finish(&mut line);
            if let Ok(mut w) = cmd.log.writer().await
                && let Err(e) = w.append(&line).await
            {
                tracing::warn!(error = %e, "writing a session command log failed");
            }
            -1
        }
    };
    cmd.exit.send_replace(Some(code));
    cmd.log.finish();
}

/// How a session command's wrapper ended.
enum Ran {
    /// The command text ran to its end (or its start failed, -1): its exit code.
    Completed(i32),
    /// The command ended the shell itself (`exit`, `set -e`, `kill $$`).
    EndedShell,
}

async fn start_and_pump(
    layout: &SandboxLayout,
    session: &Session,
    cmd: &SessionCommand,
    cmd_file: &std::path::Path,
    env: BTreeMap<String, String>,
) -> Result<Ran, String> {
    let in_state = |host: &std::path::Path| {
        layout
            .state_path_for_command(host)
            .ok_or("a session file is outside the daemon state dir")
    };
    let done_host = session.dir.join(format!("{}.done", cmd.id));
    let state_dir = in_state(&session.dir)?;
    let cmd_path = in_state(cmd_file)?;
    let done_path = in_state(&done_host)?;
    let fifo_path = match &cmd.stdin {
        CommandStdin::Pipe => None,
        CommandStdin::Fifo(fifo) => Some(in_state(fifo)?),
    };
    let bash = layout.shell().ends_with("bash");
    let wrapper = session_wrapper(
        &WrapperPaths {
            state_dir: &state_dir,
            cmd_file: &cmd_path,
            done_file: &done_path,
            stdin_fifo: fifo_path.as_deref(),
        },
        bash,
    );
    let prepared = layout
        .command_spec(&wrapper, None, &env)
        .map_err(|e| e.message)?;
    let options = BackgroundOptions {
        stdin: true,
        retention: SESSION_BUFFER,
        hold_unread: true,
        ..BackgroundOptions::default()
    };
    let process =
        BackgroundProcess::spawn_with(prepared.spec.clone(), options).map_err(|e| e.to_string())?;
    {
        let mut input = cmd.input.lock().await;
        *lock(&cmd.process) = Some(process.clone());
        if let CommandStdin::Pipe = cmd.stdin {
            let queued = std::mem::take(&mut *input);
            if !queued.is_empty()
                && let Err(e) = process.write_stdin(&queued).await
            {
                tracing::debug!(error = %e, "queued input was not taken");
            }
        } else {
            // A sync command reads its FIFO; the wrapper itself needs no stdin.
            let _ = process.close_stdin().await;
        }
    }
    if session.ended.is_cancelled() {
        // The session ended between our turn starting and the process being recorded, so
        // `Session::end` may not have seen it.
        process.kill().await;
    }
    let code = pump(&process, &cmd.log).await;
    drop(prepared);
    let completed = done_host.exists();
    let fifo = match &cmd.stdin {
        CommandStdin::Fifo(fifo) => Some(fifo),
        CommandStdin::Pipe => None,
    };
    for file in std::iter::once(&done_host).chain(fifo) {
        if let Err(e) = std::fs::remove_file(file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::debug!(error = %e, "removing a session command file failed");
        }
    }
    Ok(match completed {
        true => Ran::Completed(code),
        false => Ran::EndedShell,
    })
}

/// Copy the process's output into the log, labelled, until it exits; returns the exit code.
async fn pump(process: &BackgroundProcess, log: &CommandLog) -> i32 {
    let mut changes = process.changes();
    let mut offsets = OutputOffsets::default();
    let mut out_labels = Labeller::new(Stream::Stdout);
    let mut err_labels = Labeller::new(Stream::Stderr);
    let mut writer = match log.writer().await {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "opening a session command log failed");
            None
        }
    };
    loop {
        changes.borrow_and_update();
        let output = process.output_since(offsets);
        offsets = output.next;
        if output.missed != OutputOffsets::default() {
            // Cannot happen while the pump is the process's only reader (`hold_unread`).
            tracing::error!(missed = ?output.missed, "a session command log lost output");
        }
        let mut chunk = Vec::new();
        out_labels.push(&output.stdout, &mut chunk);
        err_labels.push(&output.stderr, &mut chunk);
        let exited = match output.state {
            ProcessState::Exited(code) => {
                out_labels.finish(&mut chunk);
                err_labels.finish(&mut chunk);
                Some(code)
            }
            ProcessState::Running => None,
        };
        if let Some(w) = writer.as_mut()
            && let Err(e) = w.append(&chunk).await
        {
            tracing::warn!(error = %e, "writing a session command log failed");
        }
        if let Some(code) = exited {
            return code;
        }
        if changes.changed().await.is_err() {
            // The process dropped its sender: nothing more will come.
            return process.exit_code().unwrap_or(-1);
        }
    }
}
