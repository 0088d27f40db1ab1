//! Reaching one sandbox's toolbox (the in-sandbox daemon) through the proxy:
//! `{toolboxProxyUrl}/{sandboxId}/…`.

use std::sync::Arc;

use reqwest::Method;
use tokio::sync::OnceCell;
use url::Url;

use daytona_api::sandbox::ToolboxProxyUrl;

use crate::config::parse_base_url;
use crate::error::DaytonaError;
use crate::transport::{Call, Transport, join};

/// Shared by a sandbox handle and its `process()`/`fs()` sub-handles.
#[derive(Clone)]
pub(crate) struct Toolbox {
    pub(crate) transport: Arc<Transport>,
    pub(crate) sandbox_id: String,
    /// `toolboxProxyUrl` from the sandbox DTO; empty when the server did not send it.
    proxy_hint: String,
    base: Arc<OnceCell<Url>>,
}

impl std::fmt::Debug for Toolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toolbox")
            .field("sandbox_id", &self.sandbox_id)
            .field("base", &self.base.get().map(Url::as_str))
            .finish()
    }
}

impl Toolbox {
    pub(crate) fn new(transport: Arc<Transport>, sandbox_id: String, proxy_hint: String) -> Self {
        Toolbox {
            transport,
            sandbox_id,
            proxy_hint,
            base: Arc::new(OnceCell::new()),
        }
    }

    /// `{toolboxProxyUrl}/{sandboxId}`, asking `GET /sandbox/{id}/toolbox-proxy-url` when the
    /// DTO had no proxy URL. Resolved once per handle.
    pub(crate) async fn base(&self) -> Result<&Url, DaytonaError> {
        self.base
            .get_or_try_init(|| async {
                let proxy = if self.proxy_hint.trim().is_empty() {
                    let url = join(
                        &self.transport.config().api_url,
                        &["sandbox", &self.sandbox_id, "toolbox-proxy-url"],
                    )?;
                    let call = Call::new("sandbox.toolbox_proxy_url", Method::GET, url)
                        .sandbox(&self.sandbox_id);
                    let answer: ToolboxProxyUrl = self.transport.call_json(&call).await?;
                    answer.url
                } else {
                    self.proxy_hint.clone()
                };
                let base = parse_base_url(&proxy).map_err(|reason| {
                    DaytonaError::decode(
                        "sandbox.toolbox_proxy_url",
                        format!("bad toolboxProxyUrl: {reason}"),
                    )
                })?;
                join(&base, &[&self.sandbox_id])
            })
            .await
    }

    /// A toolbox URL from path segments (each percent-encoded).
    pub(crate) async fn url(&self, segments: &[&str]) -> Result<Url, DaytonaError> {
        join(self.base().await?, segments)
    }

    /// A toolbox URL with query parameters.
    pub(crate) async fn url_query(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Url, DaytonaError> {
        let mut url = self.url(segments).await?;
        if !query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    pub(crate) fn call(&self, op: &'static str, method: Method, url: Url) -> Call {
        Call::new(op, method, url).sandbox(&self.sandbox_id)
    }
}
