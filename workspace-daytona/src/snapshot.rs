//! `client.snapshots()`: the images sandboxes are created from (`/snapshots`).
//!
//! A snapshot is made from an image to pull ([`SnapshotSource::Image`]) or a Dockerfile to
//! build ([`SnapshotSource::Dockerfile`]); [`Snapshots::create`] waits until it is `active`
//! (usable) or failed. Snapshots are addressed by id or name.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;
use reqwest::Method;

use daytona_api::sandbox::{CreateBuildInfo, UrlResponse};
use daytona_api::snapshot::{CreateSnapshot, PaginatedSnapshots, SnapshotDto, SnapshotState};

use crate::build_logs::{BuildProbe, follow_lines};
use crate::error::DaytonaError;
use crate::params::Resources;
use crate::transport::{Call, Transport, join};

/// Page size [`Snapshots::list_all`] asks for.
const PAGE_SIZE: u32 = 100;
/// First and longest pause between two state polls.
const FIRST_POLL: Duration = Duration::from_millis(100);
const MAX_POLL: Duration = Duration::from_secs(1);

/// Where a snapshot's image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotSource {
    /// An image to pull, e.g. `python:3.12-slim`.
    Image(String),
    /// A Dockerfile to build.
    Dockerfile(String),
}

/// What [`Snapshots::create`] makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSnapshotParams {
    /// Name, unique in the organization.
    pub name: String,
    /// The image.
    pub source: SnapshotSource,
    /// Command the sandboxes run as their entrypoint (default: the image's own).
    pub entrypoint: Option<Vec<String>>,
    /// CPU, memory, disk and GPU of sandboxes created from it.
    pub resources: Option<Resources>,
    /// Region (default: the organization's).
    pub region_id: Option<String>,
}

impl CreateSnapshotParams {
    /// A snapshot of a pulled image.
    pub fn from_image(name: impl Into<String>, image: impl Into<String>) -> Self {
        Self::new(name, SnapshotSource::Image(image.into()))
    }

    /// A snapshot built from a Dockerfile.
    pub fn from_dockerfile(name: impl Into<String>, dockerfile: impl Into<String>) -> Self {
        Self::new(name, SnapshotSource::Dockerfile(dockerfile.into()))
    }

    fn new(name: impl Into<String>, source: SnapshotSource) -> Self {
        CreateSnapshotParams {
            name: name.into(),
            source,
            entrypoint: None,
            resources: None,
            region_id: None,
        }
    }

    /// Sets the entrypoint.
    pub fn entrypoint<I, S>(mut self, command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.entrypoint = Some(command.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the resources.
    pub fn resources(mut self, resources: Resources) -> Self {
        self.resources = Some(resources);
        self
    }

    /// The `POST /snapshots` body, as the official SDKs send it. With a Dockerfile, the
    /// entrypoint becomes an `ENTRYPOINT` line of it.
    ///
    /// # Errors
    /// [`DaytonaError::InvalidArgument`] naming the empty or malformed field.
    pub fn to_wire(&self, default_region: Option<&str>) -> Result<CreateSnapshot, DaytonaError> {
        if self.name.trim().is_empty() {
            return Err(DaytonaError::invalid("name", "must not be empty"));
        }
        if let Some(ep) = &self.entrypoint
            && (ep.is_empty() || ep[0].trim().is_empty())
        {
            return Err(DaytonaError::invalid(
                "entrypoint",
                "must name a command; use None for the image's own",
            ));
        }
        let mut body = CreateSnapshot {
            name: self.name.clone(),
            region_id: self
                .region_id
                .clone()
                .or_else(|| default_region.map(str::to_string)),
            ..CreateSnapshot::default()
        };
        match &self.source {
            SnapshotSource::Image(image) => {
                let image = image.trim();
                if image.is_empty() || image.contains(char::is_whitespace) {
                    return Err(DaytonaError::invalid(
                        "image",
                        "must be one image reference",
                    ));
                }
                body.image_name = Some(image.to_string());
                body.entrypoint = self.entrypoint.clone();
            }
            SnapshotSource::Dockerfile(dockerfile) => {
                if dockerfile.trim().is_empty() {
                    return Err(DaytonaError::invalid("dockerfile", "must not be empty"));
                }
                let mut content = dockerfile.clone();
                if let Some(ep) = &self.entrypoint {
                    let json = serde_json::to_string(ep).map_err(|e| {
                        DaytonaError::invalid("entrypoint", format!("cannot encode: {e}"))
                    })?;
                    if !content.ends_with('\n') {
                        content.push('\n');
                    }
                    content.push_str(&format!("ENTRYPOINT {json}\n"));
                }
                body.build_info = Some(CreateBuildInfo {
                    dockerfile_content: content,
                    context_hashes: None,
                });
            }
        }
        if let Some(r) = self.resources {
            body.cpu = r.cpu.map(i64::from);
            body.gpu = r.gpu.map(i64::from);
            body.memory = r.memory.map(i64::from);
            body.disk = r.disk.map(i64::from);
        }
        Ok(body)
    }
}

/// Snapshot management. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Snapshots {
    transport: Arc<Transport>,
}

impl Snapshots {
    pub(crate) fn new(transport: Arc<Transport>) -> Self {
        Snapshots { transport }
    }
}

/// A snapshot being built, for the build log's idle checks.
struct SnapshotBuild<'a> {
    api: &'a Snapshots,
    snapshot: &'a mut SnapshotDto,
}

