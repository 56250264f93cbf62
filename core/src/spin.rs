//! Spinning briefly before a runtime thread sleeps, for low-latency request
//! and reply on virtual machines.
//!
//! On a VM an idle vCPU halts, and waking it (the hypervisor delivering the
//! interrupt and scheduling the vCPU again) costs 15–25 µs on each side of a
//! round trip: a sync task took ~90–110 µs on an idle 2-core VM and ~50 µs
//! when the other core was kept busy. A runtime thread that is about to park instead
//! polls, for at most a short budget, whether one of its sockets became
//! readable or work was queued from another thread, and parks only when
//! nothing came: a reply or the next request that arrives within the budget is
//! picked up without a halt. The cost is at most one budget of CPU each time
//! the thread goes idle.
//!
//! Sockets are watched through an epoll set of our own, level-triggered: it
//! only looks at readiness and never reads, so the runtime's own
//! (edge-triggered) registration of the same socket is untouched. A closed
//! socket leaves the set by itself when its last descriptor is closed.
//!
//! What ends a spin early: a watched socket readable (the node watches the
//! connections it accepts, Unix and TCP; a driver its Unix-socket
//! connection) or work queued from another thread. Anything else (a timer,
//! a reply on a connection the node opened to a peer) waits for the spin to
//! end: at most one budget, plus a scheduler slice when the yields between
//! polls gave the core away. The set is the process's: in a process with
//! several runtimes, any of their sockets ends a spin.

use std::cell::Cell;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::event::epoll;
use rustix::event::Timespec;

/// The spin budget of this process unless set otherwise.
pub const DEFAULT_BUDGET: Duration = Duration::from_micros(50);
/// The largest budget taken: past a millisecond a spin is a busy wait.
pub const MAX_BUDGET: Duration = Duration::from_millis(1);

/// The environment variable that sets a process's budget in microseconds
/// (`0` turns spinning off).
pub const BUDGET_ENV: &str = "REEF_SPIN_US";

/// The sockets a runtime thread looks at while it spins, and how long it may.
pub struct Spin {
    /// `None` when epoll could not be created: then nothing spins.
    watched: Option<OwnedFd>,
    budget_ns: AtomicU64,
}

/// The process's one [`Spin`]: sockets are registered where they are
/// accepted or connected, the hook runs on every runtime thread.
pub fn global() -> &'static Spin {
    static SPIN: OnceLock<Spin> = OnceLock::new();
    SPIN.get_or_init(|| {
        let budget = std::env::var(BUDGET_ENV)
            .ok()
            .and_then(|us| us.trim().parse::<u64>().ok())
            .map_or(DEFAULT_BUDGET, Duration::from_micros);
        Spin::new(budget)
    })
}

/// A runtime's `on_thread_park` hook: spin on the process's sockets first.
pub fn before_park() {
    global().before_park();
}

impl Spin {
    fn new(budget: Duration) -> Self {
        let spin = Spin {
            watched: epoll::create(epoll::CreateFlags::CLOEXEC).ok(),
            budget_ns: AtomicU64::new(0),
        };
        spin.set_budget(budget);
        spin
    }

    /// Sets the budget, at most [`MAX_BUDGET`] (`Duration::ZERO`: park at
    /// once, as without this).
    pub fn set_budget(&self, budget: Duration) {
        let ns = budget.min(MAX_BUDGET).as_nanos() as u64;
        self.budget_ns.store(ns, Ordering::Relaxed);
    }

    pub fn budget(&self) -> Duration {
        Duration::from_nanos(self.budget_ns.load(Ordering::Relaxed))
    }

    /// Watches `socket` for incoming data while spinning (a socket that
    /// cannot be added is simply not watched).
    pub fn watch(&self, socket: impl AsFd) {
        if let Some(watched) = &self.watched {
            let _ = epoll::add(
                watched,
                socket,
                epoll::EventData::new_u64(0),
                epoll::EventFlags::IN | epoll::EventFlags::RDHUP,
            );
        }
    }

    /// Returns once a watched socket is readable, the calling runtime has work
    /// queued from another thread, or the budget is spent. A thread whose
    /// spins keep finding nothing (its peer answers slower than the budget:
    /// a loaded node, a remote driver) stops spinning for a while.
    pub fn before_park(&self) {
        let budget = self.budget();
        let Some(watched) = &self.watched else { return };
        if budget.is_zero() || BACKOFF.with(Backoff::skip) {
            return;
        }
        let found = self.spin(watched, budget);
        BACKOFF.with(|b| b.record(found));
    }

