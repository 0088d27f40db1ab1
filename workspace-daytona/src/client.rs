//! [`DaytonaClient`]: the entry point; creates, finds and lists sandboxes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use reqwest::Method;

use daytona_api::sandbox::{ListSandboxesResponse, Sandbox as SandboxDto, SandboxListItem};

use daytona_api::sandbox::CreateBuildInfo;

use crate::config::DaytonaConfig;
use crate::error::DaytonaError;
use crate::params::CreateSandboxParams;
use crate::retry::Replay;
use crate::sandbox::{Sandbox, deadline};
use crate::snapshot::Snapshots;
use crate::transport::{Call, Transport, join};

/// Page size asked of `GET /sandbox` (the API allows 1..=200).
const LIST_PAGE_SIZE: u32 = 100;

/// A Daytona API client. Cheap to clone: clones, and every [`Sandbox`] handle obtained from
/// them, share one connection pool and configuration.
///
/// Every request carries `Authorization: Bearer …`, `X-Daytona-Source: sdk-rust`,
/// `X-Daytona-SDK-Version` (a version new enough that the toolbox splits session stdout from
/// stderr), a `User-Agent`, and with a JWT `X-Daytona-Organization-ID`.
#[derive(Debug, Clone)]
pub struct DaytonaClient {
    pub(crate) transport: Arc<Transport>,
}

/// Filters for [`DaytonaClient::list_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only sandboxes carrying all these labels.
    pub labels: BTreeMap<String, String>,
    /// Only sandboxes whose name starts with this.
    pub name_prefix: Option<String>,
    /// Only sandboxes in one of these states (wire names, e.g. `started`).
    pub states: Vec<String>,
    /// Page size, 1..=200 (default 100). Pagination itself is transparent.
    pub page_size: Option<u32>,
}

impl DaytonaClient {
    /// A client for `config`.
    ///
    /// # Errors
    /// [`DaytonaError::MissingCredentials`] or [`DaytonaError::InvalidConfig`] when the
    /// configuration cannot work.
    pub fn new(config: DaytonaConfig) -> Result<Self, DaytonaError> {
        Ok(DaytonaClient {
            transport: Arc::new(Transport::new(config)?),
        })
    }

    /// A client configured from `DAYTONA_*` environment variables
    /// (see [`DaytonaConfig::from_env`]).
    pub fn from_env() -> Result<Self, DaytonaError> {
        Self::new(DaytonaConfig::from_env()?)
    }

    /// The configuration.
    pub fn config(&self) -> &DaytonaConfig {
        self.transport.config()
    }

    fn api_url(&self, segments: &[&str]) -> Result<url::Url, DaytonaError> {
        join(&self.transport.config().api_url, segments)
    }

    /// Creates a sandbox and waits until it is `started` (`POST /sandbox`, then polling).
    ///
    /// `timeout` bounds the whole operation (`None`: no limit). When it runs out while waiting,
    /// the error is [`DaytonaError::WaitTimeout`] naming the sandbox, which then still exists:
    /// delete it, or wait again with [`DaytonaClient::get`] and [`Sandbox::wait_until_started`].
    /// When it runs out before the API answered the `POST`, the error is
    /// [`DaytonaError::RequestTimeout`] and whether a sandbox was made is unknown (a named one
    /// can be looked up). A sandbox that ends in `error` or `build_failed` gives
    /// [`DaytonaError::SandboxFailed`] with the server's reason.
    ///
    /// Retries: a create **with a name** is replayed after a broken connection or a gateway
    /// error, and if the replay meets 409 (the first attempt did create it) the existing sandbox
    /// of that name is adopted, provided its labels include the requested ones. A create
    /// without a name is only retried when the connection could not be made at all, so it can
    /// never create two sandboxes.
    pub async fn create(
        &self,
        params: CreateSandboxParams,
        timeout: Option<Duration>,
    ) -> Result<Sandbox, DaytonaError> {
        let body = params.to_wire(self.transport.config().target_name())?;
        self.create_observed(body, timeout, None).await
    }

