//! The one authentication point of a node's gRPC listeners: a tower layer
//! that maps the presented token to a [`Caller`], puts it (and the
//! credential's [`CredentialId`]) into the request's extensions, and refuses
//! a caller whose kind of credential the called service does not accept
//! ([`accepted`]).
//!
//! Three kinds, never interchangeable: the node credential (cluster-internal
//! services), the admin's and the tenants'. The node credential is known
//! locally; the others come with the cluster view (the control plane
//! publishes the sha256 of every credential in force), and one not yet in
//! this node's view is asked of the control plane. Credentials are compared
//! by their sha256: the node's in constant time, the others by a map lookup
//! on the hash (its timing tells nothing about the token).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use reef_core::{Caller, ReefError, TenantId};
use reef_proto as pb;
use reef_proto::ErrorCode;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tonic::codegen::http;
use tower::{Layer, Service};

use super::token_lookups::{Lookup, TokenLookups};
use crate::cluster::Membership;

/// A kind of credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Node,
    Admin,
    Tenant,
}

impl Kind {
    fn of(caller: &Caller) -> Kind {
        match caller {
            Caller::Node => Kind::Node,
            Caller::Admin => Kind::Admin,
            Caller::Tenant(_) => Kind::Tenant,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Node => "node",
            Kind::Admin => "admin",
            Kind::Tenant => "tenant",
        }
    }
}

/// The kinds of credential a gRPC method (`/reef.v1.Service/Method`)
/// accepts: cluster-internal services the node credential only, the driver
/// API tenants and the admin, managing tenants, stopping a node and
/// submitted jobs the admin only. Anything else: none.
pub fn accepted(path: &str) -> &'static [Kind] {
    const NODE: &[Kind] = &[Kind::Node];
    const ADMIN: &[Kind] = &[Kind::Admin];
    const DRIVER: &[Kind] = &[Kind::Tenant, Kind::Admin];
    match path.rsplit_once('/').map(|(service, _)| service) {
        _ if path == "/reef.v1.Node/Stop" => ADMIN,
        // A submitted job is a process on the head, outside any sandbox,
        // with the head's user: only the operator may start, see or stop one.
        _ if JOB_SUBMISSION_METHODS.contains(&path) => ADMIN,
        Some("/reef.v1.Node" | "/reef.v1.PlacementGroups") => DRIVER,
        Some("/reef.v1.Tenants") => ADMIN,
        Some("/reef.v1.Peer" | "/reef.v1.PeerState" | "/reef.v1.ControlPlane") => NODE,
        _ => &[],
    }
}

/// The `Node` methods of submitted jobs (`host job ...`).
const JOB_SUBMISSION_METHODS: &[&str] = &[
    "/reef.v1.Node/SubmitJob",
    "/reef.v1.Node/ListSubmittedJobs",
    "/reef.v1.Node/GetSubmittedJob",
    "/reef.v1.Node/StopJob",
    "/reef.v1.Node/ReadJobLogs",
];

/// The sha256 of a presented token: how a credential is named inside the
/// node (the token itself is not kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CredentialId([u8; 32]);

impl CredentialId {
    pub fn of(token: &[u8]) -> CredentialId {
        CredentialId(Sha256::digest(token).into())
    }

    fn from_bytes(bytes: &[u8]) -> Option<CredentialId> {
        bytes.try_into().ok().map(CredentialId)
    }
}

/// How long a request waits for a node that is still joining its control
/// plane before its token is checked (see `Authenticator::caller`).
const JOIN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Maps tokens to callers; follows the cluster view to learn of new and
/// revoked credentials.
pub struct Authenticator {
    node: CredentialId,
    /// Admin and tenant credentials, as of the last view (and any the
    /// control plane confirmed since).
    principals: RwLock<HashMap<CredentialId, Caller>>,
    /// The credentials of the last view: one missing from the next was revoked.
    in_view: Mutex<HashSet<CredentialId>>,
    /// Cancelled when a credential is revoked (driver sessions end on it).
    revocations: Mutex<HashMap<CredentialId, CancellationToken>>,
    /// Bounds the control-plane lookups of unknown tokens.
    lookups: TokenLookups,
    cluster: Arc<Membership>,
}

