//! Output volume and streaming: the caps retain head and tail and count the rest exactly,
//! nothing deadlocks, and callbacks see every byte of the right stream as it happens.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::probe::{assert_success, clip, exec_with, opts, sh_ok};
use crate::command::{CommandResult, DEFAULT_OUTPUT_LIMIT};
use crate::sandbox::WorkspaceSandbox;

/// 50 MiB: far more than any pipe buffer or default cap.
const LARGE: u64 = 50 * 1024 * 1024;

/// Large transfers may be slow against a remote provider, but must finish.
const LARGE_DEADLINE: Duration = Duration::from_secs(600);

/// A command writing `START`, `LARGE` copies of `fill`, then `END` (`LARGE + 8` bytes).
fn large_command(fill: char) -> String {
    format!("printf START; head -c {LARGE} /dev/zero | tr '\\0' {fill}; printf END")
}

/// Check a capped stream: within the cap, head and tail kept, the rest counted exactly.
fn assert_capped(
    what: &str,
    text: &str,
    truncated: bool,
    dropped: u64,
    cap: usize,
    total: u64,
    fill: char,
) {
    assert!(
        text.len() <= cap,
        "{what}: retained {} bytes, over the cap of {cap}",
        text.len()
    );
    assert!(truncated, "{what}: should be marked truncated");
    assert_eq!(
        dropped,
        total - text.len() as u64,
        "{what}: dropped bytes must be exactly total ({total}) minus retained ({})",
        text.len()
    );
    assert!(
        text.starts_with("START"),
        "{what}: the head is kept: {}",
        clip(text)
    );
    assert!(
        text.ends_with("END"),
        "{what}: the tail is kept: {}",
        clip(text)
    );
    let middle = &text[5..text.len() - 3];
    assert!(
        middle.chars().all(|c| c == fill),
        "{what}: unexpected bytes in the retained output"
    );
}

async fn run_large(
    sandbox: &dyn WorkspaceSandbox,
    command: &str,
    cap: Option<usize>,
    counted: Option<Arc<AtomicU64>>,
) -> CommandResult {
    let mut options = opts().timeout(LARGE_DEADLINE);
    if let Some(cap) = cap {
        options = options.output_limit(cap);
    }
    if let Some(counter) = counted {
        options = options.on_stdout(move |chunk| {
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        });
    }
    let started = Instant::now();
    let r = exec_with(sandbox, command, &[], options).await;
    eprintln!("large output: `{command}` took {:?}", started.elapsed());
    assert!(
        !r.timed_out,
        "`{command}` did not finish within {LARGE_DEADLINE:?}"
    );
    assert_success(command, &r);
    r
}

/// 50 MiB of stdout under the default cap (1 MiB): no deadlock, head and tail kept, the rest
/// counted exactly. Also `yes | head -c 5M`, whose writer dies of SIGPIPE.
pub async fn large_output_default_cap(sandbox: &dyn WorkspaceSandbox) {
    let command = large_command('a');
    let r = run_large(sandbox, &command, None, None).await;
    assert_capped(
        "stdout",
        &r.stdout,
        r.stdout_truncated,
        r.stdout_dropped_bytes,
        DEFAULT_OUTPUT_LIMIT,
        LARGE + 8,
        'a',
    );
    assert_eq!(r.stderr, "");
    assert!(!r.stderr_truncated);

    let command = "yes | head -c 5242880";
    let r = run_large(sandbox, command, None, None).await;
    assert!(r.stdout.len() <= DEFAULT_OUTPUT_LIMIT);
    assert!(r.stdout_truncated);
    assert_eq!(r.stdout_dropped_bytes, 5_242_880 - r.stdout.len() as u64);
    assert!(r.stdout.starts_with("y\ny\n") && r.stdout.ends_with("y\n"));
}

/// 50 MiB under an explicit small cap; the streaming callback still sees every byte.
pub async fn large_output_small_cap(sandbox: &dyn WorkspaceSandbox) {
    let cap = 100_001; // odd, so head and tail halves differ
    let seen = Arc::new(AtomicU64::new(0));
    let command = large_command('b');
    let r = run_large(sandbox, &command, Some(cap), Some(seen.clone())).await;
    assert_capped(
        "stdout",
        &r.stdout,
        r.stdout_truncated,
        r.stdout_dropped_bytes,
        cap,
        LARGE + 8,
        'b',
    );
    assert_eq!(
        seen.load(Ordering::Relaxed),
        LARGE + 8,
        "the stdout callback must see every byte, cap or not"
    );
}

