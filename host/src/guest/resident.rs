//! Keeps the pages a fresh instance wrote within what wasmtime's slot reset
//! keeps resident, so the next instance in the slot does not fault them in.
//!
//! When an instance is dropped, wasmtime 48 resets its pooling slot with one
//! `PAGEMAP_SCAN` for the pages written since the slot was mapped, into a
//! fixed buffer of 32 runs (`MAX_REGIONS` in its `pagemap.rs`): it copies the
//! memory image back over those runs, which stay resident, and `madvise`s
//! away everything after the 32nd. A guest whose writes fall in more runs
//! (SpiderMonkey's heap: 54–60 runs, mostly 1–9 pages apart) lost those
//! pages on every reset, and each instance faulted them back in (~64 faults
//! per JS `noop`, ~48 of them copy-on-write breaks with a TLB-shootdown IPI).
//!
//! `merge_runs`, called before a fresh instance is dropped, populates the
//! smallest gaps between runs writable (`MADV_POPULATE_WRITE`: the pages keep
//! their contents, they only become the slot's own) until 32 runs are left,
//! when the result fits in the slot's resident budget. Filled pages stay
//! resident from then on, so a slot pays for them once. A module whose
//! instances need no merging is only sampled (`ResidentRuns`).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;

use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift};

/// Runs of written pages wasmtime's reset keeps (its `MAX_REGIONS`).
const RESET_RUNS: usize = 32;
/// Runs one scan here reports; a memory with more is left as it is.
const SCAN_RUNS: usize = 1024;
const PAGE: u64 = 4096;
/// A module whose instances need no merging is scanned before one drop in
/// this many (a scan per task cost Rust `noop`s 4-9 % of their async rate).
const SAMPLE: u32 = 16;

/// An instance whose drop takes at least this much CPU (a moving average
/// per module) is dropped after the task's result is sealed (see `spent`);
/// a cheaper one at once, as before: waiting costs a turn of the thread
/// (Rust `noop`s: ~8 µs a drop, and the turn took 10 % of their async rate).
const SLOW_DROP_US: u64 = 20;

/// Per module: whether to scan its fresh instances before they are dropped,
/// and how long dropping one takes.
#[derive(Default)]
pub struct ResidentRuns {
    drops: AtomicU32,
    /// The latest scan merged runs: slots not merged yet may follow.
    merging: AtomicBool,
    /// Moving average (1/8 per timed drop: `times_drop`) of a drop's CPU
    /// time, ns (thread CPU time: a preempted drop does not count as a
    /// slow one).
    drop_ns: AtomicU64,
}

impl ResidentRuns {
    /// Counts the drop of one of the module's instances that had a linear
    /// memory: its turn, for `before_drop` and `times_drop`.
    pub fn next_drop(&self) -> u32 {
        self.drops.fetch_add(1, Ordering::Relaxed)
    }

    /// Before a fresh instance of the module is dropped: `merge_runs` on
    /// its memory while the module's instances need it, else for one
    /// instance in `SAMPLE` (the first included).
    pub fn before_drop(&self, turn: u32, memory: (usize, usize), budget: u64) {
        if turn.is_multiple_of(SAMPLE) || self.merging.load(Ordering::Relaxed) {
            self.merging
                .store(merge_runs(memory, budget), Ordering::Relaxed);
        }
    }

    /// Whether the drop of turn `turn` is timed (`dropped_in`): the second,
    /// then one in `SAMPLE`, halfway between the ones scanned (a scan is
    /// not what a drop usually costs). Reading the thread's CPU clock twice
    /// is ~0.4 µs, of a Rust `noop` task's ~30 µs.
    pub fn times_drop(turn: u32) -> bool {
        turn == 1 || turn % SAMPLE == SAMPLE / 2
    }

    /// Records how long dropping one of the module's instances took.
    pub fn dropped_in(&self, took: std::time::Duration) {
        let ns = took.as_nanos().min(u64::MAX as u128 / 2) as u64;
        let avg = self.drop_ns.load(Ordering::Relaxed);
        // The first sample starts the average; races between threads lose
        // an update at worst.
        let new = if avg == 0 { ns } else { avg - avg / 8 + ns / 8 };
        self.drop_ns.store(new, Ordering::Relaxed);
    }

