//! The arena's own mapping, at a 2 MiB-aligned address, and the collapse of its
//! page cache into 2 MiB folios.
//!
//! Shared memory (the arena is a memfd) comes in 4 KiB folios unless the
//! system's `shmem_enabled` asks for huge pages, which it usually does not.
//! A view of 4 KiB folios costs the kernel a page-table entry and a
//! reference per 4 KiB page, once when the guest faults it in and again when
//! the view is undone: most of a task summing a 64 MiB view, on a VM. A
//! 2 MiB folio is mapped by one page-middle-directory entry instead, when the
//! view's address and the object's offset in the file agree modulo 2 MiB (see
//! `Arena::allocate` and the guest SDKs' view buffers). `MADV_COLLAPSE`
//! builds such folios whatever `shmem_enabled` says (unless it is `deny`).

use std::io;

/// Host page size; every arena block and segment is a whole number of pages.
pub const PAGE: u64 = 4096;

/// `n` rounded up to whole pages.
pub fn round_up_page(n: u64) -> u64 {
    n.div_ceil(PAGE) * PAGE
}

/// The size of a PMD-mapped huge page on x86_64 and aarch64 (4 KiB base pages).
pub const HUGE_PAGE: u64 = 2 << 20;

/// `MADV_COLLAPSE` (Linux 6.1), not yet in every libc crate version.
const MADV_COLLAPSE: libc::c_int = 25;

/// A shared mapping (read-write, or read-only) of a whole file at a
/// `HUGE_PAGE`-aligned address.
pub struct AlignedMap {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory owned by this value; synchronising
// access to its bytes is the arena's job.
unsafe impl Send for AlignedMap {}
// SAFETY: as above.
unsafe impl Sync for AlignedMap {}

impl AlignedMap {
    /// Maps `len` bytes of `fd` from offset 0, read-write. `len` must be a
    /// multiple of the page size.
    pub fn new(fd: libc::c_int, len: usize) -> io::Result<Self> {
        Self::with_prot(fd, len, libc::PROT_READ | libc::PROT_WRITE)
    }

    /// `new`, read-only (a sealed segment, see `segment`).
    pub fn read_only(fd: libc::c_int, len: usize) -> io::Result<Self> {
        Self::with_prot(fd, len, libc::PROT_READ)
    }

    fn with_prot(fd: libc::c_int, len: usize, prot: libc::c_int) -> io::Result<Self> {
        let huge = HUGE_PAGE as usize;
        let span = len + huge;
        // SAFETY: a fresh, inaccessible anonymous reservation; nothing refers to it.
        let reserve = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                span,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if reserve == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let start = reserve as usize;
        let aligned = start.next_multiple_of(huge);
        // SAFETY: [aligned, aligned+len) lies inside our reservation, which no one else uses.
        let map = unsafe {
            libc::mmap(
                aligned as *mut libc::c_void,
                len,
                prot,
                libc::MAP_SHARED | libc::MAP_FIXED,
                fd,
                0,
            )
        };
        let err = io::Error::last_os_error();
        // SAFETY: the head and tail of our reservation around the mapping (possibly
        // empty ranges, which munmap ignores); on failure, the whole reservation.
        unsafe {
            if map == libc::MAP_FAILED {
                libc::munmap(reserve, span);
                return Err(err);
            }
            libc::munmap(reserve, aligned - start);
            libc::munmap(
                (aligned + len) as *mut libc::c_void,
                start + span - (aligned + len),
            );
        }
        Ok(AlignedMap {
            ptr: aligned as *mut u8,
            len,
        })
    }

    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Collapses `[offset, offset+len)` (`HUGE_PAGE`-aligned) of the file's page
    /// cache into 2 MiB folios. The contents do not change; concurrent readers
    /// and writers of those pages briefly wait. An error means the kernel
    /// cannot (before 6.1, or `shmem_enabled=deny`) or had no huge page free.
    pub fn collapse(&self, offset: usize, len: usize) -> io::Result<()> {
        debug_assert!(offset.is_multiple_of(HUGE_PAGE as usize) && offset + len <= self.len);
        // SAFETY: a range inside our mapping; MADV_COLLAPSE keeps every byte.
        let rc = unsafe {
            libc::madvise(
                self.ptr.add(offset) as *mut libc::c_void,
                len,
                MADV_COLLAPSE,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Maps `[offset, offset+len)` into this process's page tables, allocating
    /// what is missing, without changing any byte. Best effort: a kernel
    /// without `MADV_POPULATE_WRITE` (< 5.14) takes the faults later.
    pub fn populate(&self, offset: usize, len: usize) {
        // SAFETY: a range inside our mapping; populating changes no contents.
        unsafe {
            libc::madvise(
                self.ptr.add(offset) as *mut libc::c_void,
                len,
                libc::MADV_POPULATE_WRITE,
            )
        };
    }
}

impl Drop for AlignedMap {
    fn drop(&mut self) {
        // SAFETY: our own mapping; every Block (which borrows it) holds the Arc<Arena>
        // (or the segment) that owns us, so none is alive.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}
