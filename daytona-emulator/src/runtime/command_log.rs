//! The log of one session command, as the daemon keeps it: one byte stream in which every line
//! of stdout is prefixed with `\x01\x01\x01` and every line of stderr with `\x02\x02\x02`.
//!
//! Lines are labelled as they complete, like the daemon's `while IFS= read -r line` labellers: a
//! partial line waits for its newline, at end of stream it is written with a `\n` added, and
//! NUL bytes are dropped (shell `read` cannot hold them). A partial line longer than
//! [`MAX_PENDING_LINE`] is written early, labelled but without a newline (the rest of the line
//! follows under a label of its own), so a program writing megabytes without a newline cannot
//! grow memory without bound and the bytes stay exactly what it wrote.
//!
//! The log lives in a file in the sandbox's daemon state dir. Readers learn how much of it is
//! complete, and whether the command has ended, from a watch channel.

use std::io;
use std::path::PathBuf;

use daytona_api::toolbox::{STDERR_MARKER, STDOUT_MARKER};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::watch;

/// Longest partial line held back waiting for its newline.
pub(crate) const MAX_PENDING_LINE: usize = 1024 * 1024;

/// Which stream a byte came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn marker(self) -> &'static [u8; 3] {
        match self {
            Stream::Stdout => STDOUT_MARKER,
            Stream::Stderr => STDERR_MARKER,
        }
    }
}

/// Turns one stream's raw bytes into labelled lines.
#[derive(Debug)]
pub(crate) struct Labeller {
    stream: Stream,
    pending: Vec<u8>,
    /// Part of the current line was written early: the line is open even with nothing
    /// pending, and still gets its newline at the end of the stream.
    open_line: bool,
}

impl Labeller {
    pub(crate) fn new(stream: Stream) -> Self {
        Labeller {
            stream,
            pending: Vec::new(),
            open_line: false,
        }
    }

    /// Append the labelled form of every line `data` completes to `out`.
    pub(crate) fn push(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let filtered;
        let mut rest = if data.contains(&0) {
            filtered = data
                .iter()
                .copied()
                .filter(|&b| b != 0)
                .collect::<Vec<u8>>();
            filtered.as_slice()
        } else {
            data
        };
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            out.extend_from_slice(self.stream.marker());
            out.extend_from_slice(&self.pending);
            out.extend_from_slice(&rest[..=nl]);
            self.pending.clear();
            self.open_line = false;
            rest = &rest[nl + 1..];
        }
        self.pending.extend_from_slice(rest);
        if self.pending.len() >= MAX_PENDING_LINE {
            out.extend_from_slice(self.stream.marker());
            out.extend_from_slice(&self.pending);
            self.pending.clear();
            self.open_line = true;
        }
    }

    /// Flush a final partial line, newline added, whether or not part of it was written
    /// early (so the result does not depend on how the output was chunked).
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.pending.is_empty() || self.open_line {
            out.extend_from_slice(self.stream.marker());
            out.extend_from_slice(&self.pending);
            out.push(b'\n');
            self.pending.clear();
            self.open_line = false;
        }
    }
}

/// How much of a log is written, and whether it is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LogProgress {
    /// Bytes written so far.
    pub len: u64,
    /// The command ended and everything it printed is in the log.
    pub done: bool,
}

/// A command's log file and its progress.
#[derive(Debug)]
pub(crate) struct CommandLog {
    path: PathBuf,
    progress: watch::Sender<LogProgress>,
    /// Held across each append and its length update, so with two writers (the output pump
    /// and echoed input) the published length always ends at a whole chunk.
    appending: tokio::sync::Mutex<()>,
}

impl CommandLog {
    /// Create an empty log at `path`.
    pub(crate) fn create(path: PathBuf) -> io::Result<Self> {
        std::fs::write(&path, b"")?;
        Ok(CommandLog {
            path,
            progress: watch::Sender::new(LogProgress::default()),
            appending: tokio::sync::Mutex::new(()),
        })
    }

    /// Current progress.
    pub(crate) fn progress(&self) -> LogProgress {
        *self.progress.borrow()
    }

