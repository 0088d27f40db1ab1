//! The proxy over real TCP: delay (lower bounds, generous upper bounds), pipelining, order,
//! counters, shutdown.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use latency_proxy::{Proxy, ProxyConfig, ProxyError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// An echo server on port 0; runs until the test's runtime ends.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn round_trip(conn: &mut TcpStream, msg: &[u8]) -> Duration {
    let start = Instant::now();
    conn.write_all(msg).await.unwrap();
    let mut back = vec![0u8; msg.len()];
    conn.read_exact(&mut back).await.unwrap();
    assert_eq!(back, msg);
    start.elapsed()
}

/// Polls `cond` for up to 10 s: counters settle after the bytes they count were delivered.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_round_trip_costs_one_rtt_and_a_new_connection_its_handshake() {
    let rtt = Duration::from_millis(100);
    let proxy = Proxy::start(echo_server().await, ProxyConfig::new(rtt))
        .await
        .unwrap();
    let connect_at = Instant::now();
    let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
    let first = round_trip(&mut conn, b"first").await;
    let first_total = connect_at.elapsed();
    let second = round_trip(&mut conn, b"second").await;
    // Lower bounds are exact (the proxy never delivers early); upper bounds only catch a
    // delay applied many times over.
    assert!(first_total >= 2 * rtt, "first request {first_total:?}");
    assert!(first < 10 * rtt, "first request {first:?}");
    assert!(second >= rtt, "second request {second:?}");
    assert!(second < 10 * rtt, "second request {second:?}");
}

#[tokio::test]
async fn handshake_rtts_model_tls_or_nothing() {
    let rtt = Duration::from_millis(80);
    let upstream = echo_server().await;
    let tls = Proxy::start(upstream, ProxyConfig::new(rtt).handshake_rtts(2))
        .await
        .unwrap();
    let start = Instant::now();
    let mut conn = TcpStream::connect(tls.addr()).await.unwrap();
    round_trip(&mut conn, b"x").await;
    let with_tls = start.elapsed();
    assert!(with_tls >= 3 * rtt, "TCP + TLS + request: {with_tls:?}");

    let bare = Proxy::start(upstream, ProxyConfig::new(rtt).handshake_rtts(0))
        .await
        .unwrap();
    let mut conn = TcpStream::connect(bare.addr()).await.unwrap();
    let without = round_trip(&mut conn, b"x").await;
    assert!(without >= rtt, "{without:?}");
    assert!(without < 2 * rtt + Duration::from_secs(1), "{without:?}");
}

#[tokio::test]
async fn chunks_are_pipelined_not_delayed_one_after_another() {
    let rtt = Duration::from_millis(200);
    let proxy = Proxy::start(echo_server().await, ProxyConfig::new(rtt))
        .await
        .unwrap();
    let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
    // Warm the connection so its handshake is paid.
    round_trip(&mut conn, b"warm").await;
    let (mut r, mut w) = conn.into_split();
    const CHUNKS: usize = 20;
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        for i in 0..CHUNKS {
            w.write_all(&[i as u8; 100]).await.unwrap();
            // Separate reads on the proxy: each chunk gets a delay of its own.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        w
    });
    let mut got = vec![0u8; CHUNKS * 100];
    r.read_exact(&mut got).await.unwrap();
    let elapsed = start.elapsed();
    let _w = writer.await.unwrap();
    for (i, chunk) in got.chunks(100).enumerate() {
        assert!(
            chunk.iter().all(|b| *b == i as u8),
            "chunk {i} out of order"
        );
    }
    // Serialized delays would take CHUNKS × RTT (4 s) for the echo; pipelined, about one RTT
    // plus the writer's pacing.
    assert!(elapsed >= rtt, "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(2000), "{elapsed:?}");
}

