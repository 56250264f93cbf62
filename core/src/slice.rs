//! A short scheduler slice for a driver's thread.
//!
//! Linux's fair scheduler (EEVDF, 6.6+) lets a running thread go on to the
//! end of its slice (1.4 ms on the 2-core VM here: 0.7 ms × (1 + log2
//! CPUs)) before a thread that just woke takes the core, unless the woken one
//! asks for a shorter slice (6.12+: `sched_setattr` with `sched_runtime` on
//! a `SCHED_OTHER` thread). A driver waiting for a reply while guests and
//! other drivers keep every core busy then waits for the end of somebody
//! else's slice: milliseconds added to a round trip. A short slice gives a
//! thread no more CPU than its weight (its nice value is kept), only earlier
//! deadlines: it runs soon after it wakes, and for less at a time.
//!
//! `reef::runtime()` asks for one for its thread (`REEF_SLICE_US`, default
//! [`DEFAULT_SLICE`]; `0` leaves the kernel's). The node's threads keep the
//! kernel's: the node's RPC thread given the same slice did not lower the
//! tail further and cost the 3-node DAG ~13 % (see docs/security.md#fair-sharing).

use std::time::Duration;

/// The slice asked for unless `REEF_SLICE_US` says otherwise. Measured on a
/// 2-core VM (`bench isolation`: tenant A's p99 sync round trip under tenant
/// B's flood, alternated runs): with A's driver thread at 100 µs, median
/// ~0.59 ms over 10 runs (0.43–1.0 ms, one of 2.4 ms); with the kernel's
/// 1.4 ms, ~1.7 ms over 15 (0.29–5.2 ms); 400 µs and 1 ms (the node's RPC
/// thread too), 0.96–1.04 and 0.64–2.3 ms (3 runs each).
pub const DEFAULT_SLICE: Duration = Duration::from_micros(100);

/// The environment variable that sets the slice, in µs.
pub const SLICE_ENV: &str = "REEF_SLICE_US";

/// `struct sched_attr` (include/uapi/linux/sched/types.h), version 1.
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
    sched_util_min: u32,
    sched_util_max: u32,
}

/// The slice this process asks for: `REEF_SLICE_US`, else [`DEFAULT_SLICE`];
/// `None` when set to 0.
pub fn configured() -> Option<Duration> {
    let slice = std::env::var(SLICE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_SLICE, Duration::from_micros);
    (!slice.is_zero()).then_some(slice)
}

/// Asks for the configured short slice for the calling thread (see the
/// module docs). Kernels before 6.12 take the call and keep their slice;
/// an error (no `sched_setattr`, a policy other than `SCHED_OTHER` set
/// elsewhere) leaves the thread as it was and is returned for the caller to log.
pub fn short_slice() -> std::io::Result<()> {
    match configured() {
        Some(slice) => set_slice(slice),
        None => Ok(()),
    }
}

/// Sets the calling thread's slice (clamped by the kernel to 0.1–100 ms),
/// keeping its nice value.
#[cfg(target_os = "linux")]
pub fn set_slice(slice: Duration) -> std::io::Result<()> {
    // SAFETY: getpriority has no memory arguments; `who` 0 is the calling
    // thread on Linux. -1 is both a valid nice value and the error return:
    // the error (ESRCH for ourselves) cannot happen here.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_nice: nice.clamp(-20, 19),
        sched_runtime: slice.as_nanos().min(u64::MAX as u128) as u64,
        ..Default::default()
    };
    // SAFETY: sched_setattr(pid 0: the calling thread, a fully initialised
    // sched_attr whose `size` is its own size, flags 0) only reads `attr`,
    // which outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    match r {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Not Linux: nothing to do.
#[cfg(not(target_os = "linux"))]
pub fn set_slice(_slice: Duration) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The calling thread's slice in ns, as `/proc` shows it (`se.slice`).
    fn slice_ns() -> Option<u64> {
        let sched = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
        let line = sched.lines().find(|l| l.starts_with("se.slice"))?;
        line.split(':').nth(1)?.trim().parse().ok()
    }

    /// Whether the kernel takes a slice from `sched_setattr` (6.12+).
    fn custom_slices() -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut parts = release.trim().split(['.', '-']);
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        (major, minor) >= (6, 12)
    }

    #[test]
    fn the_thread_gets_the_slice_and_keeps_its_nice_value() {
        // A thread of its own: the test harness's threads are left alone.
        std::thread::spawn(|| {
            // SAFETY: setpriority/getpriority on the calling thread (`who` 0).
            let nice = unsafe {
                libc::setpriority(libc::PRIO_PROCESS, 0, 5);
                libc::getpriority(libc::PRIO_PROCESS, 0)
            };
            assert_eq!(nice, 5);
            match set_slice(Duration::from_micros(250)) {
                Ok(()) => {}
                // A sandbox (seccomp) without sched_setattr: nothing to check.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOSYS)) => {
                    eprintln!("sched_setattr refused here ({e}): not checked");
                    return;
                }
                Err(e) => panic!("sched_setattr: {e}"),
            }
            // SAFETY: as above.
            assert_eq!(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }, 5);
            if custom_slices() {
                if let Some(ns) = slice_ns() {
                    assert_eq!(ns, 250_000);
                }
            }
        })
        .join()
        .unwrap();
    }
}
