//! The node's shared-memory arena: one anonymous shared-memory file (a
//! `memfd`), mapped once, carved into page-aligned blocks by an offset
//! allocator.
//!
//! A memfd has no path: no other process (of this user or another) can open
//! it, and the kernel frees it with the node's last reference, so a node
//! killed with SIGKILL leaves nothing in `/dev/shm`. Guests' views map it
//! through the node's own descriptor; drivers never see it (they get
//! per-object segments, see `segment`).
//!
//! Blocks start on a host page and are page-padded so that a view mapped into a
//! guest never exposes bytes of a neighbouring object (see
//! `docs/architecture.md#zero-copy-views`). The file is never truncated while the
//! node runs: reading a mapped page past the end of the file raises SIGBUS.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use offset_allocator::{Allocation, Allocator};

pub use super::hugemap::{round_up_page, PAGE};
use super::hugemap::{AlignedMap, HUGE_PAGE};
use super::segment::Segment;

/// Objects at least this large start on a 2 MiB boundary of the arena, so that
/// a view of one (whose guest buffer is 2 MiB-aligned too) maps 2 MiB folios
/// whole (see `hugemap`). Below it, the up to 2 MiB of alignment would waste
/// more than a quarter of the object.
pub const HUGE_OBJECT: u64 = 8 << 20;

/// `prefault` works in steps of this many bytes, so the mm lock is never held long.
const PREFAULT_STEP: u64 = 64 << 20;

pub struct Arena {
    /// The memfd's name, as `/proc/<pid>/maps` shows it (`/memfd:<name> (deleted)`).
    name: String,
    file: File,
    map: AlignedMap,
    capacity: u64,
    alloc: Mutex<AllocState>,
    /// Set once `prefault` has allocated and mapped every page.
    prefaulted: std::sync::atomic::AtomicBool,
}

struct AllocState {
    allocator: Allocator,
    used: u64,
    /// Bytes of segment copies made for same-machine gets (outside the arena).
    copies: u64,
}

/// A block of the arena owned by one object; freed when dropped. A block
/// may instead hold its bytes in a segment of its own (a driver's object,
/// see `segment`): its arena range is then only reserved, so that the
/// object counts against the store's capacity as any other.
pub struct Block {
    arena: Arc<Arena>,
    /// The arena range; `None` for a get's segment copy (counted in
    /// `AllocState::copies` instead, see `Arena::reserve_copy`).
    allocation: Option<Allocation>,
    offset: u64,
    len: u64,
    segment: Option<Segment>,
}