#[tokio::test]
async fn order_is_kept_across_many_writes_and_rtt_changes() {
    let proxy = Proxy::start(
        echo_server().await,
        ProxyConfig::new(Duration::from_millis(5)),
    )
    .await
    .unwrap();
    let conn = TcpStream::connect(proxy.addr()).await.unwrap();
    let (mut r, mut w) = conn.into_split();
    let sent: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let to_send = sent.clone();
    let writer = tokio::spawn(async move {
        for (i, piece) in to_send.chunks(1 + 997).enumerate() {
            w.write_all(piece).await.unwrap();
            if i % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        w.shutdown().await.unwrap();
    });
    // RTT changes while bytes are in flight must not reorder them.
    proxy.set_rtt(Duration::from_millis(20));
    let mut got = Vec::new();
    let reader = tokio::spawn(async move {
        r.read_to_end(&mut got).await.unwrap();
        got
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    proxy.set_rtt(Duration::ZERO);
    assert_eq!(proxy.rtt(), Duration::ZERO);
    writer.await.unwrap();
    let got = reader.await.unwrap();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "bytes reordered or changed");
    let stats = proxy.stats();
    assert_eq!(stats.bytes_to_upstream, sent.len() as u64);
    assert_eq!(stats.bytes_to_client, sent.len() as u64);
}

#[tokio::test]
async fn counters_count_connections_bytes_and_http_requests() {
    let proxy = Proxy::start(echo_server().await, ProxyConfig::default())
        .await
        .unwrap();
    let body = "GET /inside-a-body HTTP/1.1\r\n\r\n";
    let requests = format!(
        "GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
         POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}\
         GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\
         GET /frames HTTP/1.1\r\n\r\n",
        body.len()
    );
    let mut http = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut http, requests.as_bytes()).await;
    let mut tls = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut tls, &[0x16, 0x03, 0x01, 0x00, 0x02, 0x01, 0x00]).await;

    let stats = proxy.stats();
    assert_eq!(stats.connections_opened, 2);
    assert_eq!(stats.connections_open, 2);
    assert_eq!(stats.http_requests, 3, "{stats:?}");
    assert_eq!(stats.websocket_upgrades, 1);
    assert_eq!(stats.tls_connections, 1);
    assert_eq!(stats.opaque_connections, 1);
    assert!(!stats.requests_visible());
    let sent = requests.len() as u64 + 7;
    assert_eq!(stats.bytes_to_upstream, sent);
    assert_eq!(stats.bytes_to_client, sent);

    drop(http);
    drop(tls);
    eventually("both connections closed", || {
        proxy.stats().connections_open == 0
    })
    .await;
    let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut again, b"HEAD / HTTP/1.1\r\n\r\n").await;
    let delta = proxy.stats().since(&stats);
    assert_eq!((delta.connections_opened, delta.connections_open), (1, 1));
    assert_eq!((delta.http_requests, delta.opaque_connections), (1, 0));
    assert!(delta.requests_visible());
}

#[tokio::test]
async fn dropping_the_proxy_closes_its_connections_and_listener() {
    let proxy = Proxy::start(echo_server().await, ProxyConfig::default())
        .await
        .unwrap();
    let addr = proxy.addr();
    let mut conn = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut conn, b"hello").await;
    drop(proxy);
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
        .await
        .expect("the connection is closed, not left hanging");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    eventually("the listener is closed", || {
        std::net::TcpStream::connect(addr).is_err()
    })
    .await;
}

#[tokio::test]
async fn the_address_is_known_before_the_upstream() {
    let bound = Proxy::bind(ProxyConfig::default()).await.unwrap();
    let addr = bound.addr();
    // A client may connect before forwarding starts: it waits in the backlog.
    let early = tokio::spawn(async move {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        round_trip(&mut conn, b"early").await
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let proxy = bound.forward_to(echo_server().await);
    early.await.unwrap();
    assert_eq!(proxy.addr(), addr);
    assert_eq!(proxy.stats().connections_opened, 1);
}

#[tokio::test]
async fn an_address_in_use_is_a_bind_error() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let err = Proxy::start(addr, ProxyConfig::default().listen(addr))
        .await
        .unwrap_err();
    assert!(matches!(err, ProxyError::Bind { addr: a, .. } if a == addr));
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn an_unreachable_upstream_closes_the_client_connection() {
    let gone = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let proxy = Proxy::start(gone, ProxyConfig::default()).await.unwrap();
    let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    eventually("the connection is counted closed", || {
        proxy.stats().connections_open == 0
    })
    .await;
    assert_eq!(proxy.stats().connections_opened, 1);
}
