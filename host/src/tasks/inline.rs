//! Which tasks take their first slice on the RPC thread (see `Tasks::run`).
//!
//! A short task started on the RPC thread finishes there without a hand-off
//! between threads (most of a sync round trip). A long one holds the RPC
//! thread until its first epoch tick (up to `engine::EPOCH_TICK`): the tasks
//! submitted with it wait that long to be dispatched, and a guest thread
//! idles. Measured here (2 CPUs): the seed demo's four ~1.3 ms sums took
//! 3.3 ms when every task started inline, 2.5-2.8 ms when none did; 64 sums of
//! ~0.1 ms took 8.7-9.3 ms inline and 10.3-10.6 ms without.
//!
//! So each task function of a module keeps a moving average of the CPU time its
//! recent calls took (a sample of them: `RunTimes::times_call`), and one whose
//! average is above `INLINE_MAX` is driven on the guest threads from the start
//! (`Tasks::schedule`): it waits for its arguments and CPUs there, and a guest
//! thread finishing one call starts the next waiting one without a hand-off
//! through the RPC thread (64 sums of 16 MiB: 52-54 ms -> 45-46 ms). A function
//! not seen yet starts inline. CPU time (the thread's CPU clock around each
//! poll), not wall time: on a node busy enough that calls wait for a core, wall
//! time took trivial tasks for long ones and sent a flood of them to the guest
//! threads, where each waited behind the others' first polls (another tenant's
//! p99 round trip under that flood: 27-36 ms instead of 3-5 ms).
//!
//! Nor does a call start inline while more calls of its tenant wait for CPUs
//! in a pool that other tenants' calls were granted in the last 100 ms
//! (`Scheduler::crowds_others`): that tenant is flooding a shared node, and
//! its calls run on the guest threads, so the RPC thread keeps reading and
//! answering the other tenants' requests (another tenant's p99 round trip
//! under a 145k-task flood: see docs/security.md#fair-sharing). A tenant
//! alone on a node keeps the inline path: sending its calls to the guest
//! threads cost a 3-node DAG 25-55 % of its throughput.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::fastmap::FastMap;

/// `f`'s output and the CPU time its polls took, on whichever threads.
pub async fn cpu_timed<F: Future>(f: F) -> (F::Output, Duration) {
    let (out, spent) = cpu_timed_if(true, f).await;
    (out, spent.unwrap_or_default())
}

/// `f`'s output and, when `timed`, the CPU time its polls took (two reads
/// of the thread's CPU clock a poll: ~0.4 µs, so calls are sampled, see
/// `RunTimes::times_call`).
pub async fn cpu_timed_if<F: Future>(timed: bool, f: F) -> (F::Output, Option<Duration>) {
    if !timed {
        return (f.await, None);
    }
    let mut f = std::pin::pin!(f);
    let mut spent = Duration::ZERO;
    let out = std::future::poll_fn(|cx| {
        let start = thread_cpu_time();
        let polled = f.as_mut().poll(cx);
        spent += thread_cpu_time().saturating_sub(start);
        polled
    })
    .await;
    (out, Some(spent))
}

/// The calling thread's CPU time (~0.2 µs a call here).
pub(crate) fn thread_cpu_time() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Longest average CPU time of a function whose calls still start on the RPC
/// thread: well under an epoch tick, and a few hand-offs (~50 µs each).
const INLINE_MAX: Duration = Duration::from_micros(250);

/// CPU-time averages of one module's task functions, and of making one of
/// its instances.
#[derive(Default)]
pub struct RunTimes {
    /// Per task function, fixed when the module is described: lookups take
    /// no lock.
    by_function: FastMap<String, FunctionTimes>,
    /// Microseconds of CPU time to instantiate the module, averaged the
    /// same way over one instantiation in `INSTANTIATE_SAMPLE` (whether to
    /// make instances ahead: see `guest::warm`).
    instantiate: AtomicU32,
    instantiations: AtomicU32,
}

/// One instantiation in this many is timed (reading the thread's CPU clock
/// is a system call here, 0.2-0.6 µs, of a trivial task's ~25 µs).
const INSTANTIATE_SAMPLE: u32 = 32;

/// A function's first `CALLS_TIMED_FIRST` calls are timed, then one in
/// `CALL_SAMPLE`: a call's polls read the clock at least twice, a call
/// moved to a guest thread four times or more. With one in 8, the reads
/// were ~3.5 % of the node's CPU under a flood of Rust `noop`s (a read took
/// 0.6 µs in a loop on the 2-core VM); a function's average moves slowly,
/// so one in 32 still follows it.
const CALLS_TIMED_FIRST: u32 = 8;
const CALL_SAMPLE: u32 = 32;

#[derive(Default)]
struct FunctionTimes {
    /// Microseconds of CPU time, an exponential moving average (weight 1/4
    /// per timed call).
    avg_us: AtomicU32,
    calls: AtomicU32,
}

impl RunTimes {
    pub fn new(functions: &[String]) -> Self {
        RunTimes {
            by_function: functions
                .iter()
                .map(|f| (f.clone(), FunctionTimes::default()))
                .collect(),
            instantiate: AtomicU32::new(0),
            instantiations: AtomicU32::new(0),
        }
    }

