//! Lineage: how the owner of a task's result can make it again.
//!
//! The owner (the node a task was submitted to) keeps the `TaskSpec` that
//! produces each result it owns from the task's submission, while the result
//! can still be needed: while the object exists here, or while the lineage
//! of another result that took it as an argument is kept (a dependency's
//! *lineage* is kept, not its value). When every copy of a result is lost,
//! `ObjectDirectory` asks [`Lineage::take_for_rebuild`] for the spec and
//! runs the task again (see `objects`).
//!
//! Memory is bounded twice: an entry goes when its result is freed and no
//! kept entry depends on it, and all entries together stay under a
//! node-wide cap of bytes (`--lineage-bytes`): past it the tenant keeping
//! the most bytes loses its oldest entries first (`reef_lineage_evicted`),
//! so one tenant's flood of tasks evicts its own lineage before another's.
//! A result whose entry was evicted cannot be rebuilt and says so.

use crate::fastmap::{FastMap, FastSet};
use std::collections::VecDeque;
use std::sync::Mutex;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use reef_core::TenantId;

use crate::config::LineageLimits;
use crate::error::{ErrorCode, ReefError};
use crate::spec::{object_ids, ArgSpec, TaskSpec};
use crate::store::ObjectId;

/// Fixed cost counted per entry beside its variable parts (map slots,
/// the spec's own fields).
const ENTRY_OVERHEAD: u64 = 160;

/// The lineage series of the node's metrics (registered in `metrics`).
#[derive(Clone, Debug, Default)]
pub struct LineageMetrics {
    /// Lost objects whose task was submitted again.
    pub rebuilt: Counter,
    /// Lost objects that could not be rebuilt.
    pub unrebuildable: Counter,
    /// Entries dropped to stay under the cap while their result still existed.
    pub evicted: Counter,
    pub entries: Gauge,
    pub bytes: Gauge,
}

struct Entry {
    spec: TaskSpec,
    /// Its place in eviction order (oldest first).
    seq: u64,
    bytes: u64,
    /// Times the task was run again to rebuild the result.
    rebuilds: u32,
    /// Kept entries that name this result as an argument.
    dependents: u32,
    /// The result was freed here: the entry stays only for its dependents.
    freed: bool,
}

/// One tenant's entries, for eviction.
#[derive(Default)]
struct TenantEntries {
    /// Its entries in the order they were kept, oldest first, as (seq, id).
    /// An entry removed stays here until it reaches the front or the queue
    /// is compacted (`compact`): a removal in a sorted map was ~5 % of the
    /// RPC thread's CPU under a flood of trivial tasks.
    order: VecDeque<(u64, ObjectId)>,
    entries: usize,
    bytes: u64,
}

impl TenantEntries {
    /// Whether `Inner::compact` has work: no entry left, or removed places
    /// outnumbering the kept entries (and some slack).
    fn needs_compact(&self) -> bool {
        self.entries == 0 || self.order.len() > 2 * self.entries + 1024
    }
}

#[derive(Default)]
struct Inner {
    entries: FastMap<ObjectId, Entry>,
    /// The entries of each tenant with any.
    tenants: FastMap<TenantId, TenantEntries>,
    next_seq: u64,
    bytes: u64,
    /// Results that still exist but whose entry was evicted (for the error).
    evicted: FastSet<ObjectId>,
}

impl Inner {
    /// Whether place `(seq, id)` in `order` is a kept entry's (not one
    /// removed, nor an earlier entry of a result recorded again).
    fn kept_at(entries: &FastMap<ObjectId, Entry>, seq: u64, id: ObjectId) -> bool {
        entries.get(&id).is_some_and(|e| e.seq == seq)
    }

    /// Drops the removed entries' places in `tenant`'s order (called when
    /// `needs_compact`: amortized, each removal pays for one); a tenant
    /// left with no entry goes.
    fn compact(&mut self, tenant: &TenantId) {
        let Some(t) = self.tenants.get_mut(tenant) else {
            return;
        };
        if t.entries == 0 {
            self.tenants.remove(tenant);
            return;
        }
        let entries = &self.entries;
        t.order
            .retain(|&(seq, id)| Inner::kept_at(entries, seq, id));
        // After a burst, give back what the queue no longer needs.
        if t.order.capacity() > 4 * t.order.len() + 4096 {
            t.order.shrink_to(2 * t.order.len());
        }
    }

    /// The tenant keeping the most bytes.
    fn largest(&self) -> Option<TenantId> {
        let (tenant, _) = self.tenants.iter().max_by_key(|(_, t)| t.bytes)?;
        Some(tenant.clone())
    }
}

pub struct Lineage {
    limits: LineageLimits,
    inner: Mutex<Inner>,
    metrics: LineageMetrics,
}

impl Lineage {
    pub fn new(limits: LineageLimits, metrics: LineageMetrics) -> Self {
        Lineage {
            limits,
            inner: Mutex::default(),
            metrics,
        }
    }

