//! Where the Daytona examples run: Daytona Cloud when credentials are in the environment,
//! otherwise a Daytona emulator started in this process, so every example also runs offline.
//!
//! Shared by `agent_loop`, `multishot` and `preview` (`#[path]`-included, not an example itself).

use std::error::Error;
use std::fmt;

use daytona_emulator::{Emulator, EmulatorHandle};
use workspace_daytona::{DaytonaClient, DaytonaConfig, DaytonaSandbox, DaytonaSandboxBuilder};

type BoxError = Box<dyn Error + Send + Sync>;

/// The variable whose presence selects Daytona Cloud.
pub const API_KEY_VAR: &str = "DAYTONA_API_KEY";

/// A Daytona API to create sandboxes on, with one client (and connection pool) shared by all
/// of them.
pub struct DaytonaTarget {
    client: DaytonaClient,
    /// `Some` when the sandboxes live in an emulator this process runs.
    emulator: Option<EmulatorHandle>,
}

// By hand: the client's configuration holds the key, which must never reach a log.
impl fmt::Debug for DaytonaTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaytonaTarget")
            .field("api_url", &self.client.config().api_url_str())
            .field("emulator", &self.emulator.is_some())
            .finish()
    }
}

impl DaytonaTarget {
    /// Daytona Cloud when `DAYTONA_API_KEY` is set (with `DAYTONA_API_URL` and `DAYTONA_TARGET`
    /// when given) and `force_emulator` is false; otherwise a fresh in-process emulator.
    pub async fn from_env(force_emulator: bool) -> Result<Self, BoxError> {
        let key_set = std::env::var(API_KEY_VAR).is_ok_and(|k| !k.trim().is_empty());
        if key_set && !force_emulator {
            let client = DaytonaClient::new(DaytonaConfig::from_env()?)?;
            return Ok(DaytonaTarget {
                client,
                emulator: None,
            });
        }
        // The emulator runs sandbox commands as real local processes, so even on loopback it
        // gets a key nobody else knows.
        let key = random_key();
        let emulator = Emulator::builder()
            .api_key(key.clone())
            .start()
            .await
            .map_err(|e| format!("could not start the Daytona emulator: {e}"))?;
        let client =
            DaytonaClient::new(DaytonaConfig::with_api_key(key).api_url(&emulator.api_url())?)?;
        Ok(DaytonaTarget {
            client,
            emulator: Some(emulator),
        })
    }

    /// Whether the sandboxes live in an in-process emulator.
    #[allow(dead_code, reason = "not every example that includes this module asks")]
    pub fn is_emulator(&self) -> bool {
        self.emulator.is_some()
    }

    /// One line for the console: which Daytona this is.
    pub fn describe(&self) -> String {
        match &self.emulator {
            Some(emu) => format!(
                "the in-process Daytona emulator at {} (set {API_KEY_VAR} to use Daytona Cloud)",
                emu.api_url()
            ),
            None => format!(
                "Daytona at {} (credentials from the environment)",
                self.client.config().api_url_str()
            ),
        }
    }

    /// A sandbox builder on this target's client; add options, then `build()`.
    pub fn builder(&self) -> DaytonaSandboxBuilder {
        DaytonaSandbox::builder().client(self.client.clone())
    }

    /// Stop the emulator, if any: it kills whatever sandbox processes are left and removes its
    /// data. Call it after destroying the sandboxes.
    pub async fn shutdown(self) {
        if let Some(emulator) = self.emulator {
            emulator.shutdown().await;
        }
    }
}

/// 32 hex digits from the standard library's randomly seeded hasher (enough for a key that only
/// has to be unguessable for the life of one process).
fn random_key() -> String {
    use std::hash::{BuildHasher, Hasher};
    let half = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish()
    };
    format!("emu-{:016x}{:016x}", half(), half())
}