    /// Whether its instances are slow to drop (`SLOW_DROP_US`).
    pub fn slow_drops(&self) -> bool {
        self.drop_ns.load(Ordering::Relaxed) >= SLOW_DROP_US * 1_000
    }
}

/// A value lifted from a guest's result together with where the guest's
/// linear memory is (host address, length in bytes) at that moment.
pub struct WithMemory<T> {
    pub value: T,
    pub memory: (usize, usize),
}

// SAFETY: same ABI and type check as `T`, which this type forwards to.
unsafe impl<T: ComponentType> ComponentType for WithMemory<T> {
    type Lower = T::Lower;
    const ABI: CanonicalAbiInfo = T::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        T::typecheck(ty, types)
    }
}

// SAFETY: lifting is `T`'s; we only read where the memory is.
unsafe impl<T: Lift> Lift for WithMemory<T> {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        let value = T::linear_lift_from_flat(cx, ty, src)?;
        Ok(Self::at(cx, value))
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        let value = T::linear_lift_from_memory(cx, ty, bytes)?;
        Ok(Self::at(cx, value))
    }
}

impl<T> WithMemory<T> {
    fn at(cx: &LiftContext<'_>, value: T) -> Self {
        let memory = cx.memory();
        WithMemory {
            value,
            memory: (memory.as_ptr() as usize, memory.len()),
        }
    }
}

/// `struct pm_scan_arg` (linux/fs.h).
#[repr(C)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// `struct page_region` (linux/fs.h).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: libc::c_ulong =
    0xC000_0000 | ((std::mem::size_of::<PmScanArg>() as libc::c_ulong) << 16) | (0x66 << 8) | 16;
const PAGE_IS_WRITTEN: u64 = 1 << 1;
const PAGE_IS_FILE: u64 = 1 << 2;
const PAGE_IS_PRESENT: u64 = 1 << 3;
const PAGE_IS_PFNZERO: u64 = 1 << 5;

fn pagemap() -> Option<&'static File> {
    static PAGEMAP: OnceLock<Option<File>> = OnceLock::new();
    PAGEMAP
        .get_or_init(|| File::open("/proc/self/pagemap").ok())
        .as_ref()
}

/// The runs of pages in `start..end` that wasmtime's reset counts as written
/// (present, written, neither the zero page nor a file's page: the same
/// query), at most `max_runs` of them, and whether the scan reached `end`
/// (`None` when the scan is unavailable).
fn written_runs(start: u64, end: u64, max_runs: usize) -> Option<(Vec<(u64, u64)>, bool)> {
    let file = pagemap()?;
    let mut regions = vec![PageRegion::default(); max_runs];
    let mut arg = PmScanArg {
        size: std::mem::size_of::<PmScanArg>() as u64,
        flags: 0,
        start,
        end,
        walk_end: 0,
        vec: regions.as_mut_ptr() as u64,
        vec_len: max_runs as u64,
        max_pages: 0,
        category_inverted: PAGE_IS_PFNZERO | PAGE_IS_FILE,
        category_mask: PAGE_IS_WRITTEN | PAGE_IS_PRESENT | PAGE_IS_PFNZERO | PAGE_IS_FILE,
        category_anyof_mask: 0,
        return_mask: 0,
    };
    // SAFETY: `arg` is a valid `pm_scan_arg` whose `vec` points at
    // `max_runs` writable `page_region`s, which outlive the call; the ioctl
    // only reads page tables.
    let found = unsafe { libc::ioctl(file.as_raw_fd(), PAGEMAP_SCAN, &mut arg) };
    if found < 0 {
        return None;
    }
    let runs = regions[..found as usize]
        .iter()
        .map(|r| (r.start, r.end))
        .collect();
    Some((runs, arg.walk_end >= end))
}

