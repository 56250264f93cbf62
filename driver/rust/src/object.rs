//! Typed handles to objects and the bytes read from them.

use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;
use reef_proto as pb;
use reef_proto::client_op::Op;

use crate::connection::Connection;

struct RefInner {
    id: u64,
    conn: Arc<Connection>,
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
    pub(crate) fn new(id: u64, conn: Arc<Connection>) -> Self {
        ObjectRef {
            inner: Arc::new(RefInner { id, conn }),
        }
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

/// The bytes of an object. On the node's machine they are read in place from
/// the shared arena (zero-copy; the node keeps the object pinned until this is
/// dropped); otherwise they arrived over the socket.
pub struct ObjectData {
    repr: Repr,
}

enum Repr {
    Owned(Bytes),
    Arena {
        id: u64,
        offset: u64,
        len: u64,
        conn: Arc<Connection>,
    },
}

impl ObjectData {
    pub(crate) fn owned(b: Bytes) -> Self {
        ObjectData {
            repr: Repr::Owned(b),
        }
    }
    pub(crate) fn arena(id: u64, offset: u64, len: u64, conn: Arc<Connection>) -> Self {
        ObjectData {
            repr: Repr::Arena {
                id,
                offset,
                len,
                conn,
            },
        }
    }
    /// Whether the bytes are read in place from the node's arena.
    pub fn is_zero_copy(&self) -> bool {
        matches!(self.repr, Repr::Arena { .. })
    }
    /// The bytes as little-endian `f64`s (zero-copy when aligned, which arena objects are).
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
            Repr::Arena {
                offset, len, conn, ..
            } => {
                let arena = conn
                    .arena
                    .as_ref()
                    .expect("arena slices come only to mapped drivers");
                // SAFETY: the node pinned this block for us until we send Unpin (in Drop).
                unsafe { arena.slice(*offset, *len) }
            }
        }
    }
}

impl Drop for ObjectData {
    fn drop(&mut self) {
        if let Repr::Arena { id, conn, .. } = &self.repr {
            let _ = conn.send(Op::Unpin(pb::Unpin { ids: vec![*id] }));
        }
    }
}

#[cfg(target_endian = "big")]
compile_error!("the Reef driver assumes a little-endian machine");
