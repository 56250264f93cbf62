//! `Cluster`: the driver's handle to a node, and the builders for tasks and actors.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reef_proto as pb;
use reef_proto::auth::{AttachToken, TokenChannel};
use reef_proto::client_op::Op;
use reef_proto::node_client::NodeClient;
use reef_proto::placement_groups_client::PlacementGroupsClient;
use reef_proto::server_reply::Body;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::args::{encode, Arg};
use crate::connect::ConnectOptions;
use crate::connection::Connection;
use crate::error::{Error, ErrorCode, Result};
use crate::groups::{PlacementGroupBuilder, PlacementStrategy};
use crate::local::LocalNode;
use crate::object::{ObjectData, ObjectRef};
use crate::options::{CallOptions, ModuleOptions, RetryExceptions, Strategy};
use crate::session::{Sessions, Target};
use crate::stream::{Streamer, STREAM_THRESHOLD};

/// How often [`Cluster::get_many_with_progress`] asks which results are ready.
pub(crate) const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// A connection to a Reef node (and through it, the cluster).
#[derive(Clone)]
pub struct Cluster {
    /// The session with the node, reopened after it broke (see
    /// [`ConnectOptions::reconnect_timeout`]).
    sessions: Arc<Sessions>,
    /// Raw connections for large objects when not on the node's machine.
    streamer: Arc<Streamer>,
    /// Keeps a node started by `Cluster::local` alive while the cluster lives.
    _local: Option<Arc<LocalNode>>,
}

/// A registered module.
#[derive(Clone, Debug)]
pub struct Module {
    pub hash: String,
    pub sdk: String,
    pub tasks: Vec<String>,
    pub actors: Vec<(String, Vec<String>)>,
    /// The node loaded the compiled module from its cache.
    pub cached: bool,
    /// The capabilities it was granted (`"filesystem"`, `"network"`).
    pub grants: Vec<String>,
}

/// What a task printed and logged.
#[derive(Clone, Debug, Default)]
pub struct Logs {
    pub stdout: String,
    pub stderr: String,
    pub log: Vec<String>,
}

impl Cluster {
    /// Connects to a running node, e.g. `Cluster::connect("127.0.0.1:6390")`.
    /// The cluster token comes from `$REEF_TOKEN`, the file `$REEF_TOKEN_FILE`,
    /// or the token file of a node on this machine in its default data
    /// directory; see [`Cluster::connect_with_token`].
    pub async fn connect(address: &str) -> Result<Cluster> {
        Self::connect_with(address, ConnectOptions::default()).await
    }

    /// Connects to a running node with the given cluster token.
    pub async fn connect_with_token(address: &str, token: &str) -> Result<Cluster> {
        Self::connect_with(address, ConnectOptions::default().token(token)).await
    }

    /// Connects to a running node with options, e.g. with the same-machine
    /// path turned off (see [`ConnectOptions`]).
    pub async fn connect_with(address: &str, options: ConnectOptions) -> Result<Cluster> {
        let token = match &options.token {
            Some(token) => token.clone(),
            None => reef_proto::auth::find_token(address)
                .map_err(|e| Error::new(ErrorCode::Unauthenticated, e))?,
        };
        let tls = options.tls_or_env()?;
        Self::connect_inner(address, &token, &options, tls, None).await
    }

    /// Starts a private node (a child `host` process) and connects to it.
    pub async fn local() -> Result<Cluster> {
        Self::local_with(&[]).await
    }

    /// Like `local`, with extra `host start` arguments.
    pub async fn local_with(args: &[&str]) -> Result<Cluster> {
        let node = LocalNode::start(args).await?;
        let address = node.address.clone();
        let token = node.token.clone();
        let options = ConnectOptions::default();
        Self::connect_inner(&address, &token, &options, None, Some(Arc::new(node))).await
    }

    async fn connect_inner(
        address: &str,
        token: &str,
        options: &ConnectOptions,
        tls: Option<reef_core::tls::ClientTls>,
        local: Option<Arc<LocalNode>>,
    ) -> Result<Cluster> {
        let attach = AttachToken::new(token).map_err(|e| Error::new(ErrorCode::BadArgument, e))?;
        let target = Target {
            address: address.to_string(),
            token: token.to_string(),
            attach,
            same_machine: options.same_machine,
            tls: tls.clone(),
        };
        let sessions = Sessions::open(target, options.reconnect_timeout).await?;
        Ok(Cluster {
            sessions,
            streamer: Arc::new(Streamer::new(address, token, tls)),
            _local: local,
        })
    }

