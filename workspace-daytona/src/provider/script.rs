//! The shell text sent as a session command, the encoding of its output, and how to read the
//! caller's command line back out of it.
//!
//! Layout, always three parts on their own lines:
//!
//! ```text
//! eval "$(printf '%s' '<base64 setup>' | base64 -d)" && cd -- '<cwd>' && (
//! <the caller's command line>
//! ) < /dev/null > "$__ws_d/o" 2> "$__ws_d/e"; __ws_finish $?
//! ```
//!
//! Why each part:
//! - **Output is base64, line by line.** Daytona's daemon labels its session logs line by line:
//!   it appends a newline to a last line that had none, and its shell labellers cannot carry NUL
//!   bytes. So the command's stdout and stderr each go through a FIFO into an encoder that
//!   reads whatever is available (`dd` with one read per block, so output streams as it is
//!   written) and prints it as base64 lines, which survive labelling exactly;
//!   [`LineDecoder`] turns them back into bytes. Lines that are not base64 (a shell
//!   diagnostic from the wrapper itself) pass through as they are.
//! - **The setup travels base64-encoded** (per-command env exports, the encoders, the stdin
//!   relay), because Daytona stores session command text and shows it in listings and logs:
//!   env values never appear there in clear text. Base64 is an encoding, not encryption:
//!   whoever can read the stored command with the API key can decode it, as they could read
//!   the sandbox's environment anyway.
//! - **The caller's line runs in a subshell** on lines of its own: `exit N` ends the command,
//!   not the session shell (which must survive to record the exit code), and a trailing comment
//!   or heredoc cannot swallow the closing parenthesis. `__ws_finish` returns its status.
//! - **Stdin is `/dev/null`** unless the caller sends input. Input then goes through a relay: a
//!   background loop reads base64 lines from the session command's stdin, decodes each into a
//!   FIFO the command reads, and stops at a line holding only `.` — how stdin gets closed, as
//!   Daytona's input route has no end-of-file of its own.
//! - **Draining is bounded**: after the command exits, the encoders get [`DRAIN_SECS`] to
//!   forward what children still holding its output write, then they are stopped, so a
//!   command that leaves a daemon behind still returns.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use workspace_core::shell_quote;

/// The line that closes the relay's input.
pub(crate) const STDIN_EOF_LINE: &str = ".\n";
/// Raw bytes per relay line: 48 KiB encodes to 64 KiB of base64, a line any shell reads.
pub(crate) const STDIN_CHUNK: usize = 48 * 1024;
/// Seconds the output encoders may keep forwarding after the command exited.
pub(crate) const DRAIN_SECS: u32 = 2;
/// The variable the relay sets; its presence in the footer's setup marks relayed stdin.
const RELAY_VAR: &str = "__ws_relay";
/// What the footer starts with.
const FOOTER_START: &str = ") < ";

/// Where the command's stdin comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StdinMode {
    /// `/dev/null`.
    Closed,
    /// The relay, fed with [`encode_stdin`] lines and closed with [`STDIN_EOF_LINE`].
    Relay,
}

