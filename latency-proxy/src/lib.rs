//! # latency-proxy
//!
//! A network model for tests and benchmarks that needs neither root nor `netem`: a TCP proxy,
//! in process on tokio, that puts a configurable round-trip time between a client and a server
//! and counts what crosses it.
//!
//! - **Delay.** Every chunk read from one side is written to the other RTT/2 later, in order.
//!   Delivery is pipelined: a chunk read at `t` leaves at `t + RTT/2` whatever is still queued
//!   before it, so a stream of chunks costs RTT/2 once, not once per chunk (as on a real path,
//!   bandwidth aside).
//! - **Handshakes.** A new connection's first bytes are held as if it had to be set up first:
//!   with [`ProxyConfig::handshake_rtts`] `= n` (default 1, TCP's SYN/SYN-ACK), nothing the
//!   client sends leaves before `n` RTTs after it connected, then RTT/2 of path. A request on a
//!   fresh connection therefore costs `n + 1` RTTs, as a real client sees: one for TCP, one
//!   more for a modelled TLS 1.3 handshake (`n = 2`), one for the request itself. When the
//!   traffic through the proxy is real TLS, keep `n = 1`: the TLS round trips cross the proxy
//!   and pay the RTT themselves.
//! - **Counters** ([`Proxy::stats`], readable at any time): connections opened (total and
//!   currently open), bytes delivered each way, and HTTP/1.1 requests seen on plaintext
//!   connections (request heads at message boundaries; a WebSocket upgrade counts as a request
//!   and ends counting on its connection). Connections that start with a TLS record, or with
//!   anything else that is not HTTP/1, are counted as opaque: their requests are not visible,
//!   which [`ProxyStats::requests_visible`] says.
//!
//! Upstream is one socket address. The proxy stops when its [`Proxy`] is dropped.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::{Duration, Instant};
//! use latency_proxy::{Proxy, ProxyConfig};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! // An echo server to stand behind the proxy.
//! let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let upstream = server.local_addr()?;
//! tokio::spawn(async move {
//!     while let Ok((mut conn, _)) = server.accept().await {
//!         tokio::spawn(async move {
//!             let (mut r, mut w) = conn.split();
//!             let _ = tokio::io::copy(&mut r, &mut w).await;
//!         });
//!     }
//! });
//!
//! let proxy = Proxy::start(upstream, ProxyConfig::new(Duration::from_millis(20))).await?;
//! let mut conn = tokio::net::TcpStream::connect(proxy.addr()).await?;
//! let start = Instant::now();
//! conn.write_all(b"ping").await?;
//! let mut reply = [0u8; 4];
//! conn.read_exact(&mut reply).await?;
//! // One RTT for the connection's handshake, one for the round trip.
//! assert!(start.elapsed() >= Duration::from_millis(40));
//! assert_eq!(&reply, b"ping");
//! let stats = proxy.stats();
//! assert_eq!((stats.connections_opened, stats.bytes_to_upstream), (1, 4));
//! # Ok(())
//! # }
//! ```

mod http;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::http::{Kind, RequestCounter};

/// Bytes read from a socket at a time.
const READ_SIZE: usize = 64 * 1024;
/// Chunks in flight per direction before reading pauses (so a fast sender's bytes wait in its
/// socket, not in memory without bound).
const IN_FLIGHT: usize = 1024;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The listen socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Settings of a proxy: listen address, RTT, handshake cost.
///
/// ```
/// use std::time::Duration;
/// use latency_proxy::ProxyConfig;
/// // 50 ms RTT, a fresh connection costing TCP + TLS 1.3 before its first request.
/// let config = ProxyConfig::new(Duration::from_millis(50)).handshake_rtts(2);
/// assert_eq!(config.rtt_value(), Duration::from_millis(50));
/// ```
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    listen: SocketAddr,
    rtt: Duration,
    handshake_rtts: u32,
}

impl Default for ProxyConfig {
    /// `127.0.0.1:0`, no delay, one RTT of handshake (which is then zero).
    fn default() -> Self {
        ProxyConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            rtt: Duration::ZERO,
            handshake_rtts: 1,
        }
    }
}

impl ProxyConfig {
    /// A proxy adding `rtt` of round-trip time, listening on `127.0.0.1:0`, with TCP's one RTT
    /// of handshake per connection.
    pub fn new(rtt: Duration) -> Self {
        ProxyConfig {
            rtt,
            ..ProxyConfig::default()
        }
    }

    /// Where to listen; port 0 picks a free one. Default `127.0.0.1:0`.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The round-trip time; each direction gets half.
    pub fn rtt(mut self, rtt: Duration) -> Self {
        self.rtt = rtt;
        self
    }

    /// How many RTTs a new connection costs before its first bytes flow: 1 (default) for TCP,
    /// 2 to model TLS 1.3 over plaintext traffic, 0 for none.
    pub fn handshake_rtts(mut self, rtts: u32) -> Self {
        self.handshake_rtts = rtts;
        self
    }

