//! Starting and stopping the emulator: [`Emulator::builder`], [`EmulatorHandle`], and the
//! HTTP accept loop.
//!
//! The accept loop is hand-rolled (hyper-util's auto builder, HTTP/1.1 and h2c, upgrades for
//! WebSockets) rather than `axum::serve` for one reason: the `reset` fault must make a client
//! see a TCP reset with no response. Every connection carries a [`ConnHandle`] (in each request's
//! extensions); aborting it drops the connection with `SO_LINGER` 0, which sends RST.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use daytona_api::sandbox::Sandbox;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::conn::{AbortableStream, ConnHandle};
use crate::error::ApiError;
pub use crate::error::EmulatorError;
use crate::faults::{FaultRule, InstalledFault};
use crate::layout::Isolation;
use crate::request_log::RequestRecord;
use crate::state::{AppState, Config};
use crate::tls::{ServerTls, TlsSource};

/// Organization id reported on every emulated sandbox.
pub const EMULATOR_ORGANIZATION_ID: &str = "00000000-0000-4000-8000-00000000e4a1";

/// How long a client may take over its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for open connections to finish their current request.
const GRACEFUL_CONNECTION_WAIT: Duration = Duration::from_secs(2);

/// Entry point: `Emulator::builder()...start().await`.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// A builder with defaults: no auth, a temporary data dir, one emulated minute = 60 s,
    /// instant transitions, `127.0.0.1:0`.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }
}

/// Settings of an emulator to start.
#[derive(Clone)]
pub struct EmulatorBuilder {
    api_key: Option<String>,
    data_dir: Option<PathBuf>,
    minute: Duration,
    transition_delay: Duration,
    bind: String,
    ping_interval: Duration,
    ping_timeout: Duration,
    faults: Vec<FaultRule>,
    build_step: Duration,
    public_url: Option<String>,
    tls: Option<TlsSource>,
    isolation: Option<Isolation>,
}

/// Default duration of one step of an emulated image build.
pub const DEFAULT_BUILD_STEP: Duration = Duration::from_millis(200);

impl Default for EmulatorBuilder {
    fn default() -> Self {
        EmulatorBuilder {
            api_key: None,
            data_dir: None,
            minute: Duration::from_secs(60),
            transition_delay: Duration::ZERO,
            bind: "127.0.0.1:0".to_string(),
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            faults: Vec::new(),
            build_step: DEFAULT_BUILD_STEP,
            public_url: None,
            tls: None,
            isolation: None,
        }
    }
}

impl fmt::Debug for EmulatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("data_dir", &self.data_dir)
            .field("minute", &self.minute)
            .field("transition_delay", &self.transition_delay)
            .field("bind", &self.bind)
            .field("faults", &self.faults.len())
            .field("build_step", &self.build_step)
            .field("public_url", &self.public_url)
            .field("tls", &self.tls)
            .field("isolation", &self.isolation)
            .finish_non_exhaustive()
    }
}

impl EmulatorBuilder {
    /// Require `Authorization: Bearer <key>` on `/api` and `/toolbox` (and this token in the
    /// socket.io CONNECT packet).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Keep sandbox directories under `dir/sandboxes/<id>` (created if missing, never removed
    /// as a whole). Default: a temporary directory removed at shutdown.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// The real duration of one emulated minute, for every interval counted in minutes
    /// (auto-stop, auto-archive, auto-delete, TTL). Tests use milliseconds.
    pub fn auto_stop_unit(mut self, minute: Duration) -> Self {
        self.minute = minute;
        self
    }

