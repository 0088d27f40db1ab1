//! The shell text sent as a session command, and how to read the caller's command line back
//! out of it.
//!
//! Layout, always three parts on their own lines (the setup `eval` only when there is setup):
//!
//! ```text
//! __ws_end() { …print the exit trailer on both streams… }; eval "$(printf '%s' '<base64 setup>' | base64 -d)" && cd -- '<cwd>' && { ${BASH:-sh} -c '
//! <the caller's command line, each ' written '\''>
//! ' ws-cmd < /dev/null 2>&3 3>&-; } 3>&2 2>/dev/null; __ws_end <token> $?
//! ```
//!
//! Why each part:
//! - **Output goes to the daemon as the command writes it**, and the session shell prints an
//!   exit trailer on stdout and stderr once the command exits (see [`super::output`]): the
//!   daemon adds a newline to a last line that had none, which the trailer makes exact again,
//!   and it records the exit code only once every process holding the output has let go,
//!   which the trailer's code makes unnecessary to wait for. Everything else here is shell
//!   builtins, so a command costs the sandbox one shell start beyond its own.
//! - **Base64 output, on request** ([`OutputEncoding::Base64`]): the daemon's line labellers
//!   drop NUL bytes. For callers who need those, stdout and stderr go through FIFOs into
//!   encoders that print base64 lines (`dd` with one read per block, so output still streams),
//!   at about ten milliseconds of sandbox CPU per command; the encoders get [`DRAIN_SECS`]
//!   after the command exits to forward what children still write, then are stopped.
//! - **The setup travels base64-encoded** (per-command env exports, the encoders, the stdin
//!   relay), because Daytona stores session command text and shows it in listings and logs:
//!   env values never appear there in clear text. Base64 is an encoding, not encryption:
//!   whoever can read the stored command with the API key can decode it, as they could read
//!   the sandbox's environment anyway.
//! - **The caller's line runs in a shell of its own** (`bash -c` where the session shell is
//!   bash, else `sh -c`), on lines of its own inside the quoted argument: `exit N` and
//!   `kill $$` end the command, not the session shell, which must survive to print the
//!   trailer. The daemon sources every command into that one shell, so a subshell would not
//!   do: its `$$` is the session shell, and killing that leaves the command without an exit
//!   code for good (the daemon keeps its log open). A trailing comment or heredoc cannot
//!   swallow the closing quote, and the line reads back exactly ([`user_line`]). A resident
//!   shell's job is already a shell of its own, so there the line runs in a subshell (a fork,
//!   no exec: the warm path's cost is mostly process starts).
//! - **Stdin is `/dev/null`** unless the caller sends input. Input then goes through a relay: a
//!   background loop reads base64 lines from the session command's stdin, decodes each into a
//!   FIFO the command reads, and stops at a line holding only `.` — how stdin gets closed, as
//!   Daytona's input route has no end-of-file of its own.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use workspace_core::shell_quote;

pub(crate) use super::output::OutputEncoding;
use super::output::TRAILER_TAG;

/// The line that closes the relay's input.
pub(crate) const STDIN_EOF_LINE: &str = ".\n";
/// Raw bytes per relay line: 48 KiB encodes to 64 KiB of base64, a line any shell reads.
pub(crate) const STDIN_CHUNK: usize = 48 * 1024;
/// Seconds the base64 encoders may keep forwarding after the command exited.
pub(crate) const DRAIN_SECS: u32 = 2;
/// The variable the relay sets.
const RELAY_VAR: &str = "__ws_relay";
/// The end of the header: the caller's line is the argument of a shell of its own.
const HEADER_END: &str = " && { ${BASH:-sh} -c '";
/// What the footer starts with (`$0` of the command's shell, then its stdin).
const FOOTER_START: &str = "' ws-cmd < ";
/// The function that prints the exit trailer; what the header starts with.
const END_FN: &str = "__ws_end";

/// Where the command's stdin comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StdinMode {
    /// `/dev/null`.
    Closed,
    /// The relay, fed with [`encode_stdin`] lines and closed with [`STDIN_EOF_LINE`].
    Relay,
}

