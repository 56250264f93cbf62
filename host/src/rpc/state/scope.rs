//! Who may see which rows: the one place a caller's view of the state API
//! and of logs is decided. Every caller sees everything today (one cluster
//! token); a tenant's view narrows here, at the edge, and nowhere else.

use reef_proto as pb;

/// The caller of a state or logs request.
#[derive(Clone, Debug, Default)]
pub struct Viewer {
    _private: (),
}

impl Viewer {
    /// The caller of a request that passed the node's token check.
    pub fn of<T>(_request: &tonic::Request<T>) -> Viewer {
        Viewer::default()
    }

    /// Drops the rows the caller may not see.
    pub fn scope(&self, reply: pb::ListReply) -> pb::ListReply {
        reply
    }

    /// Whether the caller may read the logs of task, call or actor `id`.
    pub fn may_read_logs(&self, _id: u64) -> bool {
        true
    }
}
