//! Code shared by the benches (`benches/local.rs`, `benches/daytona.rs`): percentiles, the
//! machine line, writing a section of `BENCHMARKS.md`, and the local provider's measurements
//! (which the Daytona bench re-runs so one command refreshes every figure).

pub mod local;
pub mod report;
pub mod stats;
