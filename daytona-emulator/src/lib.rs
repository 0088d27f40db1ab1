//! # daytona-emulator
//!
//! A local server that speaks Daytona's control-plane API (under `/api`) and toolbox API (under
//! `/toolbox/{sandboxId}`), so that the Rust client, `DaytonaSandbox` and the official TypeScript
//! SDK can be tested over real HTTP and WebSocket without the cloud.
//!
//! **Emulated sandboxes are not isolated from the host.** Commands are real local processes,
//! confined with bubblewrap when it is installed, never with a VM or container.
//!
//! ```no_run
//! # async fn demo() -> Result<(), daytona_emulator::EmulatorError> {
//! use std::time::Duration;
//! let emulator = daytona_emulator::Emulator::builder()
//!     .api_key("test-key")
//!     .auto_stop_unit(Duration::from_millis(100)) // one emulated minute
//!     .start()
//!     .await?;
//! println!("apiUrl = {}", emulator.api_url()); // http://127.0.0.1:PORT/api
//! emulator.shutdown().await; // kills every sandbox process, removes the temp data dir
//! # Ok(()) }
//! ```
//!
//! What it serves:
//! - `/api/sandbox...`: create, get, list (cursor and deprecated page-based), delete, start,
//!   stop, archive, recover, labels, auto-stop/archive/delete, TTL, public, network settings,
//!   resize, last-activity, toolbox-proxy-url, build logs, preview URLs — see [`api`].
//! - `/api/snapshots...` ([`snapshots`]) and `/api/volumes...` ([`volumes`]).
//! - `/api/socket.io/`: a minimal socket.io server pushing `sandbox.*` events.
//! - `/toolbox/{sandboxId}/...`: the daemon API (processes, sessions, PTYs, code run, git,
//!   files) — see [`toolbox`].
//! - `/_emulator/preview...`: preview links, forwarded to servers inside sandboxes
//!   ([`preview`]).
//! - `/_emulator/...`: test control (request log, fault rules, sandbox inspection, stopping or
//!   failing a sandbox underneath its client), without authentication.
//!
//! **Images are never pulled or built**: a create from an image walks its Dockerfile as an
//! emulated build with real states and a real log stream, and the sandbox runs on this
//! machine's own system — see [`build`].
//!
//! ## Internal seams (who owns what)
//! Modules form layers, each using only the ones below it (no cycles; a test checks):
//! - [`server`]: [`Emulator`] builder, [`EmulatorHandle`], the accept loop; `detached`: one
//!   emulator for a whole test binary ([`EmulatorBuilder::start_detached`],
//!   [`process_data_dir`]).
//! - [`api`]: control-plane routes (`/api/...`), socket.io, auth, fault and log layers;
//!   [`toolbox`]: the daemon's routes.
//! - [`lifecycle`]: sandbox state transitions (image builds included) and the auto-stop,
//!   auto-archive, auto-delete and TTL ticker; [`snapshots`], [`volumes`], [`preview`]: their
//!   routes' rules; `provision`: a sandbox's directories and runtime.
//! - [`state`]: the emulator's shared state ([`state::AppState`]): sandboxes, settings, the
//!   event bus. Hands the toolbox a [`state::ToolboxTarget`].
//! - [`runtime`]: [`runtime::SandboxRuntime`], the sessions, PTYs and processes alive in one
//!   sandbox; `registries`: snapshot, volume and preview records; [`build`]: Dockerfile
//!   reading, emulated build steps and build logs; [`faults`] and [`request_log`]; [`layout`]:
//!   a sandbox's directory on the host, the mapping between sandbox paths and host paths
//!   (confinement), and how a command line becomes a local process (bwrap or plain).
//! - [`ConnHandle`] (one connection), [`defaults`] (what a create leaves out), [`error`] (API
//!   and daemon error bodies), lock and timestamp helpers.

pub mod api;
pub mod build;
mod conn;
pub mod defaults;
mod detached;
pub mod error;
pub mod faults;
pub mod layout;
pub mod lifecycle;
pub mod preview;
mod provision;
mod registries;
pub mod request_log;
pub mod runtime;
pub mod server;
pub mod snapshots;
pub mod state;
mod sync;
mod timestamp;
mod tls;
pub mod toolbox;
pub mod volumes;

pub use conn::ConnHandle;
pub use detached::process_data_dir;
pub use error::{ApiError, ErrorSource};
pub use faults::{FaultAction, FaultRule, InstalledFault, WsDrop};
pub use request_log::RequestRecord;
pub use server::{
    EMULATOR_ORGANIZATION_ID, Emulator, EmulatorBuilder, EmulatorError, EmulatorHandle,
};
pub use state::{AppState, ToolboxTarget};
