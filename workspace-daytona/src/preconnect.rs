//! Connections made ahead of a WebSocket that will need one.
//!
//! A WebSocket cannot ride on reqwest's pooled connections: the upgrade takes a connection of
//! its own. Over a real network that is a TCP handshake and, for `wss`, a TLS handshake (two
//! round trips) before the upgrade request can even be sent. Where the next WebSocket to a
//! host is predictable (a command about to be followed), the connection (TCP, and TLS when the
//! URL is `wss`) is made in the background while other requests run, and the handshake then
//! only sends the upgrade over it.
//!
//! A spare older than [`SPARE_TTL`] is dropped unused: servers and proxies close idle
//! connections, and a handshake on a closed one would fail. One that fails anyway makes the
//! caller connect afresh (see `follow`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio_tungstenite::MaybeTlsStream;
use url::Url;

/// How long a spare connection is kept before it is dropped unused.
const SPARE_TTL: Duration = Duration::from_secs(20);
/// Spares kept per origin.
const MAX_SPARES: usize = 2;

/// The origin a connection serves: scheme (TLS or not), host and port.
type Origin = (bool, String, u16);
/// A connection and when it was made.
type Spare = (Instant, MaybeTlsStream<TcpStream>);

fn origin(url: &Url) -> Option<Origin> {
    let tls = matches!(url.scheme(), "https" | "wss");
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = url.port_or_known_default()?;
    Some((tls, host.to_string(), port))
}

/// Spare connections by origin.
#[derive(Default)]
pub(crate) struct Spares {
    ready: Mutex<HashMap<Origin, Vec<Spare>>>,
    /// Connects in flight, by origin.
    making: Mutex<HashMap<Origin, usize>>,
}

impl Spares {
    /// A fresh enough spare connection for `url`'s origin, if one is ready.
    pub(crate) fn take(&self, url: &Url) -> Option<MaybeTlsStream<TcpStream>> {
        let key = origin(url)?;
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        let list = ready.get_mut(&key)?;
        while let Some((made, stream)) = list.pop() {
            if made.elapsed() < SPARE_TTL {
                return Some(stream);
            }
        }
        None
    }

    /// Make one connection to `url`'s origin in the background (unless enough are ready or
    /// on their way). `tls` is the client config for `wss`/`https` origins.
    pub(crate) fn make(
        self: &Arc<Self>,
        url: &Url,
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) {
        let Some(key) = origin(url) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        {
            let ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
            let mut making = self.making.lock().unwrap_or_else(|p| p.into_inner());
            let have = ready.get(&key).map_or(0, |l| {
                l.iter()
                    .filter(|(made, _)| made.elapsed() < SPARE_TTL)
                    .count()
            });
            let pending = making.entry(key.clone()).or_default();
            if have + *pending >= MAX_SPARES {
                return;
            }
            *pending += 1;
        }
        let spares = self.clone();
        runtime.spawn(async move {
            let made = tokio::time::timeout(timeout, connect(&key, tls)).await;
            {
                let mut making = spares.making.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(n) = making.get_mut(&key) {
                    *n = n.saturating_sub(1);
                }
            }
            match made {
                Ok(Ok(stream)) => {
                    let mut ready = spares.ready.lock().unwrap_or_else(|p| p.into_inner());
                    let list = ready.entry(key).or_default();
                    list.retain(|(made, _)| made.elapsed() < SPARE_TTL);
                    list.push((Instant::now(), stream));
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "making a spare connection failed"),
                Err(_) => tracing::debug!("making a spare connection timed out"),
            }
        });
    }
}

async fn connect(
    (tls, host, port): &Origin,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<MaybeTlsStream<TcpStream>> {
    let tcp = TcpStream::connect((host.as_str(), *port)).await?;
    tcp.set_nodelay(true)?;
    if !tls {
        return Ok(MaybeTlsStream::Plain(tcp));
    }
    let name = rustls_pki_types::ServerName::try_from(host.clone())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    Ok(MaybeTlsStream::Rustls(stream))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn origins_carry_scheme_host_and_port() {
        let o = |s: &str| origin(&Url::parse(s).unwrap());
        assert_eq!(
            o("wss://a.example/x"),
            Some((true, "a.example".into(), 443))
        );
        assert_eq!(
            o("http://127.0.0.1:9/x"),
            Some((false, "127.0.0.1".into(), 9))
        );
        assert_eq!(o("ws://[::1]:80/"), Some((false, "::1".into(), 80)));
        assert_eq!(o("https://h:8443"), o("wss://h:8443/other"));
    }
}