impl Authenticator {
    /// An authenticator accepting `node_token` as the node credential, and
    /// the admin and tenants of the views `cluster` takes. Spawns the task
    /// following the views (it ends with the authenticator).
    pub fn new(node_token: &str, cluster: Arc<Membership>) -> Arc<Authenticator> {
        let mut views = cluster.watch_views();
        let auth = Arc::new(Authenticator {
            node: CredentialId::of(node_token.as_bytes()),
            principals: RwLock::default(),
            in_view: Mutex::default(),
            revocations: Mutex::default(),
            lookups: TokenLookups::default(),
            cluster,
        });
        auth.apply(&views.borrow_and_update());
        let weak = Arc::downgrade(&auth);
        tokio::spawn(async move {
            while views.changed().await.is_ok() {
                let view = views.borrow_and_update().clone();
                let Some(auth) = Weak::upgrade(&weak) else {
                    return;
                };
                auth.apply(&view);
            }
        });
        auth
    }

    /// Takes the credentials of a new view; ends what used those it no
    /// longer carries.
    fn apply(self: &Arc<Self>, view: &pb::ClusterView) {
        if view.version == 0 {
            return; // not joined yet: no view from the control plane
        }
        let mut principals = HashMap::new();
        for p in &view.principals {
            if let Some(id) = CredentialId::from_bytes(&p.token_sha256) {
                principals.insert(id, caller_of(p));
            }
        }
        let now: HashSet<CredentialId> = principals.keys().copied().collect();
        let revoked: Vec<CredentialId> = {
            let mut in_view = self.in_view.lock().unwrap();
            let gone = in_view.difference(&now).copied().collect();
            *in_view = now;
            gone
        };
        *self.principals.write().unwrap() = principals;
        let unsure: Vec<CredentialId> = {
            let mut revocations = self.revocations.lock().unwrap();
            for id in revoked {
                if let Some(token) = revocations.remove(&id) {
                    token.cancel();
                }
            }
            // Sessions whose credential no view carried yet (learned from the
            // control plane a moment ago): still in force, or already revoked?
            let in_view = self.in_view.lock().unwrap();
            revocations
                .keys()
                .filter(|id| !in_view.contains(id))
                .copied()
                .collect()
        };
        if !unsure.is_empty() {
            if let Ok(control_plane) = self.cluster.gcs() {
                let auth = Arc::clone(self);
                tokio::spawn(async move { auth.recheck(control_plane, unsure).await });
            }
        }
    }

    /// Ends the sessions of those of `ids` the control plane no longer knows.
    async fn recheck(
        &self,
        control_plane: Arc<dyn reef_gcs::ControlPlane>,
        ids: Vec<CredentialId>,
    ) {
        for id in ids {
            if let Ok(None) = control_plane.authenticate(&id.0).await {
                if let Some(token) = self.revocations.lock().unwrap().remove(&id) {
                    token.cancel();
                }
            }
        }
    }

    /// Cancelled when credential `id` is revoked.
    pub fn revocation(&self, id: CredentialId) -> CancellationToken {
        self.revocations
            .lock()
            .unwrap()
            .entry(id)
            .or_default()
            .clone()
    }

    /// Who presented `header` (the whole `authorization` value).
    pub async fn caller(&self, header: Option<&[u8]>) -> Result<(Caller, CredentialId), ReefError> {
        let header = header.ok_or_else(|| {
            unauthenticated("missing cluster token (metadata `authorization: Bearer <token>`)")
        })?;
        let token = header
            .strip_prefix(b"Bearer ")
            .ok_or_else(|| unauthenticated("the authorization metadata is not `Bearer <token>`"))?;
        let id = CredentialId::of(token);
        if reef_proto::auth::constant_time_eq(&id.0, &self.node.0) {
            return Ok((Caller::Node, id));
        }
        if !self.cluster.is_registered() {
            // Still joining its control plane (a head just restarted): the
            // credentials come with the join, so wait for it rather than
            // refuse a token this node cannot check yet.
            let _ = tokio::time::timeout(JOIN_WAIT, self.cluster.registered()).await;
        }
        if let Some(caller) = self.principals.read().unwrap().get(&id) {
            return Ok((caller.clone(), id));
        }
        // Not in this node's view (yet): a tenant added a moment ago.
        let wrong =
            || unauthenticated("wrong cluster token: no credential of this cluster matches");
        let Ok(control_plane) = self.cluster.gcs() else {
            return Err(wrong());
        };
        let _permit =
            match self.lookups.begin(&id.0) {
                Lookup::Ask(permit) => permit,
                Lookup::RecentlyRefused => return Err(wrong()),
                Lookup::Busy => return Err(unauthenticated(
                    "unknown token not checked: too many unknown tokens are being checked; retry",
                )),
            };
        match control_plane.authenticate(&id.0).await? {
            Some(principal) => {
                let caller = caller_of(&principal);
                self.lookups.accepted(&id.0);
                self.principals.write().unwrap().insert(id, caller.clone());
                Ok((caller, id))
            }
            None => {
                self.lookups.refused(&id.0);
                Err(wrong())
            }
        }
    }