/// What one wrapped command is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wrap<'a> {
    /// The caller's command line.
    pub(crate) line: &'a str,
    /// Exported for this command only.
    pub(crate) env: &'a BTreeMap<String, String>,
    /// Where it runs (absolute).
    pub(crate) cwd: &'a str,
    pub(crate) stdin: StdinMode,
    pub(crate) encoding: OutputEncoding,
    /// Unique per command (the session id): names the scratch dir and marks the trailer.
    pub(crate) token: &'a str,
}

/// Where the caller's line runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineShell {
    /// A shell of its own, so its `$$` is not the session's shell (a session command).
    Own,
    /// A subshell of the shell running the text, which is already the command's own (a
    /// resident job's `bash -c`/`sh -c`): one fork, no exec.
    Subshell,
}

/// The session command text for `w`.
pub(crate) fn build(w: &Wrap<'_>) -> String {
    build_in(w, LineShell::Own)
}

/// The text for `w`, its line run in `shell`.
fn build_in(w: &Wrap<'_>, shell: LineShell) -> String {
    let mut setup = String::new();
    for (k, v) in w.env {
        setup.push_str(&format!("export {k}={}\n", shell_quote(v)));
    }
    let base64 = w.encoding == OutputEncoding::Base64;
    let relay = w.stdin == StdinMode::Relay;
    if base64 || relay {
        let dir = shell_quote(&format!(".ws-{}", w.token));
        let mut finish = String::from("__ws_finish() { __ws_ec=$1; ");
        let mut start = format!(
            "__ws_setup() {{ __ws_d=\"${{TMPDIR:-/tmp}}\"/{dir} && rm -rf \"$__ws_d\" && \
             mkdir -m 700 \"$__ws_d\" || return 1; "
        );
        if base64 {
            // The encoder: one read of whatever is available, as base64 lines (76 characters,
            // so each line decodes on its own), until end of file.
            setup.push_str(
                "__ws_enc() { while :; do __ws_c=$(dd bs=65536 count=1 2>/dev/null | base64) \
                 || return 0; [ -n \"$__ws_c\" ] || return 0; printf '%s\\n' \"$__ws_c\"; done; }\n",
            );
            finish.push_str(&format!(
                "( sleep {DRAIN_SECS}; kill $__ws_po $__ws_pe 2>/dev/null ) >/dev/null 2>&1 & \
                 __ws_k=$!; wait $__ws_po $__ws_pe 2>/dev/null; kill $__ws_k 2>/dev/null; "
            ));
            start.push_str(
                "mkfifo \"$__ws_d/o\" \"$__ws_d/e\" || return 1; \
                 __ws_enc < \"$__ws_d/o\" & __ws_po=$!; \
                 __ws_enc < \"$__ws_d/e\" >&2 & __ws_pe=$!; ",
            );
        }
        if relay {
            // `read` stops at each newline, so one line is one base64 chunk; `.` ends the input.
            start.push_str(&format!(
                "mkfifo \"$__ws_d/i\" || return 1; exec 3<&0; \
                 ( while IFS= read -r __ws_l <&3; do [ \"$__ws_l\" = . ] && break; \
                 printf '%s' \"$__ws_l\" | base64 -d; done ) > \"$__ws_d/i\" & {RELAY_VAR}=$!; "
            ));
            finish.push_str(&format!(
                "[ -n \"${{{RELAY_VAR}:-}}\" ] && kill \"${RELAY_VAR}\" 2>/dev/null; "
            ));
        }
        finish.push_str("rm -rf \"$__ws_d\"; return \"$__ws_ec\"; } 2>/dev/null\n");
        start.push_str("return 0; }\n__ws_setup\n");
        setup.push_str(&finish);
        setup.push_str(&start);
    }

    // The trailer `super::output` looks for, on both streams.
    let trailer = format!("printf '\\036{TRAILER_TAG} %s %d\\036\\n' \"$1\" \"$2\"");
    let mut text = format!("{END_FN}() {{ {trailer}; {trailer} >&2; return \"$2\"; }}; ");
    if !setup.is_empty() {
        text.push_str(&format!(
            "eval \"$(printf '%s' '{}' | base64 -d)\" && ",
            STANDARD.encode(setup.as_bytes())
        ));
    }
    let stdin_from = if relay { "\"$__ws_d/i\"" } else { "/dev/null" };
    let to_encoders = " > \"$__ws_d/o\" 2> \"$__ws_d/e\"";
    match shell {
        LineShell::Own => {
            text.push_str(&format!(
                "cd -- {}{HEADER_END}\n{}\n{FOOTER_START}{stdin_from}",
                shell_quote(w.cwd),
                w.line.replace('\'', QUOTE_IN_QUOTES)
            ));
            // The command writes to the real stderr (fd 3 here, or the encoder's FIFO) while
            // the session shell's own stderr is /dev/null around it: bash reports a foreground
            // child killed by a signal (`Killed`) on its stderr, which would land in the
            // command's.
            text.push_str(if base64 { to_encoders } else { " 2>&3" });
            text.push_str(" 3>&-; } 3>&2 2>/dev/null");
        }
        LineShell::Subshell => {
            text.push_str(&format!(
                "cd -- {} && (\n{}\n) < {stdin_from}",
                shell_quote(w.cwd),
                w.line
            ));
            if base64 {
                text.push_str(to_encoders);
            }
        }
    }
    if base64 || relay {
        text.push_str("; __ws_finish $?");
    }
    text.push_str(&format!("; {END_FN} {} $?", shell_quote(w.token)));
    text
}