impl Arena {
    /// Creates the arena, a memfd named `name` (shown in `/proc/<pid>/maps`;
    /// no filesystem path), and maps it. Pages are allocated in the
    /// background by `prefault`.
    pub fn create(name: &str, capacity: u64) -> Result<Arc<Self>> {
        let capacity = round_up_page(capacity);
        if capacity / PAGE > u32::MAX as u64 {
            bail!(
                "an object store of {capacity} bytes is larger than the maximum of {} bytes",
                u32::MAX as u64 * PAGE
            );
        }
        if let Some(available) = available_memory() {
            if available < capacity {
                bail!(
                    "object store needs {capacity} bytes but the machine has only {available} \
                     bytes of memory available; lower --object-store-memory"
                );
            }
        }
        // CLOEXEC: no child process (a job's driver) inherits the arena.
        let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC)
            .with_context(|| format!("creating the arena memfd {name}"))?;
        let file = File::from(fd);
        file.set_len(capacity)
            .with_context(|| format!("sizing the arena to {capacity} bytes"))?;
        let map = AlignedMap::new(file.as_raw_fd(), capacity as usize)
            .with_context(|| format!("mapping the arena of {capacity} bytes"))?;
        Ok(Arc::new(Arena {
            name: format!("/memfd:{name} (deleted)"),
            file,
            map,
            capacity,
            prefaulted: Default::default(),
            alloc: Mutex::new(AllocState {
                allocator: Allocator::with_max_allocs((capacity / PAGE) as u32, 1 << 20),
                used: 0,
                copies: 0,
            }),
        }))
    }

    /// Allocates the file's pages up front so writers copy into memory that
    /// already exists (fresh shmem pages cost ~10x a memcpy) and a lack of
    /// memory is found now rather than as a SIGBUS later; then maps them
    /// into this process (page tables built once, here, instead of a page
    /// fault per page the first time a transfer writes or sends a block:
    /// ~0.4 s per GiB on this VM in 4 KiB pages, see `transfer`). Then
    /// collapses them into 2 MiB folios (see `collapse`), which takes longer
    /// (~3 ms per 2 MiB here), and only then sets `is_prefaulted`.
    pub fn prefault(&self) -> Result<()> {
        let start = std::time::Instant::now();
        // SAFETY: fallocate on our own open descriptor, within the file's size.
        let rc = unsafe { libc::fallocate(self.file.as_raw_fd(), 0, 0, self.capacity as i64) };
        if rc != 0 {
            bail!(
                "allocating {} bytes for the arena: {}",
                self.capacity,
                std::io::Error::last_os_error()
            );
        }
        let mut at = 0;
        while at < self.capacity {
            let len = PREFAULT_STEP.min(self.capacity - at);
            self.map.populate(at as usize, len as usize);
            at += len;
        }
        tracing::debug!(
            bytes = self.capacity,
            ms = start.elapsed().as_millis() as u64,
            "arena allocated and mapped"
        );
        self.collapse();
        // Only now are views of every object as cheap as they will get.
        self.prefaulted
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Rebuilds the arena's page cache in 2 MiB folios, so that a view maps
    /// 2 MiB per page-table entry (see `hugemap`). Best effort: a range stays
    /// in 4 KiB pages when the kernel cannot or has no huge page free for it.
    /// Ranges refused for want of free huge pages (ENOMEM, EAGAIN: memory is
    /// fragmented, or a page was busy) are tried again after growing pauses,
    /// `COLLAPSE_RETRIES` times: the kernel compacts memory meanwhile.
    /// Objects already stored keep their bytes; their readers briefly wait.
    fn collapse(&self) {
        const COLLAPSE_RETRIES: u32 = 3;
        let start = std::time::Instant::now();
        // Only whole 2 MiB folios; a tail shorter than that stays in 4 KiB pages.
        let end = self.capacity / HUGE_PAGE * HUGE_PAGE;
        let mut pending: Vec<(u64, u64)> = (0..end)
            .step_by(PREFAULT_STEP as usize)
            .map(|at| (at, PREFAULT_STEP.min(end - at)))
            .collect();
        let mut collapsed = 0;
        for round in 0..=COLLAPSE_RETRIES {
            if round > 0 {
                if pending.is_empty() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_secs(1 << (round - 1)));
            }
            let mut refused = Vec::new();
            for (at, len) in pending {
                match self.map.collapse(at as usize, len as usize) {
                    Ok(()) => collapsed += len,
                    // EINVAL/ENOSYS: this kernel cannot (before 6.1, or shmem THP
                    // set to `deny`).
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                        tracing::debug!("arena stays in 4 KiB pages: MADV_COLLAPSE: {e}");
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(at, round, "arena range stays in 4 KiB pages for now: {e}");
                        refused.push((at, len));
                    }
                }
            }
            pending = refused;
        }
        tracing::debug!(
            bytes = collapsed,
            left_in_4k_pages = pending.iter().map(|r| r.1).sum::<u64>(),
            ms = start.elapsed().as_millis() as u64,
            "arena collapsed into 2 MiB pages"
        );
    }

    /// Whether `prefault` has finished, the collapse into 2 MiB pages
    /// included (tests and benchmarks wait for it).
    pub fn is_prefaulted(&self) -> bool {
        self.prefaulted.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The arena's name in `/proc/<pid>/maps` (it has no path).
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
    pub fn capacity(&self) -> u64 {
        self.capacity
    }
    pub fn used(&self) -> u64 {
        self.alloc.lock().unwrap().used
    }
    /// Bytes free and the largest contiguous free run.
    pub fn free(&self) -> (u64, u64) {
        let report = self.alloc.lock().unwrap().allocator.storage_report();
        (
            report.total_free_space as u64 * PAGE,
            report.largest_free_region as u64 * PAGE,
        )
    }

    /// Reserves a page-padded block for `len` bytes, or `None` when no free run
    /// is large enough. A block of `HUGE_OBJECT` bytes or more starts on a 2 MiB
    /// boundary when a large enough run is free.
    pub fn allocate(self: &Arc<Self>, len: u64) -> Option<Block> {
        let pages = (round_up_page(len.max(1)) / PAGE) as u32;
        let slack = (HUGE_PAGE / PAGE) as u32 - 1;
        let mut state = self.alloc.lock().unwrap();
        let (allocation, reserved_pages) = if len >= HUGE_OBJECT {
            match state.allocator.allocate(pages + slack) {
                Some(a) => (a, pages + slack),
                None => (state.allocator.allocate(pages)?, pages),
            }
        } else {
            (state.allocator.allocate(pages)?, pages)
        };
        // `used` counts the object's pages, not the alignment slack (which
        // `free` shows as fragmentation).
        state.used += pages as u64 * PAGE;
        drop(state);
        let start = allocation.offset as u64 * PAGE;
        let offset = if reserved_pages > pages {
            start.div_ceil(HUGE_PAGE) * HUGE_PAGE
        } else {
            start
        };
        debug_assert!(offset + round_up_page(len.max(1)) <= start + reserved_pages as u64 * PAGE);
        let block = Block {
            arena: self.clone(),
            allocation: Some(allocation),
            offset,
            len,
            segment: None,
        };
        // Zero the padding after the object so a view never shows bytes a
        // previous object left in its last page.
        let padded = round_up_page(len.max(1));
        // SAFETY: the block [offset, offset+padded) is ours alone and inside the mapping.
        unsafe {
            std::ptr::write_bytes(
                self.base().add((offset + len) as usize),
                0,
                (padded - len) as usize,
            )
        };
        Some(block)
    }

    /// Room for a segment copy of an object for a same-machine get: not a
    /// range of the arena (the object already holds one), but counted, with
    /// all such copies, against the arena's capacity; `None` when they
    /// would exceed it. The block must be given its segment
    /// (`Block::into_segment`) before its bytes are read.
    pub fn reserve_copy(self: &Arc<Self>, len: u64) -> Option<Block> {
        let size = round_up_page(len.max(1));
        let mut state = self.alloc.lock().unwrap();
        if state.copies + size > self.capacity {
            return None;
        }
        state.copies += size;
        Some(Block {
            arena: self.clone(),
            allocation: None,
            offset: 0,
            len,
            segment: None,
        })
    }

    /// Bytes held by segment copies for same-machine gets.
    pub fn copies(&self) -> u64 {
        self.alloc.lock().unwrap().copies
    }

    fn base(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }
}

