//! `GET /port` and `GET /port/{port}/in-use`, as the daemon's port detector answers them
//! (`toolbox/port/detector.go`).
//!
//! Sandbox commands share this machine's network, so the listening ports are the machine's:
//! `/port` lists every TCP port in `LISTEN` state (from `/proc/net/tcp` and `/proc/net/tcp6`),
//! and `/in-use` connects to `localhost:{port}`, which is also how the preview URLs reach a
//! sandbox's server. Ports of other programs on the machine show up too.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use daytona_api::toolbox::codes;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

/// How long the in-use check waits for a connection, as the daemon's dial.
const DIAL_TIMEOUT: Duration = Duration::from_millis(50);
/// The ports the daemon checks, inclusive.
const CHECKED_PORTS: std::ops::RangeInclusive<u16> = 3000..=9999;
/// `st` of a listening socket in `/proc/net/tcp*`.
const TCP_LISTEN: &str = "0A";

/// `{sandboxId}/port/{port}`.
#[derive(Debug, Deserialize)]
pub(crate) struct PortPath {
    #[serde(rename = "sandboxId")]
    sandbox_id: String,
    port: String,
}

/// `PortList`.
#[derive(Debug, Serialize)]
pub(crate) struct PortList {
    ports: Vec<u16>,
}

/// `IsPortInUseResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IsPortInUse {
    is_in_use: bool,
}

/// Local ports of the listening sockets in one `/proc/net/tcp`-format table.
fn listening_ports(table: &str) -> impl Iterator<Item = u16> + '_ {
    table.lines().skip(1).filter_map(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1)?;
        let state = fields.nth(1)?;
        if state != TCP_LISTEN {
            return None;
        }
        let (_, port) = local.rsplit_once(':')?;
        u16::from_str_radix(port, 16).ok()
    })
}

/// `GET /port`: 200 `{ports}`, the machine's listening TCP ports in ascending order.
pub(crate) async fn list(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<crate::toolbox::SandboxPath>,
) -> Result<Json<PortList>, ApiError> {
    state.toolbox_target(&p.sandbox_id)?;
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        // A table that cannot be read (no IPv6) lists nothing, as the daemon skips a failed
        // scan.
        if let Ok(text) = tokio::fs::read_to_string(table).await {
            ports.extend(listening_ports(&text));
        }
    }
    Ok(Json(PortList {
        ports: ports.into_iter().collect(),
    }))
}

fn bad_port(message: &str) -> ApiError {
    ApiError::daemon(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
}

/// `GET /port/{port}/in-use`: 200 `{isInUse}`; 400 for a port that is not a number or is
/// outside 3000..=9999.
pub(crate) async fn in_use(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<PortPath>,
) -> Result<Json<IsPortInUse>, ApiError> {
    state.toolbox_target(&p.sandbox_id)?;
    // Go's `strconv.Atoi`: an optional sign, then digits.
    let port: i64 = p
        .port
        .parse()
        .map_err(|_| bad_port("invalid port: must be a number between 3000 and 9999"))?;
    let port = u16::try_from(port)
        .ok()
        .filter(|p| CHECKED_PORTS.contains(p))
        .ok_or_else(|| bad_port("port out of range: must be between 3000 and 9999"))?;
    let connected = tokio::time::timeout(
        DIAL_TIMEOUT,
        tokio::net::TcpStream::connect(("localhost", port)),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    Ok(Json(IsPortInUse {
        is_in_use: connected,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_are_read_from_the_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue\n\
           0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000\n\
           1: 0100007F:0BB8 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000\n\
           2: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 0\n";
        let ports: Vec<u16> = listening_ports(table).collect();
        assert_eq!(ports, [8080, 80]);
    }
}
