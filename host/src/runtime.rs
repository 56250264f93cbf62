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
    /// One guest thread per CPU the node offers, at most one per core.
    pub fn new(num_cpus: f64) -> Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = (num_cpus.ceil() as usize).clamp(1, cores.max(1));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(GUEST_THREAD)
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

impl Drop for GuestRuntime {
    fn drop(&mut self) {
        // Dropping a runtime may not block inside another one.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
