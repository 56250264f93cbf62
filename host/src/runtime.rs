//! The threads that run tasks and actors, apart from the runtime that serves
//! RPCs: a guest computing between epoch ticks then never delays a driver's
//! request, and the RPC side stays on one thread, where a request costs no
//! cross-thread wake-ups (~60 µs of a round trip on this kind of VM).

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

const GUEST_THREAD: &str = "reef-guest";

pub struct GuestRuntime {
    runtime: Option<tokio::runtime::Runtime>,
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
    /// One guest thread per CPU the node offers, at most one per core, each
    /// at nice value `niceness` (see `lower_priority`).
    pub fn new(num_cpus: f64, niceness: i32) -> Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = (num_cpus.ceil() as usize).clamp(1, cores.max(1));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(GUEST_THREAD)
            .on_thread_start(move || lower_priority(niceness))
            .enable_all()
            .build()
            .context("starting the guest runtime")?;
        Ok(GuestRuntime {
            runtime: Some(runtime),
            threads,
            inline_busy: Default::default(),
        })
    }

    /// How many guest threads there are.
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

    pub fn spawn<F>(&self, future: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        if let Some(rt) = &self.runtime {
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
/// reason. Linux lets any thread raise its own nice value (lowering it
/// needs `CAP_SYS_NICE`), so this is a one-way setting, made once per
/// thread; it only matters when the cores are all busy.
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
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_threads_run_at_the_added_niceness() {
        let base = thread_nice();
        for (niceness, want) in [(0, base), (5, (base + 5).min(19))] {
            let guests = GuestRuntime::new(1.0, niceness).unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            guests.spawn(async move {
                tx.send(thread_nice()).unwrap();
            });
            assert_eq!(rx.recv().unwrap(), want, "--guest-niceness {niceness}");
        }
        // The thread that made them is left as it was.
        assert_eq!(thread_nice(), base);
    }
}