    /// The live session's stream, waiting while the driver reconnects.
    async fn conn(&self) -> Result<Arc<Connection>> {
        Ok(self.sessions.current().await?.conn)
    }

    /// Waits until the driver has a live session with its node: at once
    /// when it has one; after its node restarted, until the driver
    /// reconnected (every async call waits so; [`TaskBuilder::submit`] and
    /// [`ActorCall::submit`] do not and fail with `NODE_DIED` meanwhile).
    /// `NODE_DIED` naming the node and the last cause when the driver gave
    /// up (see [`ConnectOptions::reconnect_timeout`]).
    pub async fn wait_connected(&self) -> Result<()> {
        self.sessions.current().await.map(|_| ())
    }

    pub fn address(&self) -> &str {
        &self.sessions.target().address
    }

    /// The cluster token this connection presents (to open another one).
    pub fn token(&self) -> &str {
        &self.sessions.target().token
    }

    /// Whether large objects go through shared memory (a segment per
    /// object) rather than over sockets (false while reconnecting).
    pub fn is_same_machine(&self) -> bool {
        self.sessions.last().conn.segments.is_some()
    }

    /// Registers a module (component or core module) with no grants.
    pub async fn register(&self, wasm: impl Into<Bytes>) -> Result<Module> {
        self.register_with(wasm, &ModuleOptions::default()).await
    }

    /// Registers a module with options, e.g. grants:
    /// `cluster.register_with(wasm, &ModuleOptions::default().grant(Grant::Filesystem))`.
    pub async fn register_with(
        &self,
        wasm: impl Into<Bytes>,
        options: &ModuleOptions,
    ) -> Result<Module> {
        let request = pb::RegisterModuleRequest {
            wasm: wasm.into(),
            grants: options.grants.iter().map(|g| g.as_str().into()).collect(),
        };
        // Registering is idempotent (the same bytes and grants are the same
        // module): retried once on a new session when the session broke.
        let reply = self
            .unary_idempotent(|mut client| {
                let request = request.clone();
                async move { client.register_module(request).await }
            })
            .await?;
        match reply.result {
            Some(pb::register_module_reply::Result::Module(m)) => Ok(Module {
                hash: m.hash,
                sdk: m.sdk,
                tasks: m.tasks,
                actors: m.actors.into_iter().map(|a| (a.name, a.methods)).collect(),
                cached: m.cached,
                grants: m.grants,
            }),
            Some(pb::register_module_reply::Result::Error(e)) => Err(Error::from_proto(e)),
            None => Err(Error::new(ErrorCode::Internal, "empty reply")),
        }
    }

    pub async fn register_file(&self, path: impl AsRef<Path>) -> Result<Module> {
        self.register_file_with(path, &ModuleOptions::default())
            .await
    }

    pub async fn register_file_with(
        &self,
        path: impl AsRef<Path>,
        options: &ModuleOptions,
    ) -> Result<Module> {
        let path = path.as_ref();
        let wasm = std::fs::read(path).map_err(|e| {
            Error::new(
                ErrorCode::InvalidModule,
                format!("reading {}: {e}", path.display()),
            )
        })?;
        self.register_with(wasm, options).await
    }

