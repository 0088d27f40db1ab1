//! # daytona-api
//!
//! Daytona's wire types, written from the published OpenAPI specs (`api.json`, `toolbox.json`):
//! control-plane DTOs in [`sandbox`], [`snapshot`] and [`volume`]; toolbox (daemon) DTOs in
//! [`toolbox`], [`pty`], [`code_run`] and [`git`]. JSON field names are exactly the wire's
//! (camelCase on the API, some snake_case on the toolbox). No HTTP here: the client
//! (`workspace-daytona`) and the emulator (`daytona-emulator`) both use these types.

pub mod code_run;
pub mod git;
pub mod pty;
pub mod sandbox;
pub mod snapshot;
pub mod toolbox;
pub mod volume;