    /// [`create`](Self::create), following the image build log into `on_build_log` when the
    /// sandbox is being built (see `build_logs.rs`).
    pub(crate) async fn create_observed(
        &self,
        body: daytona_api::sandbox::CreateSandbox,
        timeout: Option<Duration>,
        on_build_log: Option<&mut (dyn FnMut(&str) + Send)>,
    ) -> Result<Sandbox, DaytonaError> {
        let until = deadline(timeout);
        let named = body.name.clone();
        let call = Call::new("sandbox.create", Method::POST, self.api_url(&["sandbox"])?)
            .json(&body)?
            .replay(if named.is_some() {
                Replay::Idempotent
            } else {
                Replay::ConnectOnly
            })
            .until(until);
        let (result, stats) = self.transport.call_with_stats(&call).await;
        let dto: SandboxDto = match result {
            Ok(reply) => crate::transport::decode_json("sandbox.create", &reply.body)?,
            Err(DaytonaError::Conflict(details)) if stats.unknown_outcome && named.is_some() => {
                let name = named.as_deref().unwrap_or_default();
                let existing = self.get_dto(name).await?;
                let wanted = body.labels.clone().unwrap_or_default();
                let ours = wanted
                    .iter()
                    .all(|(k, v)| existing.labels.get(k) == Some(v));
                if !ours {
                    return Err(DaytonaError::Conflict(details));
                }
                tracing::info!(
                    sandbox_id = %existing.id,
                    "create replay met 409; adopted the sandbox the first attempt created"
                );
                existing
            }
            // A create that timed out has an unknown outcome: say so rather than invent an id.
            Err(e) => return Err(e),
        };
        let mut sandbox = Sandbox::from_dto(Arc::clone(&self.transport), dto);
        if let Some(on_line) = on_build_log {
            crate::build_logs::follow_during_create(&mut sandbox, until, on_line).await;
        }
        if sandbox.state() != Some(&daytona_api::sandbox::SandboxState::Started) {
            let left = until.map(|u| u.saturating_duration_since(std::time::Instant::now()));
            sandbox
                .wait_until_started(left)
                .await
                .map_err(|e| match e {
                    DaytonaError::WaitTimeout {
                        sandbox_id,
                        target,
                        last_state,
                        ..
                    } => DaytonaError::WaitTimeout {
                        sandbox_id,
                        target,
                        after: timeout.unwrap_or_default(),
                        last_state,
                    },
                    other => other,
                })?;
        }
        Ok(sandbox)
    }

    async fn get_dto(&self, id_or_name: &str) -> Result<SandboxDto, DaytonaError> {
        if id_or_name.trim().is_empty() {
            return Err(DaytonaError::invalid("id_or_name", "must not be empty"));
        }
        let call = Call::new(
            "sandbox.get",
            Method::GET,
            self.api_url(&["sandbox", id_or_name])?,
        )
        .sandbox(id_or_name);
        self.transport.call_json(&call).await
    }

    /// A sandbox by id or name (`GET /sandbox/{idOrName}`).
    ///
    /// # Errors
    /// [`DaytonaError::NotFound`] when there is none.
    pub async fn get(&self, id_or_name: &str) -> Result<Sandbox, DaytonaError> {
        let dto = self.get_dto(id_or_name).await?;
        Ok(Sandbox::from_dto(Arc::clone(&self.transport), dto))
    }