    /// Whether a call of `function` may start on the RPC thread.
    pub fn starts_inline(&self, function: &str) -> bool {
        self.by_function
            .get(function)
            .is_none_or(|f| u128::from(f.avg_us.load(Ordering::Relaxed)) <= INLINE_MAX.as_micros())
    }

    /// Whether to time the call of `function` about to start (see
    /// `CALL_SAMPLE`); never for a function the module does not have.
    pub fn times_call(&self, function: &str) -> bool {
        self.by_function
            .get(function)
            .is_some_and(|f| sampled(&f.calls, CALLS_TIMED_FIRST, CALL_SAMPLE))
    }

    /// A call of `function` took `took` of CPU time.
    pub fn record(&self, function: &str, took: Duration) {
        if let Some(f) = self.by_function.get(function) {
            add_sample(&f.avg_us, took);
        }
    }

    /// Whether to time the instantiation about to be made (one in
    /// `INSTANTIATE_SAMPLE`, the first one included).
    pub fn times_instantiation(&self) -> bool {
        sampled(&self.instantiations, 1, INSTANTIATE_SAMPLE)
    }

    /// Making an instance took `took` of CPU time.
    pub fn record_instantiate(&self, took: Duration) {
        add_sample(&self.instantiate, took);
    }

    /// The average CPU time of making an instance (zero until one was made).
    pub fn instantiate_time(&self) -> Duration {
        Duration::from_micros(self.instantiate.load(Ordering::Relaxed).into())
    }
}

/// Counts one more event on `count`: whether it is sampled (the first
/// `first`, then one in `every`).
fn sampled(count: &AtomicU32, first: u32, every: u32) -> bool {
    let n = count.fetch_add(1, Ordering::Relaxed);
    n < first || n.is_multiple_of(every)
}

fn add_sample(avg: &AtomicU32, took: Duration) {
    let sample = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
    // Load and store, not a CAS loop: two samples taken at once may lose
    // one, which an average can afford.
    let old = avg.load(Ordering::Relaxed);
    let new = (u64::from(old) * 3 + u64::from(sample)) / 4;
    avg.store(new as u32, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_functions_stop_starting_inline_and_short_ones_come_back() {
        let times = RunTimes::new(&["sum".into(), "noop".into()]);
        assert!(
            times.starts_inline("sum"),
            "a function not seen yet starts inline"
        );
        for _ in 0..3 {
            times.record("sum", Duration::from_millis(2));
            times.record("noop", Duration::from_micros(10));
        }
        assert!(!times.starts_inline("sum"));
        assert!(times.starts_inline("noop"));
        for _ in 0..20 {
            times.record("sum", Duration::from_micros(20));
        }
        assert!(
            times.starts_inline("sum"),
            "calls that got short start inline again"
        );
    }

    #[tokio::test]
    async fn cpu_time_counts_polls_not_waits() {
        let (_, idle) = cpu_timed(tokio::time::sleep(Duration::from_millis(30))).await;
        assert!(
            idle < Duration::from_millis(10),
            "a sleep took {idle:?} of CPU"
        );
        // Spins until this thread has used 20 ms of CPU, however long that takes.
        let (_, busy) = cpu_timed(async {
            let start = thread_cpu_time();
            while thread_cpu_time() - start < Duration::from_millis(20) {
                std::hint::spin_loop();
            }
        })
        .await;
        assert!(
            busy >= Duration::from_millis(20),
            "a 20 ms spin counted {busy:?}"
        );
    }

    #[test]
    fn instantiation_times_are_sampled_and_averaged() {
        let times = RunTimes::new(&[]);
        assert_eq!(times.instantiate_time(), Duration::ZERO);
        let draws = 2 * INSTANTIATE_SAMPLE + 1;
        let timed: Vec<bool> = (0..draws).map(|_| times.times_instantiation()).collect();
        assert_eq!(timed.iter().filter(|t| **t).count(), 3, "{timed:?}");
        assert!(timed[0], "the first one is timed");
        for _ in 0..20 {
            times.record_instantiate(Duration::from_micros(600));
        }
        let avg = times.instantiate_time();
        assert!(
            avg > Duration::from_micros(590) && avg <= Duration::from_micros(600),
            "{avg:?}"
        );
    }

    #[test]
    fn a_functions_first_calls_are_timed_then_a_sample() {
        let times = RunTimes::new(&["noop".into()]);
        let draws = CALLS_TIMED_FIRST + 2 * CALL_SAMPLE;
        let timed: Vec<bool> = (0..draws).map(|_| times.times_call("noop")).collect();
        assert!(timed[..CALLS_TIMED_FIRST as usize].iter().all(|t| *t));
        // After the first ones, one in CALL_SAMPLE (counting from the start).
        let later = timed[CALLS_TIMED_FIRST as usize..]
            .iter()
            .filter(|t| **t)
            .count();
        assert_eq!(later, 2, "{timed:?}");
        assert!(
            !times.times_call("other"),
            "a function the module lacks is never timed"
        );
    }

    #[test]
    fn unknown_functions_start_inline() {
        let times = RunTimes::new(&[]);
        times.record("other", Duration::from_secs(1));
        assert!(times.starts_inline("other"));
    }
}