    /// Stores bytes as an object. Large objects on the node's machine are
    /// written straight into a segment the node makes for them; from
    /// elsewhere, objects of at least 1 MiB are streamed over raw
    /// connections to the node's port.
    pub async fn put_bytes(&self, data: &[u8]) -> Result<ObjectRef> {
        let conn = self.conn().await?;
        let id = conn.new_object_id();
        match &conn.segments {
            Some(segments) if data.len() as u64 >= conn.hello.inline_threshold => {
                let size = data.len() as u64;
                // The node copies the bytes out of our memory (`data` stays
                // borrowed until it answered); where it may not (ptrace
                // rules), they go through a segment of their own.
                let abandoned = OnDrop::new(&conn, Op::Release(pb::Release { ids: vec![id] }));
                let copy_from = data.as_ptr() as u64;
                let copied = create_buffer(&conn, id, size, false, copy_from).await;
                abandoned.defuse();
                match copied {
                    Ok(_) => return Ok(ObjectRef::new(id, conn.clone())),
                    Err(e) => tracing::debug!("put {id:#x} through a segment: {e}"),
                }
                // Until sealed, dropping this frees the buffer on the node.
                let unsealed = OnDrop::new(&conn, Op::Release(pb::Release { ids: vec![id] }));
                create_buffer(&conn, id, size, false, 0).await?;
                let buffer = segments.fetch(crate::segments::KIND_BUFFER, id).await?;
                crate::segments::write(&buffer, data)?;
                drop(buffer);
                conn.request(|req_id| Op::Seal(pb::Seal { req_id, id }))
                    .await?;
                unsealed.defuse();
            }
            None if data.len() as u64 >= STREAM_THRESHOLD => {
                self.put_streamed(&conn, id, data).await?
            }
            _ => {
                let data = Bytes::copy_from_slice(data);
                conn.request(|req_id| Op::Put(pb::Put { req_id, id, data }))
                    .await?;
            }
        }
        Ok(ObjectRef::new(id, conn))
    }

    /// A put over raw push connections: the node allocates the declared size
    /// first; a put that fails or is dropped half-way frees it.
    async fn put_streamed(&self, conn: &Connection, id: u64, data: &[u8]) -> Result<()> {
        let size = data.len() as u64;
        // Until sealed, dropping this tells the node to free the buffer (sent
        // after the create, so it also covers a put dropped before the reply).
        let unsealed = OnDrop::new(conn, Op::Release(pb::Release { ids: vec![id] }));
        create_buffer(conn, id, size, true, 0).await?;
        self.streamer.push(id, data).await?;
        conn.request(|req_id| Op::Seal(pb::Seal { req_id, id }))
            .await?;
        unsealed.defuse();
        Ok(())
    }

    /// Stores a slice of `f64` as little-endian bytes (what guests view as `&[f64]`).
    pub async fn put_f64s(&self, xs: &[f64]) -> Result<ObjectRef> {
        // SAFETY: f64 has no padding; the bytes are its little-endian representation
        // on the (little-endian) machines the driver supports.
        let bytes = unsafe { std::slice::from_raw_parts(xs.as_ptr() as *const u8, xs.len() * 8) };
        self.put_bytes(bytes).await
    }

    /// Stores a value, MessagePack-encoded.
    pub async fn put<T: Serialize + ?Sized>(&self, value: &T) -> Result<ObjectRef> {
        self.put_bytes(&encode(value)?).await
    }

