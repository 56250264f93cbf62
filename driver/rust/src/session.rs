//! The driver's session with its node, kept up across the node's restarts.
//!
//! A `Cluster` holds one [`Sessions`]: the live session (a [`Connection`]
//! and the placement-group client on the same channel) and a supervisor
//! task that watches it. When the session's stream or channel breaks for a
//! reason other than a refused credential (`UNAUTHENTICATED`,
//! `PERMISSION_DENIED`), the supervisor opens a new session to the same
//! address, with backoff (100 ms doubling to 2 s), for up to the
//! `reconnect_timeout` (default 60 s, like Ray's
//! `gcs_rpc_server_reconnect_timeout_s`; zero: never). An attempt refused
//! for its credential (revoked, or unknown to the restarted node) ends the
//! reconnect (a node just restarted holds requests until it has loaded the
//! cluster's credentials, so such a refusal is final).
//!
//! * Calls in flight on the broken session fail with `NODE_DIED` naming the
//!   node and the cause (they are not retried: a submission or a put may or
//!   may not have been applied).
//! * Async calls made meanwhile wait for the new session (bounded by the
//!   timeout) and run on it; `submit` (synchronous) fails at once with
//!   `NODE_DIED` saying the driver is reconnecting.
//! * After the timeout, every call fails with `NODE_DIED` naming the
//!   address and the last cause.
//! * The old session's objects are gone (a node releases a session's
//!   objects when it ends): a get of one fails with `OBJECT_LOST` at once,
//!   without asking the node (see `Cluster::get_many_bytes`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use reef_proto::auth::{AttachToken, TokenChannel};
use reef_proto::node_client::NodeClient;
use reef_proto::placement_groups_client::PlacementGroupsClient;
use tokio::sync::watch;
use tonic::transport::Channel;

use crate::connection::Connection;
use crate::error::{is_refusal, Error, ErrorCode, Result};

/// The first pause between reconnect attempts...
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// ...doubling up to this.
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// The default of `ConnectOptions::reconnect_timeout`.
pub const DEFAULT_RECONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and how sessions are opened.
#[derive(Clone)]
pub(crate) struct Target {
    pub address: String,
    pub token: String,
    pub attach: AttachToken,
    pub same_machine: bool,
    pub tls: Option<reef_core::tls::ClientTls>,
}

/// One session: its stream and the placement-group client of its channel.
#[derive(Clone)]
pub(crate) struct Session {
    pub conn: Arc<Connection>,
    pub groups: PlacementGroupsClient<TokenChannel>,
}

enum State {
    Live(Session),
    /// The session broke; the supervisor is opening a new one.
    Reconnecting {
        cause: Error,
    },
    /// For good: a refused credential, reconnecting off, or the timeout
    /// passed.
    Failed(Error),
}

pub(crate) struct Sessions {
    target: Target,
    reconnect_timeout: Duration,
    state: watch::Sender<State>,
    /// The session opened last, live or not (for what only names it).
    last: std::sync::Mutex<Session>,
}