#[async_trait::async_trait]
impl BuildProbe for SnapshotBuild<'_> {
    async fn build_over(&mut self) -> Result<bool, DaytonaError> {
        *self.snapshot = self.api.get(&self.snapshot.id).await?;
        Ok(self.snapshot.state.is_terminal())
    }
}

fn non_empty(field: &str, value: &str) -> Result<(), DaytonaError> {
    if value.trim().is_empty() {
        return Err(DaytonaError::invalid(field, "must not be empty"));
    }
    Ok(())
}

impl Snapshots {
    fn url(&self, segments: &[&str]) -> Result<url::Url, DaytonaError> {
        let mut all = vec!["snapshots"];
        all.extend_from_slice(segments);
        join(&self.transport.config().api_url, &all)
    }

    /// One page of snapshots (`GET /snapshots?page=&limit=`); `page` counts from 1.
    pub async fn list(&self, page: u32, limit: u32) -> Result<PaginatedSnapshots, DaytonaError> {
        if page == 0 {
            return Err(DaytonaError::invalid("page", "pages count from 1"));
        }
        if !(1..=200).contains(&limit) {
            return Err(DaytonaError::invalid("limit", "must be within 1..=200"));
        }
        let mut url = self.url(&[])?;
        url.query_pairs_mut()
            .append_pair("page", &page.to_string())
            .append_pair("limit", &limit.to_string());
        let call = Call::new("snapshot.list", Method::GET, url);
        self.transport.call_json(&call).await
    }

