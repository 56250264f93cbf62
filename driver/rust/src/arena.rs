//! The driver's mapping of a node's arena, when both run on one machine:
//! large objects are written and read in place instead of over the socket.

use std::fs::OpenOptions;

use memmap2::MmapRaw;

pub struct ArenaMap {
    map: MmapRaw,
}

impl ArenaMap {
    /// Maps the node's arena file, or `None` when it is not reachable (another machine).
    pub fn open(path: &str, size: u64) -> Option<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path).ok()?;
        if file.metadata().ok()?.len() < size {
            return None;
        }
        let map = MmapRaw::map_raw(&file).ok()?;
        Some(ArenaMap { map })
    }

    /// The bytes of a sealed object.
    ///
    /// # Safety
    /// The node must keep the block pinned for as long as the slice lives.
    pub unsafe fn slice(&self, offset: u64, len: u64) -> &[u8] {
        assert!(
            offset + len <= self.map.len() as u64,
            "arena slice out of range"
        );
        // SAFETY: in range (asserted); the caller guarantees the block stays pinned
        // and sealed objects are never written.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(offset as usize), len as usize) }
    }

    /// Copies `data` into a block the node reserved for this driver.
    pub fn write(&self, offset: u64, data: &[u8]) {
        assert!(
            offset + data.len() as u64 <= self.map.len() as u64,
            "arena write out of range"
        );
        // SAFETY: the node reserved [offset, offset+len) for this driver's
        // unsealed object; nobody else reads or writes it until we seal it.
        unsafe {
            let dst = self.map.as_mut_ptr().add(offset as usize);
            // Fault the destination pages in one call instead of one fault per page.
            libc::madvise(
                dst as *mut libc::c_void,
                data.len(),
                23, /* MADV_POPULATE_WRITE */
            );
            std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len());
        }
    }
}