/// What every input line for the resident shell starts with; other lines are ignored.
const RESIDENT_RUN: &str = "ws-run ";
/// The word after the opening mark of the marker a resident job prints first.
pub(crate) const START_TAG: &str = "ws-start";

/// The session command of a resident shell (see [`super::resident`]): a loop that reads one
/// job per input line (`ws-run <token> <job>`, the job's text with `\` and newlines escaped as
/// `printf %b` reads them), runs it in a process group of its own, waits for it, kills what it
/// left in that group (as the end of a per-command session would) and prints the exit trailers
/// with the job's status. A job that ended normally printed its own first, so these are
/// ignored; they matter when the job's shell itself was killed (`kill -9 $$`), whose status
/// (137) is then the result, as a local shell reports it. Lines that are not jobs are skipped.
///
/// Under bash (the daemon's session shell where the image has it) the job is `bash -c`, which
/// job control (`set -m`) puts in a group of its own, and decoding is the `printf -v` builtin:
/// one process per job, as in a session of its own (and `$$` is the job's shell there too).
/// Job notices go to the loop's own stderr, which is `/dev/null`; the jobs get the real one on
/// fd 3. Elsewhere the job is `setsid sh -c` (a new session and group when `setsid` exists)
/// and decoding one command substitution.
pub(crate) fn resident_loop() -> String {
    format!(
        "exec 3>&2 2>/dev/null; __ws_ss=; command -v setsid >/dev/null 2>&1 && __ws_ss=setsid\n\
         __ws_fast=; if [ -n \"${{BASH_VERSION:-}}\" ]; then set -m && __ws_fast=1; fi\n\
         while IFS= read -r __ws_l; do\n\
         case $__ws_l in \"{RESIDENT_RUN}\"*) ;; *) continue ;; esac\n\
         __ws_l=${{__ws_l#{RESIDENT_RUN}}}; __ws_t=${{__ws_l%% *}}; __ws_l=${{__ws_l#* }}\n\
         if [ -n \"$__ws_fast\" ]; then\n\
         printf -v __ws_c '%b' \"$__ws_l\"\n\
         \"$BASH\" -c \"$__ws_c\" ws-job 1 < /dev/null 2>&3 3>&- & __ws_p=$!\n\
         else\n\
         __ws_c=$(printf '%b' \"$__ws_l\")\n\
         $__ws_ss sh -c \"$__ws_c\" ws-job ${{__ws_ss:+1}} < /dev/null 2>&3 3>&- & __ws_p=$!\n\
         fi\n\
         wait \"$__ws_p\"; __ws_rc=$?\n\
         [ -n \"$__ws_fast$__ws_ss\" ] && kill -9 -\"$__ws_p\"\n\
         printf '\\036{TRAILER_TAG} %s %d\\036\\n' \"$__ws_t\" \"$__ws_rc\"\n\
         printf '\\036{TRAILER_TAG} %s %d\\036\\n' \"$__ws_t\" \"$__ws_rc\" >&3\n\
         done"
    )
}