    /// Whose driver credential `header` (a whole `Bearer <token>`) is, if
    /// this node knows it (the raw transfer connections' check: a driver's
    /// session, opened first, made it known).
    pub fn driver(&self, header: &[u8]) -> Option<Caller> {
        let token = header.strip_prefix(b"Bearer ")?;
        let id = CredentialId::of(token);
        self.principals.read().unwrap().get(&id).cloned()
    }

    /// Authenticates a call of `path` and checks its kind of credential.
    pub async fn admit(
        &self,
        path: &str,
        header: Option<&[u8]>,
    ) -> Result<(Caller, CredentialId), ReefError> {
        let (caller, id) = self.caller(header).await?;
        let kinds = accepted(path);
        let kind = Kind::of(&caller);
        if kinds.contains(&kind) {
            return Ok((caller, id));
        }
        let takes = if kinds.is_empty() {
            "no credential: it is not a service of this node".to_string()
        } else {
            let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
            format!("{} credentials only", names.join(" or "))
        };
        Err(ReefError::new(
            ErrorCode::PermissionDenied,
            format!(
                "{path} refused to a {} credential (it takes {takes})",
                kind.name()
            ),
        ))
    }
}

fn caller_of(principal: &pb::Principal) -> Caller {
    if principal.admin {
        Caller::Admin
    } else {
        Caller::Tenant(TenantId::new(principal.tenant.as_str()))
    }
}

fn unauthenticated(message: &str) -> ReefError {
    ReefError::new(ErrorCode::Unauthenticated, message)
}

/// The layer of a listener: every request goes through [`Authenticator::admit`].
#[derive(Clone)]
pub struct AuthLayer(pub Arc<Authenticator>);

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            auth: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

impl<S, B, R> Service<http::Request<B>> for Authenticated<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The service polled ready is the one called (tower's rule).
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let auth = self.auth.clone();
        Box::pin(async move {
            let header = request
                .headers()
                .get(reef_proto::auth::TOKEN_KEY)
                .map(|v| v.as_bytes().to_vec());
            match auth.admit(request.uri().path(), header.as_deref()).await {
                Ok((caller, id)) => {
                    request.extensions_mut().insert(caller);
                    request.extensions_mut().insert(id);
                    inner.call(request).await
                }
                Err(e) => Ok(tonic::Status::from(e).into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_takes_its_kinds() {
        assert_eq!(accepted("/reef.v1.Peer/ObjectsReady"), &[Kind::Node]);
        assert_eq!(accepted("/reef.v1.PeerState/LocalState"), &[Kind::Node]);
        assert_eq!(accepted("/reef.v1.ControlPlane/KvPut"), &[Kind::Node]);
        assert_eq!(
            accepted("/reef.v1.Node/Session"),
            &[Kind::Tenant, Kind::Admin]
        );
        assert_eq!(accepted("/reef.v1.Node/Stop"), &[Kind::Admin]);
        for method in JOB_SUBMISSION_METHODS {
            assert_eq!(accepted(method), &[Kind::Admin], "{method}");
        }
        assert_eq!(accepted("/reef.v1.Node/List"), &[Kind::Tenant, Kind::Admin]);
        assert_eq!(accepted("/reef.v1.Tenants/Add"), &[Kind::Admin]);
        assert!(accepted("/reef.v1.Nodes/Session").is_empty());
        assert!(accepted("/grpc.health.v1.Health/Check").is_empty());
    }
}