impl Block {
    /// This block's bytes in `segment` instead of its arena range.
    pub fn into_segment(mut self, segment: Segment) -> Block {
        self.segment = Some(segment);
        self
    }

    /// Whether the block holds a range of the arena (a segment copy for a
    /// get holds none: it is counted apart, see `Arena::reserve_copy`).
    pub fn in_arena(&self) -> bool {
        self.allocation.is_some()
    }

    /// The segment holding the bytes, if not the arena.
    pub fn segment(&self) -> Option<&Segment> {
        self.segment.as_ref()
    }

    /// The file holding the bytes (the arena, or the segment), at `offset`.
    pub fn fd(&self) -> RawFd {
        match &self.segment {
            Some(s) => s.raw_fd(),
            None => self.arena.fd(),
        }
    }

    /// Where the bytes start in `fd` (2 MiB-aligned for large objects).
    pub fn offset(&self) -> u64 {
        match self.segment {
            Some(_) => 0,
            None => self.offset,
        }
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn arena(&self) -> &Arc<Arena> {
        &self.arena
    }
    pub fn as_ptr(&self) -> *const u8 {
        if let Some(segment) = &self.segment {
            return segment.as_ptr();
        }
        // SAFETY: offset is inside the mapping (checked at allocation).
        unsafe { self.arena.base().add(self.offset as usize) }
    }
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the block is mapped for the arena's lifetime, which we hold;
        // sealed objects are never written again.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.len as usize) }
    }
    /// Mutable access while the object is being filled, before it is sealed.
    ///
    /// # Safety
    /// Only the creator of an unsealed object may call this, once.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice(&self) -> &mut [u8] {
        // A segment is written by its driver and mapped read-only here.
        assert!(
            self.segment.is_none() && self.allocation.is_some(),
            "a segment is never written in place"
        );
        // SAFETY: the caller is the block's only writer (see above).
        unsafe { std::slice::from_raw_parts_mut(self.as_ptr() as *mut u8, self.len as usize) }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        let mut state = self.arena.alloc.lock().unwrap();
        match self.allocation {
            Some(allocation) => {
                state.used -= round_up_page(self.len.max(1));
                state.allocator.free(allocation);
            }
            None => state.copies -= round_up_page(self.len.max(1)),
        }
    }
}