    /// Starts building a task call of `function` in `module`.
    pub fn task(&self, module: &Module, function: &str) -> TaskBuilder<'_> {
        TaskBuilder {
            cluster: self,
            module: module.hash.clone(),
            function: function.to_string(),
            args: Vec::new(),
            options: CallOptions::default(),
        }
    }

    /// Starts building an actor of `class` in `module`.
    pub fn actor(&self, module: &Module, class: &str) -> ActorBuilder<'_> {
        ActorBuilder {
            cluster: self,
            module: module.hash.clone(),
            class: class.to_string(),
            args: Vec::new(),
            name: String::new(),
            options: CallOptions::default(),
            lifecycle: pb::ActorLifecycle::default(),
        }
    }

    /// Finds a named actor.
    pub async fn get_actor(&self, name: &str) -> Result<ActorHandle> {
        let name = name.to_string();
        let body = self
            .conn()
            .await?
            .request(|req_id| Op::LookupActor(pb::LookupActor { req_id, name }))
            .await?;
        let Body::Actor(a) = body else {
            return Err(unexpected());
        };
        Ok(ActorHandle {
            cluster: self.clone(),
            id: a.actor_id,
        })
    }

    /// Waits for objects and returns their bytes (or each one's error).
    pub async fn get_many_bytes(
        &self,
        refs: &[&ObjectRef],
        timeout: Option<Duration>,
    ) -> Result<Vec<Result<ObjectData>>> {
        let conn = self.conn().await?;
        // Objects of an earlier session are gone: answered here, the node
        // is not asked (it would not know them).
        let lost: Vec<Option<Error>> = refs.iter().map(|r| r.lost_in(&conn)).collect();
        let ids: Vec<u64> = refs
            .iter()
            .zip(&lost)
            .filter(|(_, lost)| lost.is_none())
            .map(|(r, _)| r.id())
            .collect();
        if ids.is_empty() {
            return Ok(lost.into_iter().flatten().map(Err).collect());
        }
        let segments = conn.segments.is_some();
        let stream_threshold = if segments { 0 } else { STREAM_THRESHOLD };
        let timeout_ms = timeout.map_or(0, |t| (t.as_millis() as u64).max(1));
        let body = conn
            .request(|req_id| {
                Op::Get(pb::Get {
                    req_id,
                    ids,
                    timeout_ms,
                    arena: false,
                    stream_threshold,
                    segments,
                })
            })
            .await?;
        let Body::Get(reply) = body else {
            return Err(unexpected());
        };
        // Every streamed object is unpinned, read or not.
        let streamed: Vec<u64> = reply
            .values
            .iter()
            .filter(|v| matches!(v.value, Some(pb::object_value::Value::Streamed(_))))
            .map(|v| v.id)
            .collect();
        let _unpin = (!streamed.is_empty())
            .then(|| OnDrop::new(&conn, Op::Unpin(pb::Unpin { ids: streamed })));
        let mut values = reply.values.into_iter();
        let mut out = Vec::with_capacity(refs.len());
        for lost in lost {
            if let Some(e) = lost {
                out.push(Err(e));
                continue;
            }
            let Some(v) = values.next() else {
                return Err(unexpected());
            };
            out.push(match v.value {
                Some(pb::object_value::Value::Inline(b)) => Ok(ObjectData::owned(b)),
                Some(pb::object_value::Value::Segment(len)) => map_segment(&conn, v.id, len).await,
                // Only for drivers that mapped the arena: no longer sent.
                Some(pb::object_value::Value::Arena(_)) => Err(unexpected()),
                Some(pb::object_value::Value::Streamed(len)) => self
                    .streamer
                    .pull(v.id, len)
                    .await
                    .map(|b| ObjectData::owned(b.into())),
                Some(pb::object_value::Value::Error(e)) => Err(Error::from_proto(e)),
                None => Err(unexpected()),
            });
        }
        Ok(out)
    }

    pub async fn get_bytes(&self, r: &ObjectRef) -> Result<ObjectData> {
        self.get_many_bytes(&[r], None)
            .await?
            .pop()
            .ok_or_else(unexpected)?
    }

    pub async fn get_bytes_timeout(&self, r: &ObjectRef, timeout: Duration) -> Result<ObjectData> {
        self.get_many_bytes(&[r], Some(timeout))
            .await?
            .pop()
            .ok_or_else(unexpected)?
    }

    /// Waits for an object and decodes it from MessagePack.
    pub async fn get<T: DeserializeOwned>(&self, r: &ObjectRef) -> Result<T> {
        crate::args::decode(&self.get_bytes(r).await?)
    }

    /// Waits for several objects and decodes each one; the first error wins.
    pub async fn get_many<T: DeserializeOwned>(&self, refs: &[ObjectRef]) -> Result<Vec<T>> {
        let refs: Vec<&ObjectRef> = refs.iter().collect();
        self.get_many_bytes(&refs, None)
            .await?
            .into_iter()
            .map(|d| crate::args::decode(&d?))
            .collect()
    }

    /// [`get_many`](Self::get_many), calling `progress(ready, total)` as
    /// results become ready (a failed one counts as ready), at most every
    /// 100 ms: first with `(0, total)`, last with
    /// `(total, total)`, each count higher than the one before.
    ///
    /// ```no_run
    /// # async fn demo(cluster: reef::Cluster, refs: Vec<reef::ObjectRef>) -> reef::Result<()> {
    /// let sums: Vec<f64> = cluster
    ///     .get_many_with_progress(&refs, |done, total| eprint!("\r{done}/{total}"))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_many_with_progress<T: DeserializeOwned>(
        &self,
        refs: &[ObjectRef],
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Vec<T>> {
        let total = refs.len();
        let mut pending: Vec<ObjectRef> = refs.to_vec();
        let mut reported = None;
        loop {
            let done = total - pending.len();
            if reported != Some(done) {
                progress(done, total);
                reported = Some(done);
            }
            if pending.is_empty() {
                break;
            }
            let wanted = pending.len();
            pending = self
                .wait(&pending, wanted, Some(PROGRESS_INTERVAL))
                .await?
                .1;
        }
        self.get_many(refs).await
    }

    /// Waits until `num_returns` of `refs` are ready (or the timeout passes);
    /// returns (ready, not ready), each in the order given.
    pub async fn wait(
        &self,
        refs: &[ObjectRef],
        num_returns: usize,
        timeout: Option<Duration>,
    ) -> Result<(Vec<ObjectRef>, Vec<ObjectRef>)> {
        let conn = self.conn().await?;
        // Objects of an earlier session are lost, so ready (a get fails at
        // once), like a failed task's result; the node is asked for the rest.
        let (lost, asked): (Vec<&ObjectRef>, Vec<&ObjectRef>) =
            refs.iter().partition(|r| r.lost_in(&conn).is_some());
        let mut ready: std::collections::HashSet<u64> = lost.iter().map(|r| r.id()).collect();
        if !asked.is_empty() && ready.len() < num_returns {
            let ids: Vec<u64> = asked.iter().map(|r| r.id()).collect();
            let timeout_ms = timeout.map_or(0, |t| (t.as_millis() as u64).max(1));
            let num_returns = (num_returns - ready.len()) as u32;
            let body = conn
                .request(|req_id| {
                    Op::Wait(pb::Wait {
                        req_id,
                        ids,
                        num_returns,
                        timeout_ms,
                    })
                })
                .await?;
            let Body::Wait(w) = body else {
                return Err(unexpected());
            };
            ready.extend(w.ready);
        }
        Ok(refs.iter().cloned().partition(|r| ready.contains(&r.id())))
    }

    /// Cancels a pending or running task; its result becomes a CANCELLED error.
    pub fn cancel(&self, r: &ObjectRef) -> Result<()> {
        let conn = self.sessions.now()?.conn;
        if let Some(lost) = r.lost_in(&conn) {
            return Err(lost);
        }
        conn.send(Op::Cancel(pb::Cancel { id: r.id() }))
    }

    /// A handle to an object by its id, as another driver or tenant
    /// passed it on (see [`Cluster::share`]). Using it fails as for an
    /// unknown object unless this driver's tenant may use the object.
    pub fn object_ref(&self, id: u64) -> ObjectRef {
        ObjectRef::foreign(id, self.sessions.last().conn)
    }

    /// Lets tenant `tenant` use the object (get, wait, pass as an
    /// argument) by its id: objects are their maker's tenant's only. Only a
    /// tenant that may use the object itself can share it; the admin can
    /// share any. An object this tenant may not use fails as an unknown one
    /// (`UNKNOWN_OBJECT`).
    pub async fn share(&self, r: &ObjectRef, tenant: &str) -> Result<()> {
        let ids = vec![r.id()];
        let tenant = tenant.to_string();
        let body = self
            .conn()
            .await?
            .request(|req_id| {
                Op::Share(pb::Share {
                    req_id,
                    ids,
                    tenant,
                })
            })
            .await?;
        match body {
            Body::Ok(_) => Ok(()),
            _ => Err(unexpected()),
        }
    }

    /// What a finished task (or actor call) printed and logged.
    pub async fn logs(&self, r: &ObjectRef) -> Result<Logs> {
        let id = r.id();
        let body = self
            .conn()
            .await?
            .request(|req_id| Op::Logs(pb::Logs { req_id, id }))
            .await?;
        let Body::Logs(l) = body else {
            return Err(unexpected());
        };
        Ok(Logs {
            stdout: l.stdout,
            stderr: l.stderr,
            log: l.log,
        })
    }

    /// Starts building a placement group (see `PlacementGroup`).
    pub fn placement_group(&self, strategy: PlacementStrategy) -> PlacementGroupBuilder<'_> {
        PlacementGroupBuilder::new(self, strategy)
    }

    /// The placement-group client of the live session (waiting while
    /// reconnecting).
    pub(crate) async fn groups_client(&self) -> Result<PlacementGroupsClient<TokenChannel>> {
        Ok(self.sessions.current().await?.groups)
    }

    /// The node's status (nodes, resources, tasks, actors, store usage).
    pub async fn status(&self) -> Result<pb::StatusReply> {
        // Read-only: retried once on a new session when the session broke.
        self.unary_idempotent(|mut client| async move { client.status(pb::StatusRequest {}).await })
            .await
    }

    /// The node's unary and streaming RPCs (the state API, logs) on the
    /// live session's channel (waiting while reconnecting).
    pub(crate) async fn node_client(&self) -> Result<NodeClient<TokenChannel>> {
        Ok(self.conn().await?.client.clone())
    }

    /// Runs an idempotent unary call on the live session; when it fails
    /// because that session broke meanwhile, once more on the next one.
    async fn unary_idempotent<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn(NodeClient<TokenChannel>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let conn = self.conn().await?;
        let status = match call(conn.client.clone()).await {
            Ok(reply) => return Ok(reply.into_inner()),
            Err(status) if is_transport_status(&status) => status,
            Err(status) => return Err(status.into()),
        };
        // The call and the session share the channel: when it broke, the
        // session's reader sees it too (soon; bounded here).
        let mut end = conn.end_signal();
        // (The watch's guard is dropped here: held across the retry below it
        // would make this future not `Send`.)
        let ended = matches!(
            tokio::time::timeout(SESSION_END_GRACE, end.wait_for(Option::is_some)).await,
            Ok(Ok(_))
        );
        if !ended {
            return Err(status.into());
        }
        tracing::debug!("retrying on a new session: {status}");
        let conn = self.conn().await?;
        Ok(call(conn.client.clone()).await?.into_inner())
    }

    /// Sends a submission on the live session, without waiting: `NODE_DIED`
    /// while the driver reconnects; `OBJECT_LOST` for an argument made in
    /// an earlier session.
    fn submit(
        &self,
        args: Vec<Arg>,
        op: impl FnOnce(u64, Vec<pb::Arg>) -> Op,
    ) -> Result<ObjectRef> {
        let conn = self.sessions.now()?.conn;
        if let Some(lost) = args.iter().find_map(|a| a.object()?.lost_in(&conn)) {
            return Err(lost);
        }
        let id = conn.new_object_id();
        conn.send(op(id, args_to_proto(args)))?;
        Ok(ObjectRef::new(id, conn))
    }
}

