//! A command's deadline as a future: its timeout, or never.

use tokio::time::Instant;

/// Sleep until `deadline`; with none, forever.
pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
