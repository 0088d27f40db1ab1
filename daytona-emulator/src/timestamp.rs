//! Timestamps as the control plane writes them.

use chrono::{DateTime, SecondsFormat, Utc};

/// RFC 3339 with milliseconds and `Z`, like JavaScript's `toISOString`.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