    pub fn enabled(&self) -> bool {
        self.limits.enabled
    }

    /// Keeps the spec of a task whose result `spec.return_id` is owned here.
    /// An id already kept keeps its entry and rebuild count.
    pub fn record(&self, spec: TaskSpec) {
        if !self.limits.enabled {
            return;
        }
        let id = spec.return_id;
        let mut inner = self.inner.lock().unwrap();
        if let Some(e) = inner.entries.get_mut(&id) {
            e.freed = false;
            return;
        }
        for arg in object_ids(&spec.args) {
            if let Some(a) = inner.entries.get_mut(&arg) {
                a.dependents += 1;
            }
        }
        let bytes = spec_bytes(&spec);
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let tenant = match inner.tenants.get_mut(&spec.tenant) {
            Some(t) => t,
            None => inner.tenants.entry(spec.tenant.clone()).or_default(),
        };
        tenant.order.push_back((seq, id));
        tenant.entries += 1;
        tenant.bytes += bytes;
        inner.bytes += bytes;
        inner.entries.insert(
            id,
            Entry {
                spec,
                seq,
                bytes,
                rebuilds: 0,
                dependents: 0,
                freed: false,
            },
        );
        while inner.bytes > self.limits.max_bytes {
            let Some(largest) = inner.largest() else {
                break;
            };
            let oldest = inner
                .tenants
                .get_mut(&largest)
                .and_then(|t| t.order.pop_front());
            match oldest {
                Some((seq, oldest)) if Inner::kept_at(&inner.entries, seq, oldest) => {
                    self.remove(&mut inner, oldest, true)
                }
                Some(_) => {}
                // Bytes with no place in the order cannot be: stop rather than spin.
                None => break,
            }
        }
        self.update_gauges(&inner);
    }

    /// The result was freed here (no reference left): its entry goes unless
    /// kept entries depend on it.
    pub fn on_freed(&self, id: ObjectId) {
        let mut inner = self.inner.lock().unwrap();
        inner.evicted.remove(&id);
        let Some(e) = inner.entries.get_mut(&id) else {
            return;
        };
        e.freed = true;
        if e.dependents == 0 {
            self.remove(&mut inner, id, false);
            self.update_gauges(&inner);
        }
    }

    /// Whether a freed result still has its lineage (it can be made again).
    pub fn has(&self, id: ObjectId) -> bool {
        self.inner.lock().unwrap().entries.contains_key(&id)
    }

    /// The spec to run again for a lost result, counting the rebuild; or the
    /// OBJECT_LOST error saying why it cannot be rebuilt (`lost` says how it
    /// was lost).
    pub fn take_for_rebuild(&self, id: ObjectId, lost: &str) -> Result<TaskSpec, ReefError> {
        let mut guard = self.inner.lock().unwrap();
        let inner = &mut *guard;
        let why = match inner.entries.get_mut(&id) {
            Some(e) => {
                let limit = e.spec.options.retry.max_retries();
                if e.rebuilds < limit {
                    e.rebuilds += 1;
                    self.metrics.rebuilt.inc();
                    return Ok(e.spec.clone());
                }
                format!("reconstruction attempts exhausted ({limit} allowed by max_retries)")
            }
            None if !self.limits.enabled => {
                "lineage tracking is off on its owner (--no-lineage)".to_string()
            }
            None if inner.evicted.contains(&id) => {
                "lineage evicted (the owner's --lineage-bytes cap)".to_string()
            }
            None => "it was not made by a task of its owner: \
                     put by a driver cannot be rebuilt (nor by a guest)"
                .to_string(),
        };
        self.metrics.unrebuildable.inc();
        Err(ReefError::new(
            ErrorCode::ObjectLost,
            format!("object {id:#x} is lost ({lost}) and cannot be rebuilt: {why}"),
        ))
    }

    /// Entries kept and their bytes.
    pub fn usage(&self) -> (usize, u64) {
        let inner = self.inner.lock().unwrap();
        (inner.entries.len(), inner.bytes)
    }

    /// Drops an entry and, with it, what only its dependents kept.
    fn remove(&self, inner: &mut Inner, id: ObjectId, evicting: bool) {
        // Most removals free no dependency: no stack is allocated for them.
        let mut stack = Vec::new();
        let mut next = Some((id, evicting));
        while let Some((id, evicting)) = next.take().or_else(|| stack.pop()) {
            let Some(e) = inner.entries.remove(&id) else {
                continue;
            };
            inner.bytes -= e.bytes;
            let compact = inner.tenants.get_mut(&e.spec.tenant).is_some_and(|t| {
                t.entries -= 1;
                t.bytes -= e.bytes;
                t.needs_compact()
            });
            if compact {
                inner.compact(&e.spec.tenant);
            }
            if evicting && !e.freed {
                inner.evicted.insert(id);
                self.metrics.evicted.inc();
            }
            for arg in object_ids(&e.spec.args) {
                if let Some(a) = inner.entries.get_mut(&arg) {
                    a.dependents = a.dependents.saturating_sub(1);
                    if a.dependents == 0 && a.freed {
                        stack.push((arg, false));
                    }
                }
            }
        }
    }