    /// How sandbox commands are confined. Default: what
    /// [`detect_isolation`](crate::layout::detect_isolation) finds (bubblewrap where it works,
    /// or what `DAYTONA_EMULATOR_ISOLATION` says).
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = Some(isolation);
        self
    }

    /// How long lifecycle transitions take. Zero (default): each is finished when its response
    /// is sent. Non-zero: responses show `creating`/`starting`/`stopping`/... and clients must
    /// wait, by polling or socket.io, as with the real API.
    pub fn transition_delay(mut self, delay: Duration) -> Self {
        self.transition_delay = delay;
        self
    }

    /// Listen address, `host:port` (port 0 picks a free one). Default `127.0.0.1:0`.
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.bind = addr.into();
        self
    }

    /// The origin clients reach the emulator by, when it is not the listen address (behind a
    /// proxy, a port forward, a tunnel): `http(s)://host:port`, no path. Every absolute URL the
    /// emulator hands out (API and toolbox proxy URLs, `toolboxProxyUrl` in sandboxes, preview
    /// and signed preview links, build-log URLs) is built on it, and
    /// [`EmulatorHandle::base_url`] returns it. Default: the listen address.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), daytona_emulator::EmulatorError> {
    /// let emulator = daytona_emulator::Emulator::builder()
    ///     .public_url("http://sandboxes.example.test:8443/")
    ///     .start()
    ///     .await?;
    /// assert_eq!(emulator.base_url(), "http://sandboxes.example.test:8443");
    /// assert_eq!(emulator.toolbox_proxy_url(), "http://sandboxes.example.test:8443/toolbox");
    /// assert_ne!(emulator.listen_url(), emulator.base_url());
    /// # Ok(())
    /// # }
    /// ```
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Serve HTTPS and WSS with the certificate chain in `cert` (PEM, leaf first) and the
    /// private key in `key` (PEM: PKCS#8, RSA or EC). URLs handed out use `https`.
    pub fn tls_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = Some(TlsSource::Files {
            cert: cert.into(),
            key: key.into(),
        });
        self
    }

    /// Serve HTTPS and WSS with a certificate generated at start, issued by a CA generated with
    /// it ([`EmulatorHandle::tls_ca_pem`]: what clients must trust), valid for `localhost`,
    /// `127.0.0.1`, `::1`, the listen host and the public URL's host.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), daytona_emulator::EmulatorError> {
    /// let emulator = daytona_emulator::Emulator::builder().tls_self_signed().start().await?;
    /// assert!(emulator.base_url().starts_with("https://127.0.0.1:"));
    /// let ca = emulator.tls_ca_pem().expect("a generated CA");
    /// assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn tls_self_signed(mut self) -> Self {
        self.tls = Some(TlsSource::SelfSigned);
        self
    }

    /// socket.io (engine.io) ping interval and timeout. Defaults 25 s / 20 s, as upstream.
    pub fn socketio_ping(mut self, interval: Duration, timeout: Duration) -> Self {
        self.ping_interval = interval;
        self.ping_timeout = timeout;
        self
    }

    /// How long one step of an emulated image build takes (default 200 ms). A sandbox created
    /// from an image answers `pending_build` and reaches `started` after one step per
    /// Dockerfile instruction plus one; snapshots likewise. Zero makes builds near-instant
    /// (they still answer `pending_build` first). The emulator pulls and builds nothing: see
    /// [`crate::build`].
    pub fn build_step_delay(mut self, step: Duration) -> Self {
        self.build_step = step;
        self
    }

    /// Installs a fault rule from the start.
    pub fn fault(mut self, rule: FaultRule) -> Self {
        self.faults.push(rule);
        self
    }

    /// Binds, starts serving and returns once connections are accepted.
    pub async fn start(self) -> Result<EmulatorHandle, EmulatorError> {
        if self.minute.is_zero() {
            return Err(EmulatorError::InvalidSetting(
                "auto_stop_unit must be greater than zero".into(),
            ));
        }
        if self.ping_interval.is_zero() || self.ping_timeout.is_zero() {
            return Err(EmulatorError::InvalidSetting(
                "socket.io ping interval and timeout must be greater than zero".into(),
            ));
        }
        if self.api_key.as_deref().is_some_and(str::is_empty) {
            return Err(EmulatorError::InvalidSetting(
                "api_key must not be empty".into(),
            ));
        }
        for rule in &self.faults {
            rule.validate().map_err(EmulatorError::InvalidSetting)?;
        }
        let public_url = self
            .public_url
            .as_deref()
            .map(parse_public_url)
            .transpose()?;
        let addr = resolve(&self.bind).await?;
        let tls = match &self.tls {
            Some(source) => {
                let mut hosts = Vec::new();
                if !addr.ip().is_unspecified() {
                    hosts.push(addr.ip().to_string());
                }
                if let Some(host) = public_url
                    .as_deref()
                    .and_then(|u| url::Url::parse(u).ok())
                    .and_then(|u| u.host().map(|h| h.to_owned()))
                {
                    hosts.push(match host {
                        url::Host::Domain(d) => d,
                        url::Host::Ipv4(ip) => ip.to_string(),
                        url::Host::Ipv6(ip) => ip.to_string(),
                    });
                }
                Some(ServerTls::new(source, &hosts)?)
            }
            None => None,
        };
        let (temp_dir, data_dir) = match self.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir).map_err(|source| EmulatorError::DataDir {
                    path: dir.clone(),
                    source,
                })?;
                (None, dir)
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("daytona-emulator-")
                    .tempdir()
                    .map_err(|source| EmulatorError::DataDir {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: self.bind.clone(),
                source,
            })?;
        let local = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: self.bind.clone(),
                source,
            })?;
        let host = if local.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else if local.is_ipv6() {
            format!("[{}]", local.ip())
        } else {
            local.ip().to_string()
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listen_url = format!("{scheme}://{host}:{}", local.port());
        let base_url = public_url.unwrap_or_else(|| listen_url.clone());
        let state = AppState::new(Config {
            api_key: self.api_key,
            base_url: base_url.clone(),
            data_dir,
            minute: self.minute,
            transition_delay: self.transition_delay,
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            organization_id: EMULATOR_ORGANIZATION_ID.to_string(),
            build_step: self.build_step,
            isolation: self.isolation,
        });
        for rule in self.faults {
            state
                .add_fault(rule)
                .map_err(EmulatorError::InvalidSetting)?;
        }
        let router = crate::api::router(state.clone());
        let shutdown = state.shutdown_token();
        let connections = TaskTracker::new();
        let (acceptor, tls_cert_pem, tls_ca_pem) = match tls {
            Some(tls) => (Some(tls.acceptor), Some(tls.cert_pem), tls.ca_pem),
            None => (None, None, None),
        };
        let server = tokio::spawn(accept_loop(
            listener,
            router,
            acceptor,
            shutdown.clone(),
            connections.clone(),
        ));
        let ticker = tokio::spawn(lifecycle_ticker(state.clone()));
        tracing::info!(%base_url, %listen_url, "daytona emulator listening");
        Ok(EmulatorHandle {
            base_url,
            listen_url,
            tls_cert_pem,
            tls_ca_pem,
            local_addr: local,
            state,
            server: Some(server),
            ticker: Some(ticker),
            connections,
            temp_dir,
            shut_down: false,
        })
    }
}

