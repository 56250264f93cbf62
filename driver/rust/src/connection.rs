//! The driver's end of the `Session` stream: a writer that batches queued
//! operations into one message, and a reader that routes replies to their
//! waiting requests by id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use reef_core::IdPrefix;
use reef_proto as pb;
use reef_proto::auth::TokenChannel;
use reef_proto::client_op::Op;
use reef_proto::node_client::NodeClient;
use reef_proto::server_reply::Body;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::segments::Segments;

/// Operations packed into one message at most.
const MAX_BATCH: usize = 4096;

pub(crate) struct Connection {
    pub client: NodeClient<TokenChannel>,
    ops: mpsc::UnboundedSender<Op>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Body>>>>,
    /// Why the node ended the session, when it said (e.g. PERMISSION_DENIED:
    /// the tenant was revoked).
    ended: Arc<Mutex<Option<Error>>>,
    next_req: AtomicU64,
    next_object: AtomicU64,
    pub hello: pb::Hello,
    /// On the node's machine: where this session takes its objects' memfds.
    pub segments: Option<Segments>,
}

/// The environment variable `host job submit` gives the job's command.
pub const JOB_ID_ENV: &str = "REEF_JOB_ID";
/// The session metadata that carries it to the node.
const JOB_ID_KEY: &str = "reef-job-id";

impl Connection {
    /// Opens a session; `same_machine`: take large objects as segments when
    /// the node is on this machine.
    pub async fn open(
        mut client: NodeClient<TokenChannel>,
        same_machine: bool,
    ) -> Result<Arc<Self>> {
        let (ops_tx, ops_rx) = mpsc::unbounded_channel::<Op>();
        // Everything queued when HTTP/2 asks for the next message goes out as
        // one batch (read straight from the queue: no task in between).
        let outbound = futures::stream::unfold(ops_rx, |mut ops_rx| async move {
            let first = ops_rx.recv().await?;
            let mut ops = vec![pb::ClientOp { op: Some(first) }];
            while ops.len() < MAX_BATCH {
                match ops_rx.try_recv() {
                    Ok(op) => ops.push(pb::ClientOp { op: Some(op) }),
                    Err(_) => break,
                }
            }
            Some((pb::ClientBatch { ops }, ops_rx))
        });
        let mut request = tonic::Request::new(outbound);
        // A driver started by `host job submit`: its sessions are the job's.
        if let Some(id) = std::env::var(JOB_ID_ENV)
            .ok()
            .and_then(|id| id.parse::<tonic::metadata::MetadataValue<_>>().ok())
        {
            request.metadata_mut().insert(JOB_ID_KEY, id);
        }
        let response = client.session(request).await?;
        let mut inbound = response.into_inner();
        let first = inbound
            .message()
            .await?
            .and_then(|b| b.replies.into_iter().next())
            .ok_or_else(crate::error::disconnected)?;
        let Some(Body::Hello(hello)) = first.body else {
            return Err(Error::new(
                pb::ErrorCode::Internal,
                "the node did not say hello",
            ));
        };
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Body>>>> = Arc::default();
        let routes = pending.clone();
        let ended: Arc<Mutex<Option<Error>>> = Arc::default();
        let why = ended.clone();
        tokio::spawn(async move {
            loop {
                let batch = match inbound.message().await {
                    Ok(Some(batch)) => batch,
                    Ok(None) => {
                        *why.lock().unwrap() = Some(crate::error::disconnected());
                        break;
                    }
                    Err(status) => {
                        *why.lock().unwrap() = Some(Error::from(status));
                        break;
                    }
                };
                let mut routes = routes.lock().unwrap();
                for reply in batch.replies {
                    if let (Some(tx), Some(body)) = (routes.remove(&reply.req_id), reply.body) {
                        let _ = tx.send(body);
                    }
                }
            }
            // Dropping the senders fails every request still waiting.
            routes.lock().unwrap().clear();
        });
        let segments = match same_machine {
            true => Segments::connect(&hello).await,
            false => None,
        };
        Ok(Arc::new(Connection {
            client,
            ops: ops_tx,
            pending,
            ended,
            next_req: AtomicU64::new(1),
            next_object: AtomicU64::new(1),
            hello,
            segments,
        }))
    }

    /// A fresh object id in this session's range.
    pub fn new_object_id(&self) -> u64 {
        IdPrefix(self.hello.id_prefix)
            .object(self.next_object.fetch_add(1, Ordering::Relaxed))
            .0
    }

    /// Queues an operation that has no reply.
    pub fn send(&self, op: Op) -> Result<()> {
        self.ops.send(op).map_err(|_| self.lost())
    }

    /// The error of a request the session can no longer answer: why the
    /// node ended it, when it said.
    fn lost(&self) -> Error {
        self.ended
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(crate::error::disconnected)
    }

    /// Sends an operation built around a fresh request id and waits for its reply.
    pub async fn request(&self, make: impl FnOnce(u64) -> Op) -> Result<Body> {
        let req_id = self.next_req.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(req_id, tx);
        // The session ended before we were queued: nobody would answer.
        if self.ended.lock().unwrap().is_some() {
            self.pending.lock().unwrap().remove(&req_id);
            return Err(self.lost());
        }
        self.send(make(req_id))?;
        match rx.await.map_err(|_| self.lost())? {
            Body::Error(e) => Err(Error::from_proto(e)),
            body => Ok(body),
        }
    }
}
