//! Escape hatches: the view imports without the safety net of [`crate::View`].
//!
//! Meant for tests of the host's checks (misaligned or undersized buffers) and for
//! callers that manage view buffers themselves.

use crate::abi::{self, RetArea};
use crate::error::Result;
use crate::imports;

/// Alignment the host requires of a view buffer (64 KiB).
pub const VIEW_ALIGN: usize = 65536;

/// Objects at least this large (8 MiB) start on a 2 MiB boundary of the node's store.
pub const HUGE_VIEW: u64 = 8 << 20;

/// Alignment of view buffers for objects of [`HUGE_VIEW`] bytes or more (2 MiB): when the
/// buffer and the object agree modulo 2 MiB, the host's kernel maps the view in 2 MiB
/// pages instead of 4 KiB ones (one page-table entry instead of 512, on every fault and
/// again when the view is released).
pub const HUGE_VIEW_ALIGN: usize = 2 << 20;

/// The alignment [`crate::View`] gives the buffer of an object of `size` bytes.
pub fn view_align(size: u64) -> usize {
    if size >= HUGE_VIEW {
        HUGE_VIEW_ALIGN
    } else {
        VIEW_ALIGN
    }
}

/// `len` rounded up to a multiple of [`VIEW_ALIGN`], or `None` on overflow.
pub fn view_capacity(len: u64) -> Option<usize> {
    let align = VIEW_ALIGN as u64;
    let rounded = len.checked_add(align - 1)? / align * align;
    usize::try_from(rounded).ok()
}

/// Calls `map-view` as is: asks the host to map object `id` over `len` bytes at `ptr`.
/// Returns the object's size.
///
/// # Safety
/// `ptr..ptr+len` must be memory this caller owns and that nothing else reads or writes
/// while it is mapped: on success its contents are replaced by the object's pages.
pub unsafe fn map_view(id: u64, ptr: *mut u8, len: usize) -> Result<u64> {
    let mut ret = RetArea::new();
    // SAFETY: the caller owns the buffer; `ret` is suitably sized.
    unsafe {
        imports::map_view(id as i64, ptr, len, ret.as_mut_ptr());
        abi::lift_result_u64(&ret)
    }
}

/// Calls `release-view`: replaces the pages at `ptr..ptr+len` with fresh zeroed ones.
///
/// # Safety
/// No reference into the buffer may be alive; its contents become zero.
pub unsafe fn release_view(ptr: *mut u8, len: usize) {
    // SAFETY: forwarded contract.
    unsafe { imports::release_view(ptr, len) }
}

/// Sends a panic message to the host (the SDK's panic hook does this for you).
pub fn report_panic(message: &str) {
    // SAFETY: `message` is valid for the call.
    unsafe { imports::report_panic(message.as_ptr(), message.len()) }
}