/// How long an idempotent unary call that failed on the transport waits for
/// its session's reader to see the break before it fails as it is.
const SESSION_END_GRACE: Duration = Duration::from_secs(1);

/// A failure of the connection rather than an answer of the node.
fn is_transport_status(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    ) || (status.code() == tonic::Code::Internal && status.details().is_empty())
}

/// Asks the node for object `id`'s buffer of `size` bytes: pushed over
/// raw connections (`stream`), copied in from this process at
/// `copy_from`, or (neither) a segment to write.
async fn create_buffer(
    conn: &Connection,
    id: u64,
    size: u64,
    stream: bool,
    copy_from: u64,
) -> Result<()> {
    let body = conn
        .request(|req_id| {
            Op::CreateBuffer(pb::CreateBuffer {
                req_id,
                id,
                size,
                stream,
                copy_from,
            })
        })
        .await?;
    match body {
        // A copied-in put is answered once the object is sealed.
        Body::Buffer(_) | Body::Ok(_) => Ok(()),
        _ => Err(unexpected()),
    }
}

/// Maps object `id`, which a get answered as a segment of `len` bytes
/// (pinned until the returned data drops, or now if it cannot be mapped).
async fn map_segment(conn: &Arc<Connection>, id: u64, len: u64) -> Result<ObjectData> {
    let unpin = OnDrop::new(conn, Op::Unpin(pb::Unpin { ids: vec![id] }));
    let segments = conn.segments.as_ref().ok_or_else(unexpected)?;
    let object = segments.fetch(crate::segments::KIND_READ, id).await?;
    let map = crate::segments::map(&object, len)?;
    unpin.defuse();
    Ok(ObjectData::segment(id, map, conn.clone()))
}

