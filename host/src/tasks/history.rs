//! The tasks this node ran to the end: a bounded history for the state API
//! (`host list tasks`) and for whose a task's log is, every attempt its own
//! row. Each tenant keeps its own newest rows, so one tenant's flood of
//! tasks never pushes another's out of what the node remembers.

use std::collections::VecDeque;
use std::sync::Mutex;

use reef_core::TenantId;

use crate::error::{ErrorCode, ReefError};
use crate::fastmap::FastMap;
use crate::store::ObjectId;

/// Finished attempts kept per tenant (about 300 bytes each).
pub const KEPT_TASKS: usize = 10_000;
/// Finished attempts kept per node, all tenants together: past it the
/// tenant keeping the most rows loses its oldest first.
pub const KEPT_TASKS_NODE: usize = 5 * KEPT_TASKS;
/// Error messages are kept up to this many bytes.
const MESSAGE_BYTES: usize = 1024;

#[derive(Clone, Debug)]
pub struct Finished {
    pub return_id: ObjectId,
    pub module: String,
    pub function: String,
    pub attempt: u32,
    pub tenant: TenantId,
    /// `None`: it succeeded.
    pub error: Option<(ErrorCode, String)>,
    /// Unix microseconds: when the attempt started (waiting for its
    /// arguments and resources), began to run (0: it never did), ended.
    pub started_at_us: u64,
    pub running_at_us: u64,
    pub ended_at_us: u64,
}

#[derive(Default)]
pub struct History {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    /// Each tenant's rows, oldest first, with the order they were recorded in.
    by_tenant: FastMap<TenantId, VecDeque<(u64, Finished)>>,
    rows: usize,
    next_seq: u64,
}

impl History {
    pub fn record(&self, mut done: Finished) {
        if let Some((_, message)) = &mut done.error {
            if message.len() > MESSAGE_BYTES {
                let mut cut = MESSAGE_BYTES;
                while !message.is_char_boundary(cut) {
                    cut -= 1;
                }
                message.truncate(cut);
                message.push_str(" ...");
            }
        }
        let mut kept = self.kept.lock().unwrap();
        let kept = &mut *kept;
        let seq = kept.next_seq;
        kept.next_seq += 1;
        let rows = match kept.by_tenant.get_mut(&done.tenant) {
            Some(rows) => rows,
            None => kept.by_tenant.entry(done.tenant.clone()).or_default(),
        };
        rows.push_back((seq, done));
        if rows.len() > KEPT_TASKS {
            rows.pop_front();
        } else {
            kept.rows += 1;
        }
        if kept.rows > KEPT_TASKS_NODE {
            kept.drop_oldest_of_largest();
        }
    }

    /// Every kept row, oldest first.
    pub fn rows(&self) -> Vec<Finished> {
        let kept = self.kept.lock().unwrap();
        let mut rows: Vec<&(u64, Finished)> = kept.by_tenant.values().flatten().collect();
        rows.sort_unstable_by_key(|(seq, _)| *seq);
        rows.into_iter().map(|(_, row)| row.clone()).collect()
    }

    /// The tenant of task `return_id`, if a row of it is kept.
    pub fn tenant_of(&self, return_id: ObjectId) -> Option<TenantId> {
        let kept = self.kept.lock().unwrap();
        kept.by_tenant
            .iter()
            .find(|(_, rows)| rows.iter().any(|(_, row)| row.return_id == return_id))
            .map(|(tenant, _)| tenant.clone())
    }
}

impl Kept {
    /// The node is over its rows: the tenant keeping the most gives its oldest.
    fn drop_oldest_of_largest(&mut self) {
        let Some((tenant, rows)) = self.by_tenant.iter_mut().max_by_key(|(_, rows)| rows.len())
        else {
            return;
        };
        rows.pop_front();
        self.rows -= 1;
        if rows.is_empty() {
            let tenant = tenant.clone();
            self.by_tenant.remove(&tenant);
        }
    }
}

/// Now, in unix microseconds (as cheap as the milliseconds: one clock read).
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// What a failed attempt's row says.
pub fn error_of(e: &ReefError) -> (ErrorCode, String) {
    (e.code, e.message.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_attempts_only() {
        let h = History::default();
        for i in 0..(KEPT_TASKS as u64 + 5) {
            h.record(Finished {
                return_id: i,
                module: "m".into(),
                function: "f".into(),
                attempt: 1,
                tenant: TenantId::default(),
                error: Some((ErrorCode::GuestError, "x".repeat(5000))),
                started_at_us: 0,
                running_at_us: 0,
                ended_at_us: 0,
            });
        }
        let rows = h.rows();
        assert_eq!(rows.len(), KEPT_TASKS);
        assert_eq!(rows[0].return_id, 5);
        assert!(rows[0].error.as_ref().unwrap().1.len() < 1100);
    }

    fn row(id: u64, tenant: &TenantId) -> Finished {
        Finished {
            return_id: id,
            module: "m".into(),
            function: "f".into(),
            attempt: 1,
            tenant: tenant.clone(),
            error: None,
            started_at_us: 0,
            running_at_us: 0,
            ended_at_us: 0,
        }
    }

    #[test]
    fn a_tenants_flood_pushes_out_its_own_rows_only() {
        let h = History::default();
        let (a, b) = (TenantId::new("a"), TenantId::new("b"));
        h.record(row(1, &a));
        for i in 0..(KEPT_TASKS as u64 * 2) {
            h.record(row(100 + i, &b));
        }
        h.record(row(2, &a));
        let rows = h.rows();
        assert_eq!(rows.len(), KEPT_TASKS + 2);
        let of_a: Vec<u64> = rows
            .iter()
            .filter(|r| r.tenant == a)
            .map(|r| r.return_id)
            .collect();
        assert_eq!(of_a, [1, 2]);
        // Oldest first across tenants: B's newest came between A's two.
        assert_eq!(rows[0].return_id, 1);
        assert_eq!(rows[1].return_id, 100 + KEPT_TASKS as u64);
        assert_eq!(rows.last().unwrap().return_id, 2);
        assert_eq!(h.tenant_of(1), Some(a));
        assert_eq!(h.tenant_of(100), None);
    }

    #[test]
    fn past_the_node_cap_the_tenant_keeping_most_gives_first() {
        let h = History::default();
        let tenants: Vec<TenantId> = (0..6).map(|i| TenantId::new(format!("t{i}"))).collect();
        // Five tenants fill the node's rows; a sixth's rows come from the largest.
        let mut id = 0;
        for t in &tenants[..5] {
            for _ in 0..KEPT_TASKS {
                h.record(row(id, t));
                id += 1;
            }
        }
        for _ in 0..10 {
            h.record(row(id, &tenants[5]));
            id += 1;
        }
        let rows = h.rows();
        assert_eq!(rows.len(), KEPT_TASKS_NODE);
        let count = |t: &TenantId| rows.iter().filter(|r| &r.tenant == t).count();
        assert_eq!(count(&tenants[5]), 10);
        let lost: usize = tenants[..5].iter().map(|t| KEPT_TASKS - count(t)).sum();
        assert_eq!(lost, 10);
        assert!(tenants[..5].iter().all(|t| count(t) >= KEPT_TASKS - 2));
    }
}
