//! The threads that run tasks and actors, apart from the runtime that serves
//! RPCs: a guest computing between epoch ticks then never delays a driver's
//! request, and the RPC side stays on one thread, where a request costs no
//! cross-thread wake-ups (~60 µs of a round trip on this kind of VM).

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

const GUEST_THREAD: &str = "reef-guest";

/// Guest threads: one set at the node's priority, used while one tenant has
/// the node to itself, and one at a lower priority (`--guest-niceness`),
/// used while tenants compete for it (see `lower_priority`). A thread's nice
/// value can be raised but not lowered again without privileges, so the
/// two sets are made once; mostly one of them is busy at a time. What is
/// spawned stays on its set (an actor for its whole life).
pub struct GuestRuntime {
    alone: Option<tokio::runtime::Runtime>,
    /// `None` with `--guest-niceness 0`: `alone` serves both cases.
    shared: Option<tokio::runtime::Runtime>,
    /// Whether tenants compete for the node now (`set_shared`).
    shared_now: AtomicBool,
    threads: usize,
    /// Whether a guest runs on the RPC thread right now (see `claim_inline`).
    inline_busy: AtomicBool,
}

/// The RPC thread's guest slot, given back on drop.
pub struct InlineSlot<'a>(&'a AtomicBool);

impl Drop for InlineSlot<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl GuestRuntime {
    /// One guest thread per CPU the node offers, at most one per core, in
    /// each of the two sets; the shared set's at `niceness` more.
    pub fn new(num_cpus: f64, niceness: i32) -> Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = (num_cpus.ceil() as usize).clamp(1, cores.max(1));
        let build = |niceness: i32, spin: bool| {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if spin {
                builder.on_thread_park(reef_core::spin::before_park);
            }
            builder
                .worker_threads(threads)
                .thread_name(GUEST_THREAD)
                .on_thread_start(move || lower_priority(niceness))
                .enable_all()
                .build()
                .context("starting the guest runtime")
        };
        Ok(GuestRuntime {
            alone: Some(build(0, false)?),
            // While tenants compete, the RPC thread hands every call of a
            // flooding tenant to these threads (see `tasks::inline`), and
            // waking a parked one cost it a syscall each (~25 % of its time
            // under a flood was the kernel's). A thread that spins briefly
            // before it parks (`reef_core::spin`) takes the next call
            // without one: `bench isolation`, 6 alternated runs, tenant
            // A's p50 under B's flood median 129 -> 67 us, p99 median
            // 392 -> 284 us, B's flood ~4 % faster (docs/security.md#fair-sharing).
            // Spinning on the queue alone, not the process's sockets too
            // (which, read by the RPC thread, stay readable under load and
            // end most spins at once), was no better (4 alternated runs).
            // A tenant alone keeps threads that park at once: the 3-node
            // DAG, where 3 nodes share 2 cores, lost ~5 % to the spins. With
            // `--guest-niceness 0` there is no shared set and nothing spins.
            shared: if niceness == 0 {
                None
            } else {
                Some(build(niceness, true)?)
            },
            shared_now: AtomicBool::new(false),
            threads,
            inline_busy: Default::default(),
        })
    }

    /// How many guest threads run at a time.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Whether the calling thread is one of the guest threads.
    pub fn on_guest_thread(&self) -> bool {
        std::thread::current().name() == Some(GUEST_THREAD)
    }

    /// Lets one guest at a time start on the RPC thread (see `Tasks::run`).
    pub fn claim_inline(&self) -> Option<InlineSlot<'_>> {
        self.inline_busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| InlineSlot(&self.inline_busy))
    }

    /// Whether tenants compete for the node (`Overflow` tells, as it sees
    /// their short tasks): guests spawned from now on run on the set at the
    /// lower priority, or, when no longer, at the node's.
    pub fn set_shared(&self, shared: bool) {
        if self.shared_now.load(Ordering::Relaxed) != shared {
            self.shared_now.store(shared, Ordering::Relaxed);
        }
    }

    pub fn spawn<F>(&self, future: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let shared = self
            .shared
            .as_ref()
            .filter(|_| self.shared_now.load(Ordering::Relaxed));
        if let Some(rt) = shared.or(self.alone.as_ref()) {
            rt.spawn(future);
        }
    }
}

/// Adds `niceness` to the calling thread's nice value (at most 19; 0:
/// left as it is).
///
/// The RPC thread reads and answers every tenant's drivers; under one
/// tenant's flood it shared the cores with the guest threads running that
/// flood, and another tenant's requests waited for it (their p99 round trip,
/// `bench isolation` alternated: medians ~0.5 ms at nice 0, ~0.375 ms with
/// the guest threads at nice 5). Ray runs its workers at nice 15 for the same
/// reason. A tenant alone on the node keeps the node's priority: at nice 5
/// its async noops ran ~8 % slower (the RPC thread preempting the guest
/// threads whenever it woke). Linux lets any thread raise its own nice
/// value (lowering it needs `CAP_SYS_NICE`): hence two sets of threads.
fn lower_priority(niceness: i32) {
    if niceness == 0 {
        return;
    }
    let nice = (thread_nice() + niceness).min(19);
    // SAFETY: `gettid` has no preconditions; `setpriority` with
    // `PRIO_PROCESS` and a thread id changes that one thread's nice value
    // and reads no memory of ours.
    let failed =
        unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice) != 0 };
    if failed {
        tracing::warn!(
            nice,
            error = %std::io::Error::last_os_error(),
            "could not lower a guest thread's priority"
        );
    }
}

/// The calling thread's nice value (a new thread starts with its creator's).
fn thread_nice() -> i32 {
    // SAFETY: as in `lower_priority`; `getpriority` only reads the thread's
    // nice value (-1 is a valid value too, so errors are not told apart:
    // with a thread's own id it does not fail).
    unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
}

impl Drop for GuestRuntime {
    fn drop(&mut self) {
        // Dropping a runtime may not block inside another one.
        for rt in [self.alone.take(), self.shared.take()]
            .into_iter()
            .flatten()
        {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_run_at_the_added_niceness_while_tenants_compete() {
        let base = thread_nice();
        let nice_on = |guests: &GuestRuntime| {
            let (tx, rx) = std::sync::mpsc::channel();
            guests.spawn(async move {
                tx.send(thread_nice()).unwrap();
            });
            rx.recv().unwrap()
        };
        let guests = GuestRuntime::new(1.0, 5).unwrap();
        assert_eq!(nice_on(&guests), base, "one tenant: the node's priority");
        guests.set_shared(true);
        assert_eq!(nice_on(&guests), (base + 5).min(19), "tenants compete");
        guests.set_shared(false);
        assert_eq!(nice_on(&guests), base, "one tenant again");
        let guests = GuestRuntime::new(1.0, 0).unwrap();
        guests.set_shared(true);
        assert_eq!(nice_on(&guests), base, "--guest-niceness 0");
        // The thread that made them is left as it was.
        assert_eq!(thread_nice(), base);
    }
}