/// The same on stderr, with a small stdout alongside that is neither truncated nor mixed in.
pub async fn large_stderr(sandbox: &dyn WorkspaceSandbox) {
    let cap = 65_536;
    let command = format!("echo out; {{ {}; }} >&2", large_command('e'));
    let r = run_large(sandbox, &command, Some(cap), None).await;
    assert_capped(
        "stderr",
        &r.stderr,
        r.stderr_truncated,
        r.stderr_dropped_bytes,
        cap,
        LARGE + 8,
        'e',
    );
    assert_eq!(r.stdout, "out\n");
    assert!(!r.stdout_truncated);
    assert_eq!(r.stdout_dropped_bytes, 0);
}

type Events = Arc<Mutex<Vec<(Duration, String)>>>;

fn collector(events: &Events, started: Instant) -> impl Fn(&str) + Send + Sync + 'static {
    let events = events.clone();
    move |chunk: &str| {
        events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((started.elapsed(), chunk.to_string()));
    }
}

fn joined(events: &Events) -> String {
    events
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(_, s)| s.as_str())
        .collect()
}

/// Callbacks receive output while the command runs, not at the end, each on its own stream,
/// and together they equal the result.
pub async fn streaming_callbacks(sandbox: &dyn WorkspaceSandbox) {
    sh_ok(sandbox, "true").await;
    let out: Events = Arc::default();
    let err: Events = Arc::default();
    let started = Instant::now();
    let options = opts()
        .on_stdout(collector(&out, started))
        .on_stderr(collector(&err, started));
    let command = "echo a; echo e1 >&2; sleep 2; echo b; echo e2 >&2";
    let r = exec_with(sandbox, command, &[], options).await;
    let ended = started.elapsed();
    assert_success(command, &r);
    assert_eq!(r.stdout, "a\nb\n");
    assert_eq!(r.stderr, "e1\ne2\n");

    let first_a = out
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(_, s)| s.contains('a'))
        .map(|(t, _)| *t)
        .unwrap_or_else(|| panic!("the stdout callback never saw `a`"));
    eprintln!("streaming_callbacks: `a` arrived at {first_a:?}, the command ended at {ended:?}");
    assert!(
        ended.saturating_sub(first_a) > Duration::from_secs(1),
        "`a` reached the callback at {first_a:?}, only just before the end at {ended:?}: \
         output is not streamed"
    );
    assert_eq!(joined(&out), r.stdout, "stdout callback text vs result");
    assert_eq!(joined(&err), r.stderr, "stderr callback text vs result");
}

/// Interleaved writes to both streams reach the right callback in order, and multi-byte
/// characters are never split or replaced, however the reads are chunked.
pub async fn callbacks_route_streams(sandbox: &dyn WorkspaceSandbox) {
    let out: Events = Arc::default();
    let err: Events = Arc::default();
    let started = Instant::now();
    let options = opts()
        .on_stdout(collector(&out, started))
        .on_stderr(collector(&err, started));
    let command = r#"i=0
while [ $i -lt 300 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done
yes '✓✓✓ü' | head -n 30000"#;
    let r = exec_with(sandbox, command, &[], options).await;
    assert_success("interleaved writer", &r);

    let mut want_out: String = (0..300).map(|i| format!("out {i}\n")).collect();
    want_out.push_str(&"✓✓✓ü\n".repeat(30000));
    let want_err: String = (0..300).map(|i| format!("err {i}\n")).collect();
    assert!(
        !r.stdout.contains('\u{FFFD}'),
        "a character was split or replaced"
    );
    assert!(r.stdout == want_out, "stdout differs: {}", clip(&r.stdout));
    assert_eq!(r.stderr, want_err);
    let got_out = joined(&out);
    assert!(
        got_out == want_out,
        "stdout callback text differs: {}",
        clip(&got_out)
    );
    assert_eq!(joined(&err), want_err);
}
