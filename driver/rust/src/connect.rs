//! How `Cluster::connect_with` connects.

/// Options of [`Cluster::connect_with`](crate::Cluster::connect_with).
///
/// ```no_run
/// # async fn demo() -> reef::Result<()> {
/// use reef::{Cluster, ConnectOptions};
/// // Behave as a driver on another machine would, even on the node's own:
/// let options = ConnectOptions::default().same_machine(false);
/// let cluster = Cluster::connect_with("127.0.0.1:6390", options).await?;
/// assert!(!cluster.is_same_machine());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub(crate) token: Option<String>,
    pub(crate) same_machine: bool,
    pub(crate) tls: Option<reef_core::tls::ClientTls>,
    pub(crate) reconnect_timeout: std::time::Duration,
}

/// A PEM file of the CA a TLS cluster's certificates chain to: drivers
/// connect with TLS trusting it (see [`ConnectOptions::tls_ca`]).
pub const TLS_CA_ENV: &str = "REEF_TLS_CA";

/// Set to `0` (or `false`, `no`, `off`), turns the same-machine path off by
/// default (see [`ConnectOptions::same_machine`]).
pub const SAME_MACHINE_ENV: &str = "REEF_SAME_MACHINE";

impl Default for ConnectOptions {
    /// No token (found as `Cluster::connect` does), the same-machine path on
    /// unless `$REEF_SAME_MACHINE` says `0`.
    fn default() -> Self {
        let off = std::env::var(SAME_MACHINE_ENV).is_ok_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "0" | "false" | "no" | "off"
            )
        });
        ConnectOptions {
            token: None,
            same_machine: !off,
            tls: None,
            reconnect_timeout: crate::session::DEFAULT_RECONNECT_TIMEOUT,
        }
    }
}

impl ConnectOptions {
    /// The token to present: a tenant's, or the admin's (default:
    /// `$REEF_TOKEN`, `$REEF_TOKEN_FILE`, or the token file of tenant
    /// `default` of a node on this machine, as `Cluster::connect`).
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    /// The token in the file `path` (as `host tenant add` wrote it);
    /// `BAD_ARGUMENT` when it cannot be read or is not a token.
    pub fn token_file(self, path: impl AsRef<std::path::Path>) -> crate::Result<Self> {
        let token = reef_proto::auth::read_token_file(path.as_ref())
            .map_err(|e| crate::Error::new(crate::ErrorCode::BadArgument, e))?;
        Ok(self.token(&token))
    }

    /// On the node's machine, take large objects as shared-memory segments
    /// (written and read in place, each object its own memfd, handed to this
    /// session only) and move the session to its Unix socket. Default on;
    /// off, the driver behaves exactly as one on another machine: large
    /// objects are streamed over TCP connections to the node's port.
    pub fn same_machine(mut self, on: bool) -> Self {
        self.same_machine = on;
        self
    }

    /// How long the driver tries to open a new session when its session
    /// with the node broke (the node restarted, the network failed): with
    /// backoff from 100 ms doubling to 2 s. Default 60 s (as Ray's
    /// `gcs_rpc_server_reconnect_timeout_s`); zero: never reconnect. Calls
    /// in flight when it broke fail with `NODE_DIED`; async calls made
    /// meanwhile wait and run on the new session; `submit` fails with
    /// `NODE_DIED` meanwhile; after the timeout every call fails with
    /// `NODE_DIED` naming the node and the last cause. A session the node
    /// ended for its credential (`UNAUTHENTICATED`, `PERMISSION_DENIED`: a
    /// revoked tenant) is not reopened; while reconnecting, either refusal
    /// stops at once.
    pub fn reconnect_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.reconnect_timeout = timeout;
        self
    }

    /// Connect with TLS (gRPC and object streams), verifying the node's
    /// certificate against the CA in the PEM file `path` (a cluster started
    /// with `host start --tls-cert`; `host tls init` writes `ca.pem`).
    /// Default: `$REEF_TLS_CA` when set, else plain TCP (an `https://`
    /// address then fails for want of a CA). `BAD_ARGUMENT` when the file
    /// cannot be read or holds no certificate.
    pub fn tls_ca(mut self, path: impl AsRef<std::path::Path>) -> crate::Result<Self> {
        self.tls = Some(load_ca(path.as_ref())?);
        Ok(self)
    }

    /// The TLS trust to connect with: the one given, else `$REEF_TLS_CA`'s.
    pub(crate) fn tls_or_env(&self) -> crate::Result<Option<reef_core::tls::ClientTls>> {
        match (&self.tls, std::env::var_os(TLS_CA_ENV)) {
            (Some(tls), _) => Ok(Some(tls.clone())),
            (None, Some(path)) if !path.is_empty() => Ok(Some(load_ca(path.as_ref())?)),
            (None, _) => Ok(None),
        }
    }
}

fn load_ca(path: &std::path::Path) -> crate::Result<reef_core::tls::ClientTls> {
    reef_core::tls::ClientTls::from_ca_file(path)
        .map_err(|e| crate::Error::new(crate::ErrorCode::BadArgument, format!("TLS CA: {e}")))
}