/// A running emulator. [`EmulatorHandle::shutdown`] stops it cleanly; dropping it also stops
/// serving and kills every sandbox process (best effort, without waiting).
pub struct EmulatorHandle {
    base_url: String,
    listen_url: String,
    tls_cert_pem: Option<String>,
    tls_ca_pem: Option<String>,
    local_addr: SocketAddr,
    state: AppState,
    server: Option<JoinHandle<()>>,
    ticker: Option<JoinHandle<()>>,
    connections: TaskTracker,
    temp_dir: Option<tempfile::TempDir>,
    shut_down: bool,
}

impl fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorHandle")
            .field("base_url", &self.base_url)
            .field("listen_url", &self.listen_url)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl EmulatorHandle {
    /// `http://127.0.0.1:PORT`, or the public URL when one was set
    /// ([`EmulatorBuilder::public_url`]): the origin every URL handed out is built on.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The listen address as a URL, `http://127.0.0.1:PORT`, whatever the public URL.
    pub fn listen_url(&self) -> String {
        self.listen_url.clone()
    }

    /// The served TLS certificate chain, PEM, when serving TLS.
    pub fn tls_certificate_pem(&self) -> Option<&str> {
        self.tls_cert_pem.as_deref()
    }

    /// The CA that issued the served certificate, PEM, when it was generated
    /// ([`EmulatorBuilder::tls_self_signed`]): the root a client must trust (e.g. with
    /// `NODE_EXTRA_CA_CERTS`, or `DaytonaConfig::add_root_certificates_pem`). `None` for
    /// certificates from files (their issuer is the caller's) and without TLS.
    pub fn tls_ca_pem(&self) -> Option<&str> {
        self.tls_ca_pem.as_deref()
    }

    /// `<base_url>/api`: what the SDKs take as `apiUrl`.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.base_url)
    }

    /// `<base_url>/toolbox`: every sandbox's `toolboxProxyUrl`.
    pub fn toolbox_proxy_url(&self) -> String {
        self.state.toolbox_proxy_url()
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shared state (sandboxes, faults, request log).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Every request received so far, credentials redacted.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.requests()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.state.clear_requests();
    }

    /// Every live sandbox, oldest first.
    pub fn sandboxes(&self) -> Vec<Sandbox> {
        self.state.sandboxes()
    }

    /// One sandbox by id or name.
    pub fn sandbox(&self, id_or_name: &str) -> Option<Sandbox> {
        self.state.sandbox(id_or_name)
    }

    /// Installs a fault rule; returns its id (the error names what is wrong with the rule).
    pub fn add_fault(&self, rule: FaultRule) -> Result<u64, String> {
        self.state.add_fault(rule)
    }

    /// Removes a fault rule.
    pub fn remove_fault(&self, id: u64) -> bool {
        self.state.remove_fault(id)
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.state.clear_faults();
    }

    /// Installed fault rules with hit counts.
    pub fn faults(&self) -> Vec<InstalledFault> {
        self.state.faults()
    }

    /// Stops a sandbox underneath its client (as auto-stop would).
    pub async fn stop_sandbox(&self, id_or_name: &str) -> Result<Sandbox, ApiError> {
        self.state.stop_sandbox(id_or_name).await
    }

    /// Deletes a sandbox underneath its client.
    pub async fn delete_sandbox(&self, id_or_name: &str) -> Result<Sandbox, ApiError> {
        self.state.delete_sandbox(id_or_name).await
    }

    /// Puts a sandbox in `error` with `reason` (its processes are killed).
    pub async fn fail_sandbox(
        &self,
        id_or_name: &str,
        reason: &str,
        recoverable: bool,
    ) -> Result<Sandbox, ApiError> {
        self.state
            .fail_sandbox(id_or_name, reason, recoverable)
            .await
    }

    /// Stops serving, kills every process of every sandbox, waits for in-flight work, and
    /// removes the data directory when the emulator created it.
    pub async fn shutdown(mut self) {
        self.shut_down = true;
        self.state.shutdown_token().cancel();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.await;
        }
        let entries: Vec<_> = self.state.registry().entries.drain().collect();
        for (_, entry) in entries {
            crate::provision::shutdown_runtime(&entry.runtime).await;
            if self.temp_dir.is_some() {
                crate::provision::remove_layout(entry.layout).await;
            }
        }
        self.connections.close();
        let _ = tokio::time::timeout(GRACEFUL_CONNECTION_WAIT, self.connections.wait()).await;
        self.state.tasks().close();
        let _ = tokio::time::timeout(GRACEFUL_CONNECTION_WAIT, self.state.tasks().wait()).await;
        if let Some(temp) = self.temp_dir.take()
            && let Err(e) = temp.close()
        {
            tracing::warn!(error = %e, "cannot remove the emulator's data directory");
        }
        tracing::info!(base_url = %self.base_url, "daytona emulator stopped");
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        if self.shut_down {
            return;
        }
        self.state.shutdown_token().cancel();
        if let Some(server) = self.server.take() {
            server.abort();
        }
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        let entries: Vec<_> = self.state.registry().entries.drain().collect();
        // Killing is async; when a runtime is still around, do it there. The runtimes also
        // kill their processes when dropped, which covers a runtime that is shutting down.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for (_, entry) in entries {
                    crate::provision::shutdown_runtime(&entry.runtime).await;
                }
            });
        } else {
            drop(entries);
        }
    }
}

