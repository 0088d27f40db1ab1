//! The round trips and create → first output again, through `latency-proxy` at a given round
//! trip time: every client reaches the emulator through the proxy (the emulator hands out the
//! proxy's address as its public URL), each chunk is delayed by half the RTT per direction,
//! and each new connection costs two RTTs before its first byte (TCP, then TLS 1.3), as a
//! client far from Daytona pays. The proxy also counts the connections each flow opens.

use std::net::SocketAddr;
use std::time::Duration;

use latency_proxy::{Proxy, ProxyConfig};

use super::Result;
use super::create_first::{self, CreateFirst};
use super::emulator::{EmulatorProcess, Isolation};
use super::node::NodeWorker;
use super::round_trip::{self, FlowSamples, Sizes, Target};

/// Round trips modelled per new connection: TCP's handshake and TLS 1.3's.
pub const HANDSHAKE_RTTS: u32 = 2;

/// What one RTT gave.
pub struct NetworkRun {
    /// The modelled round trip time.
    pub rtt: Duration,
    /// Every flow's samples, connections counted.
    pub samples: Vec<FlowSamples>,
    /// Create → first output, where measured (not at RTT 0, which the loopback section has).
    pub create_first: Option<CreateFirst>,
}

/// Measure at each of `rtts`, with a fresh emulator, proxy and clients each.
pub async fn measure(
    rtts: &[Duration],
    sizes: Sizes,
    create_rounds: usize,
) -> Result<Vec<NetworkRun>> {
    let mut runs = Vec::new();
    for &rtt in rtts {
        println!(
            "round trips through the proxy at {} ms RTT…",
            rtt.as_millis()
        );
        let bound = Proxy::bind(ProxyConfig::new(rtt).handshake_rtts(HANDSHAKE_RTTS)).await?;
        let public = format!("http://{}", bound.addr());
        let emulator = EmulatorProcess::spawn_behind(Isolation::Host, &public).await?;
        let upstream: SocketAddr = emulator
            .base_url()
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| format!("the emulator's address {}: {e}", emulator.base_url()))?;
        let proxy = bound.forward_to(upstream);
        let measured = async {
            let api_url = format!("{public}/api");
            let mut node = NodeWorker::spawn(&api_url).await?;
            let count = || proxy.stats().connections_opened;
            let target = Target {
                client_url: &public,
                control_url: emulator.base_url(),
                server_pid: emulator.pid(),
                connections: Some(&count),
            };
            let samples = round_trip::measure_at(&target, &mut node, sizes).await?;
            let create_first = if rtt.is_zero() {
                None
            } else {
                println!("create → first output at {} ms RTT…", rtt.as_millis());
                Some(create_first::measure(&api_url, &mut node, create_rounds).await?)
            };
            node.quit().await?;
            Ok::<_, super::BoxError>(NetworkRun {
                rtt,
                samples,
                create_first,
            })
        }
        .await;
        let stopped = emulator.stop().await;
        drop(proxy);
        runs.push(measured?);
        stopped?;
    }
    Ok(runs)
}
