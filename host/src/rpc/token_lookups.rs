//! Bounds the control-plane lookups of tokens a node does not know: a
//! client presenting random tokens must not turn each request into a
//! control-plane call. At most `MAX_CONCURRENT` lookups run at once (more
//! are refused at once), and a token the control plane refused is refused
//! here without asking again for `REFUSED_FOR` (at most `MAX_REFUSED` kept).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

/// Lookups of unknown tokens in flight at once, per node.
const MAX_CONCURRENT: usize = 4;
/// How long a refused token is refused without asking again (a tenant added
/// meanwhile comes with the next cluster view anyway).
const REFUSED_FOR: Duration = Duration::from_secs(2);
/// Refused tokens remembered; beyond, the oldest half is dropped.
const MAX_REFUSED: usize = 4096;

/// What the lookup of an unknown token may do now.
pub enum Lookup<'a> {
    /// Ask the control plane (the permit bounds the lookups in flight).
    Ask(SemaphorePermit<'a>),
    /// Refused a moment ago: refuse again.
    RecentlyRefused,
    /// Too many lookups in flight: refuse, the caller may retry.
    Busy,
}

/// Keyed by the credential's sha256.
pub struct TokenLookups {
    in_flight: Semaphore,
    refused: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Default for TokenLookups {
    fn default() -> Self {
        TokenLookups {
            in_flight: Semaphore::new(MAX_CONCURRENT),
            refused: Mutex::default(),
        }
    }
}

impl TokenLookups {
    pub fn begin(&self, id: &[u8; 32]) -> Lookup<'_> {
        if let Some(at) = self.refused.lock().unwrap().get(id) {
            if at.elapsed() < REFUSED_FOR {
                return Lookup::RecentlyRefused;
            }
        }
        match self.in_flight.try_acquire() {
            Ok(permit) => Lookup::Ask(permit),
            Err(_) => Lookup::Busy,
        }
    }

    /// The control plane refused `id`.
    pub fn refused(&self, id: &[u8; 32]) {
        let mut refused = self.refused.lock().unwrap();
        if refused.len() >= MAX_REFUSED {
            refused.retain(|_, at| at.elapsed() < REFUSED_FOR);
            if refused.len() >= MAX_REFUSED {
                // All recent: a flood. Keep the newer half.
                let mut times: Vec<Instant> = refused.values().copied().collect();
                times.sort_unstable();
                let cut = times[times.len() / 2];
                refused.retain(|_, at| *at >= cut);
            }
        }
        refused.insert(*id, Instant::now());
    }

    /// The control plane knows `id` (a refusal before it was added is forgotten).
    pub fn accepted(&self, id: &[u8; 32]) {
        self.refused.lock().unwrap().remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_token_is_refused_again_without_asking() {
        let lookups = TokenLookups::default();
        assert!(matches!(lookups.begin(&[1; 32]), Lookup::Ask(_)));
        lookups.refused(&[1; 32]);
        assert!(matches!(lookups.begin(&[1; 32]), Lookup::RecentlyRefused));
        assert!(matches!(lookups.begin(&[2; 32]), Lookup::Ask(_)));
        lookups.accepted(&[1; 32]);
        assert!(matches!(lookups.begin(&[1; 32]), Lookup::Ask(_)));
    }

    #[test]
    fn lookups_in_flight_are_bounded() {
        let lookups = TokenLookups::default();
        let permits: Vec<_> = (0..MAX_CONCURRENT as u8)
            .map(|i| match lookups.begin(&[i; 32]) {
                Lookup::Ask(p) => p,
                _ => panic!("lookup {i} refused"),
            })
            .collect();
        assert!(matches!(lookups.begin(&[99; 32]), Lookup::Busy));
        drop(permits);
        assert!(matches!(lookups.begin(&[99; 32]), Lookup::Ask(_)));
    }

    #[test]
    fn the_refused_set_stays_bounded_under_a_flood() {
        let lookups = TokenLookups::default();
        for i in 0..(3 * MAX_REFUSED as u32) {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_le_bytes());
            lookups.refused(&id);
        }
        assert!(lookups.refused.lock().unwrap().len() <= MAX_REFUSED);
    }
}
