//! Medians, percentiles and rates.

use std::time::Duration;

/// The median; sorts `v`.
pub fn median_dur(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The 99th percentile (nearest rank) of an already sorted slice.
pub fn p99_dur(sorted: &[Duration]) -> Duration {
    quantile_dur(sorted, 0.99)
}

/// The `q` quantile (nearest rank, `0 < q <= 1`) of an already sorted slice.
pub fn quantile_dur(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

/// The median; sorts `v`.
pub fn median_f64(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// MiB per second.
pub fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

/// `d` cut to whole microseconds, for tables.
pub fn round_us(d: Duration) -> Duration {
    Duration::from_micros(d.as_micros() as u64)
}
