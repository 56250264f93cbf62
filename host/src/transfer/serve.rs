//! The holder's side of `Peer.Pull`: a locally held object streamed in chunks.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reef_proto as pb;
use tonic::Status;

use crate::error::{ErrorCode, ReefError};
use crate::node::Node;
use crate::store::{Data, ObjectId};

/// The stream type `Peer::pull` returns.
pub type PullStream = Pin<Box<dyn Stream<Item = Result<pb::PullChunk, Status>> + Send>>;

/// Bytes of object data per `PullChunk` (measured, see the module docs: 4 MiB
/// chunks with 1 MiB HTTP/2 frames cost the least CPU per byte).
pub const CHUNK_SIZE: u64 = 4 << 20;

/// Streams the object `req.id` from byte `req.offset` to its end, in chunks of
/// [`CHUNK_SIZE`]; always at least one chunk (empty when `offset` is the size),
/// so the puller learns `total_size`.
///
/// * The chunks are slices of the stored bytes, not copies: each one holds the
///   object's `Arc<Data>`, which pins it (never spilled, never freed) until the
///   last chunk has been encoded.
/// * A spilled object is read back into the arena first; a pending one is
///   waited for (the puller's progress timeout bounds that wait).
/// * Unknown (or freed) object → `not_found` with a message starting
///   `UNKNOWN_OBJECT: `; an object whose task failed → `failed_precondition`
///   with the task's error (`CODE: message`); an offset past the end →
///   `out_of_range`.
pub fn serve_pull(node: &Arc<Node>, req: pb::PullRequest) -> PullStream {
    let node = node.clone();
    let pb::PullRequest { id, offset } = req;
    let start = async move {
        let data = node.store.get(id).await.map_err(|e| to_status(id, &e))?;
        drop(node);
        let total = data.len();
        if offset > total {
            return Err(Status::out_of_range(format!(
                "offset {offset} is past the end of object {id:#x} ({total} bytes)"
            )));
        }
        Ok(futures::stream::iter(Chunks {
            data,
            pos: offset,
            total,
            first: true,
        })
        .map(Ok))
    };
    Box::pin(futures::stream::once(start).flat_map(|r| match r {
        Ok(chunks) => chunks.left_stream(),
        Err(status) => futures::stream::once(async move { Err(status) }).right_stream(),
    }))
}

fn to_status(id: ObjectId, e: &ReefError) -> Status {
    match e.code {
        ErrorCode::UnknownObject => Status::not_found(e.to_string()),
        ErrorCode::StoreFull => {
            Status::resource_exhausted(format!("restoring spilled object {id:#x} to send it: {e}"))
        }
        _ => Status::failed_precondition(e.to_string()),
    }
}

/// The chunks of one object from `pos`.
struct Chunks {
    data: Arc<Data>,
    pos: u64,
    total: u64,
    first: bool,
}

impl Iterator for Chunks {
    type Item = pb::PullChunk;

    fn next(&mut self) -> Option<pb::PullChunk> {
        if self.pos >= self.total && !self.first {
            return None;
        }
        self.first = false;
        let start = self.pos;
        let end = (start + CHUNK_SIZE).min(self.total);
        self.pos = end;
        Some(pb::PullChunk {
            offset: start,
            total_size: self.total,
            data: slice(&self.data, start as usize, end as usize),
        })
    }
}

/// `data[start..end]` as `Bytes` without copying: a heap object's `Bytes` is
/// sliced; an arena slice owns an `Arc<Data>` that keeps the block pinned.
fn slice(data: &Arc<Data>, start: usize, end: usize) -> Bytes {
    match &**data {
        Data::Inline(b) => b.slice(start..end),
        Data::Arena(_) => Bytes::from_owner(ArenaSlice {
            data: data.clone(),
            start,
            end,
        }),
    }
}

struct ArenaSlice {
    data: Arc<Data>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for ArenaSlice {
    fn as_ref(&self) -> &[u8] {
        &self.data.as_slice()[self.start..self.end]
    }
}