/// The input line that runs `w` in a resident shell. The job first prints a start marker on
/// both streams (`\x1e ws-start <token> <process group or -> \x1e`), so output its predecessors
/// left behind is told apart, then runs as [`build`] makes it (whose trailers end it).
pub(crate) fn resident_input(w: &Wrap<'_>) -> String {
    let start = format!(
        "printf '\\036{START_TAG} %s %s\\036\\n' {token} \"$__ws_g\"",
        token = shell_quote(w.token)
    );
    // The first argument says whether the job leads a process group of its own (job control
    // or `setsid` made it one).
    let job = format!(
        "if [ -n \"${{1:-}}\" ]; then __ws_g=$$; else __ws_g=-; fi; set --; \
         {start}; {start} >&2\n{}",
        build_in(w, LineShell::Subshell)
    );
    let escaped = job.replace('\\', "\\\\").replace('\n', "\\n");
    format!("{RESIDENT_RUN}{} {escaped}\n", w.token)
}

/// Input for the relay: `data` as base64 lines of at most [`STDIN_CHUNK`] raw bytes each.
pub(crate) fn encode_stdin(data: &[u8]) -> Vec<String> {
    data.chunks(STDIN_CHUNK)
        .map(|chunk| {
            let mut line = STANDARD.encode(chunk);
            line.push('\n');
            line
        })
        .collect()
}

/// A `'` inside single quotes: close them, an escaped quote, open them again.
const QUOTE_IN_QUOTES: &str = "'\\''";

/// The header and footer of a text [`build`] made, and the caller's line (quoted) between them.
fn parts(script: &str) -> Option<(&str, &str, &str)> {
    let (header, rest) = script.split_once('\n')?;
    let (line, footer) = rest.rsplit_once('\n')?;
    let ours = header.starts_with(END_FN)
        && header.ends_with(HEADER_END)
        && footer.starts_with(FOOTER_START)
        && footer.contains(&format!("; {END_FN} "))
        && footer.ends_with(" $?");
    ours.then_some((header, line, footer))
}

/// The caller's command line inside a text [`build`] made, or `None` for other text.
pub(crate) fn user_line(script: &str) -> Option<String> {
    parts(script).map(|(_, line, _)| line.replace(QUOTE_IN_QUOTES, "'"))
}

/// Whether a text [`build`] made relays stdin.
pub(crate) fn relays_stdin(script: &str) -> bool {
    parts(script).is_some_and(|(_, _, footer)| footer.contains("\"$__ws_d/i\""))
}

