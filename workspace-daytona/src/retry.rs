//! When and how long to wait before replaying a failed request.
//!
//! Which requests may be replayed at all is decided per call: reads, `PUT`, `DELETE` and marked
//! `POST`s after any transient failure, everything else only when nothing was sent. This module
//! holds that rule, the policy numbers and the backoff arithmetic.

use std::time::Duration;

use rand::Rng;

/// Retry policy for transient failures.
///
/// A failed attempt is retried when all of these hold:
/// - the failure is transient: the connection could not be made (nothing was sent), the
///   connection broke or timed out before an answer, or the server answered 429, 502, 503 or 504;
/// - the request may be replayed: connect-phase failures are safe for every request, the others
///   only for idempotent ones (reads, `PUT`, `DELETE`, and `POST`s the client marks idempotent;
///   command execution never is);
/// - fewer than [`max_retries`](Self::max_retries) retries were made and the next wait still
///   ends within [`max_elapsed`](Self::max_elapsed) of the first attempt.
///
/// The wait before retry *n* (0-based) is "full jitter": a uniformly random duration in
/// `[0, min(max_backoff, initial_backoff * base^n)]`. A 429 with `Retry-After` waits exactly that
/// long instead, if it is at most `max_backoff`; a longer `Retry-After` is not retried and surfaces
/// as [`crate::DaytonaError::RateLimited`] so the caller can decide.
///
/// ```
/// use std::time::Duration;
/// use workspace_daytona::RetryConfig;
/// let r = RetryConfig::default();
/// assert_eq!(r.max_retries, 3);
/// assert_eq!(r.initial_backoff, Duration::from_millis(200));
/// let none = RetryConfig::disabled();
/// assert_eq!(none.max_retries, 0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// Retries after the first attempt. Default 3.
    pub max_retries: u32,
    /// Upper bound of the first wait. Default 200 ms.
    pub initial_backoff: Duration,
    /// Cap on any single wait, and on the `Retry-After` the client is willing to honour.
    /// Default 10 s.
    pub max_backoff: Duration,
    /// Growth factor of the wait bound per retry. Default 2.0.
    pub base: f64,
    /// No retry is started if its wait would end later than this after the first attempt began.
    /// Default 60 s.
    pub max_elapsed: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retries: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            base: 2.0,
            max_elapsed: Duration::from_secs(60),
        }
    }
}

impl RetryConfig {
    /// A policy that never retries.
    pub fn disabled() -> Self {
        RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        }
    }

    /// The upper bound of the wait before retry `retry` (0 for the first retry).
    pub fn backoff_bound(&self, retry: u32) -> Duration {
        let base = if self.base.is_finite() && self.base >= 1.0 {
            self.base
        } else {
            1.0
        };
        let exp = i32::try_from(retry).unwrap_or(i32::MAX);
        let factor = base.powi(exp);
        let bound = self.initial_backoff.as_secs_f64() * factor;
        let cap = self.max_backoff.as_secs_f64();
        if !bound.is_finite() || bound >= cap {
            self.max_backoff
        } else {
            Duration::from_secs_f64(bound.max(0.0))
        }
    }

    /// A full-jitter wait for retry `retry`, drawn from `rng`.
    pub fn backoff_with<R: Rng + ?Sized>(&self, retry: u32, rng: &mut R) -> Duration {
        let bound = self.backoff_bound(retry);
        let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rng.random_range(0..=nanos))
    }

    /// A full-jitter wait for retry `retry`, using the thread RNG.
    pub fn backoff(&self, retry: u32) -> Duration {
        self.backoff_with(retry, &mut rand::rng())
    }
}

/// Whether, and after which failures, a request may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Sending it twice has the same effect as once: retried on every transient failure.
    Idempotent,
    /// Only retried when the connection could not be made, so the server never saw it
    /// (command execution, create without a name, moves).
    ConnectOnly,
}

/// Why an attempt failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Nothing reached the server.
    Connect,
    /// The request may or may not have been processed (reset, timeout, dropped response).
    Unknown,
    /// The server answered with a transient status (429, 502, 503, 504).
    TransientStatus,
    /// Anything else: never retried.
    Permanent,
}

impl Replay {
    /// Whether a failure of this kind may be retried under this replay rule.
    pub(crate) fn allows(self, failure: Failure) -> bool {
        match failure {
            Failure::Connect => true,
            Failure::Unknown | Failure::TransientStatus => self == Replay::Idempotent,
            Failure::Permanent => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn bound_grows_and_caps() {
        let r = RetryConfig::default();
        assert_eq!(r.backoff_bound(0), Duration::from_millis(200));
        assert_eq!(r.backoff_bound(1), Duration::from_millis(400));
        assert_eq!(r.backoff_bound(2), Duration::from_millis(800));
        assert_eq!(r.backoff_bound(10), Duration::from_secs(10));
        assert_eq!(r.backoff_bound(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_in_bounds_and_varies() {
        let r = RetryConfig::default();
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = std::collections::HashSet::new();
        for retry in 0..6 {
            for _ in 0..200 {
                let d = r.backoff_with(retry, &mut rng);
                assert!(d <= r.backoff_bound(retry));
                seen.insert(d);
            }
        }
        assert!(seen.len() > 100, "full jitter should spread waits");
    }

    #[test]
    fn degenerate_configs_do_not_panic() {
        let r = RetryConfig {
            base: f64::NAN,
            initial_backoff: Duration::ZERO,
            ..RetryConfig::default()
        };
        assert_eq!(r.backoff(5), Duration::ZERO);
        let r = RetryConfig {
            base: 1e300,
            ..RetryConfig::default()
        };
        assert_eq!(r.backoff_bound(50), r.max_backoff);
    }

    #[test]
    fn replay_rules() {
        assert!(Replay::ConnectOnly.allows(Failure::Connect));
        assert!(!Replay::ConnectOnly.allows(Failure::Unknown));
        assert!(!Replay::ConnectOnly.allows(Failure::TransientStatus));
        assert!(Replay::Idempotent.allows(Failure::Unknown));
        assert!(Replay::Idempotent.allows(Failure::TransientStatus));
        assert!(!Replay::Idempotent.allows(Failure::Permanent));
    }
}