/// Sends an operation when dropped, unless defused.
struct OnDrop<'a> {
    conn: &'a Connection,
    op: Option<Op>,
}

impl<'a> OnDrop<'a> {
    fn new(conn: &'a Connection, op: Op) -> Self {
        OnDrop { conn, op: Some(op) }
    }
    fn defuse(mut self) {
        self.op = None;
    }
}

impl Drop for OnDrop<'_> {
    fn drop(&mut self) {
        if let Some(op) = self.op.take() {
            let _ = self.conn.send(op);
        }
    }
}

fn unexpected() -> Error {
    Error::new(ErrorCode::Internal, "unexpected reply from the node")
}

fn args_to_proto(args: Vec<Arg>) -> Vec<pb::Arg> {
    args.into_iter()
        .map(|a| pb::Arg {
            kind: Some(match a {
                Arg::Inline(b) => pb::arg::Kind::Inline(b),
                Arg::Object(r) => pb::arg::Kind::Object(r.id()),
            }),
        })
        .collect()
}

/// Builds a task call: `cluster.task(&m, "add").arg(1.0).arg(2.0).submit()`.
pub struct TaskBuilder<'a> {
    cluster: &'a Cluster,
    module: String,
    function: String,
    args: Vec<Arg>,
    options: CallOptions,
}