/// The session command text for `line`, run in `cwd` with `env` exported and stdin per
/// `stdin`. `token` names its scratch directory (unique per session).
pub(crate) fn build(
    line: &str,
    env: &BTreeMap<String, String>,
    cwd: &str,
    stdin: StdinMode,
    token: &str,
) -> String {
    let mut setup = String::new();
    for (k, v) in env {
        setup.push_str(&format!("export {k}={}\n", shell_quote(v)));
    }
    let dir = shell_quote(&format!(".ws-{token}"));
    // The encoder: one read of whatever is available, as base64 lines (76 characters, so each
    // line decodes on its own), until end of file.
    setup.push_str(
        "__ws_enc() { while :; do __ws_c=$(dd bs=65536 count=1 2>/dev/null | base64) \
         || return 0; [ -n \"$__ws_c\" ] || return 0; printf '%s\\n' \"$__ws_c\"; done; }\n",
    );
    setup.push_str(&format!(
        "__ws_finish() {{ __ws_ec=$1; \
         ( sleep {DRAIN_SECS}; kill $__ws_po $__ws_pe 2>/dev/null ) >/dev/null 2>&1 & __ws_k=$!; \
         wait $__ws_po $__ws_pe 2>/dev/null; kill $__ws_k 2>/dev/null; \
         [ -n \"${{{RELAY_VAR}:-}}\" ] && kill \"${RELAY_VAR}\" 2>/dev/null; \
         rm -rf \"$__ws_d\"; return \"$__ws_ec\"; }} 2>/dev/null\n"
    ));
    setup.push_str(&format!(
        "__ws_setup() {{ __ws_d=\"${{TMPDIR:-/tmp}}\"/{dir} && rm -rf \"$__ws_d\" && \
         mkdir -m 700 \"$__ws_d\" && mkfifo \"$__ws_d/o\" \"$__ws_d/e\" || return 1; \
         __ws_enc < \"$__ws_d/o\" & __ws_po=$!; \
         __ws_enc < \"$__ws_d/e\" >&2 & __ws_pe=$!; "
    ));
    if stdin == StdinMode::Relay {
        // `read` stops at each newline, so one line is one base64 chunk; `.` ends the input.
        setup.push_str(&format!(
            "mkfifo \"$__ws_d/i\" || return 1; exec 3<&0; \
             ( while IFS= read -r __ws_l <&3; do [ \"$__ws_l\" = . ] && break; \
             printf '%s' \"$__ws_l\" | base64 -d; done ) > \"$__ws_d/i\" & {RELAY_VAR}=$!; "
        ));
    }
    setup.push_str("return 0; }\n__ws_setup\n");

    let stdin_from = match stdin {
        StdinMode::Closed => "/dev/null",
        StdinMode::Relay => "\"$__ws_d/i\"",
    };
    format!(
        "eval \"$(printf '%s' '{}' | base64 -d)\" && cd -- {} && (\n{line}\n{FOOTER_START}{stdin_from} \
         > \"$__ws_d/o\" 2> \"$__ws_d/e\"; __ws_finish $?",
        STANDARD.encode(setup.as_bytes()),
        shell_quote(cwd),
    )
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

/// The caller's command line inside a text [`build`] made, or `None` for other text.
pub(crate) fn user_line(script: &str) -> Option<&str> {
    let (header, rest) = script.split_once('\n')?;
    let (line, footer) = rest.rsplit_once('\n')?;
    let ours = header.starts_with("eval \"$(printf '%s' '")
        && header.ends_with(" && (")
        && footer.starts_with(FOOTER_START)
        && footer.ends_with("__ws_finish $?");
    ours.then_some(line)
}

/// Whether a text [`build`] made relays stdin.
pub(crate) fn relays_stdin(script: &str) -> bool {
    script.rsplit_once('\n').is_some_and(|(_, footer)| {
        footer.starts_with(FOOTER_START) && footer.contains("\"$__ws_d/i\"")
    })
}

/// Turns one stream of encoded output (base64 lines, in pieces of any size) back into the
/// command's bytes.
#[derive(Debug, Default)]
pub(crate) struct LineDecoder {
    partial: Vec<u8>,
}

impl LineDecoder {
    /// Decode every line `data` completes, appending the bytes to `out`.
    pub(crate) fn push(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                decode_line(&rest[..nl], out);
            } else {
                self.partial.extend_from_slice(&rest[..nl]);
                let line = std::mem::take(&mut self.partial);
                decode_line(&line, out);
            }
            rest = &rest[nl + 1..];
        }
        self.partial.extend_from_slice(rest);
    }

    /// End of the stream: a last line without its newline.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        let line = std::mem::take(&mut self.partial);
        if !line.is_empty() {
            decode_line(&line, out);
        }
    }
}

