//! Streamed puts: arena buffers that remote drivers fill over raw push
//! connections (`wire::Kind::Push`), one contiguous range per request, in
//! parallel when the driver cuts the object into stripes.
//!
//! A driver's session creates the buffer (`CreateBuffer { stream }`: the
//! declared size is allocated up front, so the store's limits are checked
//! before a byte moves), pushes send ranges straight from the socket into
//! the block (no copy but the kernel's), and `Seal` turns the block into the
//! object once every byte arrived. A range past the declared size, or
//! overlapping one already claimed, is refused. Any push that fails (the
//! connection ends or stalls mid-range, a refused range) **discards** the
//! whole buffer: the block is freed as soon as no push writes it any more,
//! so a driver that stops mid-stream leaves no arena space behind.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::store::{Block, ObjectId};
use reef_core::Caller;

/// The buffers being pushed, by object id. One per node.
#[derive(Default)]
pub struct Uploads {
    map: Mutex<HashMap<ObjectId, Arc<Upload>>>,
}

struct Upload {
    /// The driver credential that began it: only pushes with the same
    /// kind of caller (the same tenant, or the admin) may fill it.
    owner: Caller,
    /// The block's bytes; valid while `state.block` is `Some`, which it stays
    /// while any claim is active.
    ptr: *mut u8,
    len: u64,
    state: Mutex<State>,
}

// SAFETY: `ptr` points into the block the upload owns (in `state`); writers
// use disjoint ranges (claims never overlap) and the block is freed only once
// no claim is active.
unsafe impl Send for Upload {}
// SAFETY: as above.
unsafe impl Sync for Upload {}

#[derive(Default)]
struct State {
    block: Option<Block>,
    /// Ranges claimed by pushes (active or complete).
    claims: Vec<(u64, u64)>,
    /// Pushes writing now.
    active: u32,
    /// Bytes of complete pushes.
    received: u64,
    discarded: bool,
}

/// One push's exclusive right to write `[start, end)` of an upload. Dropped
/// without [`Claim::complete`], it discards the upload.
pub struct Claim {
    upload: Arc<Upload>,
    uploads: Arc<Uploads>,
    id: ObjectId,
    start: u64,
    end: u64,
    done: bool,
}

impl Uploads {
    /// Registers `block` as the buffer of object `id`, to be pushed by
    /// `owner`'s drivers.
    pub fn begin(&self, id: ObjectId, block: Block, owner: Caller) -> ReefResult<()> {
        let len = block.len();
        // SAFETY: the block is new; this upload is its only writer (through
        // claims on disjoint ranges) until it is sealed.
        let ptr = unsafe { block.as_mut_slice() }.as_mut_ptr();
        let upload = Arc::new(Upload {
            owner,
            ptr,
            len,
            state: Mutex::new(State {
                block: Some(block),
                ..State::default()
            }),
        });
        let mut map = self.map.lock().unwrap();
        if map.contains_key(&id) {
            return Err(ReefError::new(
                ErrorCode::BadArgument,
                format!("object {id:#x} is already being put"),
            ));
        }
        map.insert(id, upload);
        Ok(())
    }

