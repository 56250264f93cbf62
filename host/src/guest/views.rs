//! Zero-copy views: an object's arena pages mapped copy-on-write over a buffer
//! in a guest's linear memory (see `../shared/reference/zero-copy.md`).
//!
//! Every mapping is recorded and replaced by fresh anonymous memory before the
//! instance's memory can be reused: explicitly in `release`/`undo_all`, and in
//! `Drop` as a fallback (a `Store` drops its data before freeing instances).

use std::sync::Arc;

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
    /// Maps `data` over the guest buffer `buf` (a slice of guest memory).
    /// Small (inline) objects are copied instead: a page of copying costs
    /// less than a mapping.
    pub fn map(&mut self, data: Arc<Data>, buf: &[u8]) -> ReefResult<()> {
        let addr = buf.as_ptr() as usize;
        let size = data.len();
        // The contract asks guests for 64 KiB alignment (portable to hosts
        // with large pages); what mmap needs here is a host page.
        let needed = round_up_page(size);
        if addr as u64 % PAGE != 0 {
            return Err(ReefError::new(
                ErrorCode::ViewError,
                format!("view buffer is not aligned to {VIEW_ALIGN} bytes"),
            ));
        }
        if (buf.len() as u64) < needed {
            return Err(ReefError::new(
                ErrorCode::ViewError,
                format!(
                    "view buffer of {} bytes is too small for an object of {size} bytes \
                     (needs {needed})",
                    buf.len()
                ),
            ));
        }
        if self
            .mappings
            .iter()
            .any(|m| addr < m.addr + m.len && m.addr < addr + buf.len())
        {
            return Err(ReefError::new(
                ErrorCode::ViewError,
                "view buffer overlaps a view that is still mapped",
            ));
        }
        match &*data {
            Data::Inline(bytes) => {
                // SAFETY: `buf` is guest memory borrowed from the store for this
                // call and at least `size` bytes long (checked above).
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
                        block.arena().fd(),
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
