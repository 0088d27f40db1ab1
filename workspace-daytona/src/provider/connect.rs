//! Finding, starting, creating, stopping and deleting the Daytona sandbox behind a handle: the
//! work that [`workspace_core::lifecycle::Lifecycle`] coalesces.

use std::time::{Duration, Instant};

use daytona_api::sandbox::SandboxState;
use workspace_core::{Result, SandboxError, StartOutcome, TimeoutPhase};

use crate::error::DaytonaError;
use crate::sandbox::Sandbox;

use super::classify::{Class, classify};
use super::shared::{Attached, Shared};

/// First pause between two state polls; grows by half up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(100);
const MAX_POLL: Duration = Duration::from_secs(2);

/// What [`Shared::bring_up`] made of an existing sandbox.
enum BroughtUp {
    Running(Box<Sandbox>),
    /// It was dead (destroyed, or failed beyond recovery and now deleted): create another.
    Gone,
}

fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

impl Shared {
    /// The bound on a stop or a delete: at least the default creation timeout, since a
    /// deletion may first have to wait for a slow create to settle.
    fn teardown_timeout(&self) -> Duration {
        self.builder()
            .creation_timeout
            .max(super::builder::DEFAULT_CREATION_TIMEOUT)
    }

    fn start_timeout(&self) -> SandboxError {
        SandboxError::Timeout {
            phase: TimeoutPhase::Start,
            after: self.builder().creation_timeout,
        }
    }

    /// Connect to the existing sandbox (by the id of the last attachment, the `id` option, then
    /// the name) or create one; attach it. What `start()` and lazy starts run.
    pub(crate) async fn start_work(&self) -> Result<StartOutcome> {
        let attempted_before = self.note_start_attempt();
        let deadline = Instant::now() + self.builder().creation_timeout;
        // A made-up name is free until this handle's first create: skip the lookup (a 404)
        // then. Later starts look, as a failed start may have left a sandbox behind.
        let existing =
            if !attempted_before && self.opts.generated_name() && self.current().is_none() {
                None
            } else {
                self.find_existing().await?
            };
        let (sandbox, outcome) = match existing {
            Some(existing) => match self.bring_up(existing, deadline).await? {
                BroughtUp::Running(sb) => (*sb, StartOutcome::Connected),
                BroughtUp::Gone => self.create(deadline).await?,
            },
            None => self.create(deadline).await?,
        };
        tracing::info!(
            sandbox = %self.opts.id,
            daytona_id = %sandbox.id(),
            ?outcome,
            "Daytona sandbox ready"
        );
        self.attach(sandbox);
        Ok(outcome)
    }

