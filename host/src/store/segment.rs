//! Segments: one object in a memfd of its own, for drivers on the node's
//! machine (see `docs/architecture.md#same-machine-drivers`).
//!
//! A driver's put gets a fresh segment: the node sends its descriptor to
//! that driver's session only (`rpc::fds`), the driver maps it, writes and
//! unmaps, and the node then seals it (`F_SEAL_WRITE | F_SEAL_SHRINK |
//! F_SEAL_GROW | F_SEAL_SEAL`): from then on nobody, the node included, can
//! change a byte, and a descriptor sent to a reader can only be mapped
//! read-only. Fresh memfd pages are zeroed by the kernel, so a segment never
//! shows bytes of an object freed before it.
//!
//! The node maps a segment only once sealed, read-only (a writable shared
//! mapping anywhere makes the seal fail with `EBUSY`).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::OnceLock;

use rustix::fs::{MemfdFlags, SealFlags};

use super::hugemap::{round_up_page, AlignedMap, HUGE_PAGE};
use crate::error::{ErrorCode, ReefError, ReefResult};

/// Every seal a sealed segment carries: no writes, no size change, no
/// seal added or removed.
const SEALS: SealFlags = SealFlags::WRITE
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW)
    .union(SealFlags::SEAL);

pub struct Segment {
    file: File,
    /// The object's bytes (the file is page-rounded).
    len: u64,
    /// The node's read-only mapping, made when sealed.
    map: OnceLock<AlignedMap>,
}

impl Segment {
    /// A fresh, zeroed, writable segment for an object of `len` bytes. A
    /// driver writes it in 4 KiB pages (building 2 MiB folios before it is
    /// written would add the collapses to the put: an estimated ~10 ms per
    /// 64 MiB, not measured in a put); the node's own copies
    /// are filled in 2 MiB folios (`fill`).
    pub fn create(len: u64) -> ReefResult<Segment> {
        let size = round_up_page(len.max(1));
        let internal = |what: &str, e: std::io::Error| {
            ReefError::internal(format!("{what} a segment of {size} bytes: {e}"))
        };
        let fd = rustix::fs::memfd_create(
            "reef-object",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )
        .map_err(|e| internal("creating", e.into()))?;
        let file = File::from(fd);
        file.set_len(size).map_err(|e| internal("sizing", e))?;
        Ok(Segment {
            file,
            len,
            map: OnceLock::new(),
        })
    }

    /// Fills an unsealed segment with `bytes` (the node's copy of an arena
    /// object), in 2 MiB folios where the kernel can make them: a view of
    /// the segment then maps 2 MiB per page-table entry, as a view of the
    /// arena does (see `hugemap`). A fresh instance viewing 64 MiB of 4 KiB
    /// pages spends ~10 ms building and tearing down page tables, ~0.3 ms in
    /// 2 MiB folios.
    ///
    /// For each whole 2 MiB of the file: one byte is written (`MADV_COLLAPSE`
    /// refuses a range without any page), the range is collapsed into one
    /// folio (which allocates and zeroes the rest), then the bytes are
    /// copied in. That costs less than writing 4 KiB pages (~15 ms per
    /// 64 MiB against ~23 ms for `pwrite`, a C program on this VM). A range the kernel cannot
    /// collapse (before Linux 6.1, `shmem_enabled=deny`, no huge page free)
    /// is simply written in 4 KiB pages. The writable mapping is gone before
    /// this returns, so the segment can then be sealed.
    pub fn fill(&self, bytes: &[u8]) -> ReefResult<()> {
        debug_assert_eq!(bytes.len() as u64, self.len);
        let size = round_up_page(self.len.max(1)) as usize;
        let map = AlignedMap::new(self.file.as_raw_fd(), size)
            .map_err(|e| ReefError::internal(format!("mapping a segment to fill it: {e}")))?;
        let huge = HUGE_PAGE as usize;
        let mut collapse = true;
        for (i, chunk) in bytes.chunks(huge).enumerate() {
            let at = i * huge;
            if collapse && chunk.len() == huge {
                // SAFETY: `at` is inside our fresh mapping of this unsealed
                // segment, which nobody else maps or writes yet.
                unsafe { map.as_mut_ptr().add(at).write(0) };
                if let Err(e) = map.collapse(at, huge) {
                    // Not possible on this kernel at all: stop asking.
                    collapse = !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS));
                }
            }
            // SAFETY: as above; `chunk` is the caller's memory, not ours.
            unsafe {
                std::ptr::copy_nonoverlapping(chunk.as_ptr(), map.as_mut_ptr().add(at), chunk.len())
            };
        }
        Ok(())
    }

    /// Seals the segment and maps it read-only. Fails (typed, and the
    /// segment stays unsealed) while anyone maps it writable, or when its
    /// writer changed its size.
    pub fn seal(&self) -> ReefResult<()> {
        if self.map.get().is_some() {
            return Ok(());
        }
        let size = round_up_page(self.len.max(1));
        match rustix::fs::fcntl_add_seals(&self.file, SEALS) {
            Ok(()) => {}
            Err(rustix::io::Errno::BUSY) => {
                return Err(ReefError::new(
                    ErrorCode::BadArgument,
                    "the object's buffer is still mapped writable (unmap it before sealing)",
                ))
            }
            Err(e) => return Err(ReefError::internal(format!("sealing a segment: {e}"))),
        }
        let actual = self
            .file
            .metadata()
            .map_err(|e| ReefError::internal(format!("reading a segment's size: {e}")))?
            .len();
        if actual != size {
            return Err(ReefError::new(
                ErrorCode::BadArgument,
                format!("the object's buffer was resized from {size} to {actual} bytes"),
            ));
        }
        let map = AlignedMap::read_only(self.file.as_raw_fd(), size as usize)
            .map_err(|e| ReefError::internal(format!("mapping a sealed segment: {e}")))?;
        let _ = self.map.set(map);
        Ok(())
    }

    pub fn is_sealed(&self) -> bool {
        self.map.get().is_some()
    }

    /// The object's bytes; the segment must be sealed.
    pub fn as_ptr(&self) -> *const u8 {
        self.map
            .get()
            .expect("a segment's bytes are read only once it is sealed")
            .as_mut_ptr()
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}
