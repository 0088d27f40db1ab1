//! # daytona-api
//!
//! Daytona's wire types, written from the published OpenAPI specs (`api.json`, `toolbox.json`):
//! control-plane DTOs in [`sandbox`] and toolbox (daemon) DTOs in [`toolbox`]. JSON field names
//! are exactly the wire's (camelCase on the API, some snake_case on the toolbox). No HTTP here:
//! the client (`workspace-daytona`) and the emulator (`daytona-emulator`) both use these types.

pub mod sandbox;
pub mod toolbox;
