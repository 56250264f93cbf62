//! Connections to other nodes' `Peer` services. Forwarded work and result
//! notices are queued and sent in batches: one RPC in flight per kind and
//! peer carries everything queued meanwhile, so 10,000 small tasks cost a few
//! dozen RPCs, not 10,000.

use reef_proto as pb;
use reef_proto::auth::{AttachToken, TokenChannel};
use reef_proto::peer_client::PeerClient;
use tokio::sync::mpsc;

use crate::error::{ErrorCode, ReefError, ReefResult};

/// Most items per batch.
const MAX_BATCH: usize = 4096;

#[derive(Clone)]
pub struct PeerLink {
    pub node_id: String,
    pub address: String,
    pub client: PeerClient<TokenChannel>,
    /// For `Locate`, which waits until an object is sealed: its own
    /// connection, so waiting calls never hold up work and results.
    pub locate: PeerClient<TokenChannel>,
    work: mpsc::UnboundedSender<pb::ForwardedWork>,
    ready: mpsc::UnboundedSender<pb::ReadyObject>,
}

impl PeerLink {
    pub(super) fn open(
        from: &str,
        node_id: &str,
        address: &str,
        token: &str,
    ) -> ReefResult<PeerLink> {
        let attach =
            AttachToken::new(token).map_err(|e| ReefError::new(ErrorCode::BadArgument, e))?;
        let client = PeerClient::with_interceptor(channel(address, token)?, attach.clone())
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        let locate = PeerClient::with_interceptor(channel(address, token)?, attach)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        let (work, work_rx) = mpsc::unbounded_channel();
        let (ready, ready_rx) = mpsc::unbounded_channel();
        let from = from.to_string();
        let (c1, c2) = (client.clone(), client.clone());
        let peer = node_id.to_string();
        tokio::spawn(send_batches(
            work_rx,
            move |work| {
                let mut c = c1.clone();
                let batch = pb::ForwardBatch {
                    from_node_id: from.clone(),
                    work,
                };
                async move { c.forward(batch).await.map(|_| ()) }
            },
            peer.clone(),
            "forwarding work",
        ));
        tokio::spawn(send_batches(
            ready_rx,
            move |objects| {
                let mut c = c2.clone();
                async move {
                    c.objects_ready(pb::ObjectsReadyBatch { objects })
                        .await
                        .map(|_| ())
                }
            },
            peer,
            "reporting results",
        ));
        Ok(PeerLink {
            node_id: node_id.to_string(),
            address: address.to_string(),
            client,
            locate,
            work,
            ready,
        })
    }

    pub fn forward(&self, work: pb::ForwardedWork) {
        let _ = self.work.send(work);
    }

    pub fn report(&self, object: pb::ReadyObject) {
        let _ = self.ready.send(object);
    }
}

/// Sends everything queued, one RPC at a time. A failed RPC is logged: the
/// peer is then normally dead, and the view's death notice fails its work.
async fn send_batches<T, F, Fut>(
    mut rx: mpsc::UnboundedReceiver<T>,
    send: F,
    peer: String,
    what: &'static str,
) where
    F: Fn(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        if let Err(status) = send(batch).await {
            tracing::warn!("{what} to node {peer}: {status}");
        }
    }
}

/// Connects a token-carrying channel to `address` (lazily: the first call dials).
pub fn channel(address: &str, token: &str) -> ReefResult<tonic::transport::Channel> {
    let _ = AttachToken::new(token).map_err(|e| ReefError::new(ErrorCode::BadArgument, e))?;
    reef_core::channel::lazy(address)
}
