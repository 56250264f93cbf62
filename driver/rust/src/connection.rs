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
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Error, Result};
use crate::segments::Segments;

/// Operations packed into one message at most.
const MAX_BATCH: usize = 4096;

pub(crate) struct Connection {
    pub client: NodeClient<TokenChannel>,
    ops: mpsc::UnboundedSender<Op>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Body>>>>,
    /// Set once the session ended, with why: the node's word when it said
    /// (e.g. PERMISSION_DENIED: the tenant was revoked), else `NODE_DIED`
    /// naming the transport's cause. [`crate::session::Sessions`] watches it
    /// to reconnect.
    ended: watch::Receiver<Option<Error>>,
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
    /// Opens a session with the node at `address` (named in errors);
    /// `same_machine`: take large objects as segments when the node is on
    /// this machine.
    pub async fn open(
        mut client: NodeClient<TokenChannel>,
        same_machine: bool,
        address: &str,
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
        let (why, ended) = watch::channel(None);
        let address = address.to_string();
        tokio::spawn(async move {
            loop {
                let batch = match inbound.message().await {
                    Ok(Some(batch)) => batch,
                    Ok(None) => {
                        why.send_replace(Some(crate::error::session_lost(
                            &address,
                            "the node closed it",
                        )));
                        break;
                    }
                    Err(status) => {
                        let e = Error::from(status);
                        why.send_replace(Some(match crate::error::is_refusal(&e) {
                            // The node's word on the credential: kept as is.
                            true => e,
                            false => crate::error::session_lost(&address, &e.message),
                        }));
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
        self.ended().unwrap_or_else(crate::error::disconnected)
    }

    /// Why the session ended, once it has.
    pub fn ended(&self) -> Option<Error> {
        self.ended.borrow().clone()
    }

    /// A receiver that sees the session's end (without keeping it open).
    pub fn end_signal(&self) -> watch::Receiver<Option<Error>> {
        self.ended.clone()
    }

    /// Sends an operation built around a fresh request id and waits for its reply.
    pub async fn request(&self, make: impl FnOnce(u64) -> Op) -> Result<Body> {
        let req_id = self.next_req.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(req_id, tx);
        // The session ended before we were queued: nobody would answer.
        if self.ended.borrow().is_some() {
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