    /// Every sandbox carrying all of `labels`, page by page as the stream is consumed
    /// (cursor pagination of `GET /sandbox`).
    ///
    /// ```no_run
    /// # async fn f(client: workspace_daytona::DaytonaClient) -> Result<(), workspace_daytona::DaytonaError> {
    /// use futures::TryStreamExt;
    /// let mine: Vec<_> = client.list([("project", "mvp")]).try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn list<I, K, V>(
        &self,
        labels: I,
    ) -> impl Stream<Item = Result<Sandbox, DaytonaError>> + Send + 'static
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.list_with(ListFilter {
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            ..ListFilter::default()
        })
    }

    /// [`list`](Self::list) with more filters.
    pub fn list_with(
        &self,
        filter: ListFilter,
    ) -> impl Stream<Item = Result<Sandbox, DaytonaError>> + Send + 'static {
        struct Pager {
            client: DaytonaClient,
            filter: ListFilter,
            cursor: Option<String>,
            page: std::vec::IntoIter<SandboxListItem>,
            finished: bool,
        }
        let pager = Pager {
            client: self.clone(),
            filter,
            cursor: None,
            page: Vec::new().into_iter(),
            finished: false,
        };
        futures::stream::try_unfold(pager, |mut p| async move {
            loop {
                if let Some(item) = p.page.next() {
                    let sandbox =
                        Sandbox::from_dto(Arc::clone(&p.client.transport), dto_from_item(item));
                    return Ok(Some((sandbox, p)));
                }
                if p.finished {
                    return Ok(None);
                }
                let resp = p.client.list_page(&p.filter, p.cursor.as_deref()).await?;
                match resp.next_cursor.filter(|c| !c.is_empty()) {
                    Some(next) if Some(&next) == p.cursor.as_ref() => {
                        return Err(DaytonaError::decode(
                            "sandbox.list",
                            "the server returned the same cursor twice",
                        ));
                    }
                    Some(next) => p.cursor = Some(next),
                    None => p.finished = true,
                }
                p.page = resp.items.into_iter();
            }
        })
    }

    async fn list_page(
        &self,
        filter: &ListFilter,
        cursor: Option<&str>,
    ) -> Result<ListSandboxesResponse, DaytonaError> {
        let limit = filter.page_size.unwrap_or(LIST_PAGE_SIZE);
        if !(1..=200).contains(&limit) {
            return Err(DaytonaError::invalid("page_size", "must be within 1..=200"));
        }
        let mut url = self.api_url(&["sandbox"])?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", &limit.to_string());
            if let Some(c) = cursor {
                q.append_pair("cursor", c);
            }
            if !filter.labels.is_empty() {
                let labels = serde_json::to_string(&filter.labels)
                    .map_err(|e| DaytonaError::invalid("labels", format!("cannot encode: {e}")))?;
                q.append_pair("labels", &labels);
            }
            if let Some(prefix) = &filter.name_prefix {
                q.append_pair("name", prefix);
            }
            for s in &filter.states {
                q.append_pair("states", s);
            }
        }
        let call = Call::new("sandbox.list", Method::GET, url);
        self.transport.call_json(&call).await
    }

    /// The first sandbox carrying all of `labels`, if any.
    pub async fn find_one<I, K, V>(&self, labels: I) -> Result<Option<Sandbox>, DaytonaError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        use futures::StreamExt;
        let stream = self.list_with(ListFilter {
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            page_size: Some(1),
            ..ListFilter::default()
        });
        let mut stream = std::pin::pin!(stream);
        stream.next().await.transpose()
    }
}

/// A list item as a sandbox DTO; the fields the list omits stay empty.
fn dto_from_item(item: SandboxListItem) -> SandboxDto {
    let mut dto = SandboxDto::new(item.id, item.toolbox_proxy_url);
    dto.organization_id = item.organization_id;
    dto.name = item.name;
    dto.target = item.target;
    dto.runner_id = item.runner_id;
    dto.sandbox_class = item.sandbox_class;
    dto.state = item.state;
    dto.desired_state = item.desired_state;
    dto.snapshot = item.snapshot;
    dto.user = item.user;
    dto.error_reason = item.error_reason;
    dto.recoverable = item.recoverable;
    dto.public = item.public;
    dto.network_block_all = item.network_block_all;
    dto.network_allow_list = item.network_allow_list;
    dto.domain_allow_list = item.domain_allow_list;
    dto.cpu = item.cpu;
    dto.gpu = item.gpu;
    dto.spot = item.spot;
    dto.spot_evicted_at = item.spot_evicted_at;
    dto.gpu_type = item.gpu_type;
    dto.memory = item.memory;
    dto.disk = item.disk;
    dto.labels = item.labels;
    dto.backup_state = item.backup_state;
    dto.auto_stop_interval = item.auto_stop_interval;
    dto.auto_pause_interval = item.auto_pause_interval;
    dto.auto_archive_interval = item.auto_archive_interval;
    dto.auto_delete_interval = item.auto_delete_interval;
    dto.auto_destroy_at = item.auto_destroy_at;
    dto.created_at = item.created_at;
    dto.updated_at = item.updated_at;
    dto.last_activity_at = item.last_activity_at;
    dto.daemon_version = item.daemon_version;
    dto.warm_pool_id = item.warm_pool_id;
    dto
}

