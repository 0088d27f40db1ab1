//! The parts of `benches/daytona.rs`: the processes it runs (the emulator, the TypeScript SDK
//! worker, its own children for figures that need a clean process), and one module per
//! measurement.

pub mod child;
pub mod create_first;
pub mod demux;
pub mod emulator;
pub mod network;
pub mod node;
pub mod plot;
pub mod round_trip;
pub mod scale;
pub mod transfer;
pub mod usage;

/// What every part of the bench returns on failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A bench result.
pub type Result<T> = std::result::Result<T, BoxError>;

/// The API key the emulator requires and every client sends.
pub const API_KEY: &str = "bench-key";