    /// Claims `[start, end)` of object `id`'s buffer for one push; refused
    /// (and the upload discarded) when the range is past the declared size
    /// or overlaps another push's. Another caller's upload is refused as a
    /// missing one is, and left alone.
    pub fn claim(
        self: &Arc<Self>,
        id: ObjectId,
        caller: &Caller,
        start: u64,
        end: u64,
    ) -> ReefResult<Claim> {
        let upload = self
            .map
            .lock()
            .unwrap()
            .get(&id)
            .filter(|upload| upload.owner == *caller)
            .cloned()
            .ok_or_else(|| {
                ReefError::new(
                    ErrorCode::UnknownObject,
                    format!("no streamed put of object {id:#x} is in progress"),
                )
            })?;
        let refused = {
            let mut state = upload.state.lock().unwrap();
            let refused = if start > end || end > upload.len {
                Some(format!(
                    "a push of bytes [{start}, {end}) of object {id:#x} exceeds its declared \
                     size of {} bytes",
                    upload.len
                ))
            } else if state.discarded {
                Some(format!("the put of object {id:#x} was discarded"))
            } else if let Some((s, e)) = state
                .claims
                .iter()
                .find(|(s, e)| start < *e && *s < end)
                .copied()
            {
                Some(format!(
                    "a push of bytes [{start}, {end}) of object {id:#x} overlaps the push of \
                     [{s}, {e})"
                ))
            } else {
                None
            };
            if refused.is_none() {
                state.claims.push((start, end));
                state.active += 1;
            }
            refused
        };
        if let Some(message) = refused {
            self.discard(id);
            return Err(ReefError::new(ErrorCode::BadArgument, message));
        }
        Ok(Claim {
            upload,
            uploads: self.clone(),
            id,
            start,
            end,
            done: false,
        })
    }

    /// The buffer of object `id`, complete, taken out of the uploads (to be
    /// sealed as the object).
    pub fn finish(&self, id: ObjectId) -> ReefResult<Block> {
        let mut map = self.map.lock().unwrap();
        let upload = map.get(&id).cloned().ok_or_else(|| {
            ReefError::new(
                ErrorCode::BadArgument,
                format!(
                    "no streamed put of object {id:#x} is in progress (never created, or \
                     discarded after a failed push)"
                ),
            )
        })?;
        let mut state = upload.state.lock().unwrap();
        if state.active > 0 || state.received < upload.len {
            return Err(ReefError::new(
                ErrorCode::BadArgument,
                format!(
                    "object {id:#x} cannot be sealed: {} of its {} bytes arrived ({} pushes \
                     still writing)",
                    state.received, upload.len, state.active
                ),
            ));
        }
        map.remove(&id);
        state
            .block
            .take()
            .ok_or_else(|| ReefError::internal(format!("object {id:#x}: the buffer is gone")))
    }

    /// Drops object `id`'s upload: its block is freed now, or by the last
    /// push still writing it.
    pub fn discard(&self, id: ObjectId) {
        let Some(upload) = self.map.lock().unwrap().remove(&id) else {
            return;
        };
        let block = {
            let mut state = upload.state.lock().unwrap();
            state.discarded = true;
            if state.active == 0 {
                state.block.take()
            } else {
                None
            }
        };
        if block.is_some() {
            tracing::debug!(id, "streamed put discarded");
        }
    }

    /// Uploads in progress (for tests).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Claim {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The object's declared size.
    pub fn size(&self) -> u64 {
        self.upload.len
    }

    /// The claimed bytes `[start + from, start + to)`, writable.
    pub fn range_mut(&mut self, from: u64, to: u64) -> &mut [u8] {
        assert!(
            from <= to && to <= self.len(),
            "{from}..{to} of {}",
            self.len()
        );
        // SAFETY: in bounds of the block (claims are within its length); this
        // claim alone writes its range (claims never overlap); the block
        // lives while the claim is active (`discard` and `finish` leave it
        // to the last active claim); `&mut self` makes the slice unique.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.upload.ptr.add((self.start + from) as usize),
                (to - from) as usize,
            )
        }
    }

    /// Every claimed byte was written.
    pub fn complete(mut self) {
        self.done = true;
        let mut state = self.upload.state.lock().unwrap();
        state.active -= 1;
        state.received += self.end - self.start;
        if state.discarded && state.active == 0 {
            state.block.take();
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        {
            let mut state = self.upload.state.lock().unwrap();
            state.active -= 1;
            state.discarded = true;
            if state.active == 0 {
                state.block.take();
            }
        }
        tracing::debug!(
            id = self.id,
            start = self.start,
            end = self.end,
            "a push ended early: the put is discarded"
        );
        self.uploads.discard(self.id);
    }
}
