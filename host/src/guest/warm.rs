//! Warm task instances: Ray's `max_calls`, opt-in. A task submitted with
//! `max_calls` other than 1 may run in an instance an earlier task of the
//! same module, tenant, limits and `max_calls` left behind, instead of a
//! fresh one (which for Python costs ~4 ms to instantiate and ~3 ms more on
//! its first call).
//!
//! Only an instance whose call succeeded comes back (no trap, no guest
//! error, not cancelled, not over its CPU or memory limit), with its
//! per-call state reset (`GuestCtx::end_call`) and every view undone. The
//! pool is bounded by `--warm-instances` (least recently used evicted first)
//! and instances idle for [`IDLE`] are dropped. Instances are never shared
//! across tenants: the tenant is part of the key.
//!
//! The pool also holds instances made ahead of time (Ray's prestarted
//! workers) for tasks that get a fresh instance (`max_calls` 1): when making
//! one of a module takes long (CPython's: ~0.6 ms), each task that takes a
//! fresh instance has the next one made on a guest thread once its call is
//! done (see `tasks::prestart`). Such an instance never ran a call: it is as fresh as
//! one made for the task, and it waits under the key of its module, tenant,
//! limits and `max_calls` 1, [`AHEAD_PER_KEY`] at most per key, only while
//! the pool has room (it never evicts a kept one).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use reef_core::TenantId;
use wasmtime::component::Instance;
use wasmtime::Store;

use super::ctx::GuestCtx;
use crate::fastmap::FastMap;
use crate::module::Module;
use crate::spec::Limits;

/// How long an instance may wait in the pool for its next call.
pub const IDLE: Duration = Duration::from_secs(60);

/// How often idle instances are looked for.
const SWEEP: Duration = Duration::from_secs(10);

/// Instances made ahead for one key at most (idle or being made): with one,
/// a driver's next call often came before it was made (a CPython instance
/// takes ~0.6 ms of CPU) and found none; with two, one is ready while the
/// other is made.
pub const AHEAD_PER_KEY: usize = 2;

/// What a kept instance may serve: everything its store was built from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WarmKey {
    /// The module's hash (its grants are part of it, so is its scratch dir).
    pub module: String,
    pub tenant: TenantId,
    pub limits: Limits,
    pub max_calls: u32,
}

/// An instance between calls.
pub struct Warm {
    pub store: Store<GuestCtx>,
    pub instance: Instance,
    /// The compiled module the instance is of: a module registered again
    /// (same hash, another compilation) has other export indices.
    pub module: Arc<Module>,
    /// Calls it served so far.
    pub calls: u32,
}

struct Entry {
    key: WarmKey,
    since: Instant,
    warm: Warm,
}

/// The node's idle task instances, least recently used first.
pub struct WarmPool {
    capacity: usize,
    idle: Mutex<VecDeque<Entry>>,
    /// Instances being made ahead, by key (see `claim_prestart`).
    prestarting: Mutex<FastMap<WarmKey, usize>>,
}