fn decode_line(line: &[u8], out: &mut Vec<u8>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return;
    }
    match STANDARD.decode(line) {
        Ok(bytes) => out.extend_from_slice(&bytes),
        Err(_) => {
            // Not from the encoder: a diagnostic of the wrapper's own shell.
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
}

/// Decode a whole encoded stream.
pub(crate) fn decode_all(encoded: &[u8]) -> Vec<u8> {
    let mut d = LineDecoder::default();
    let mut out = Vec::with_capacity(encoded.len() * 3 / 4);
    d.push(encoded, &mut out);
    d.finish(&mut out);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    /// Run a built script under `sh`, decoding its output as the provider does.
    fn sh(script: &str, input: &[u8]) -> (i32, Vec<u8>, Vec<u8>) {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            decode_all(&out.stdout),
            decode_all(&out.stderr),
        )
    }

    fn tmp_token(name: &str) -> String {
        format!("unit-{name}-{}", std::process::id())
    }

    #[test]
    fn exact_bytes_and_exit_codes_come_back() {
        let script = build(
            r"printf 'no newline'; printf '\000\377\n' >&2; exit 7",
            &BTreeMap::new(),
            "/",
            StdinMode::Closed,
            &tmp_token("exact"),
        );
        let (code, out, err) = sh(&script, b"");
        assert_eq!(code, 7);
        assert_eq!(out, b"no newline");
        assert_eq!(err, b"\x00\xff\n");
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
        let script = build(line, &env, cwd, StdinMode::Closed, &tmp_token("env"));
        assert!(!script.contains("s3cr3t"), "{script}");
        assert_eq!(user_line(&script), Some(line));
        assert!(!relays_stdin(&script));
        let (code, out, _) = sh(&script, b"");
        assert_eq!(code, 0);
        let out = String::from_utf8(out).unwrap();
        let physical = dir.path().canonicalize().unwrap();
        assert!(
            out == format!("s3cr3t 'quoted' $HOME\nline2|set|{cwd}\n")
                || out == format!("s3cr3t 'quoted' $HOME\nline2|set|{}\n", physical.display()),
            "{out:?}"
        );
    }

    #[test]
    fn stdin_is_closed_by_default_and_comments_do_not_swallow_the_footer() {
        let script = build(
            "cat; echo done # trailing comment",
            &BTreeMap::new(),
            "/",
            StdinMode::Closed,
            &tmp_token("closed"),
        );
        let (code, out, _) = sh(&script, b"must not be read");
        assert_eq!((code, out.as_slice()), (0, b"done\n".as_slice()));
    }

    #[test]
    fn relay_carries_binary_input_and_closes_on_the_eof_line() {
        let data: Vec<u8> = (0..STDIN_CHUNK * 2 + 17)
            .map(|i| (i * 7 % 256) as u8)
            .collect();
        let script = build(
            "cat; echo after",
            &BTreeMap::new(),
            "/",
            StdinMode::Relay,
            &tmp_token("relay"),
        );
        assert!(relays_stdin(&script));
        assert_eq!(user_line(&script), Some("cat; echo after"));
        let mut input = encode_stdin(&data).concat();
        input.push_str(STDIN_EOF_LINE);
        input.push_str("ignored after the end\n");
        let (code, out, err) = sh(&script, input.as_bytes());
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
        let mut want = data;
        want.extend_from_slice(b"after\n");
        assert!(out == want, "got {} bytes, want {}", out.len(), want.len());
    }

    #[test]
    fn relay_ends_when_the_command_exits_first() {
        let script = build(
            "exit 3",
            &BTreeMap::new(),
            "/",
            StdinMode::Relay,
            &tmp_token("early"),
        );
        // Stdin stays open (no EOF line): the command must still finish and keep its code.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&script)
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
    fn a_child_holding_the_output_delays_the_end_by_the_drain_bound_only() {
        let script = build(
            "sleep 30 & echo held",
            &BTreeMap::new(),
            "/",
            StdinMode::Closed,
            &tmp_token("drain"),
        );
        let started = std::time::Instant::now();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id();
        let mut stdout = child.stdout.take().unwrap();
        let status = child.wait().unwrap();
        let elapsed = started.elapsed();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut raw).unwrap();
        assert_eq!(status.code(), Some(0));
        assert_eq!(decode_all(&raw), b"held\n");
        assert!(
            elapsed < std::time::Duration::from_secs(u64::from(DRAIN_SECS) + 3),
            "{elapsed:?}"
        );
    }

    #[test]
    fn decoder_handles_any_split_and_foreign_lines() {
        let mut encoded = Vec::new();
        for chunk in [&b"hello "[..], b"\x00\xff", b"world\n"] {
            encoded.extend_from_slice(STANDARD.encode(chunk).as_bytes());
            encoded.push(b'\n');
        }
        encoded.extend_from_slice(b"sh: 1: mkfifo: not found\n");
        let whole = decode_all(&encoded);
        assert_eq!(whole, b"hello \x00\xffworld\nsh: 1: mkfifo: not found\n");
        for i in 0..encoded.len() {
            let mut d = LineDecoder::default();
            let mut out = Vec::new();
            d.push(&encoded[..i], &mut out);
            d.push(&encoded[i..], &mut out);
            d.finish(&mut out);
            assert_eq!(out, whole, "split at {i}");
        }
    }

    #[test]
    fn foreign_text_has_no_user_line() {
        assert_eq!(user_line("echo hi"), None);
        assert_eq!(user_line("a\nb\nc"), None);
    }
}