    /// The sandbox this handle names, if one exists. Only a 404 means "none": any other failure
    /// (auth, network) is returned, so that a blip never creates a duplicate.
    pub(crate) async fn find_existing(&self) -> Result<Option<Sandbox>> {
        let mut keys = Vec::new();
        if let Some(current) = self.current() {
            keys.push(current.sandbox.id().to_string());
        }
        for key in self.opts.lookup_keys() {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        for key in keys {
            match self.client.get(&key).await {
                Ok(sb) if sb.state() == Some(&SandboxState::Destroyed) => {}
                Ok(sb) => return Ok(Some(sb)),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// Create the sandbox; on a name conflict adopt the sandbox that holds the name (another
    /// handle won the race to create it).
    async fn create(&self, deadline: Instant) -> Result<(Sandbox, StartOutcome)> {
        let params = self.opts.create_params();
        match self.client.create(params, Some(left(deadline))).await {
            Ok(sb) => Ok((sb, StartOutcome::Created)),
            Err(DaytonaError::Conflict(details)) => {
                tracing::info!(
                    name = %self.opts.name,
                    "a sandbox with this name exists already (409); adopting it"
                );
                let existing = match self.client.get(&self.opts.name).await {
                    Ok(sb) => sb,
                    Err(e) if e.is_not_found() => {
                        return Err(SandboxError::Conflict {
                            message: format!(
                                "the name {} is taken ({details}), yet no sandbox has it",
                                self.opts.name
                            ),
                        });
                    }
                    Err(e) => return Err(e.into()),
                };
                match self.bring_up(existing, deadline).await? {
                    BroughtUp::Running(sb) => Ok((*sb, StartOutcome::Connected)),
                    BroughtUp::Gone => Err(SandboxError::Conflict {
                        message: format!(
                            "the sandbox named {} that held the name died while being adopted",
                            self.opts.name
                        ),
                    }),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Drive an existing sandbox to `started`: start it when stopped or archived, recover or
    /// replace it when failed, wait out transitions. Bounded by `deadline`.
    async fn bring_up(&self, mut sb: Sandbox, deadline: Instant) -> Result<BroughtUp> {
        let mut pause = FIRST_POLL;
        loop {
            let state = sb.state().cloned().unwrap_or(SandboxState::Unknown);
            match state {
                SandboxState::Started => return Ok(BroughtUp::Running(Box::new(sb))),
                SandboxState::Stopped | SandboxState::Archived | SandboxState::Paused => {
                    match sb.start(Some(left(deadline))).await {
                        Ok(()) => return Ok(BroughtUp::Running(Box::new(sb))),
                        Err(e) if classify(&e) == Class::StateChangeInProgress => {}
                        Err(DaytonaError::WaitTimeout { .. }) => return Err(self.start_timeout()),
                        Err(e) => return Err(e.into()),
                    }
                }
                SandboxState::Error | SandboxState::BuildFailed => {
                    if sb.data().recoverable == Some(true) {
                        match sb.recover(Some(left(deadline))).await {
                            Ok(()) => return Ok(BroughtUp::Running(Box::new(sb))),
                            Err(e) => tracing::warn!(
                                daytona_id = %sb.id(),
                                error = %e,
                                "recovering the sandbox failed; replacing it"
                            ),
                        }
                    }
                    tracing::warn!(
                        daytona_id = %sb.id(),
                        %state,
                        reason = sb.data().error_reason.as_deref().unwrap_or("none given"),
                        "the sandbox failed; deleting it and creating a new one"
                    );
                    return match sb.delete(Some(left(deadline))).await {
                        Ok(()) => Ok(BroughtUp::Gone),
                        Err(e) if e.is_not_found() => Ok(BroughtUp::Gone),
                        Err(DaytonaError::WaitTimeout { .. }) => Err(self.start_timeout()),
                        Err(e) => Err(e.into()),
                    };
                }
                SandboxState::Destroyed => return Ok(BroughtUp::Gone),
                // Transitional (creating, starting, stopping, archiving, destroying, …) or a
                // state this client does not know: ask again shortly.
                _ => {}
            }
            if left(deadline).is_zero() {
                return Err(self.start_timeout());
            }
            tokio::time::sleep(pause.min(left(deadline))).await;
            pause = (pause * 3 / 2).min(MAX_POLL);
            match sb.refresh().await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => return Ok(BroughtUp::Gone),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Stop the attached sandbox. A sandbox already stopped (or deleted, for an ephemeral one)
    /// underneath counts as stopped; a stop refused while a transition runs is asked again
    /// until the creation timeout; any other failure is returned.
    pub(crate) async fn stop_work(&self) -> Result<()> {
        let Some(attached) = self.current() else {
            return Ok(());
        };
        let stopped = self.stop_attached(&attached).await;
        if stopped.is_ok() {
            // Its sessions went with it.
            attached.spare.close();
            attached.resident.close();
        }
        stopped
    }

    async fn stop_attached(&self, attached: &Attached) -> Result<()> {
        let deadline = Instant::now() + self.teardown_timeout();
        let mut sb = attached.sandbox.clone();
        let Err(err) = through_transitions(&mut sb, Teardown::Stop, deadline).await else {
            return Ok(());
        };
        let mut probe = attached.sandbox.clone();
        match probe.refresh().await {
            Ok(())
                if matches!(
                    probe.state(),
                    Some(SandboxState::Stopped | SandboxState::Archived | SandboxState::Destroyed)
                ) =>
            {
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            _ => Err(match err {
                DaytonaError::WaitTimeout { .. } => SandboxError::Timeout {
                    phase: TimeoutPhase::Stop,
                    after: self.teardown_timeout(),
                },
                other => other.into(),
            }),
        }
    }

    /// Delete the attached sandbox, and whatever sandbox a failed start left under this
    /// handle's id or name. Failures are returned (the handle stays destroyable).
    pub(crate) async fn destroy_work(&self) -> Result<()> {
        let deadline = Instant::now() + self.teardown_timeout();
        if let Some(attached) = self.take_attached() {
            if let Err(e) = self
                .delete_patiently(attached.sandbox.clone(), deadline)
                .await
            {
                self.restore_attached(attached);
                return Err(e);
            }
            attached.spare.close();
            attached.resident.close();
        }
        if self.start_was_attempted()
            && let Some(orphan) = self.find_existing().await?
        {
            tracing::info!(
                daytona_id = %orphan.id(),
                "deleting a sandbox a failed start left behind"
            );
            self.delete_patiently(orphan, deadline).await?;
        }
        Ok(())
    }

    /// Delete `sb` and wait until it is gone; a deletion refused because a transition is under
    /// way (a create or start still running) is asked again until `deadline`.
    async fn delete_patiently(&self, mut sb: Sandbox, deadline: Instant) -> Result<()> {
        match through_transitions(&mut sb, Teardown::Delete, deadline).await {
            Ok(()) => Ok(()),
            Err(DaytonaError::WaitTimeout { .. }) => Err(SandboxError::Timeout {
                phase: TimeoutPhase::Destroy,
                after: self.teardown_timeout(),
            }),
            Err(e) => Err(e.into()),
        }
    }
}

/// The teardown calls [`through_transitions`] repeats.
#[derive(Clone, Copy)]
enum Teardown {
    Stop,
    Delete,
}

/// Run a teardown call on `sb` until it is done: a sandbox already gone counts as done, and a
/// refusal because a transition is under way (a create or start still running) is asked
/// again, with growing pauses, until `deadline`. Other failures are returned.
async fn through_transitions(
    sb: &mut Sandbox,
    teardown: Teardown,
    deadline: Instant,
) -> std::result::Result<(), DaytonaError> {
    let mut pause = FIRST_POLL;
    loop {
        let outcome = match teardown {
            Teardown::Stop => sb.stop(Some(left(deadline))).await,
            Teardown::Delete => sb.delete(Some(left(deadline))).await,
        };
        match outcome {
            Ok(()) => return Ok(()),
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) if classify(&e) == Class::StateChangeInProgress && !left(deadline).is_zero() => {
                tokio::time::sleep(pause.min(left(deadline))).await;
                pause = (pause * 3 / 2).min(MAX_POLL);
            }
            Err(e) => return Err(e),
        }
    }
}