/// Fills the smallest gaps between the written runs of `memory` (host
/// address, length) until `RESET_RUNS` are left, if the written pages and
/// the filled ones fit in `budget` bytes (what the reset keeps resident);
/// otherwise leaves the memory alone. Returns whether it merged.
///
/// The caller must own the instance whose linear memory this is, and no
/// guest code may run in it any more: the instance is about to be dropped.
pub fn merge_runs((addr, len): (usize, usize), budget: u64) -> bool {
    let (start, end) = (addr as u64, (addr + len) as u64);
    if start % PAGE != 0 || len == 0 {
        return false;
    }
    // Most guests write fewer runs than the reset keeps: a scan for one more
    // tells, without a larger buffer.
    match written_runs(start, end, RESET_RUNS + 1) {
        Some((runs, _)) if runs.len() <= RESET_RUNS => return false,
        None => return false,
        Some(_) => {}
    }
    let Some((runs, true)) = written_runs(start, end, SCAN_RUNS) else {
        return false;
    };
    let written: u64 = runs.iter().map(|(s, e)| e - s).sum();
    let mut gaps: Vec<(u64, u64)> = runs.windows(2).map(|w| (w[0].1, w[1].0)).collect();
    gaps.sort_unstable_by_key(|(s, e)| e - s);
    let fill = &gaps[..runs.len() - RESET_RUNS];
    let filled: u64 = fill.iter().map(|(s, e)| e - s).sum();
    if written + filled > budget {
        return false;
    }
    for &(s, e) in fill {
        // SAFETY: `s..e` lies inside the linear memory (between two runs the
        // scan found in it), which stays mapped while the caller owns the
        // instance; populating it writable leaves every byte as it was.
        unsafe {
            libc::madvise(
                s as *mut libc::c_void,
                (e - s) as usize,
                libc::MADV_POPULATE_WRITE,
            );
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::FromRawFd;

    const PAGES: usize = 256;
    const LEN: usize = PAGES * PAGE as usize;

    /// A private copy-on-write mapping of a file holding `byte(i)` at `i`,
    /// like a slot's memory image.
    fn image() -> *mut u8 {
        // SAFETY: a NUL-terminated name; no other argument.
        let fd = unsafe { libc::memfd_create(c"resident-test".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY: a new fd nothing else owns.
        let mut file = unsafe { File::from_raw_fd(fd) };
        let bytes: Vec<u8> = (0..LEN).map(byte).collect();
        file.write_all(&bytes).unwrap();
        // SAFETY: a fresh private mapping of the whole file, never unmapped
        // while the test runs (the mapping keeps the file alive).
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(addr, libc::MAP_FAILED);
        addr as *mut u8
    }

    fn byte(i: usize) -> u8 {
        (i % 251) as u8
    }

    fn runs(addr: *mut u8) -> Option<usize> {
        let start = addr as u64;
        written_runs(start, start + LEN as u64, SCAN_RUNS).map(|(runs, _)| runs.len())
    }

    #[test]
    fn merges_written_runs_down_to_what_the_reset_keeps_and_changes_no_byte() {
        let addr = image();
        // Read everything first (file pages mapped read-only), then write
        // every fourth page: 64 runs, three pages apart.
        // SAFETY: inside the mapping.
        let sum: u64 = (0..LEN).map(|i| unsafe { *addr.add(i) } as u64).sum();
        assert!(sum > 0);
        for page in (0..PAGES).step_by(4) {
            let at = page * PAGE as usize;
            // SAFETY: inside the mapping.
            unsafe { *addr.add(at) = byte(at).wrapping_add(1) };
        }
        let Some(before) = runs(addr) else {
            eprintln!("PAGEMAP_SCAN is not available on this kernel: nothing to check");
            return;
        };
        assert_eq!(before, 64);

        // A budget too small for the filled pages: left alone.
        assert!(!merge_runs((addr as usize, LEN), 64 * PAGE));
        assert_eq!(runs(addr), Some(64));

        assert!(merge_runs((addr as usize, LEN), LEN as u64));
        assert_eq!(runs(addr), Some(RESET_RUNS));
        for i in 0..LEN {
            let expected = if i % (4 * PAGE as usize) == 0 {
                byte(i).wrapping_add(1)
            } else {
                byte(i)
            };
            // SAFETY: inside the mapping.
            assert_eq!(unsafe { *addr.add(i) }, expected, "byte {i}");
        }
    }

    #[test]
    fn few_runs_are_left_alone() {
        let addr = image();
        for page in [0, 10, 20] {
            // SAFETY: inside the mapping.
            unsafe { *addr.add(page * PAGE as usize) = 7 };
        }
        if runs(addr).is_none() {
            return;
        }
        assert!(!merge_runs((addr as usize, LEN), LEN as u64));
        assert_eq!(runs(addr), Some(3));
    }
}
