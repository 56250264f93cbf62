//! An instance whose last call has ended, dropped after the task's result
//! is sealed when dropping it is slow (see `ResidentRuns::slow_drops`).

use std::sync::Arc;

use wasmtime::Store;

use super::ctx::GuestCtx;
use super::resident::ResidentRuns;
use crate::module::Module;
use crate::scheduler::Permit;
use crate::tasks::inline::thread_cpu_time;

/// An instance whose last call has ended and whose drop is slow, kept until
/// the call's result is sealed and on its way: dropping it resets its
/// pooling slot (a `PAGEMAP_SCAN`, then the memory image copied back over
/// the pages it wrote, `merge_runs` first when its module needs it), ~70 µs
/// for a fresh JS `noop`, which the result used to wait for. It holds the
/// call's CPUs until then, as the call did. Whoever finishes the task drops
/// it (see `Tasks::drive`).
pub struct Spent {
    /// Always `Some` until dropped.
    store: Option<Store<GuestCtx>>,
    module: Arc<Module>,
    /// Released after the store is dropped.
    permit: Option<Permit>,
}

impl Spent {
    /// Drops `store` now, or returns it to be dropped later when its
    /// module's instances are slow to drop (`ResidentRuns::slow_drops`) and none is
    /// being made ahead (`made_ahead`, see `tasks::prestart`): that one is
    /// made beside the next call, and a drop deferred into that time
    /// competed with both (Python `noop`, alternated: median 733, 733 ->
    /// 910, 900 µs).
    pub fn later(store: Store<GuestCtx>, module: Arc<Module>, made_ahead: bool) -> Option<Self> {
        let spent = Spent {
            store: Some(store),
            module,
            permit: None,
        };
        if !made_ahead && spent.module.resident.slow_drops() {
            Some(spent)
        } else {
            drop(spent);
            None
        }
    }

    /// Holds `permit` (the call's CPUs) until it is dropped.
    pub fn holding(mut self, permit: Option<Permit>) -> Self {
        self.permit = permit;
        self
    }
}

impl Drop for Spent {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        let resident = &self.module.resident;
        // A store whose instance was never made (a failed instantiation)
        // neither counts nor is timed.
        let mut start = None;
        // A failed call's store may hold the memory of a kept instance's
        // earlier call: merging its runs is then merely early.
        if let Some(memory) = store.data().linear_memory {
            let turn = resident.next_drop();
            start = ResidentRuns::times_drop(turn).then(thread_cpu_time);
            resident.before_drop(turn, memory, crate::engine::KEEP_RESIDENT as u64);
        }
        drop(store);
        if let Some(start) = start {
            resident.dropped_in(thread_cpu_time().saturating_sub(start));
        }
        // `permit` is released next.
    }
}
