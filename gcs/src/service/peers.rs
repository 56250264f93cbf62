//! Calls from the control plane to nodes' `Peer` services (bundle
//! reservation): one lazily connected, token-carrying channel per address.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use reef_proto::auth::{AttachToken, TokenChannel};
use reef_proto::peer_client::PeerClient;
use reef_proto::{BundleReservation, ReleaseBundlesRequest, ReserveBundlesRequest};

pub(crate) struct PeerPool {
    token: AttachToken,
    timeout: Duration,
    clients: Mutex<HashMap<String, PeerClient<TokenChannel>>>,
}

impl PeerPool {
    pub fn new(token: AttachToken, timeout: Duration) -> Self {
        Self {
            token,
            timeout,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, address: &str) -> Result<PeerClient<TokenChannel>, String> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(address) {
            return Ok(c.clone());
        }
        let channel = reef_core::channel::endpoint(address)
            .map_err(|e| format!("bad node address {address}: {}", e.message))?
            .connect_timeout(self.timeout)
            .connect_lazy();
        let client = PeerClient::with_interceptor(channel, self.token.clone());
        clients.insert(address.to_owned(), client.clone());
        Ok(client)
    }

    /// Asks the node at `address` to reserve `bundles` (all or nothing).
    /// `Err` carries the node's refusal or the transport error.
    pub async fn reserve(
        &self,
        address: &str,
        bundles: Vec<BundleReservation>,
    ) -> Result<(), ReserveError> {
        let mut client = self.client(address).map_err(ReserveError::Transport)?;
        let mut request = tonic::Request::new(ReserveBundlesRequest { bundles });
        request.set_timeout(self.timeout);
        match client.reserve_bundles(request).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                if reply.reserved {
                    Ok(())
                } else {
                    Err(ReserveError::Refused(reply.error))
                }
            }
            Err(status) => Err(ReserveError::Transport(format!(
                "{:?}: {}",
                status.code(),
                status.message()
            ))),
        }
    }

    /// Releases every bundle of `group` on the node at `address`.
    pub async fn release(&self, address: &str, group: u64) -> Result<(), String> {
        let mut client = self.client(address)?;
        let mut request = tonic::Request::new(ReleaseBundlesRequest {
            placement_group_id: group,
        });
        request.set_timeout(self.timeout);
        client
            .release_bundles(request)
            .await
            .map(|_| ())
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    }
}

/// Why a node did not reserve bundles.
#[derive(Debug)]
pub(crate) enum ReserveError {
    /// The node answered `reserved = false`: nothing was reserved there.
    Refused(String),
    /// The call failed; the node may or may not have reserved.
    Transport(String),
}

impl std::fmt::Display for ReserveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReserveError::Refused(m) => write!(f, "refused: {m}"),
            ReserveError::Transport(m) => write!(f, "unreachable: {m}"),
        }
    }
}