    fn update_gauges(&self, inner: &Inner) {
        self.metrics.entries.set(inner.entries.len() as i64);
        self.metrics.bytes.set(inner.bytes as i64);
    }
}

/// What an entry costs: its fixed part, names and inline arguments.
fn spec_bytes(spec: &TaskSpec) -> u64 {
    let args: usize = spec
        .args
        .iter()
        .map(|a| match a {
            ArgSpec::Inline(b) => b.len() + 16,
            ArgSpec::Object(_) => 16,
        })
        .sum();
    ENTRY_OVERHEAD + (spec.module.len() + spec.function.len() + args) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: ObjectId, args: Vec<ArgSpec>) -> TaskSpec {
        TaskSpec::for_test(id, args)
    }

    fn lineage(max_bytes: u64) -> Lineage {
        Lineage::new(
            LineageLimits {
                enabled: true,
                max_bytes,
            },
            LineageMetrics::default(),
        )
    }

    #[test]
    fn a_freed_result_keeps_its_lineage_while_a_dependent_is_kept() {
        let l = lineage(1 << 20);
        l.record(spec(1, vec![]));
        l.record(spec(2, vec![ArgSpec::Object(1)]));
        l.on_freed(1);
        assert!(l.has(1), "2 depends on 1");
        l.on_freed(2);
        assert!(!l.has(2) && !l.has(1), "both go with the last dependent");
        assert_eq!(l.usage(), (0, 0));
    }

    #[test]
    fn the_eviction_order_forgets_removed_entries() {
        let l = lineage(1 << 30);
        l.record(spec(1, vec![]));
        for id in 2..10_000 {
            l.record(spec(id, vec![]));
            l.on_freed(id);
        }
        let inner = l.inner.lock().unwrap();
        assert_eq!(inner.entries.len(), 1);
        let order = &inner.tenants[&TenantId::default()].order;
        assert!(order.len() <= 2 + 1024, "{} places kept", order.len());
        assert_eq!(order.front().map(|(_, id)| *id), Some(1));
        drop(inner);
        l.on_freed(1);
        assert!(l.inner.lock().unwrap().tenants.is_empty());
    }

    #[test]
    fn past_the_cap_the_tenant_keeping_most_loses_its_oldest_first() {
        let one = spec_bytes(&spec(1, vec![]));
        let l = lineage(10 * one);
        let of = |id, tenant: &str| {
            let mut s = spec(id, vec![]);
            s.tenant = TenantId::new(tenant);
            s
        };
        // A's entries are the oldest; B's flood evicts its own.
        for id in 1..=3 {
            l.record(of(id, "a"));
        }
        for id in 100..200 {
            l.record(of(id, "b"));
        }
        assert_eq!(l.usage(), (10, 10 * one));
        for id in 1..=3 {
            assert!(l.take_for_rebuild(id, "x").is_ok(), "A's {id} was evicted");
        }
        let e = l.take_for_rebuild(100, "x").unwrap_err();
        assert!(e.message.contains("lineage evicted"), "{e}");
        assert!(l.take_for_rebuild(199, "x").is_ok());
        // A keeping more than B: A's oldest go.
        for id in 4..=12 {
            l.record(of(id, "a"));
        }
        assert!(l.take_for_rebuild(1, "x").is_err());
        assert!(l.take_for_rebuild(12, "x").is_ok());
        assert_eq!(l.usage().1, 10 * one);
    }

    #[test]
    fn rebuilds_stop_at_max_retries() {
        let l = lineage(1 << 20);
        l.record(spec(1, vec![]));
        for _ in 0..3 {
            assert_eq!(l.take_for_rebuild(1, "x").unwrap().return_id, 1);
        }
        let e = l.take_for_rebuild(1, "x").unwrap_err();
        assert_eq!(e.code, ErrorCode::ObjectLost);
        assert!(
            e.message.contains("reconstruction attempts exhausted"),
            "{e}"
        );
        // A rebuilt result keeps its count.
        l.record(spec(1, vec![]));
        assert!(l.take_for_rebuild(1, "x").is_err());
    }

    #[test]
    fn the_cap_evicts_the_oldest_and_says_so() {
        let one = spec_bytes(&spec(1, vec![]));
        let l = lineage(2 * one);
        for id in 1..=3 {
            l.record(spec(id, vec![]));
        }
        assert_eq!(l.usage(), (2, 2 * one));
        let e = l.take_for_rebuild(1, "x").unwrap_err();
        assert!(e.message.contains("lineage evicted"), "{e}");
        assert!(l.take_for_rebuild(3, "x").is_ok());
        let e = l.take_for_rebuild(9, "x").unwrap_err();
        assert!(
            e.message.contains("put by a driver cannot be rebuilt"),
            "{e}"
        );
    }
}
