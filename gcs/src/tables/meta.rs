//! Persistent id counters.

use std::sync::{Arc, Mutex};

use crate::error::{GcsError, Result};
use crate::storage::Storage;

const TABLE: &str = "meta";

/// A named monotonic id sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Job,
    /// Node indexes handed out by the control-plane service.
    Node,
    /// Placement group ids (allocated in blocks, see [`Counters::advance`]).
    PlacementGroup,
}

impl Counter {
    fn key(self) -> &'static [u8] {
        match self {
            Counter::Job => b"counter/job",
            Counter::Node => b"counter/node",
            Counter::PlacementGroup => b"counter/placement_group",
        }
    }
}

/// Allocates ids from persisted counters: each id is handed out once,
/// across restarts (the counter is written before the id is returned, so a
/// crash can skip an id but never reuse one). Ids start at 1.
pub struct Counters {
    store: Arc<dyn Storage>,
    lock: Mutex<()>,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters").finish_non_exhaustive()
    }
}

impl Counters {
    pub fn new(store: Arc<dyn Storage>) -> Self {
        Self {
            store,
            lock: Mutex::new(()),
        }
    }

    /// The last id handed out (0 if none yet).
    fn current(&self, counter: Counter) -> Result<u64> {
        match self.store.get(TABLE, counter.key())? {
            None => Ok(0),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|source| GcsError::Corrupt {
                table: TABLE,
                key: String::from_utf8_lossy(counter.key()).into_owned(),
                source,
            }),
        }
    }

    /// Allocates and persists the next id.
    pub fn next(&self, counter: Counter) -> Result<u64> {
        self.advance(counter, 1)
    }

    /// Reserves the `n` ids after the current one with one write and returns
    /// the last of them: the caller owns `result - n + 1 ..= result`. Hot
    /// paths allocate ids from such blocks in memory, paying one durable
    /// write per block instead of one per id.
    pub fn advance(&self, counter: Counter, n: u64) -> Result<u64> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let next = self
            .current(counter)?
            .checked_add(n.max(1))
            .ok_or_else(|| GcsError::InvalidArgument(format!("{counter:?} id space exhausted")))?;
        let value = serde_json::to_vec(&next).expect("u64 always serializes");
        self.store.put(TABLE, counter.key(), &value)?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::file_store;

    #[test]
    fn counters_are_independent_and_monotonic() {
        let (_dir, store) = file_store();
        let c = Counters::new(store.clone());
        assert_eq!(c.current(Counter::Job).unwrap(), 0);
        assert_eq!(c.next(Counter::Job).unwrap(), 1);
        assert_eq!(c.next(Counter::Job).unwrap(), 2);
        assert_eq!(c.next(Counter::Node).unwrap(), 1);
        assert_eq!(c.current(Counter::Job).unwrap(), 2);
        assert_eq!(c.advance(Counter::PlacementGroup, 100).unwrap(), 100);
        assert_eq!(c.next(Counter::PlacementGroup).unwrap(), 101);
        // Durable: a new view of the same store goes on from there.
        assert_eq!(Counters::new(store).next(Counter::Job).unwrap(), 3);
    }
}
