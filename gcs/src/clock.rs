//! Wall-clock helper: timestamps in records are unix milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the unix epoch (0 if the clock is before 1970).
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
