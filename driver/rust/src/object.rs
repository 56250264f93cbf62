//! Typed handles to objects and the bytes read from them.

use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;
use reef_proto as pb;
use reef_proto::client_op::Op;

use crate::connection::Connection;

struct RefInner {
    id: u64,
    /// The session it was made (or first named) in.
    conn: Arc<Connection>,
    /// Made by that session (a put, a task's or call's result): it is
    /// released, so lost, when that session ends.
    owned: bool,
}

impl Drop for RefInner {
    fn drop(&mut self) {
        // The node frees the object once no handle, pending task or view refers to it.
        let _ = self
            .conn
            .send(Op::Release(pb::Release { ids: vec![self.id] }));
    }
}

/// A handle to an object in the cluster: a put value or the (possibly
/// pending) result of a task or actor call. Cheap to clone; the object is
/// released when the last clone is dropped.
#[derive(Clone)]
pub struct ObjectRef {
    inner: Arc<RefInner>,
}

impl ObjectRef {
    /// An object session `conn` made.
    pub(crate) fn new(id: u64, conn: Arc<Connection>) -> Self {
        ObjectRef {
            inner: Arc::new(RefInner {
                id,
                conn,
                owned: true,
            }),
        }
    }

    /// An object made elsewhere, named by its id.
    pub(crate) fn foreign(id: u64, conn: Arc<Connection>) -> Self {
        ObjectRef {
            inner: Arc::new(RefInner {
                id,
                conn,
                owned: false,
            }),
        }
    }

    /// `OBJECT_LOST` when this object was made by a session other than
    /// `live` that ended (an earlier session of this driver, or another
    /// driver's): the node released that session's objects. A live other
    /// session's object (another `Cluster` of this process) is asked for as
    /// usual.
    pub(crate) fn lost_in(&self, live: &Arc<Connection>) -> Option<crate::Error> {
        let inner = &self.inner;
        if !inner.owned || Arc::ptr_eq(&inner.conn, live) {
            return None;
        }
        let cause = inner.conn.ended()?.message;
        Some(crate::Error::new(
            crate::ErrorCode::ObjectLost,
            format!(
                "object {:#x} is lost: it was made in an earlier session of this driver, \
                 which ended ({cause}); the node releases a session's objects when it ends, \
                 and this driver now runs in a new session (or it is another driver's, \
                 whose session ended)",
                inner.id
            ),
        ))
    }
    pub fn id(&self) -> u64 {
        self.inner.id
    }
}

impl std::fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjectRef({:#x})", self.inner.id)
    }
}

/// The bytes of an object. On the node's machine a large one is read in
/// place from a read-only mapping of that object's segment (zero-copy; the
/// node keeps the object pinned until this is dropped); otherwise they
/// arrived over the socket.
pub struct ObjectData {
    repr: Repr,
}

enum Repr {
    Owned(Bytes),
    Segment {
        id: u64,
        map: crate::segments::Mapping,
        conn: Arc<Connection>,
    },
}

impl ObjectData {
    pub(crate) fn owned(b: Bytes) -> Self {
        ObjectData {
            repr: Repr::Owned(b),
        }
    }
    pub(crate) fn segment(id: u64, map: crate::segments::Mapping, conn: Arc<Connection>) -> Self {
        ObjectData {
            repr: Repr::Segment { id, map, conn },
        }
    }
    /// Whether the bytes are read in place from the object's shared memory.
    pub fn is_zero_copy(&self) -> bool {
        matches!(self.repr, Repr::Segment { .. })
    }
    /// The bytes as little-endian `f64`s (zero-copy when aligned, which segments are).
    pub fn as_f64s(&self) -> Option<&[f64]> {
        let b: &[u8] = self;
        if !b.len().is_multiple_of(8)
            || !(b.as_ptr() as usize).is_multiple_of(std::mem::align_of::<f64>())
        {
            return None;
        }
        // SAFETY: length and alignment checked; every bit pattern is a valid f64
        // (this driver only runs on little-endian targets, like wasm).
        Some(unsafe { std::slice::from_raw_parts(b.as_ptr() as *const f64, b.len() / 8) })
    }
}

impl Deref for ObjectData {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.repr {
            Repr::Owned(b) => b,
            Repr::Segment { map, .. } => map,
        }
    }
}

impl Drop for ObjectData {
    fn drop(&mut self) {
        if let Repr::Segment { id, conn, .. } = &self.repr {
            let _ = conn.send(Op::Unpin(pb::Unpin { ids: vec![*id] }));
        }
    }
}

#[cfg(target_endian = "big")]
compile_error!("the Reef driver assumes a little-endian machine");