impl TaskBuilder<'_> {
    pub fn arg(mut self, a: impl Into<Arg>) -> Self {
        self.args.push(a.into());
        self
    }
    pub fn args(mut self, args: impl IntoIterator<Item = Arg>) -> Self {
        self.args.extend(args);
        self
    }
    pub fn options(mut self, options: CallOptions) -> Self {
        self.options = options;
        self
    }
    pub fn num_cpus(mut self, n: f64) -> Self {
        self.options.num_cpus = Some(n);
        self
    }
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.options.memory_limit = Some(bytes);
        self
    }
    pub fn cpu_time(mut self, limit: Duration) -> Self {
        self.options.cpu_time = Some(limit);
        self
    }
    pub fn resource(mut self, name: &str, amount: f64) -> Self {
        self.options.resources.insert(name.to_string(), amount);
        self
    }
    /// Where the task runs in a cluster (default: here first, see [`Strategy`]).
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.options.strategy = strategy;
        self
    }
    /// How often a failed attempt is run again when its failure allows it
    /// (default 3; 0: never): always for a node failure (the node running it
    /// died or stopped), for a guest failure only as `retry_exceptions` says.
    /// The result's reference stays the same: `get` waits for the last attempt.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.options.max_retries = Some(n);
        self
    }
    /// How many calls one wasm instance may serve (Ray's `max_calls`).
    /// Default 1: every task runs in a fresh instance. N > 1: an instance
    /// whose task succeeded is kept on the node (see `--warm-instances`) and
    /// serves up to N tasks of the same module, tenant and limits; 0: no
    /// limit. A kept instance's globals survive between its calls (views and
    /// object access do not); a trap or error drops it.
    pub fn max_calls(mut self, n: u32) -> Self {
        self.options.max_calls = Some(n);
        self
    }
    /// The guest failures that allow a retry too: `RetryExceptions::All`
    /// (`GUEST_ERROR`, `GUEST_PANIC`, `GUEST_TRAP`) or a list of codes.
    pub fn retry_exceptions(mut self, exceptions: RetryExceptions) -> Self {
        self.options.retry_exceptions = exceptions;
        self
    }
    /// Submits the task; returns at once with a reference to its result.
    pub fn submit(self) -> Result<ObjectRef> {
        let TaskBuilder {
            cluster,
            module,
            function,
            args,
            options,
        } = self;
        cluster.submit(args, |return_id, args| {
            Op::Submit(pb::SubmitTask {
                return_id,
                module,
                function,
                args,
                strategy: Some(options.strategy.to_proto()),
                options: options.to_proto(),
                attempt: 0,
            })
        })
    }
}

/// Builds an actor: `cluster.actor(&m, "Accumulator").name("acc").create().await`.
pub struct ActorBuilder<'a> {
    cluster: &'a Cluster,
    module: String,
    class: String,
    args: Vec<Arg>,
    name: String,
    options: CallOptions,
    lifecycle: pb::ActorLifecycle,
}