    /// Follow progress changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<LogProgress> {
        self.progress.subscribe()
    }

    /// Open the log for appending.
    pub(crate) async fn writer(&self) -> io::Result<LogWriter<'_>> {
        let file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .await?;
        Ok(LogWriter { log: self, file })
    }

    /// Mark the log complete (the command ended). Also used when the command never ran.
    pub(crate) fn finish(&self) {
        self.progress.send_modify(|p| p.done = true);
    }

    /// Everything written so far (never a half-written chunk).
    pub(crate) async fn read_all(&self) -> io::Result<Vec<u8>> {
        let len = self.progress().len;
        let mut data = match tokio::fs::read(&self.path).await {
            Ok(d) => d,
            // Deleted with its session while we were reading: nothing left to show.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        data.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(data)
    }

    /// Up to `max` bytes starting at `offset`, within what is written.
    pub(crate) async fn read_at(&self, offset: u64, max: usize) -> io::Result<Vec<u8>> {
        let len = self.progress().len;
        if offset >= len {
            return Ok(Vec::new());
        }
        let want = usize::try_from(len - offset).unwrap_or(usize::MAX).min(max);
        let mut file = tokio::fs::File::open(&self.path).await?;
        file.seek(io::SeekFrom::Start(offset)).await?;
        let mut buf = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            let n = file.read(&mut buf[filled..]).await?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        Ok(buf)
    }
}

/// Appends to a [`CommandLog`] and publishes the new length after each write.
pub(crate) struct LogWriter<'a> {
    log: &'a CommandLog,
    file: tokio::fs::File,
}

impl LogWriter<'_> {
    /// Append `data` (already labelled).
    pub(crate) async fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let _turn = self.log.appending.lock().await;
        self.file.write_all(data).await?;
        self.file.flush().await?;
        let added = data.len() as u64;
        self.log.progress.send_modify(|p| p.len += added);
        Ok(())
    }
}

/// Split a labelled log into (stdout, stderr), dropping the markers. Bytes before the first
/// marker belong to neither stream.
pub(crate) fn demux(log: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut current: Option<Stream> = None;
    let mut i = 0;
    let mut segment_start = 0;
    let mut flush = |cur: Option<Stream>, seg: &[u8]| match cur {
        Some(Stream::Stdout) => out.extend_from_slice(seg),
        Some(Stream::Stderr) => err.extend_from_slice(seg),
        None => {}
    };
    while i < log.len() {
        let rest = &log[i..];
        let marker = if rest.starts_with(STDOUT_MARKER) {
            Some(Stream::Stdout)
        } else if rest.starts_with(STDERR_MARKER) {
            Some(Stream::Stderr)
        } else {
            None
        };
        match marker {
            Some(stream) => {
                flush(current, &log[segment_start..i]);
                current = Some(stream);
                i += 3;
                segment_start = i;
            }
            None => i += 1,
        }
    }
    flush(current, &log[segment_start..]);
    (out, err)
}

/// The log with every marker removed (the "combined" output of old SDKs).
pub(crate) fn strip_markers(log: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(log.len());
    let mut i = 0;
    while i < log.len() {
        let rest = &log[i..];
        if rest.starts_with(STDOUT_MARKER) || rest.starts_with(STDERR_MARKER) {
            i += 3;
        } else {
            out.push(log[i]);
            i += 1;
        }
    }
    out
}

/// Strips markers from a stream of chunks where a marker may be split across chunks.
#[derive(Debug, Default)]
pub(crate) struct MarkerStripper {
    carry: Vec<u8>,
}

