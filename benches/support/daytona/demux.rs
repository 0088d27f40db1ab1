//! Log demultiplexer throughput, in memory: a marker-laden session log (every line labelled
//! stdout or stderr, as the daemon writes it) fed in frames of a fixed size, for two kinds of
//! text.
//!
//! Three consumers: `Demuxer` (text per stream, what `LogStream` uses), `RawDemuxer` (bytes per
//! stream), and what `DaytonaSandbox::execute_command` does per frame — `RawDemuxer`, then per
//! stream the capped buffer plus UTF-8 decoding for the callback.

use std::hint::black_box;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use workspace_core::output::{CappedBuffer, Utf8Decoder};
use workspace_daytona::demux::{Demuxer, OutputStream, RawDemuxer};

use super::child;
use crate::support::stats::{mb_per_s, median_f64};

/// Which consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Consumer {
    /// `Demuxer`, text out.
    Text,
    /// `RawDemuxer`, bytes out.
    Raw,
    /// `RawDemuxer` + 1 MiB caps + UTF-8 decoding for callbacks, as the provider does.
    Provider,
}

impl Consumer {
    /// Every consumer, in table order.
    pub const ALL: [Consumer; 3] = [Consumer::Text, Consumer::Raw, Consumer::Provider];

    /// How tables name it.
    pub fn label(self) -> &'static str {
        match self {
            Consumer::Text => "`Demuxer` (text)",
            Consumer::Raw => "`RawDemuxer` (bytes)",
            Consumer::Provider => "provider path (raw + caps + UTF-8 for callbacks)",
        }
    }
}

/// One cell of the table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemuxFigure {
    /// The log's text.
    pub mix: Mix,
    /// Consumer.
    pub consumer: Consumer,
    /// Frame size, bytes.
    pub frame: usize,
    /// Median MiB/s.
    pub mb_per_s: f64,
}

/// Frame sizes measured: the daemon's 1 KiB reads, and large frames.
pub const FRAMES: [usize; 2] = [1024, 64 * 1024];

/// [`measure`] in a child process of its own (a clean heap, nothing else running in it).
pub async fn measure_in_child(total: usize, reps: usize) -> super::Result<Vec<DemuxFigure>> {
    child::run(
        "demux",
        &[
            ("DAYTONA_BENCH_DEMUX_BYTES", total.to_string()),
            ("DAYTONA_BENCH_DEMUX_REPS", reps.to_string()),
        ],
    )
    .await
}

/// The `demux` role (also handy under a profiler:
/// `DAYTONA_BENCH_ROLE=demux DAYTONA_BENCH_DEMUX_BYTES=… DAYTONA_BENCH_DEMUX_REPS=… <bench exe>`).
pub fn child_main() -> super::Result<()> {
    let number = |name: &str| -> super::Result<usize> {
        let v = child::setting(name)?;
        v.parse()
            .map_err(|_| format!("{name}={v:?} is not a number").into())
    };
    let figures = measure(
        number("DAYTONA_BENCH_DEMUX_BYTES")?,
        number("DAYTONA_BENCH_DEMUX_REPS")?,
    )?;
    child::answer(&figures)
}

/// Every mix × consumer × frame size over a `total`-byte log, `reps` times each (median).
pub fn measure(total: usize, reps: usize) -> Result<Vec<DemuxFigure>, String> {
    let mut figures = Vec::new();
    for mix in Mix::ALL {
        let log = build_log(total, mix);
        let mut want = (0u64, 0u64);
        RawDemuxer::new().push(&log, |s, b| match s {
            OutputStream::Stdout => want.0 += b.len() as u64,
            OutputStream::Stderr => want.1 += b.len() as u64,
        });
        for frame in FRAMES {
            let mut runs: Vec<Vec<f64>> = vec![Vec::new(); Consumer::ALL.len()];
            for _ in 0..reps {
                // Interleave the consumers rep by rep.
                for (i, consumer) in Consumer::ALL.into_iter().enumerate() {
                    let t = Instant::now();
                    let got = run(consumer, &log, frame);
                    let elapsed = t.elapsed();
                    check(consumer, got, want)?;
                    runs[i].push(mb_per_s(log.len() as u64, elapsed));
                }
            }
            for (i, consumer) in Consumer::ALL.into_iter().enumerate() {
                figures.push(DemuxFigure {
                    mix,
                    consumer,
                    frame,
                    mb_per_s: median_f64(&mut runs[i]),
                });
            }
        }
    }
    Ok(figures)
}