impl DaytonaClient {
    /// [`create`](Self::create), handing the image build's log to `on_build_log` line by line
    /// while the sandbox is built (only a create with
    /// [`CreateSandboxParams::image`] builds anything).
    ///
    /// A build that fails ends in [`DaytonaError::SandboxFailed`] with state `build_failed` and
    /// the server's reason. A log that cannot be read does not fail the create (it is logged at
    /// `warn`).
    ///
    /// ```no_run
    /// # async fn f(client: workspace_daytona::DaytonaClient) -> Result<(), workspace_daytona::DaytonaError> {
    /// use std::time::Duration;
    /// use workspace_daytona::CreateSandboxParams;
    /// let sandbox = client
    ///     .create_with_build_logs(
    ///         CreateSandboxParams::new().image("python:3.12-slim"),
    ///         Some(Duration::from_secs(600)),
    ///         |line| println!("build: {line}"),
    ///     )
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_with_build_logs<F>(
        &self,
        params: CreateSandboxParams,
        timeout: Option<Duration>,
        mut on_build_log: F,
    ) -> Result<Sandbox, DaytonaError>
    where
        F: FnMut(&str) + Send,
    {
        let body = params.to_wire(self.transport.config().target_name())?;
        self.create_observed(body, timeout, Some(&mut on_build_log))
            .await
    }

    /// Creates a sandbox from an image built from `dockerfile`, handing the build's log to
    /// `on_build_log` line by line, and waits until it is `started` (as
    /// [`create_with_build_logs`](Self::create_with_build_logs)).
    ///
    /// This is the official SDKs' `Image` without build context: instructions that read local
    /// files (`COPY`, `ADD` from the context) have nothing to read, and fail the build.
    ///
    /// # Errors
    /// [`DaytonaError::InvalidArgument`] for an empty Dockerfile, or `params` that also name
    /// an image or snapshot; [`DaytonaError::SandboxFailed`] with state `build_failed` and the
    /// server's reason when the build fails.
    pub async fn create_from_dockerfile<F>(
        &self,
        params: CreateSandboxParams,
        dockerfile: &str,
        timeout: Option<Duration>,
        mut on_build_log: F,
    ) -> Result<Sandbox, DaytonaError>
    where
        F: FnMut(&str) + Send,
    {
        if dockerfile.trim().is_empty() {
            return Err(DaytonaError::invalid("dockerfile", "must not be empty"));
        }
        if params.image.is_some() || params.snapshot.is_some() {
            return Err(DaytonaError::invalid(
                "dockerfile",
                "the Dockerfile replaces image and snapshot; set neither",
            ));
        }
        let mut body = params.to_wire(self.transport.config().target_name())?;
        let mut content = dockerfile.to_string();
        if !content.ends_with('\n') {
            content.push('\n');
        }
        body.build_info = Some(CreateBuildInfo {
            dockerfile_content: content,
            context_hashes: None,
        });
        self.create_observed(body, timeout, Some(&mut on_build_log))
            .await
    }
}

impl DaytonaClient {
    /// Snapshot management.
    pub fn snapshots(&self) -> Snapshots {
        Snapshots::new(Arc::clone(&self.transport))
    }
}