impl Sessions {
    /// Opens the first session (its errors are returned as they are: the
    /// driver does not retry a connect that never succeeded) and starts
    /// watching it.
    pub async fn open(target: Target, reconnect_timeout: Duration) -> Result<Arc<Sessions>> {
        let session = open_session(&target).await?;
        let end = session.conn.end_signal();
        let sessions = Arc::new(Sessions {
            target,
            reconnect_timeout,
            last: std::sync::Mutex::new(session.clone()),
            state: watch::Sender::new(State::Live(session)),
        });
        tokio::spawn(supervise(Arc::downgrade(&sessions), end));
        Ok(sessions)
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The live session now, without waiting: `NODE_DIED` while
    /// reconnecting (or once failed).
    pub fn now(&self) -> Result<Session> {
        match &*self.state.borrow() {
            State::Live(s) => match s.conn.ended() {
                None => Ok(s.clone()),
                Some(cause) => Err(self.reconnecting(&cause)),
            },
            State::Reconnecting { cause } => Err(self.reconnecting(cause)),
            State::Failed(e) => Err(e.clone()),
        }
    }

    /// The session opened last, live or not (for what only reads its hello
    /// or names an object).
    pub fn last(&self) -> Session {
        self.last.lock().unwrap().clone()
    }

    /// The live session, waiting while the driver reconnects (at most the
    /// reconnect timeout, plus one connect attempt).
    pub async fn current(&self) -> Result<Session> {
        let mut state = self.state.subscribe();
        let wait = async {
            loop {
                match &*state.borrow_and_update() {
                    State::Live(s) if s.conn.ended().is_none() => return Ok(s.clone()),
                    // Broken: the supervisor is about to say so.
                    State::Live(_) | State::Reconnecting { .. } => {}
                    State::Failed(e) => return Err(e.clone()),
                }
                // The sender lives in `self`, borrowed here: never closed.
                let _ = state.changed().await;
            }
        };
        let bound = self.reconnect_timeout + reef_core::channel::CONNECT_TIMEOUT * 2;
        match tokio::time::timeout(bound, wait).await {
            Ok(result) => result,
            Err(_) => Err(self.gave_up(&match &*self.state.borrow() {
                State::Reconnecting { cause } => cause.clone(),
                _ => crate::error::disconnected(),
            })),
        }
    }

    fn reconnecting(&self, cause: &Error) -> Error {
        Error::new(
            ErrorCode::NodeDied,
            format!(
                "not connected: reconnecting to node {} (for up to {:?}) after: {}; \
                 async calls wait for the new session, submit() does not \
                 (await Cluster::wait_connected first)",
                self.target.address, self.reconnect_timeout, cause.message
            ),
        )
    }

    fn gave_up(&self, cause: &Error) -> Error {
        Error::new(
            ErrorCode::NodeDied,
            format!(
                "gave up reconnecting to node {} after {:?}; last cause: {}",
                self.target.address, self.reconnect_timeout, cause.message
            ),
        )
    }
}

/// Watches the live session; when it breaks, reconnects (or gives up).
/// Holds the sessions weakly: dropping the last `Cluster` ends it.
async fn supervise(sessions: Weak<Sessions>, mut end: watch::Receiver<Option<Error>>) {
    loop {
        let cause = match end.wait_for(Option::is_some).await {
            Ok(cause) => cause.clone().unwrap_or_else(crate::error::disconnected),
            Err(_) => crate::error::disconnected(),
        };
        let Some(this) = sessions.upgrade() else {
            return;
        };
        if is_refusal(&cause) || this.reconnect_timeout.is_zero() {
            tracing::warn!(node = %this.target.address, "driver session ended: {cause}");
            this.state.send_replace(State::Failed(cause));
            return;
        }
        tracing::warn!(
            node = %this.target.address,
            "driver session broke, reconnecting: {cause}"
        );
        this.state.send_replace(State::Reconnecting {
            cause: cause.clone(),
        });
        let (target, timeout) = (this.target.clone(), this.reconnect_timeout);
        drop(this);
        let result = reconnect(&sessions, &target, timeout, cause).await;
        let Some(this) = sessions.upgrade() else {
            return;
        };
        match result {
            Ok(session) => {
                tracing::info!(node = %target.address, "driver session reopened");
                end = session.conn.end_signal();
                *this.last.lock().unwrap() = session.clone();
                this.state.send_replace(State::Live(session));
            }
            Err(e) => {
                tracing::warn!(node = %target.address, "{e}");
                this.state.send_replace(State::Failed(e));
                return;
            }
        }
    }
}

/// Opens a new session, with backoff, until `timeout` passed: the last
/// cause then, or at once a revoked credential.
async fn reconnect(
    sessions: &Weak<Sessions>,
    target: &Target,
    timeout: Duration,
    mut cause: Error,
) -> Result<Session> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = BACKOFF_FIRST;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(BACKOFF_MAX);
        if sessions.strong_count() == 0 {
            return Err(crate::error::disconnected());
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, open_session(target)).await {
            Ok(Ok(session)) => return Ok(session),
            // A revoked or unknown credential.
            Ok(Err(e))
                if matches!(
                    e.code,
                    ErrorCode::PermissionDenied | ErrorCode::Unauthenticated
                ) =>
            {
                return Err(e)
            }
            Ok(Err(e)) => {
                tracing::debug!(node = %target.address, "reconnect attempt failed: {e}");
                cause = e;
            }
            Err(_) => break,
        }
    }
    Err(Error::new(
        ErrorCode::NodeDied,
        format!(
            "gave up reconnecting to node {} after {timeout:?}; last cause: {}",
            target.address, cause.message
        ),
    ))
}

/// Opens a session: over TCP (or TLS), then on the node's machine moved to
/// its Unix socket (same protocol, a cheaper transport than loopback TCP).
pub(crate) async fn open_session(target: &Target) -> Result<Session> {
    let address = target.address.as_str();
    let channel = reef_core::channel::connect_with(address, target.tls.as_ref()).await?;
    let groups = PlacementGroupsClient::with_interceptor(channel.clone(), target.attach.clone());
    let plain = target.tls.is_none();
    let conn = Connection::open(
        client(channel, target.attach.clone()),
        target.same_machine,
        address,
    )
    .await
    .map_err(|e| match e.code {
        // A plain client's bytes are not a TLS handshake: the node
        // closes the connection without a word.
        _ if plain && !is_refusal(&e) => Error::new(
            e.code,
            format!(
                "{} (if the node serves TLS, connect with its CA: \
                 ConnectOptions::tls_ca or ${})",
                e.message,
                crate::TLS_CA_ENV
            ),
        ),
        _ => e,
    })?;
    let conn = match (&conn.segments, conn.hello.socket_path.as_str()) {
        (Some(_), path) if !path.is_empty() => match unix_client(path, target.attach.clone()).await
        {
            Ok(client) => match Connection::open(client, true, address).await {
                Ok(unix) => {
                    tracing::debug!("session moved to the unix socket {path}");
                    unix
                }
                Err(e) => {
                    tracing::debug!("staying on TCP: {e}");
                    conn
                }
            },
            Err(e) => {
                tracing::debug!("staying on TCP: {e}");
                conn
            }
        },
        _ => conn,
    };
    Ok(Session { conn, groups })
}

async fn unix_client(path: &str, token: AttachToken) -> Result<NodeClient<TokenChannel>> {
    Ok(client(reef_core::channel::connect_unix(path).await?, token))
}

fn client(channel: Channel, token: AttachToken) -> NodeClient<TokenChannel> {
    NodeClient::with_interceptor(channel, token)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX)
}
