//! Credentials and env values never reach tracing output.
//!
//! This binary holds a single test: it installs the global subscriber, which must not race with
//! other tests registering callsites.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use workspace_daytona::{CreateSandboxParams, DaytonaClient, DaytonaConfig, ExecuteOptions};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn keys_and_env_values_never_appear_in_tracing_output() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let emu = emulator().await;
    let client = client(&emu);
    let mut sandbox = client
        .create(
            CreateSandboxParams::new().env("SECRET_TOKEN", "env-value-do-not-log"),
            T,
        )
        .await
        .unwrap();
    sandbox
        .process()
        .execute(
            "echo ok",
            &ExecuteOptions::new().env("OTHER_SECRET", "exec-env-do-not-log"),
        )
        .await
        .unwrap();
    let _ = client.get("missing").await;
    sandbox.delete(T).await.unwrap();
    // A JWT client too.
    let jwt = DaytonaClient::new(
        DaytonaConfig::with_jwt("jwt-do-not-log", "org")
            .api_url(&emu.api_url())
            .unwrap(),
    )
    .unwrap();
    let _ = jwt.get("x").await;

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    if std::env::var_os("SHOW_TRACE").is_some() {
        eprintln!("{text}");
    }
    for secret in [
        API_KEY,
        "env-value-do-not-log",
        "exec-env-do-not-log",
        "jwt-do-not-log",
    ] {
        assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
    }
    // The spans carry what they should.
    assert!(text.contains("daytona.call"), "{text}");
    for field in [
        "op=\"sandbox.create\"",
        "op=\"process.execute\"",
        "op=\"sandbox.delete\"",
        "status=404",
        "attempts=1",
        "duration_ms=",
    ] {
        assert!(text.contains(field), "missing {field} in:\n{text}");
    }
    assert!(
        text.contains(&format!("sandbox_id={}", sandbox.id()))
            || text.contains(&format!("sandbox_id=\"{}\"", sandbox.id())),
        "{text}"
    );
}
