//! Unique names and reproducible test data, without a `rand` dependency.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh random 64-bit value: std's per-instance random hasher keys, mixed with a counter and
/// the clock so that two calls in one process never repeat.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// Six random decimal digits, for naming files and markers uniquely within a run.
pub fn unique_suffix() -> String {
    format!("{:06}", random_u64() % 1_000_000)
}

/// `len` pseudo-random bytes from a xorshift64* generator seeded with `seed` (the same seed gives
/// the same bytes), for binary round trips.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    // xorshift must not start at zero.
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    if state == 0 {
        state = 1;
    }
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A fresh seed for [`pseudo_random_bytes`]; printed by the checks so a failure can be replayed.
pub(crate) fn random_seed() -> u64 {
    random_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_six_digits_and_vary() {
        let a: Vec<String> = (0..50).map(|_| unique_suffix()).collect();
        assert!(
            a.iter()
                .all(|s| s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()))
        );
        let distinct: std::collections::BTreeSet<_> = a.iter().collect();
        assert!(distinct.len() > 40);
    }

    #[test]
    fn bytes_are_reproducible_and_spread() {
        let a = pseudo_random_bytes(100_003, 7);
        assert_eq!(a.len(), 100_003);
        assert_eq!(a, pseudo_random_bytes(100_003, 7));
        assert_ne!(a, pseudo_random_bytes(100_003, 8));
        let mut seen = [false; 256];
        a.iter().for_each(|&b| seen[b as usize] = true);
        assert!(seen.iter().all(|&s| s), "every byte value appears");
    }
}