    /// The configured round-trip time.
    pub fn rtt_value(&self) -> Duration {
        self.rtt
    }
}

/// A snapshot of a proxy's counters ([`Proxy::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyStats {
    /// Client connections accepted since the start.
    pub connections_opened: u64,
    /// Client connections open now.
    pub connections_open: u64,
    /// Bytes delivered from clients to the upstream.
    pub bytes_to_upstream: u64,
    /// Bytes delivered from the upstream to clients.
    pub bytes_to_client: u64,
    /// HTTP/1.x request heads seen on plaintext connections, WebSocket upgrades included.
    pub http_requests: u64,
    /// Of those, requests asking to upgrade the connection (WebSockets).
    pub websocket_upgrades: u64,
    /// Connections whose first client byte began a TLS record.
    pub tls_connections: u64,
    /// Connections whose requests cannot be seen: TLS, or anything that is not HTTP/1.
    pub opaque_connections: u64,
}

impl ProxyStats {
    /// Whether every connection so far was plaintext HTTP/1, so that
    /// [`http_requests`](Self::http_requests) counts all requests made.
    pub fn requests_visible(&self) -> bool {
        self.opaque_connections == 0
    }

    /// The counts accumulated since `earlier` (a snapshot of the same proxy);
    /// `connections_open` stays the current gauge.
    pub fn since(&self, earlier: &ProxyStats) -> ProxyStats {
        ProxyStats {
            connections_opened: self
                .connections_opened
                .saturating_sub(earlier.connections_opened),
            connections_open: self.connections_open,
            bytes_to_upstream: self
                .bytes_to_upstream
                .saturating_sub(earlier.bytes_to_upstream),
            bytes_to_client: self.bytes_to_client.saturating_sub(earlier.bytes_to_client),
            http_requests: self.http_requests.saturating_sub(earlier.http_requests),
            websocket_upgrades: self
                .websocket_upgrades
                .saturating_sub(earlier.websocket_upgrades),
            tls_connections: self.tls_connections.saturating_sub(earlier.tls_connections),
            opaque_connections: self
                .opaque_connections
                .saturating_sub(earlier.opaque_connections),
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    opened: AtomicU64,
    open: AtomicU64,
    to_upstream: AtomicU64,
    to_client: AtomicU64,
    requests: AtomicU64,
    upgrades: AtomicU64,
    tls: AtomicU64,
    opaque: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    rtt_nanos: AtomicU64,
    handshake_rtts: u32,
    counters: Counters,
}

impl Shared {
    fn rtt(&self) -> Duration {
        Duration::from_nanos(self.rtt_nanos.load(Ordering::Relaxed))
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A bound but not yet forwarding proxy: its address is known before the upstream is, for a
/// server that must be told the public address clients reach it by (the proxy's) when it
/// starts.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use latency_proxy::{Proxy, ProxyConfig};
/// let bound = Proxy::bind(ProxyConfig::default()).await?;
/// let public = format!("http://{}", bound.addr());
/// // ... start the server with `public` as its public URL, then:
/// let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let proxy = bound.forward_to(server.local_addr()?);
/// assert_eq!(format!("http://{}", proxy.addr()), public);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct BoundProxy {
    listener: TcpListener,
    addr: SocketAddr,
    config: ProxyConfig,
}

impl BoundProxy {
    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts forwarding every accepted connection to `upstream`. Connections made before this
    /// wait in the listen backlog. Must be called within a tokio runtime.
    pub fn forward_to(self, upstream: SocketAddr) -> Proxy {
        let shared = Arc::new(Shared {
            rtt_nanos: AtomicU64::new(nanos(self.config.rtt)),
            handshake_rtts: self.config.handshake_rtts,
            counters: Counters::default(),
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept_loop(
            self.listener,
            upstream,
            shared.clone(),
            stop.clone(),
        ));
        Proxy {
            addr: self.addr,
            upstream,
            shared,
            stop,
            task,
        }
    }
}

/// A running proxy. Dropping it stops accepting and closes every connection through it.
pub struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .field("rtt", &self.rtt())
            .field("handshake_rtts", &self.shared.handshake_rtts)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Binds `config`'s listen address and forwards to `upstream`.
    ///
    /// # Errors
    /// [`ProxyError::Bind`] when the address cannot be bound.
    pub async fn start(upstream: SocketAddr, config: ProxyConfig) -> Result<Proxy, ProxyError> {
        Ok(Proxy::bind(config).await?.forward_to(upstream))
    }

    /// Binds `config`'s listen address without forwarding yet (see [`BoundProxy`]).
    ///
    /// # Errors
    /// [`ProxyError::Bind`] when the address cannot be bound.
    pub async fn bind(config: ProxyConfig) -> Result<BoundProxy, ProxyError> {
        let bind_error = |source| ProxyError::Bind {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        Ok(BoundProxy {
            listener,
            addr,
            config,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where connections are forwarded.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// The current round-trip time.
    pub fn rtt(&self) -> Duration {
        self.shared.rtt()
    }

    /// Changes the round-trip time for bytes read from now on (open connections included);
    /// bytes already in flight keep their delivery time.
    pub fn set_rtt(&self, rtt: Duration) {
        self.shared.rtt_nanos.store(nanos(rtt), Ordering::Relaxed);
    }

    /// The counters now.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
        ProxyStats {
            connections_opened: get(&c.opened),
            connections_open: get(&c.open),
            bytes_to_upstream: get(&c.to_upstream),
            bytes_to_client: get(&c.to_client),
            http_requests: get(&c.requests),
            websocket_upgrades: get(&c.upgrades),
            tls_connections: get(&c.tls),
            opaque_connections: get(&c.opaque),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let client = match accepted {
            Ok((client, _)) => client,
            Err(e) => {
                // Typically EMFILE; back off instead of spinning.
                tracing::warn!(error = %e, "latency proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let accepted_at = Instant::now();
        shared.counters.opened.fetch_add(1, Ordering::SeqCst);
        shared.counters.open.fetch_add(1, Ordering::SeqCst);
        let open = OpenGuard(shared.clone());
        let stop = stop.clone();
        tokio::spawn(async move {
            let _open = open;
            tokio::select! {
                _ = stop.cancelled() => {}
                result = connection(client, upstream, accepted_at, &_open.0) => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "latency proxy: connection ended with an error");
                    }
                }
            }
        });
    }
}

/// Decrements the open-connections gauge however the connection's task ends.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.counters.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What travels from a reading side to the delivering side.
enum Segment {
    /// Bytes to write at the deadline.
    Data(Instant, Vec<u8>),
    /// The reading side ended (FIN): shut the write side down at the deadline.
    End(Instant),
}

#[derive(Clone, Copy)]
enum Direction {
    ToUpstream,
    ToClient,
}

async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    accepted_at: Instant,
    shared: &Arc<Shared>,
) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    // Delay is what we add; Nagle's would come on top.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let released_at = accepted_at + shared.rtt() * shared.handshake_rtts;
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let (up_tx, up_rx) = mpsc::channel(IN_FLIGHT);
    let (down_tx, down_rx) = mpsc::channel(IN_FLIGHT);
    tokio::try_join!(
        read_side(
            client_read,
            up_tx,
            released_at,
            shared,
            Some(RequestCounter::new())
        ),
        deliver(server_write, up_rx, shared, Direction::ToUpstream),
        read_side(server_read, down_tx, released_at, shared, None),
        deliver(client_write, down_rx, shared, Direction::ToClient),
    )?;
    Ok(())
}

async fn read_side(
    mut from: OwnedReadHalf,
    to: mpsc::Sender<Segment>,
    released_at: Instant,
    shared: &Shared,
    mut requests: Option<RequestCounter>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; READ_SIZE];
    loop {
        let n = from.read(&mut buf).await?;
        let deadline = Instant::now().max(released_at) + shared.rtt() / 2;
        if n == 0 {
            // The deliverer may be gone after a write error; try_join reports that one.
            let _ = to.send(Segment::End(deadline)).await;
            return Ok(());
        }
        if let Some(counter) = requests.as_mut() {
            count_requests(counter, &buf[..n], &shared.counters);
        }
        if to
            .send(Segment::Data(deadline, buf[..n].to_vec()))
            .await
            .is_err()
        {
            return Ok(());
        }
    }
}

fn count_requests(counter: &mut RequestCounter, data: &[u8], counters: &Counters) {
    let before = counter.kind();
    counter.feed(data, |request| {
        counters.requests.fetch_add(1, Ordering::SeqCst);
        if request.upgrade {
            counters.upgrades.fetch_add(1, Ordering::SeqCst);
        }
    });
    if before == Kind::Unknown {
        match counter.kind() {
            Kind::Tls => {
                counters.tls.fetch_add(1, Ordering::SeqCst);
                counters.opaque.fetch_add(1, Ordering::SeqCst);
            }
            Kind::Other => {
                counters.opaque.fetch_add(1, Ordering::SeqCst);
            }
            Kind::Http1 | Kind::Unknown => {}
        }
    }
}

async fn deliver(
    mut to: OwnedWriteHalf,
    mut from: mpsc::Receiver<Segment>,
    shared: &Shared,
    direction: Direction,
) -> std::io::Result<()> {
    let bytes = match direction {
        Direction::ToUpstream => &shared.counters.to_upstream,
        Direction::ToClient => &shared.counters.to_client,
    };
    while let Some(segment) = from.recv().await {
        match segment {
            Segment::Data(deadline, data) => {
                tokio::time::sleep_until(deadline).await;
                to.write_all(&data).await?;
                bytes.fetch_add(data.len() as u64, Ordering::SeqCst);
            }
            Segment::End(deadline) => {
                tokio::time::sleep_until(deadline).await;
                // The peer may already have closed; the other direction decides how it ends.
                let _ = to.shutdown().await;
                return Ok(());
            }
        }
    }
    Ok(())
}
