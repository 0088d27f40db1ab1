//! `client.volumes()`: persistent storage shared between sandboxes (`/volumes`).
//!
//! A volume outlives the sandboxes that mount it. Mount one at create time with
//! [`crate::CreateSandboxParams::volume`] (by id or name); it must be `ready` first, which
//! [`Volumes::get_or_create`] waits for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;

use daytona_api::volume::{CreateVolume, VolumeDto, VolumeState};

use crate::client::DaytonaClient;
use crate::error::DaytonaError;
use crate::transport::{Call, Transport, join};

/// First and longest pause between two state polls.
const FIRST_POLL: Duration = Duration::from_millis(100);
const MAX_POLL: Duration = Duration::from_secs(1);

/// Volume management. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Volumes {
    transport: Arc<Transport>,
}

impl DaytonaClient {
    /// Volume management.
    pub fn volumes(&self) -> Volumes {
        Volumes {
            transport: Arc::clone(&self.transport),
        }
    }
}

fn check_name(field: &str, value: &str) -> Result<(), DaytonaError> {
    if value.trim().is_empty() {
        return Err(DaytonaError::invalid(field, "must not be empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(DaytonaError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

impl Volumes {
    fn url(&self, segments: &[&str]) -> Result<url::Url, DaytonaError> {
        let mut all = vec!["volumes"];
        all.extend_from_slice(segments);
        join(&self.transport.config().api_url, &all)
    }

    /// Every volume (`GET /volumes`); deleted ones too with `include_deleted`.
    pub async fn list(&self, include_deleted: bool) -> Result<Vec<VolumeDto>, DaytonaError> {
        let mut url = self.url(&[])?;
        if include_deleted {
            url.query_pairs_mut().append_pair("includeDeleted", "true");
        }
        let call = Call::new("volume.list", Method::GET, url);
        self.transport.call_json(&call).await
    }

    /// Creates a volume (`POST /volumes`); it starts in `pending_create`.
    ///
    /// # Errors
    /// [`DaytonaError::Conflict`] when the name is taken.
    pub async fn create(&self, name: &str) -> Result<VolumeDto, DaytonaError> {
        check_name("name", name)?;
        let call =
            Call::new("volume.create", Method::POST, self.url(&[])?).json(&CreateVolume {
                name: name.to_string(),
            })?;
        self.transport.call_json(&call).await
    }

    /// A volume by name (`GET /volumes/by-name/{name}`).
    ///
    /// # Errors
    /// [`DaytonaError::NotFound`] when there is none.
    pub async fn get(&self, name: &str) -> Result<VolumeDto, DaytonaError> {
        check_name("name", name)?;
        let call = Call::new(
            "volume.get_by_name",
            Method::GET,
            self.url(&["by-name", name])?,
        );
        self.transport.call_json(&call).await
    }

    /// A volume by id (`GET /volumes/{id}`).
    pub async fn get_by_id(&self, id: &str) -> Result<VolumeDto, DaytonaError> {
        check_name("id", id)?;
        let call = Call::new("volume.get", Method::GET, self.url(&[id])?);
        self.transport.call_json(&call).await
    }

    /// The volume called `name`, created if there is none, once it is `ready` (the SDKs'
    /// `volume.get(name, true)`, plus the wait a mount needs).
    ///
    /// Two callers racing to create the same name both end with the one volume.
    ///
    /// # Errors
    /// [`DaytonaError::ResourceFailed`] when the volume is in `error` or being deleted;
    /// [`DaytonaError::RequestTimeout`] when it was not ready within `timeout`.
    pub async fn get_or_create(
        &self,
        name: &str,
        timeout: Option<Duration>,
    ) -> Result<VolumeDto, DaytonaError> {
        let until = timeout.map(|t| Instant::now() + t);
        let volume = match self.get(name).await {
            Ok(v) => v,
            Err(e) if e.is_not_found() => match self.create(name).await {
                Ok(v) => v,
                // Someone else created it between our get and create.
                Err(DaytonaError::Conflict(_)) => self.get(name).await?,
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        self.wait_ready(volume, until, timeout).await
    }

    /// Waits until the volume with this id is `ready`.
    ///
    /// # Errors
    /// As for [`get_or_create`](Self::get_or_create).
    pub async fn wait_until_ready(
        &self,
        id: &str,
        timeout: Option<Duration>,
    ) -> Result<VolumeDto, DaytonaError> {
        let until = timeout.map(|t| Instant::now() + t);
        let volume = self.get_by_id(id).await?;
        self.wait_ready(volume, until, timeout).await
    }

    async fn wait_ready(
        &self,
        mut volume: VolumeDto,
        until: Option<Instant>,
        timeout: Option<Duration>,
    ) -> Result<VolumeDto, DaytonaError> {
        let mut pause = FIRST_POLL;
        loop {
            match volume.state {
                VolumeState::Ready => return Ok(volume),
                VolumeState::Error
                | VolumeState::PendingDelete
                | VolumeState::Deleting
                | VolumeState::Deleted => {
                    return Err(DaytonaError::ResourceFailed {
                        kind: "volume",
                        id: volume.name.clone(),
                        state: volume.state.to_string(),
                        reason: volume.error_reason.clone(),
                    });
                }
                _ => {}
            }
            if let Some(u) = until {
                let left = u.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(DaytonaError::RequestTimeout {
                        operation: "volume.wait_ready",
                        after: timeout.unwrap_or_default(),
                    });
                }
                pause = pause.min(left);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 3 / 2).min(MAX_POLL);
            volume = self.get_by_id(&volume.id).await?;
        }
    }

    /// Deletes a volume by id (`DELETE /volumes/{id}`).
    ///
    /// # Errors
    /// [`DaytonaError::Conflict`] while a sandbox still mounts it; [`DaytonaError::NotFound`]
    /// when there is none.
    pub async fn delete(&self, id: &str) -> Result<(), DaytonaError> {
        check_name("id", id)?;
        let call = Call::new("volume.delete", Method::DELETE, self.url(&[id])?);
        let (result, stats) = self.transport.call_with_stats(&call).await;
        match result {
            Ok(_) => Ok(()),
            // The first attempt may have deleted it before the connection broke.
            Err(e) if e.is_not_found() && stats.unknown_outcome => Ok(()),
            Err(e) => Err(e),
        }
    }
}