/// How a text [`build`] made sends its output; `None` for other text.
pub(crate) fn encoding_of(script: &str) -> Option<OutputEncoding> {
    parts(script).map(|(_, _, footer)| {
        if footer.contains("\"$__ws_d/o\"") {
            OutputEncoding::Base64
        } else {
            OutputEncoding::Plain
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::provider::output::decode_all;
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    /// What the daemon's labellers make of a stream: a last line without a newline gets one,
    /// and NUL bytes are dropped.
    fn labelled(raw: &[u8]) -> Vec<u8> {
        let mut v: Vec<u8> = raw.iter().copied().filter(|&b| b != 0).collect();
        if !v.is_empty() && !v.ends_with(b"\n") {
            v.push(b'\n');
        }
        v
    }

    struct Ran {
        code: i32,
        out: Vec<u8>,
        err: Vec<u8>,
        out_code: Option<i32>,
        err_code: Option<i32>,
    }

    /// Run a built script under `sh`, labelling and decoding its output as daemon and provider
    /// do.
    fn sh(w: &Wrap<'_>, input: &[u8]) -> Ran {
        run_in("sh", w, input)
    }

    /// [`sh`] with another shell.
    fn run_in(shell: &str, w: &Wrap<'_>, input: &[u8]) -> Ran {
        let script = build(w);
        let mut child = Command::new(shell)
            .arg("-c")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let (o, out_code) = decode_all(&labelled(&out.stdout), w.token, w.encoding);
        let (e, err_code) = decode_all(&labelled(&out.stderr), w.token, w.encoding);
        Ran {
            code: out.status.code().unwrap_or(-1),
            out: o,
            err: e,
            out_code,
            err_code,
        }
    }

    /// The script under `sh` in a process group of its own (what it leaves behind is killed
    /// with [`kill_group`]), stdout piped.
    fn spawn_in_own_group(w: &Wrap<'_>) -> std::process::Child {
        Command::new("sh")
            .arg("-c")
            .arg(build(w))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap()
    }

    fn kill_group(child: &std::process::Child) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .status();
    }

    fn token(name: &str) -> String {
        format!("unit-{name}-{}", std::process::id())
    }

    fn wrap<'a>(line: &'a str, env: &'a BTreeMap<String, String>, token: &'a str) -> Wrap<'a> {
        Wrap {
            line,
            env,
            cwd: "/",
            stdin: StdinMode::Closed,
            encoding: OutputEncoding::Plain,
            token,
        }
    }

    #[test]
    fn exact_text_and_exit_codes_come_back_in_plain_mode() {
        let env = BTreeMap::new();
        let t = token("plain");
        for (line, out, err, code) in [
            (
                r"printf 'no newline'; printf 'e\n' >&2; exit 7",
                &b"no newline"[..],
                &b"e\n"[..],
                7,
            ),
            (r"printf 'a\n\nb\n'", b"a\n\nb\n", b"", 0),
            (
                r"printf '\377\376'; printf x >&2; false",
                b"\xff\xfe",
                b"x",
                1,
            ),
            ("true", b"", b"", 0),
            // Quotes in the line survive its quoting; a trailing comment swallows nothing.
            (
                "echo 'it'\\''s'; echo \"'\" # the end",
                b"it's\n'\n",
                b"",
                0,
            ),
        ] {
            let r = sh(&wrap(line, &env, &t), b"");
            assert_eq!(
                (r.code, r.out.as_slice(), r.err.as_slice()),
                (code, out, err),
                "{line}"
            );
            assert_eq!((r.out_code, r.err_code), (Some(code), Some(code)), "{line}");
        }
        // `$$` is the command's own shell: killing it is the command's status, and the session
        // shell lives on to print the trailer. Under bash (the daemon's shell where the image
        // has it) nothing else is said; dash reports the kill once its stderr is back.
        for (shell, err) in [("bash", &b""[..]), ("dash", b"Killed\n")] {
            let r = run_in(shell, &wrap("echo done; kill -9 $$", &env, &t), b"");
            assert_eq!(
                (r.code, r.out.as_slice(), r.err.as_slice()),
                (137, &b"done\n"[..], err),
                "{shell}"
            );
            assert_eq!((r.out_code, r.err_code), (Some(137), Some(137)), "{shell}");
        }
        // The header alone: no setup, no scratch dir.
        let text = build(&wrap("echo hi", &env, &t));
        assert!(!text.contains("eval"), "{text}");
        assert_eq!(user_line(&text).as_deref(), Some("echo hi"));
        assert_eq!(encoding_of(&text), Some(OutputEncoding::Plain));
        assert!(!relays_stdin(&text));
    }

    #[test]
    fn base64_mode_keeps_nul_bytes() {
        let env = BTreeMap::new();
        let t = token("exact");
        let mut w = wrap(
            r"printf 'no newline'; printf '\000\377\n' >&2; exit 7",
            &env,
            &t,
        );
        w.encoding = OutputEncoding::Base64;
        assert_eq!(encoding_of(&build(&w)), Some(OutputEncoding::Base64));
        let r = sh(&w, b"");
        assert_eq!(r.code, 7);
        assert_eq!(r.out, b"no newline");
        assert_eq!(r.err, b"\x00\xff\n");
        assert_eq!((r.out_code, r.err_code), (Some(7), Some(7)));
    }

    #[test]
    fn env_values_are_not_in_clear_text_and_arrive_exact() {
        let env = BTreeMap::from([
            (
                "SECRET_TOKEN".to_string(),
                "s3cr3t 'quoted' $HOME\nline2".to_string(),
            ),
            ("EMPTY".to_string(), String::new()),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().to_str().unwrap();
        let line = r#"printf '%s|%s|' "$SECRET_TOKEN" "${EMPTY+set}"; pwd"#;
        let t = token("env");
        let mut w = wrap(line, &env, &t);
        w.cwd = cwd;
        let script = build(&w);
        assert!(!script.contains("s3cr3t"), "{script}");
        assert_eq!(user_line(&script).as_deref(), Some(line));
        assert!(!relays_stdin(&script));
        let r = sh(&w, b"");
        assert_eq!(r.code, 0);
        let out = String::from_utf8(r.out).unwrap();
        let physical = dir.path().canonicalize().unwrap();
        assert!(
            out == format!("s3cr3t 'quoted' $HOME\nline2|set|{cwd}\n")
                || out == format!("s3cr3t 'quoted' $HOME\nline2|set|{}\n", physical.display()),
            "{out:?}"
        );
    }

    #[test]
    fn stdin_is_closed_by_default_and_comments_do_not_swallow_the_footer() {
        let env = BTreeMap::new();
        let t = token("closed");
        let r = sh(
            &wrap("cat; echo done # trailing comment", &env, &t),
            b"must not be read",
        );
        assert_eq!((r.code, r.out.as_slice()), (0, b"done\n".as_slice()));
    }

    #[test]
    fn a_missing_directory_is_a_failure_with_a_trailer() {
        let env = BTreeMap::new();
        let t = token("nodir");
        let mut w = wrap("echo never", &env, &t);
        w.cwd = "/nonexistent/ws-unit-dir";
        let r = sh(&w, b"");
        assert_ne!(r.code, 0);
        assert_eq!(r.out, b"");
        assert_eq!(r.out_code, Some(r.code));
    }

    #[test]
    fn relay_carries_binary_input_and_closes_on_the_eof_line() {
        let data: Vec<u8> = (0..STDIN_CHUNK * 2 + 17)
            .map(|i| (i * 7 % 256) as u8)
            .collect();
        let env = BTreeMap::new();
        let t = token("relay");
        for encoding in [OutputEncoding::Plain, OutputEncoding::Base64] {
            // Plain output cannot carry NUL bytes, so count what came through instead.
            let line = match encoding {
                OutputEncoding::Plain => "od -An -v -tx1 | tr -d ' \\n'; echo; echo after",
                OutputEncoding::Base64 => "cat; echo after",
            };
            let mut w = wrap(line, &env, &t);
            w.stdin = StdinMode::Relay;
            w.encoding = encoding;
            let script = build(&w);
            assert!(relays_stdin(&script));
            assert_eq!(user_line(&script).as_deref(), Some(line));
            let mut input = encode_stdin(&data).concat();
            input.push_str(STDIN_EOF_LINE);
            input.push_str("ignored after the end\n");
            let r = sh(&w, input.as_bytes());
            assert_eq!(r.code, 0, "{}", String::from_utf8_lossy(&r.err));
            let want: Vec<u8> = match encoding {
                OutputEncoding::Plain => {
                    let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
                    format!("{hex}\nafter\n").into_bytes()
                }
                OutputEncoding::Base64 => [data.as_slice(), b"after\n"].concat(),
            };
            assert!(
                r.out == want,
                "{encoding:?}: got {} bytes, want {}",
                r.out.len(),
                want.len()
            );
        }
    }

    #[test]
    fn relay_ends_when_the_command_exits_first() {
        let env = BTreeMap::new();
        let t = token("early");
        let mut w = wrap("exit 3", &env, &t);
        w.stdin = StdinMode::Relay;
        // Stdin stays open (no EOF line): the command must still finish and keep its code.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(build(&w))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let _keep_open = child.stdin.take();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(3));
    }

    #[test]
    fn the_trailer_comes_before_a_child_lets_go_of_the_output() {
        let env = BTreeMap::new();
        let t = token("held");
        let w = wrap("sleep 30 & echo held", &env, &t);
        let started = std::time::Instant::now();
        let mut child = spawn_in_own_group(&w);
        let stdout = child.stdout.take().unwrap();
        // Read lines until the trailer, without waiting for end of file (the child holds it).
        let mut reader = std::io::BufReader::new(stdout);
        let mut seen = Vec::new();
        let mut code = None;
        while code.is_none() {
            let mut line = Vec::new();
            let n = std::io::BufRead::read_until(&mut reader, b'\n', &mut line).unwrap();
            assert!(n > 0, "end of output before the trailer: {seen:?}");
            seen.extend_from_slice(&line);
            code = decode_all(&seen, &t, OutputEncoding::Plain).1;
        }
        let elapsed = started.elapsed();
        kill_group(&child);
        let _ = child.wait();
        assert_eq!(code, Some(0));
        assert_eq!(decode_all(&seen, &t, OutputEncoding::Plain).0, b"held\n");
        assert!(elapsed < std::time::Duration::from_secs(10), "{elapsed:?}");
    }

    #[test]
    fn base64_encoders_stop_after_the_drain_bound() {
        let env = BTreeMap::new();
        let t = token("drain");
        let mut w = wrap("sleep 30 & echo held", &env, &t);
        w.encoding = OutputEncoding::Base64;
        let started = std::time::Instant::now();
        let mut child = spawn_in_own_group(&w);
        let mut stdout = child.stdout.take().unwrap();
        let status = child.wait().unwrap();
        let elapsed = started.elapsed();
        kill_group(&child);
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut raw).unwrap();
        assert_eq!(status.code(), Some(0));
        assert_eq!(
            decode_all(&raw, &t, OutputEncoding::Base64),
            (b"held\n".to_vec(), Some(0))
        );
        assert!(
            elapsed < std::time::Duration::from_secs(u64::from(DRAIN_SECS) + 3),
            "{elapsed:?}"
        );
    }

    #[test]
    fn foreign_text_has_no_user_line() {
        assert_eq!(user_line("echo hi"), None);
        assert_eq!(user_line("a\nb\nc"), None);
        assert_eq!(encoding_of("a\nb\nc"), None);
        assert!(!relays_stdin("a\nb\nc"));
    }

    #[test]
    fn the_resident_loop_runs_only_whole_jobs_marks_them_and_cleans_up_after_them() {
        // Both loops: bash's (job control, builtin decoding) and plain sh's (`setsid sh -c`).
        let env = BTreeMap::from([("ONLY_HERE".to_string(), "v1".to_string())]);
        let none = BTreeMap::new();
        let first = resident_input(&wrap(
            "echo \"$ONLY_HERE\"; (sleep 30; echo late) & echo \"bg $!\"; printf 'e' >&2; exit 4",
            &env,
            "tok-a",
        ));
        let second = resident_input(&wrap("echo \"[${ONLY_HERE:-}] $#\"", &none, "tok-b"));
        let third = resident_input(&wrap("kill -9 $$", &none, "tok-c"));
        let input = format!("not a job\nws-run tok-x !!notbase64\n{first}{second}{third}");
        for shell in ["sh", "bash"] {
            let mut child = Command::new(shell)
                .arg("-c")
                .arg(resident_loop())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            // Each job: its start marker, its output, its trailer, then the loop's own trailer.
            let job = |token: &str, text: &str| -> (String, Vec<u8>, Option<i32>) {
                let start = format!("\x1e{START_TAG} {token} ");
                let at = text
                    .find(&start)
                    .unwrap_or_else(|| panic!("{token} in {text:?}"));
                let rest = &text[at + start.len()..];
                let (group, body) = rest.split_once("\x1e\n").unwrap();
                let mut d =
                    crate::provider::output::StreamDecoder::new(token, OutputEncoding::Plain);
                d.end_at_trailer();
                let mut bytes = Vec::new();
                d.push(body.as_bytes(), &mut |b: &[u8]| bytes.extend_from_slice(b));
                (group.to_string(), bytes, d.exit_code())
            };
            let (group, out_a, code_a) = job("tok-a", &stdout);
            assert_eq!(code_a, Some(4));
            let text = String::from_utf8(out_a).unwrap();
            assert!(text.starts_with("v1\nbg "), "{text:?}");
            let bg: u32 = text.trim_start_matches("v1\nbg ").trim().parse().unwrap();
            let (_, err_a, _) = job("tok-a", &stderr);
            assert_eq!(err_a, b"e");
            // The job's own group (setsid) and what it left in it are gone once it is done.
            assert!(group.parse::<u32>().is_ok(), "{group:?}");
            // A SIGKILL is delivered when the target next runs: on a loaded machine, give it time.
            let dead = || {
                !std::path::Path::new(&format!("/proc/{bg}")).exists()
                    || std::fs::read_to_string(format!("/proc/{bg}/stat"))
                        .is_ok_and(|s| s.contains(") Z"))
            };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !dead() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            assert!(dead(), "the background child survived");
            assert!(!stdout.contains("late"));
            // Env of one job does not reach the next, nor do its positional parameters.
            let (_, out_b, code_b) = job("tok-b", &stdout);
            assert_eq!((out_b.as_slice(), code_b), (&b"[] 0\n"[..], Some(0)));
            // A job whose shell is killed gets its status from the loop.
            let (_, out_c, code_c) = job("tok-c", &stdout);
            assert_eq!((out_c.as_slice(), code_c), (&b""[..], Some(137)));
            assert!(out.status.success(), "the loop ends with its input");
        }
    }
}
