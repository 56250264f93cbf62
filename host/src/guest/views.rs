//! Zero-copy views: an object's arena pages mapped copy-on-write over a buffer
//! in a guest's linear memory (see `docs/architecture.md#zero-copy-views`).
//!
//! Every mapping is recorded and replaced by fresh anonymous memory before the
//! instance's memory can be reused: explicitly in `release`/`undo_all`, and in
//! `Drop` as a fallback (a `Store` drops its data before freeing instances).

use std::sync::Arc;

use super::buffer::GuestBuffer;
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::store::{round_up_page, Data, PAGE};

/// Views are mapped at 64 KiB (wasm page) boundaries.
pub const VIEW_ALIGN: u64 = 64 * 1024;

struct Mapping {
    addr: usize,
    len: usize,
    /// Pins the object's bytes while mapped (no spill, no reuse of the block).
    _data: Arc<Data>,
}

#[derive(Default)]
pub struct Views {
    mappings: Vec<Mapping>,
}

impl Views {
    /// Maps `data` over the guest buffer `buf`. Small (inline) objects are
    /// copied instead: a page of copying costs less than a mapping.
    ///
    /// `image_end` is where the module's data segments end: the pooling
    /// allocator keeps the memory image mapped below it, so no view may go there.
    pub fn map(&mut self, data: Arc<Data>, buf: GuestBuffer, image_end: u64) -> ReefResult<()> {
        let size = data.len();
        let needed = size.div_ceil(VIEW_ALIGN) * VIEW_ALIGN;
        let addr = buf.addr;
        let view_error = |m: String| Err(ReefError::new(ErrorCode::ViewError, m));
        if !(buf.offset as u64).is_multiple_of(VIEW_ALIGN) || !(addr as u64).is_multiple_of(PAGE) {
            return view_error(format!(
                "view buffer at offset {:#x} is not aligned to {VIEW_ALIGN} bytes",
                buf.offset
            ));
        }
        if (buf.len as u64) < needed {
            return view_error(format!(
                "view buffer of {} bytes is too small for an object of {size} bytes (needs {needed})",
                buf.len
            ));
        }
        if (buf.offset as u64) < image_end {
            return view_error(format!(
                "view buffer at offset {:#x} overlaps the module's data segments (which end at {image_end:#x})",
                buf.offset
            ));
        }
        if self
            .mappings
            .iter()
            .any(|m| addr < m.addr + m.len && m.addr < addr + buf.len)
        {
            return view_error("view buffer overlaps a view that is still mapped".into());
        }
        match &*data {
            Data::Inline(bytes) => {
                // SAFETY: [addr, addr+buf.len) is guest memory that wasmtime
                // bounds-checked for this call, at least `size` bytes long
                // (checked above), and no Rust reference to it is alive.
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len())
                };
                Ok(())
            }
            Data::Arena(block) => {
                let len = round_up_page(block.len()) as usize;
                // SAFETY: [addr, addr+len) lies inside the guest's linear memory
                // (wasmtime checked the list bounds, we checked the length) and
                // is page-aligned. MAP_PRIVATE|PROT_WRITE: guest writes copy the
                // page, the arena never changes, and host code writing guest
                // memory (memory.fill, WASI) cannot fault.
                let rc = unsafe {
                    libc::mmap(
                        addr as *mut libc::c_void,
                        len,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_FIXED,
                        block.fd(),
                        block.offset() as libc::off_t,
                    )
                };
                if rc == libc::MAP_FAILED {
                    return Err(ReefError::internal(format!(
                        "mapping view: {}",
                        std::io::Error::last_os_error()
                    )));
                }
                self.mappings.push(Mapping {
                    addr,
                    len,
                    _data: data,
                });
                Ok(())
            }
        }
    }

    /// Undoes the mapping that starts at `addr`, if any.
    pub fn release(&mut self, addr: usize) {
        if let Some(i) = self.mappings.iter().position(|m| m.addr == addr) {
            let m = self.mappings.swap_remove(i);
            unmap(&m);
        }
    }

    pub fn undo_all(&mut self) {
        for m in self.mappings.drain(..) {
            unmap(&m);
        }
    }

    pub fn len(&self) -> usize {
        self.mappings.len()
    }
    pub fn is_empty(&self) -> bool {
        self.mappings.is_empty()
    }
}

fn unmap(m: &Mapping) {
    debug_assert_eq!(m.addr % PAGE as usize, 0);
    // SAFETY: we mapped [addr, addr+len) inside guest memory; replacing it with
    // fresh anonymous pages restores what the pooling allocator expects (an
    // anonymous region it can reset with MADV_DONTNEED) and drops every page
    // of the object.
    let rc = unsafe {
        libc::mmap(
            m.addr as *mut libc::c_void,
            m.len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if rc == libc::MAP_FAILED {
        // Leaving the object mapped would let the slot's next instance see it.
        panic!(
            "cannot undo a guest view mapping: {}",
            std::io::Error::last_os_error()
        );
    }
}

impl Drop for Views {
    fn drop(&mut self) {
        self.undo_all();
    }
}