fn check(consumer: Consumer, got: (u64, u64), want: (u64, u64)) -> Result<(), String> {
    // Text output may differ in length only where UTF-8 was cut (never, in this log).
    if got != want {
        return Err(format!(
            "{consumer:?} split the log into {got:?} bytes, the reference into {want:?}"
        ));
    }
    Ok(())
}

/// Bytes of (stdout, stderr) the consumer produced.
fn run(consumer: Consumer, log: &[u8], frame: usize) -> (u64, u64) {
    let mut n = (0u64, 0u64);
    match consumer {
        Consumer::Text => {
            let mut d = Demuxer::new();
            let mut sink = |s: OutputStream, t: String| match s {
                OutputStream::Stdout => n.0 += black_box(t).len() as u64,
                OutputStream::Stderr => n.1 += black_box(t).len() as u64,
            };
            for f in log.chunks(frame) {
                d.push(f, &mut sink);
            }
            d.finish(&mut sink);
        }
        Consumer::Raw => {
            let mut d = RawDemuxer::new();
            let mut sink = |s: OutputStream, b: &[u8]| match s {
                OutputStream::Stdout => n.0 += black_box(b).len() as u64,
                OutputStream::Stderr => n.1 += black_box(b).len() as u64,
            };
            for f in log.chunks(frame) {
                d.push(f, &mut sink);
            }
            d.finish(&mut sink);
        }
        Consumer::Provider => {
            let mut d = RawDemuxer::new();
            let mut kept = [CappedBuffer::new(1 << 20), CappedBuffer::new(1 << 20)];
            let mut dec = [Utf8Decoder::default(), Utf8Decoder::default()];
            let mut sink = |s: OutputStream, b: &[u8]| {
                let i = usize::from(s == OutputStream::Stderr);
                kept[i].push(b);
                let text = dec[i].decode(b);
                if i == 0 {
                    n.0 += black_box(text).len() as u64;
                } else {
                    n.1 += black_box(text).len() as u64;
                }
            };
            for f in log.chunks(frame) {
                d.push(f, &mut sink);
            }
            d.finish(&mut sink);
        }
    }
    n
}

/// What the log's text is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mix {
    /// Like build and test output: ASCII, with a two- or three-byte character on one line in 50.
    MostlyAscii,
    /// A multi-byte character in about every third word (UTF-8 validation's slow path).
    Utf8Heavy,
}

impl Mix {
    /// Both mixes, in table order.
    pub const ALL: [Mix; 2] = [Mix::MostlyAscii, Mix::Utf8Heavy];
}

/// A session log of `total` bytes: lines of 20–160 characters, each labelled with a stdout or
/// stderr marker at random (the worst case for a demuxer: a stream switch every other line).
pub fn build_log(total: usize, mix: Mix) -> Vec<u8> {
    const ASCII: [&str; 8] = [
        "build ",
        "ok ",
        "warning: ",
        "test ",
        "--> ",
        "42 ",
        "src/main.rs ",
        "passed ",
    ];
    const WIDE: [&str; 3] = ["été ", "→ ", "☃ "];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut log = Vec::with_capacity(total + 256);
    let mut line = 0u64;
    while log.len() < total {
        let r = next();
        line += 1;
        log.extend_from_slice(if r & 1 == 0 {
            b"\x01\x01\x01"
        } else {
            b"\x02\x02\x02"
        });
        let len = 20 + (r >> 8) as usize % 140;
        let start = log.len();
        if mix == Mix::MostlyAscii && line.is_multiple_of(50) {
            log.extend_from_slice(WIDE[(line / 50 % 3) as usize].as_bytes());
        }
        while log.len() - start < len {
            let w = next();
            let word = match mix {
                Mix::Utf8Heavy if w % 3 == 0 => WIDE[(w >> 8) as usize % WIDE.len()],
                _ => ASCII[(w >> 8) as usize % ASCII.len()],
            };
            log.extend_from_slice(word.as_bytes());
        }
        log.push(b'\n');
    }
    log
}