impl WarmPool {
    /// A pool of at most `capacity` idle instances; with a tokio runtime, a
    /// background sweep drops those idle for [`IDLE`] (it ends with the pool).
    pub fn new(capacity: usize) -> Arc<WarmPool> {
        let pool = Arc::new(WarmPool {
            capacity,
            idle: Mutex::new(VecDeque::new()),
            prestarting: Mutex::default(),
        });
        if capacity > 0 {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(sweep(Arc::downgrade(&pool)));
            }
        }
        pool
    }

    /// Whether instances are kept at all (`--warm-instances 0`: no).
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Idle instances now.
    pub fn len(&self) -> usize {
        self.idle.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most recently used idle instance of `key` and of this very
    /// compiled `module`, if any.
    pub fn take(&self, key: &WarmKey, module: &Arc<Module>) -> Option<Warm> {
        let mut stale = Vec::new();
        let found = {
            let mut idle = self.idle.lock().unwrap();
            let mut found = None;
            let mut i = idle.len();
            while i > 0 {
                i -= 1;
                if idle[i].key != *key {
                    continue;
                }
                let entry = idle.remove(i).expect("index in range");
                if Arc::ptr_eq(&entry.warm.module, module) {
                    found = Some(entry.warm);
                    break;
                }
                // Of an earlier compilation of the module: useless now.
                stale.push(entry);
            }
            found
        };
        // Stores are dropped outside the lock (dropping unmaps memory).
        drop(stale);
        found
    }

    /// Keeps an instance for its key's next call, evicting the least
    /// recently used one beyond the capacity.
    pub fn put(&self, key: WarmKey, warm: Warm) {
        if !self.enabled() {
            return;
        }
        let evicted = {
            let mut idle = self.idle.lock().unwrap();
            idle.push_back(Entry {
                key,
                since: Instant::now(),
                warm,
            });
            let excess = idle.len().saturating_sub(self.capacity);
            idle.drain(..excess).collect::<Vec<_>>()
        };
        if !evicted.is_empty() {
            tracing::debug!(evicted = evicted.len(), "warm instances evicted");
        }
    }

    /// Whether to make an instance of `key` ahead of time now: fewer than
    /// [`AHEAD_PER_KEY`] are idle or being made for it, and the pool has
    /// room for one more. A true answer must be followed by `prestarted`.
    pub fn claim_prestart(&self, key: &WarmKey) -> bool {
        if !self.enabled() {
            return false;
        }
        let idle = self.idle.lock().unwrap();
        let mut prestarting = self.prestarting.lock().unwrap();
        let making: usize = prestarting.values().sum();
        let for_key = prestarting.get(key).copied().unwrap_or(0)
            + idle.iter().filter(|e| e.key == *key).count();
        if idle.len() + making >= self.capacity || for_key >= AHEAD_PER_KEY {
            return false;
        }
        *prestarting.entry(key.clone()).or_default() += 1;
        true
    }

    /// The instance made ahead for `key` (`None`: making it failed).
    pub fn prestarted(&self, key: WarmKey, warm: Option<Warm>) {
        {
            let mut prestarting = self.prestarting.lock().unwrap();
            if let Some(n) = prestarting.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    prestarting.remove(&key);
                }
            }
        }
        if let Some(warm) = warm {
            self.put(key, warm);
        }
    }

    /// Drops the instances idle since before `cutoff`.
    fn expire(&self, cutoff: Instant) {
        let expired = {
            let mut idle = self.idle.lock().unwrap();
            // Oldest first: entries are pushed in time order.
            let n = idle.iter().take_while(|e| e.since < cutoff).count();
            idle.drain(..n).collect::<Vec<_>>()
        };
        if !expired.is_empty() {
            tracing::debug!(expired = expired.len(), "idle warm instances dropped");
        }
    }
}

async fn sweep(pool: Weak<WarmPool>) {
    let mut tick = tokio::time::interval(SWEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        if let Some(cutoff) = Instant::now().checked_sub(IDLE) {
            pool.expire(cutoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(module: &str) -> WarmKey {
        WarmKey {
            module: module.into(),
            tenant: TenantId::new("t"),
            limits: Limits {
                memory_bytes: 1 << 20,
                cpu_time_ms: 1000,
            },
            max_calls: 1,
        }
    }

    #[tokio::test]
    async fn instances_are_made_ahead_per_key_while_the_pool_has_room() {
        let pool = WarmPool::new(3);
        for _ in 0..AHEAD_PER_KEY {
            assert!(pool.claim_prestart(&key("a")));
        }
        assert!(!pool.claim_prestart(&key("a")), "{AHEAD_PER_KEY} per key");
        assert!(pool.claim_prestart(&key("b")));
        assert!(
            !pool.claim_prestart(&key("c")),
            "three in the making fill a pool of 3"
        );
        // Making one failed: the key may be claimed again.
        pool.prestarted(key("a"), None);
        assert!(pool.claim_prestart(&key("a")));
        assert!(pool.is_empty());

        let off = WarmPool::new(0);
        assert!(
            !off.claim_prestart(&key("a")),
            "--warm-instances 0 keeps none"
        );
    }
}