/// Checks a public URL is an `http`/`https` origin; returns it without a trailing slash.
fn parse_public_url(raw: &str) -> Result<String, EmulatorError> {
    let invalid = |reason: &str| EmulatorError::InvalidPublicUrl {
        url: raw.to_string(),
        reason: reason.to_string(),
    };
    let url = url::Url::parse(raw.trim()).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "it must be an origin (scheme, host, port) without a path, query or fragment",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // The error is shown and logged: name the URL without the credentials.
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        return Err(EmulatorError::InvalidPublicUrl {
            url: shown.to_string(),
            reason: "it must not carry credentials".to_string(),
        });
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// `host:port` → one socket address (IP literals directly, names through the resolver).
async fn resolve(bind: &str) -> Result<SocketAddr, EmulatorError> {
    if let Ok(addr) = bind.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let invalid = |reason: String| EmulatorError::InvalidAddress {
        addr: bind.to_string(),
        reason,
    };
    if !bind.contains(':') {
        return Err(invalid("expected host:port".to_string()));
    }
    let mut addrs = tokio::net::lookup_host(bind)
        .await
        .map_err(|e| invalid(e.to_string()))?;
    addrs
        .next()
        .ok_or_else(|| invalid("the host name resolves to no address".to_string()))
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
    connections: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Typically EMFILE; back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handle = ConnHandle::new();
        let stream = AbortableStream {
            inner: stream,
            handle: handle.clone(),
        };
        let router = router.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let Some(acceptor) = tls else {
                serve_connection(stream, router, handle, shutdown).await;
                return;
            };
            // The handshake runs here, off the accept loop, so a slow client holds up no one.
            let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let stream = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = handle.aborted() => return,
                outcome = handshake => match outcome {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("TLS handshake timed out");
                        return;
                    }
                },
            };
            serve_connection(stream, router, handle, shutdown).await;
        });
    }
}

/// Serves HTTP/1.1 (with upgrades) or HTTP/2 on one connection, plain or TLS, until it ends,
/// is aborted by a fault rule, or the emulator shuts down.
async fn serve_connection<S>(
    stream: S,
    router: Router,
    handle: ConnHandle,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn_handle = handle.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(conn_handle.clone());
        router.clone().oneshot(request.map(Body::new))
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = handle.aborted() => {
            tracing::debug!("connection reset by fault rule");
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(GRACEFUL_CONNECTION_WAIT, conn.as_mut()).await;
        }
    }
}

/// Runs [`AppState::lifecycle_tick`] about ten times per emulated minute (at most every second,
/// at least every 5 ms).
async fn lifecycle_ticker(state: AppState) {
    let period =
        (state.config().minute / 10).clamp(Duration::from_millis(5), Duration::from_secs(1));
    let shutdown = state.shutdown_token();
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = interval.tick() => state.lifecycle_tick().await,
        }
    }
}