/// How long an actor lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lifetime {
    /// It ends with the driver session (or node) that created it, named or
    /// not.
    #[default]
    Owned,
    /// It outlives its creator; only `kill` ends it.
    Detached,
}

impl ActorBuilder<'_> {
    pub fn arg(mut self, a: impl Into<Arg>) -> Self {
        self.args.push(a.into());
        self
    }
    /// Makes the actor findable with `Cluster::get_actor`. A name does not
    /// keep it alive after this driver disconnects: see [`Self::lifetime`].
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }
    pub fn options(mut self, options: CallOptions) -> Self {
        self.options = options;
        self
    }
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.options.memory_limit = Some(bytes);
        self
    }
    /// Reserves `n` CPUs for the actor's lifetime (default 0).
    pub fn num_cpus(mut self, n: f64) -> Self {
        self.options.num_cpus = Some(n);
        self
    }
    /// Where the actor lives in a cluster (placed by the control plane).
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.options.strategy = strategy;
        self
    }
    /// Restarts after its node died or its instance trapped (default 0;
    /// -1: without limit). `actor-init` runs again with the same arguments.
    pub fn max_restarts(mut self, n: i32) -> Self {
        self.lifecycle.max_restarts = n.max(-1);
        self
    }
    /// Retries of a call that was running when the actor failed (default 0;
    /// -1: without limit); otherwise it fails with `ACTOR_RESTARTING`.
    pub fn max_task_retries(mut self, n: i32) -> Self {
        self.lifecycle.max_task_retries = n.max(-1);
        self
    }
    /// Whether it outlives this driver (default: it ends with it).
    pub fn lifetime(mut self, lifetime: Lifetime) -> Self {
        self.lifecycle.detached = lifetime == Lifetime::Detached;
        self
    }
    pub async fn create(self) -> Result<ActorHandle> {
        let ActorBuilder {
            cluster,
            module,
            class,
            args,
            name,
            options,
            lifecycle,
        } = self;
        let conn = cluster.conn().await?;
        if let Some(lost) = args.iter().find_map(|a| a.object()?.lost_in(&conn)) {
            return Err(lost);
        }
        let body = conn
            .request(|req_id| {
                Op::CreateActor(pb::CreateActor {
                    req_id,
                    module,
                    class,
                    args: args_to_proto(args),
                    name,
                    strategy: Some(options.strategy.to_proto()),
                    options: options.to_proto(),
                    lifecycle: Some(lifecycle),
                })
            })
            .await?;
        let Body::Actor(a) = body else {
            return Err(unexpected());
        };
        Ok(ActorHandle {
            cluster: cluster.clone(),
            id: a.actor_id,
        })
    }
}

/// A handle to a live actor.
#[derive(Clone)]
pub struct ActorHandle {
    cluster: Cluster,
    id: u64,
}

impl ActorHandle {
    pub fn id(&self) -> u64 {
        self.id
    }
    pub fn call(&self, method: &str) -> ActorCall<'_> {
        ActorCall {
            actor: self,
            method: method.to_string(),
            args: Vec::new(),
        }
    }
    pub async fn kill(&self) -> Result<()> {
        let actor_id = self.id;
        self.cluster
            .conn()
            .await?
            .request(|req_id| Op::KillActor(pb::KillActor { req_id, actor_id }))
            .await?;
        Ok(())
    }
}

/// Builds an actor method call: `acc.call("add").arg(10.0).submit()`.
pub struct ActorCall<'a> {
    actor: &'a ActorHandle,
    method: String,
    args: Vec<Arg>,
}

impl ActorCall<'_> {
    pub fn arg(mut self, a: impl Into<Arg>) -> Self {
        self.args.push(a.into());
        self
    }
    /// Queues the call; returns at once with a reference to its result.
    pub fn submit(self) -> Result<ObjectRef> {
        let ActorCall {
            actor,
            method,
            args,
        } = self;
        actor.cluster.submit(args, |return_id, args| {
            Op::CallActor(pb::CallActor {
                actor_id: actor.id,
                return_id,
                method,
                args,
                ..Default::default()
            })
        })
    }
}