impl MarkerStripper {
    /// The chunk without markers; a trailing partial marker (up to two bytes) is held back.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        let mut out = Vec::with_capacity(buf.len());
        let mut i = 0;
        while i < buf.len() {
            let rest = &buf[i..];
            if rest.starts_with(STDOUT_MARKER) || rest.starts_with(STDERR_MARKER) {
                i += 3;
                continue;
            }
            if rest.len() < 3
                && (STDOUT_MARKER.starts_with(rest) || STDERR_MARKER.starts_with(rest))
            {
                self.carry = rest.to_vec();
                break;
            }
            out.push(buf[i]);
            i += 1;
        }
        out
    }

    /// Whatever was held back (it was not a marker after all).
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.carry)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_labelled_and_a_final_partial_line_gets_a_newline() {
        let mut l = Labeller::new(Stream::Stdout);
        let mut out = Vec::new();
        l.push(b"a\nb", &mut out);
        assert_eq!(out, b"\x01\x01\x01a\n");
        l.push(b"c\nd", &mut out);
        assert_eq!(out, b"\x01\x01\x01a\n\x01\x01\x01bc\n");
        l.finish(&mut out);
        assert_eq!(out, b"\x01\x01\x01a\n\x01\x01\x01bc\n\x01\x01\x01d\n");
        l.finish(&mut out);
        assert_eq!(out.len(), 16);
    }

    #[test]
    fn overlong_partial_lines_are_flushed() {
        let mut l = Labeller::new(Stream::Stderr);
        let mut out = Vec::new();
        l.push(&vec![b'x'; MAX_PENDING_LINE], &mut out);
        assert_eq!(out.len(), MAX_PENDING_LINE + 3);
        assert!(out.starts_with(STDERR_MARKER));
        l.push(b"y\n", &mut out);
        l.finish(&mut out);
        // No newline was made up: the line reads back exactly.
        let (_, err) = demux(&out);
        assert_eq!(err.len(), MAX_PENDING_LINE + 2);
        assert!(err.ends_with(b"xy\n"));
    }

    #[test]
    fn a_final_line_flushed_early_still_gets_its_newline() {
        // However the unterminated last line was cut into early flushes, the stream ends
        // with the one newline the daemon adds.
        for tail in [0, 1, 4096] {
            let mut l = Labeller::new(Stream::Stdout);
            let mut out = Vec::new();
            l.push(&vec![b'x'; MAX_PENDING_LINE], &mut out);
            l.push(&vec![b'x'; tail], &mut out);
            l.finish(&mut out);
            let (stdout, _) = demux(&out);
            assert_eq!(stdout.len(), MAX_PENDING_LINE + tail + 1, "tail {tail}");
            assert!(stdout.ends_with(b"x\n"), "tail {tail}");
        }
    }

    #[test]
    fn nul_bytes_are_dropped_as_shell_read_drops_them() {
        let mut l = Labeller::new(Stream::Stdout);
        let mut out = Vec::new();
        l.push(b"a\0b\n\0", &mut out);
        l.finish(&mut out);
        assert_eq!(out, b"\x01\x01\x01ab\n");
    }

    #[test]
    fn demux_and_strip() {
        let log = b"\x01\x01\x01out1\n\x02\x02\x02err1\n\x01\x01\x01out2\n";
        let (o, e) = demux(log);
        assert_eq!(o, b"out1\nout2\n");
        assert_eq!(e, b"err1\n");
        assert_eq!(strip_markers(log), b"out1\nerr1\nout2\n");
    }

    #[test]
    fn stripping_survives_markers_split_across_chunks() {
        let log = b"\x01\x01\x01hello\n\x02\x02\x02oops\n";
        for split in 0..log.len() {
            let mut s = MarkerStripper::default();
            let mut got = s.push(&log[..split]);
            got.extend(s.push(&log[split..]));
            got.extend(s.finish());
            assert_eq!(got, b"hello\noops\n", "split at {split}");
        }
        let mut s = MarkerStripper::default();
        let mut got = s.push(b"x\x01");
        got.extend(s.finish());
        assert_eq!(got, b"x\x01");
    }

    #[tokio::test]
    async fn log_file_reads_only_what_was_published() {
        let dir = tempfile::tempdir().unwrap();
        let log = CommandLog::create(dir.path().join("l")).unwrap();
        let mut w = log.writer().await.unwrap();
        w.append(b"hello world").await.unwrap();
        assert_eq!(log.read_all().await.unwrap(), b"hello world");
        assert_eq!(log.read_at(6, 3).await.unwrap(), b"wor");
        assert_eq!(log.read_at(11, 3).await.unwrap(), b"");
        assert!(!log.progress().done);
        log.finish();
        assert!(log.progress().done);
    }
}
