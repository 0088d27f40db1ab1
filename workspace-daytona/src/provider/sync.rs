//! Locking that survives a panic elsewhere: the provider's small shared maps and slots stay
//! usable (their contents are whole after every critical section), so a poisoned lock is taken
//! as it is.

use std::sync::{Mutex, MutexGuard};

/// Lock `m`, poisoned or not.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
