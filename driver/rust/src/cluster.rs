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
use tonic::transport::Channel;

use crate::args::{encode, Arg};
use crate::connection::Connection;
use crate::error::{Error, ErrorCode, Result};
use crate::groups::{PlacementGroupBuilder, PlacementStrategy};
use crate::local::LocalNode;
use crate::object::{ObjectData, ObjectRef};
use crate::options::{CallOptions, ModuleOptions, RetryExceptions, Strategy};

/// A connection to a Reef node (and through it, the cluster).
#[derive(Clone)]
pub struct Cluster {
    conn: Arc<Connection>,
    /// Placement-group calls (served by every node, passed to the control plane).
    groups: PlacementGroupsClient<TokenChannel>,
    address: String,
    token: String,
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
        let token = reef_proto::auth::find_token(address)
            .map_err(|e| Error::new(ErrorCode::Unauthenticated, e))?;
        Self::connect_inner(address, &token, None).await
    }

    /// Connects to a running node with the given cluster token.
    pub async fn connect_with_token(address: &str, token: &str) -> Result<Cluster> {
        Self::connect_inner(address, token, None).await
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
        Self::connect_inner(&address, &token, Some(Arc::new(node))).await
    }

    async fn connect_inner(
        address: &str,
        token: &str,
        local: Option<Arc<LocalNode>>,
    ) -> Result<Cluster> {
        let token_text = token;
        let token = AttachToken::new(token).map_err(|e| Error::new(ErrorCode::BadArgument, e))?;
        let channel = tcp_channel(address).await?;
        let groups = PlacementGroupsClient::with_interceptor(channel.clone(), token.clone());
        let conn = Connection::open(client(channel, token.clone())).await?;
        // On the node's machine, move to its Unix socket: same protocol,
        // a cheaper transport than loopback TCP.
        let conn = match (&conn.arena, conn.hello.socket_path.as_str()) {
            (Some(_), path) if !path.is_empty() => match unix_client(path, token).await {
                Ok(client) => match Connection::open(client).await {
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
        Ok(Cluster {
            conn,
            groups,
            address: address.to_string(),
            token: token_text.to_string(),
            _local: local,
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// The cluster token this connection presents (to open another one).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether large objects go through the node's shared-memory arena.
    pub fn is_same_machine(&self) -> bool {
        self.conn.arena.is_some()
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
        let grants = options.grants.iter().map(|g| g.as_str().to_string());
        let reply = self
            .conn
            .client
            .clone()
            .register_module(pb::RegisterModuleRequest {
                wasm: wasm.into(),
                grants: grants.collect(),
            })
            .await?
            .into_inner();
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
    /// written straight into its arena.
    pub async fn put_bytes(&self, data: &[u8]) -> Result<ObjectRef> {
        let id = self.conn.new_object_id();
        match &self.conn.arena {
            Some(arena) if data.len() as u64 >= self.conn.hello.inline_threshold => {
                let size = data.len() as u64;
                let body = self
                    .conn
                    .request(|req_id| Op::CreateBuffer(pb::CreateBuffer { req_id, id, size }))
                    .await?;
                let Body::Buffer(b) = body else {
                    return Err(unexpected());
                };
                arena.write(b.offset, data);
                self.conn
                    .request(|req_id| Op::Seal(pb::Seal { req_id, id }))
                    .await?;
            }
            _ => {
                let data = Bytes::copy_from_slice(data);
                self.conn
                    .request(|req_id| Op::Put(pb::Put { req_id, id, data }))
                    .await?;
            }
        }
        Ok(ObjectRef::new(id, self.conn.clone()))
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
        }
    }

    /// Finds a named actor.
    pub async fn get_actor(&self, name: &str) -> Result<ActorHandle> {
        let name = name.to_string();
        let body = self
            .conn
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
        let ids: Vec<u64> = refs.iter().map(|r| r.id()).collect();
        let arena = self.conn.arena.is_some();
        let timeout_ms = timeout.map_or(0, |t| (t.as_millis() as u64).max(1));
        let body = self
            .conn
            .request(|req_id| {
                Op::Get(pb::Get {
                    req_id,
                    ids,
                    timeout_ms,
                    arena,
                })
            })
            .await?;
        let Body::Get(reply) = body else {
            return Err(unexpected());
        };
        Ok(reply
            .values
            .into_iter()
            .map(|v| match v.value {
                Some(pb::object_value::Value::Inline(b)) => Ok(ObjectData::owned(b)),
                Some(pb::object_value::Value::Arena(s)) => {
                    Ok(ObjectData::arena(v.id, s.offset, s.len, self.conn.clone()))
                }
                Some(pb::object_value::Value::Error(e)) => Err(Error::from_proto(e)),
                None => Err(unexpected()),
            })
            .collect())
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

    /// Waits until `num_returns` of `refs` are ready (or the timeout passes);
    /// returns (ready, not ready), each in the order given.
    pub async fn wait(
        &self,
        refs: &[ObjectRef],
        num_returns: usize,
        timeout: Option<Duration>,
    ) -> Result<(Vec<ObjectRef>, Vec<ObjectRef>)> {
        let ids: Vec<u64> = refs.iter().map(|r| r.id()).collect();
        let timeout_ms = timeout.map_or(0, |t| (t.as_millis() as u64).max(1));
        let body = self
            .conn
            .request(|req_id| {
                Op::Wait(pb::Wait {
                    req_id,
                    ids,
                    num_returns: num_returns as u32,
                    timeout_ms,
                })
            })
            .await?;
        let Body::Wait(w) = body else {
            return Err(unexpected());
        };
        let ready: std::collections::HashSet<u64> = w.ready.into_iter().collect();
        Ok(refs.iter().cloned().partition(|r| ready.contains(&r.id())))
    }

    /// Cancels a pending or running task; its result becomes a CANCELLED error.
    pub fn cancel(&self, r: &ObjectRef) -> Result<()> {
        self.conn.send(Op::Cancel(pb::Cancel { id: r.id() }))
    }

    /// What a finished task (or actor call) printed and logged.
    pub async fn logs(&self, r: &ObjectRef) -> Result<Logs> {
        let id = r.id();
        let body = self
            .conn
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

    pub(crate) fn groups_client(&self) -> PlacementGroupsClient<TokenChannel> {
        self.groups.clone()
    }

    /// The node's status (nodes, resources, tasks, actors, store usage).
    pub async fn status(&self) -> Result<pb::StatusReply> {
        Ok(self
            .conn
            .client
            .clone()
            .status(pb::StatusRequest {})
            .await?
            .into_inner())
    }

    /// The node's unary and streaming RPCs (the state API, logs).
    pub(crate) fn node_client(&self) -> NodeClient<TokenChannel> {
        self.conn.client.clone()
    }

    fn submit(&self, op: impl FnOnce(u64) -> Op) -> Result<ObjectRef> {
        let id = self.conn.new_object_id();
        self.conn.send(op(id))?;
        Ok(ObjectRef::new(id, self.conn.clone()))
    }
}

async fn tcp_channel(address: &str) -> Result<Channel> {
    reef_core::channel::connect(address).await
}

async fn unix_client(path: &str, token: AttachToken) -> Result<NodeClient<TokenChannel>> {
    Ok(client(reef_core::channel::connect_unix(path).await?, token))
}

fn client(channel: Channel, token: AttachToken) -> NodeClient<TokenChannel> {
    NodeClient::with_interceptor(channel, token)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX)
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
        cluster.submit(|return_id| {
            Op::Submit(pb::SubmitTask {
                return_id,
                module,
                function,
                args: args_to_proto(args),
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
}

impl ActorBuilder<'_> {
    pub fn arg(mut self, a: impl Into<Arg>) -> Self {
        self.args.push(a.into());
        self
    }
    /// Makes the actor findable with `Cluster::get_actor` (and keeps it alive
    /// after this driver disconnects).
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
    pub async fn create(self) -> Result<ActorHandle> {
        let ActorBuilder {
            cluster,
            module,
            class,
            args,
            name,
            options,
        } = self;
        let body = cluster
            .conn
            .request(|req_id| {
                Op::CreateActor(pb::CreateActor {
                    req_id,
                    module,
                    class,
                    args: args_to_proto(args),
                    name,
                    strategy: Some(options.strategy.to_proto()),
                    options: options.to_proto(),
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
            .conn
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
        actor.cluster.submit(|return_id| {
            Op::CallActor(pb::CallActor {
                actor_id: actor.id,
                return_id,
                method,
                args: args_to_proto(args),
            })
        })
    }
}