    /// Every snapshot, page by page as the stream is consumed.
    pub fn list_all(
        &self,
    ) -> impl Stream<Item = Result<SnapshotDto, DaytonaError>> + Send + 'static {
        struct Pager {
            snapshots: Snapshots,
            next_page: Option<u32>,
            page: std::vec::IntoIter<SnapshotDto>,
        }
        let pager = Pager {
            snapshots: self.clone(),
            next_page: Some(1),
            page: Vec::new().into_iter(),
        };
        futures::stream::try_unfold(pager, |mut p| async move {
            loop {
                if let Some(item) = p.page.next() {
                    return Ok(Some((item, p)));
                }
                let Some(n) = p.next_page else {
                    return Ok(None);
                };
                let resp = p.snapshots.list(n, PAGE_SIZE).await?;
                let last = resp.items.is_empty() || u64::from(n) >= resp.total_pages;
                p.next_page = if last { None } else { n.checked_add(1) };
                p.page = resp.items.into_iter();
            }
        })
    }

    /// A snapshot by id or name (`GET /snapshots/{idOrName}`).
    ///
    /// # Errors
    /// [`DaytonaError::NotFound`] when there is none.
    pub async fn get(&self, id_or_name: &str) -> Result<SnapshotDto, DaytonaError> {
        non_empty("id_or_name", id_or_name)?;
        let call = Call::new("snapshot.get", Method::GET, self.url(&[id_or_name])?);
        self.transport.call_json(&call).await
    }

    /// Creates a snapshot and waits until it is `active` (`POST /snapshots`, then polling).
    ///
    /// `timeout` bounds the whole operation (`None`: no limit).
    ///
    /// # Errors
    /// [`DaytonaError::ResourceFailed`] when it ends in `error` or `build_failed` (with the
    /// server's reason); [`DaytonaError::Conflict`] when the name is taken;
    /// [`DaytonaError::RequestTimeout`] when `timeout` ran out (the snapshot still exists).
    pub async fn create(
        &self,
        params: &CreateSnapshotParams,
        timeout: Option<Duration>,
    ) -> Result<SnapshotDto, DaytonaError> {
        self.create_inner(params, timeout, None).await
    }

    /// [`create`](Self::create), handing the build log of a Dockerfile snapshot to `on_log`
    /// line by line. A log that cannot be read does not fail the create.
    pub async fn create_with_build_logs<F>(
        &self,
        params: &CreateSnapshotParams,
        timeout: Option<Duration>,
        mut on_log: F,
    ) -> Result<SnapshotDto, DaytonaError>
    where
        F: FnMut(&str) + Send,
    {
        self.create_inner(params, timeout, Some(&mut on_log)).await
    }

    async fn create_inner(
        &self,
        params: &CreateSnapshotParams,
        timeout: Option<Duration>,
        mut on_log: Option<&mut (dyn FnMut(&str) + Send)>,
    ) -> Result<SnapshotDto, DaytonaError> {
        let body = params.to_wire(self.transport.config().target_name())?;
        let until = timeout.map(|t| Instant::now() + t);
        let call = Call::new("snapshot.create", Method::POST, self.url(&[])?)
            .json(&body)?
            .until(until);
        let mut snapshot: SnapshotDto = self.transport.call_json(&call).await?;
        let builds = body.build_info.is_some();
        let mut followed = false;
        let mut pause = FIRST_POLL;
        loop {
            // A snapshot being removed will never become active.
            if snapshot.state.is_terminal() || snapshot.state == SnapshotState::Removing {
                break;
            }
            if builds
                && !followed
                && snapshot.state != SnapshotState::Pending
                && let Some(on_line) = on_log.as_deref_mut()
            {
                followed = true;
                if let Err(e) = self.follow_build_log(&mut snapshot, until, on_line).await {
                    tracing::warn!(snapshot = %snapshot.name, error = %e, "could not follow the build log");
                }
                continue;
            }
            if let Some(u) = until {
                let left = u.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(DaytonaError::RequestTimeout {
                        operation: "snapshot.create",
                        after: timeout.unwrap_or_default(),
                    });
                }
                pause = pause.min(left);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 3 / 2).min(MAX_POLL);
            snapshot = self.get(&snapshot.id).await?;
        }
        match snapshot.state {
            SnapshotState::Error | SnapshotState::BuildFailed | SnapshotState::Removing => {
                Err(DaytonaError::ResourceFailed {
                    kind: "snapshot",
                    id: snapshot.name.clone(),
                    state: snapshot.state.to_string(),
                    reason: snapshot.error_reason.clone(),
                })
            }
            _ => Ok(snapshot),
        }
    }

    async fn follow_build_log(
        &self,
        snapshot: &mut SnapshotDto,
        until: Option<Instant>,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), DaytonaError> {
        let call = Call::new(
            "snapshot.build_logs_url",
            Method::GET,
            self.url(&[&snapshot.id, "build-logs-url"])?,
        );
        let answer: UrlResponse = self.transport.call_json(&call).await?;
        follow_lines(
            &self.transport,
            "snapshot.build_logs",
            None,
            &answer.url,
            until,
            on_line,
            SnapshotBuild {
                api: self,
                snapshot,
            },
        )
        .await
    }

    /// Deletes a snapshot by id or name (`DELETE /snapshots/{id}`, after resolving a name).
    ///
    /// # Errors
    /// [`DaytonaError::NotFound`] when there is none.
    pub async fn delete(&self, id_or_name: &str) -> Result<(), DaytonaError> {
        let id = self.get(id_or_name).await?.id;
        let call = Call::new("snapshot.delete", Method::DELETE, self.url(&[&id])?);
        let (result, stats) = self.transport.call_with_stats(&call).await;
        match result {
            Ok(_) => Ok(()),
            // The first attempt may have deleted it before the connection broke.
            Err(e) if e.is_not_found() && stats.unknown_outcome => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Re-activates an inactive snapshot (`POST /snapshots/{id}/activate`, after resolving a
    /// name); returns it.
    ///
    /// # Errors
    /// [`DaytonaError::BadRequest`] when it is not inactive.
    pub async fn activate(&self, id_or_name: &str) -> Result<SnapshotDto, DaytonaError> {
        let id = self.get(id_or_name).await?.id;
        let call = Call::new(
            "snapshot.activate",
            Method::POST,
            self.url(&[&id, "activate"])?,
        );
        self.transport.call_json(&call).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn image_snapshot_body() {
        let p = CreateSnapshotParams::from_image("py", "python:3.12")
            .entrypoint(["sleep", "infinity"])
            .resources(Resources {
                cpu: Some(2),
                memory: Some(4),
                ..Resources::default()
            });
        let v = serde_json::to_value(p.to_wire(Some("us")).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name": "py", "imageName": "python:3.12",
                "entrypoint": ["sleep", "infinity"], "cpu": 2, "memory": 4, "regionId": "us"})
        );
    }

    #[test]
    fn dockerfile_snapshot_bakes_the_entrypoint() {
        let p = CreateSnapshotParams::from_dockerfile("d", "FROM alpine").entrypoint(["sh"]);
        let body = p.to_wire(None).unwrap();
        assert!(body.image_name.is_none() && body.entrypoint.is_none());
        assert_eq!(
            body.build_info.unwrap().dockerfile_content,
            "FROM alpine\nENTRYPOINT [\"sh\"]\n"
        );
    }

    #[test]
    fn bad_params_are_named() {
        let cases = [
            (CreateSnapshotParams::from_image(" ", "a"), "name"),
            (CreateSnapshotParams::from_image("n", "a b"), "image"),
            (
                CreateSnapshotParams::from_dockerfile("n", "\n"),
                "dockerfile",
            ),
            (
                CreateSnapshotParams::from_image("n", "a").entrypoint(Vec::<String>::new()),
                "entrypoint",
            ),
        ];
        for (p, field) in cases {
            match p.to_wire(None) {
                Err(DaytonaError::InvalidArgument { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