/// Memory the machine can still give (`MemAvailable` of `/proc/meminfo`),
/// or `None` when it cannot be read.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line
        .trim_start_matches("MemAvailable:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb << 10)
}

/// Free bytes of the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: statvfs writes into the zeroed struct we own.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        bail!(
            "statvfs {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_blocks_start_on_huge_page_boundaries() {
        let arena = Arena::create("test.arena", 64 << 20).unwrap();
        arena.prefault().unwrap();
        // A small block first, so the next free offset is not 2 MiB-aligned.
        let small = arena.allocate(5000).unwrap();
        assert_eq!(small.offset() % PAGE, 0);
        let large = arena.allocate(HUGE_OBJECT).unwrap();
        assert_eq!(
            large.offset() % HUGE_PAGE,
            0,
            "offset {:#x}",
            large.offset()
        );
        assert!(large.offset() >= small.offset() + PAGE);
        // `used` counts the objects' pages, not the alignment slack.
        assert_eq!(arena.used(), 2 * PAGE + HUGE_OBJECT);
        drop(large);
        drop(small);
        assert_eq!(arena.used(), 0);
    }

    #[test]
    fn get_copies_are_counted_apart_and_bounded_by_the_capacity() {
        let arena = Arena::create("test.arena", 4 * PAGE).unwrap();
        let object = arena.allocate(3 * PAGE).unwrap();
        // A copy takes no arena range: the object keeps its block.
        let first = arena.reserve_copy(3 * PAGE).unwrap();
        assert_eq!((arena.used(), arena.copies()), (3 * PAGE, 3 * PAGE));
        // Copies together stay within the capacity.
        assert!(arena.reserve_copy(2 * PAGE).is_none());
        let second = arena.reserve_copy(PAGE - 1).unwrap();
        assert_eq!(arena.copies(), 4 * PAGE);
        drop((first, second));
        assert_eq!(arena.copies(), 0);
        drop(object);
        assert_eq!(arena.used(), 0);
    }

    #[test]
    fn a_large_block_fits_unaligned_when_no_aligned_run_is_free() {
        let arena = Arena::create("test.arena", HUGE_OBJECT + PAGE).unwrap();
        let _small = arena.allocate(PAGE).unwrap();
        let large = arena
            .allocate(HUGE_OBJECT)
            .expect("exactly enough room is left");
        assert_eq!(large.offset(), PAGE);
        assert_eq!(arena.used(), arena.capacity());
    }
}