    /// Whether something came within `budget`.
    fn spin(&self, watched: &OwnedFd, budget: Duration) -> bool {
        let runtime = tokio::runtime::Handle::try_current().ok();
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let start = Instant::now();
        let mut ready = [MaybeUninit::<epoll::Event>::uninit(); 1];
        loop {
            match epoll::wait(watched, &mut ready, Some(&now)) {
                Ok((events, _)) if !events.is_empty() => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
            if runtime
                .as_ref()
                .is_some_and(|rt| rt.metrics().global_queue_depth() > 0)
            {
                return true;
            }
            if start.elapsed() >= budget {
                return false;
            }
            // Polite on a busy machine: another thread ready on this core runs.
            std::thread::yield_now();
        }
    }
}

/// Fruitless spins in a row after which a thread stops spinning.
const MISSES_TO_BACK_OFF: u32 = 4;
/// Parks without spinning after backing off; then it tries again.
const PARKS_BACKED_OFF: u32 = 64;

thread_local! {
    static BACKOFF: Backoff = const { Backoff { misses: Cell::new(0), skip: Cell::new(0) } };
}

/// A thread's record of its recent spins.
struct Backoff {
    misses: Cell<u32>,
    skip: Cell<u32>,
}

impl Backoff {
    /// Whether this park goes without a spin (counting it).
    fn skip(&self) -> bool {
        let skip = self.skip.get();
        self.skip.set(skip.saturating_sub(1));
        skip > 0
    }

    fn record(&self, found: bool) {
        if found {
            self.misses.set(0);
            return;
        }
        let misses = self.misses.get() + 1;
        if misses >= MISSES_TO_BACK_OFF {
            self.misses.set(0);
            self.skip.set(PARKS_BACKED_OFF);
        } else {
            self.misses.set(misses);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_readable_socket_ends_the_spin_at_once_and_a_quiet_one_spends_the_budget() {
        let spin = Spin::new(MAX_BUDGET);
        // spin() takes any budget: long enough here to tell the cases apart.
        let budget = Duration::from_millis(200);
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        spin.watch(&b);
        let watched = spin.watched.as_ref().unwrap();
        let start = Instant::now();
        assert!(!spin.spin(watched, budget));
        let quiet = start.elapsed();
        assert!(quiet >= Duration::from_millis(200), "spun {quiet:?}");
        a.write_all(b"x").unwrap();
        let start = Instant::now();
        assert!(spin.spin(watched, budget));
        let readable = start.elapsed();
        assert!(readable < Duration::from_millis(100), "spun {readable:?}");
    }

    #[test]
    fn a_thread_whose_spins_find_nothing_stops_spinning_for_a_while() {
        let backoff = Backoff {
            misses: Cell::new(0),
            skip: Cell::new(0),
        };
        for _ in 0..MISSES_TO_BACK_OFF - 1 {
            assert!(!backoff.skip());
            backoff.record(false);
        }
        // A spin that pays off starts the count again.
        backoff.record(true);
        for _ in 0..MISSES_TO_BACK_OFF {
            assert!(!backoff.skip());
            backoff.record(false);
        }
        for _ in 0..PARKS_BACKED_OFF {
            assert!(backoff.skip());
        }
        assert!(!backoff.skip());
    }

    #[test]
    fn the_budget_is_at_most_a_millisecond() {
        let spin = Spin::new(Duration::from_secs(3600));
        assert_eq!(spin.budget(), MAX_BUDGET);
    }

    #[test]
    fn a_zero_budget_never_spins() {
        // On a fresh thread: a spin would find nothing and count a miss.
        std::thread::spawn(|| {
            let spin = Spin::new(MAX_BUDGET);
            let (_a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            spin.watch(&b);
            spin.before_park();
            assert_eq!(
                BACKOFF.with(|b| b.misses.get()),
                1,
                "a quiet spin is a miss"
            );
            spin.set_budget(Duration::ZERO);
            spin.before_park();
            spin.before_park();
            assert_eq!(BACKOFF.with(|b| b.misses.get()), 1, "no spin, no miss");
        })
        .join()
        .unwrap();
    }
}
