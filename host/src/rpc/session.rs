//! One driver session: the operations of the `Session` stream.
//!
//! Submissions and releases are handled inline, in order, as they arrive;
//! anything that waits (get, wait, actor creation) runs on a task of its own
//! and answers by request id. Replies are batched onto the outbound stream.

use crate::fastmap::{FastMap, FastSet};
use crate::session_slots::Refused;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use reef_core::TenantId;
use reef_proto as pb;
use reef_proto::client_op::Op;
use reef_proto::server_reply::Body;
use tokio::sync::mpsc;

use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::ids::prefix_of;
use crate::node::Node;
use crate::placement::Strategy;
use crate::quotas::{Charge, Counted};
use crate::session_slots::SlotLease;
use crate::spec::{actor_options_from_proto as actor_options, when_placed};
use crate::spec::{args_from_proto as args, options_from_proto as options};
use crate::spec::{object_ids, ActorSpec, Lifecycle, TaskSpec};
use crate::store::{Block, Data, ObjectId, Segment};
use crate::tasks::StopReason;

pub struct Session {
    node: Arc<Node>,
    /// Where the session is registered for the descriptor socket.
    fds: Arc<super::fds::Registry>,
    /// Also the session's id.
    prefix: u64,
    out: mpsc::UnboundedSender<pb::ServerReply>,
    /// Objects the driver holds a handle to.
    held: Mutex<FastSet<ObjectId>>,
    /// Objects the driver is reading (segments it maps, objects it pulls).
    pins: Mutex<FastMap<ObjectId, Vec<Arc<Data>>>>,
    /// Segments being written by the driver, not yet sealed.
    buffers: Mutex<FastMap<ObjectId, Block>>,
    /// Buffers the driver pushes over raw connections (`node.uploads`).
    streams: Mutex<FastSet<ObjectId>>,
    /// Keeps the prefix's slot from other sessions until this one closes.
    slot: Mutex<Option<SlotLease>>,
    /// The session's job in the control plane.
    job: crate::jobs::Job,
    /// Whose session it is: its tasks, actors and objects are this tenant's.
    tenant: TenantId,
    /// Whether the session may use only its tenant's objects (a tenant's
    /// credential), not every object (the admin's).
    restricted: bool,
    /// Ops that arrived while a check asked another node: handled, in
    /// order, once it is answered.
    deferred: Mutex<Deferred>,
    /// Woken when the deferred queue drains below `MAX_DEFERRED`.
    deferred_room: tokio::sync::Notify,
    /// The tenant's arena-bytes quota taken by objects the driver put and
    /// holds (given back when it releases them or leaves).
    charges: Mutex<FastMap<ObjectId, Charge>>,
    /// The driver's process, once it connected to the descriptor socket.
    peer: Mutex<Option<Arc<super::fds::Peer>>>,
    /// Ops that wait (get, wait, actor creation, ...) and have not
    /// replied yet (see `Session::awaiting_replies`).
    awaiting: Arc<AtomicUsize>,
}

/// The most ops a session keeps waiting behind a check that asks another
/// node (`Verdict::Ask`, at most 10 s): past it the session reads no more of
/// the driver's stream until they drain (`Session::room`), so gRPC's flow
/// control holds the driver back instead of the node's memory growing.
const MAX_DEFERRED: usize = 16_384;

/// How long a `share` with a tenant this node's view does not list yet waits
/// for a view that does (tenants reach other nodes with the next view, tens
/// of ms later) before it fails as an unknown tenant.
const NEW_TENANT_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Default)]
struct Deferred {
    /// A check is asking another node (`Verdict::Ask`).
    asking: bool,
    /// Ops deferred meanwhile are being handled.
    draining: bool,
    /// The session closed: deferred ops and answers still to come do nothing.
    closed: bool,
    queue: std::collections::VecDeque<Op>,
}

/// Whether a session may use objects, as far as its node can tell now.
enum Verdict {
    Allowed,
    /// This object (the first refused) is not the session's tenant's.
    Denied(ObjectId),
    /// Another node owns one of them: ask it (`Session::check`).
    Ask,
}

impl Session {
    /// A session of the driver connected from `driver_address` (a process
    /// of submitted job `submission_id`, or ""); refused when the node has
    /// no free session slot or the tenant holds its cap of them.
    pub fn new(
        node: Arc<Node>,
        fds: Arc<super::fds::Registry>,
        out: mpsc::UnboundedSender<pb::ServerReply>,
        driver_address: String,
        submission_id: String,
        tenant: TenantId,
        restricted: bool,
    ) -> Result<Arc<Self>, tonic::Status> {
        let (prefix, slot) = match node.new_id_prefix(&tenant, restricted) {
            Ok(granted) => granted,
            Err(Refused::Full) => {
                return Err(tonic::Status::resource_exhausted(
                    "every driver session slot of this node is in use",
                ))
            }
            Err(Refused::TenantCap(held)) => {
                let cap = node.config.max_sessions_per_tenant;
                return Err(crate::quotas::exceeded(
                    &tenant,
                    format!(
                        "sessions quota {cap} exceeded on this node ({held} open; \
                         host start --max-sessions-per-tenant)"
                    ),
                )
                .into());
            }
        };
        let job = node.start_job(
            driver_address,
            format!("driver session {prefix:#x}"),
            submission_id,
            &tenant,
        );
        let session = Arc::new(Session {
            tenant,
            restricted,
            deferred: Mutex::default(),
            deferred_room: tokio::sync::Notify::new(),
            job,
            node,
            fds,
            prefix,
            slot: Mutex::new(Some(slot)),
            out,
            held: Mutex::default(),
            pins: Mutex::default(),
            buffers: Mutex::default(),
            streams: Mutex::default(),
            charges: Mutex::default(),
            peer: Mutex::default(),
            awaiting: Arc::default(),
        });
        let registered: Arc<dyn super::fds::FdSession> = session.clone();
        let fd_key = match session.fds.register(prefix, &registered) {
            Ok(key) => key,
            Err(e) => {
                // The driver streams its large objects instead.
                tracing::warn!("no descriptor key for session {prefix:#x}: {e}");
                Vec::new()
            }
        };
        session.reply(
            0,
            Body::Hello(pb::Hello {
                node_id: session.node.id.clone(),
                id_prefix: prefix,
                // The arena has no path any more (a memfd); older drivers,
                // finding none, stream large objects.
                arena_path: String::new(),
                arena_size: 0,
                inline_threshold: session.node.store().inline_threshold(),
                socket_path: session.node.config.socket_path.display().to_string(),
                fd_socket: reef_core::segments::socket_path(&session.node.config.socket_path)
                    .display()
                    .to_string(),
                fd_key: fd_key.into(),
            }),
        );
        Ok(session)
    }

    fn reply(&self, req_id: u64, body: Body) {
        let _ = self.out.send(pb::ServerReply {
            req_id,
            body: Some(body),
        });
    }

    fn reply_result(&self, req_id: u64, result: ReefResult<Body>) {
        let body = result.unwrap_or_else(|e| Body::Error(e.to_proto()));
        self.reply(req_id, body);
    }

    /// Ids the driver allocates must carry its prefix.
    fn check_own_id(&self, id: ObjectId) -> ReefResult<()> {
        if prefix_of(id) == self.prefix {
            Ok(())
        } else {
            Err(ReefError::new(
                ErrorCode::BadArgument,
                format!("object id {id:#x} is not in this session's id range"),
            ))
        }
    }

    fn hold(&self, id: ObjectId) {
        let mut held = self.held.lock().unwrap();
        if self.is_closed() {
            // Made by an op that finished after the driver left.
            drop(held);
            return self.node.store().release(id);
        }
        held.insert(id);
    }

    fn is_closed(&self) -> bool {
        self.deferred.lock().unwrap().closed
    }

    /// Takes `bytes` of the tenant's arena-bytes quota (given back when
    /// the charge is dropped: keep it with `keep_charge` once the object is made).
    fn charge_bytes(&self, bytes: u64) -> ReefResult<Option<Charge>> {
        self.node
            .quotas
            .charge(&self.tenant, Counted::ArenaBytes, bytes)
    }

    /// Object `id` was made: its charge lasts until the driver releases it.
    fn keep_charge(&self, id: ObjectId, charge: Option<Charge>) {
        if let Some(charge) = charge {
            self.charges.lock().unwrap().insert(id, charge);
        }
    }

    /// An object the session made (a put, a result) is its tenant's.
    fn made(&self, id: ObjectId) {
        self.node.objects.owners().record(id, &self.tenant);
    }

    /// Whether the session may use all of `ids`, if this node can tell.
    fn check_now(&self, ids: &[ObjectId]) -> Verdict {
        if !self.restricted {
            return Verdict::Allowed;
        }
        let mut ask = false;
        for id in ids {
            match self.node.objects.may_use_now(*id, &self.tenant) {
                Some(true) => {}
                Some(false) => return Verdict::Denied(*id),
                None => ask = true,
            }
        }
        if ask {
            Verdict::Ask
        } else {
            Verdict::Allowed
        }
    }

    /// Whether the session may use all of `ids`; the first it may not.
    async fn check(&self, ids: &[ObjectId]) -> Result<(), ObjectId> {
        if !self.restricted {
            return Ok(());
        }
        for id in ids {
            if !self.node.objects.may_use(*id, &self.tenant).await {
                return Err(*id);
            }
        }
        Ok(())
    }

    /// Runs `then` once the session may use `ids` (at once when the node
    /// can tell; else the session's later ops wait for the answer), else
    /// `refused` with the first id it may not use: another tenant's object
    /// is refused as an unknown one is.
    fn when_allowed(
        self: &Arc<Self>,
        ids: Vec<ObjectId>,
        then: impl FnOnce(&Arc<Self>) + Send + 'static,
        refused: impl FnOnce(&Arc<Self>, ObjectId) + Send + 'static,
    ) {
        match self.check_now(&ids) {
            Verdict::Allowed => then(self),
            Verdict::Denied(id) => refused(self, id),
            Verdict::Ask => {
                // Later ops wait (they may use this op's result).
                self.deferred.lock().unwrap().asking = true;
                let this = self.clone();
                tokio::spawn(async move {
                    let verdict = this.check(&ids).await;
                    if this.is_closed() {
                        return; // the driver left meanwhile
                    }
                    match verdict {
                        Ok(()) => then(&this),
                        Err(id) => refused(&this, id),
                    }
                    this.resume();
                });
            }
        }
    }

    /// A submission or call whose argument `arg` the session may not use:
    /// its result fails as with an unknown argument.
    fn refuse_result(&self, return_id: ObjectId, arg: ObjectId) {
        match self.node.store().create_pending(return_id, 1) {
            Ok(()) => {
                self.made(return_id);
                self.hold(return_id);
                self.node
                    .objects
                    .seal_failure(return_id, ReefError::unknown_object(arg));
            }
            Err(e) => tracing::warn!("rejected submission {return_id:#x}: {e}"),
        }
    }

    /// Handles the driver's next op, after those deferred (see `resume`).
    pub fn handle(self: &Arc<Self>, op: Op) {
        {
            let mut deferred = self.deferred.lock().unwrap();
            if deferred.closed {
                return;
            }
            if deferred.asking || deferred.draining {
                deferred.queue.push_back(op);
                return;
            }
        }
        self.handle_now(op);
    }

    /// Waits while `MAX_DEFERRED` ops or more wait behind a check (the
    /// session's reader calls this before taking the driver's next batch).
    pub async fn room(&self) {
        loop {
            let notified = self.deferred_room.notified();
            tokio::pin!(notified);
            // Registered before the look, so a wake-up in between is kept.
            notified.as_mut().enable();
            {
                let deferred = self.deferred.lock().unwrap();
                if deferred.closed || deferred.queue.len() < MAX_DEFERRED {
                    return;
                }
            }
            notified.await;
        }
    }

    /// A check asked another node was answered: handles the ops that came
    /// meanwhile, in order, until one asks again (its answer resumes).
    fn resume(self: &Arc<Self>) {
        {
            let mut deferred = self.deferred.lock().unwrap();
            deferred.asking = false;
            if deferred.closed {
                deferred.queue.clear();
                drop(deferred);
                self.deferred_room.notify_waiters();
                return;
            }
            if deferred.draining {
                // A loop below (an earlier answer's) goes on with them.
                return;
            }
            deferred.draining = true;
        }
        loop {
            let op = {
                let mut deferred = self.deferred.lock().unwrap();
                let next = match deferred.asking {
                    true => None,
                    false => deferred.queue.pop_front(),
                };
                let room = deferred.queue.len() + 1 == MAX_DEFERRED;
                match next {
                    Some(op) => {
                        if room {
                            self.deferred_room.notify_waiters();
                        }
                        op
                    }
                    None => {
                        deferred.draining = false;
                        return;
                    }
                }
            };
            self.handle_now(op);
        }
    }

    /// Runs an op that waits and replies when done (get, wait, actor
    /// creation, ...) on a task of its own, counted in `awaiting` until it
    /// has replied or was dropped. The count drops in the same poll as the
    /// reply is queued: on the node's one RPC thread, the outbound stream
    /// sees it already gone when it wakes for that reply.
    fn answer_later<F, Fut>(self: &Arc<Self>, op: F)
    where
        F: FnOnce(Arc<Self>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        /// Gives the op's count back however its task ends.
        struct Answered(Arc<AtomicUsize>);
        impl Drop for Answered {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.awaiting.fetch_add(1, Ordering::Relaxed);
        let answered = Answered(self.awaiting.clone());
        let op = op(self.clone());
        tokio::spawn(async move {
            op.await;
            drop(answered);
        });
    }

    /// How many of the driver's ops are still to reply (see
    /// `answer_later`): while none is, a reply queued now is the last
    /// one for a while, and the outbound stream sends it at once instead of
    /// waiting a turn of the RPC thread for more to batch with it.
    pub fn awaiting_replies(&self) -> Arc<AtomicUsize> {
        self.awaiting.clone()
    }

    fn handle_now(self: &Arc<Self>, op: Op) {
        match op {
            Op::Submit(s) => {
                let return_id = s.return_id;
                let spec = self.check_own_id(return_id).and_then(|()| {
                    Ok(TaskSpec {
                        return_id,
                        module: s.module,
                        function: s.function,
                        args: args(s.args)?,
                        options: options(s.options),
                        owner: Some(self.prefix),
                        strategy: Strategy::from_proto(s.strategy.as_ref()),
                        hops: 0,
                        tenant: self.tenant.clone(),
                    })
                });
                let spec = match spec {
                    Ok(spec) => spec,
                    Err(e) => return tracing::warn!("rejected submission {return_id:#x}: {e}"),
                };
                let ids = object_ids(&spec.args).collect();
                self.when_allowed(
                    ids,
                    move |this| {
                        // Recorded once made: an id in use (another's
                        // object) is refused and never recorded.
                        match this.node.tasks.submit(spec) {
                            Ok(()) => {
                                this.made(return_id);
                                this.hold(return_id);
                            }
                            Err(e) => tracing::warn!("rejected submission {return_id:#x}: {e}"),
                        }
                    },
                    move |this, arg| this.refuse_result(return_id, arg),
                );
            }
            Op::CallActor(c) => {
                let return_id = c.return_id;
                let call = self.check_own_id(return_id).and_then(|()| args(c.args));
                let call_args = match call {
                    Ok(a) => a,
                    Err(e) => return tracing::warn!("rejected actor call {return_id:#x}: {e}"),
                };
                let ids = object_ids(&call_args).collect();
                let (actor, method) = (c.actor_id, c.method);
                self.when_allowed(
                    ids,
                    move |this| {
                        let caller = this.caller();
                        match this
                            .node
                            .actors
                            .call(actor, return_id, method, call_args, caller)
                        {
                            Ok(()) => {
                                this.made(return_id);
                                this.hold(return_id);
                            }
                            Err(e) => tracing::warn!("rejected actor call {return_id:#x}: {e}"),
                        }
                    },
                    move |this, arg| this.refuse_result(return_id, arg),
                );
            }
            Op::CreateActor(c) => {
                self.answer_later(|this| async move { this.create_actor(c).await })
            }
            Op::Share(s) => self.answer_later(|this| async move {
                let result = this.share(s.ids, &s.tenant).await;
                this.reply_result(s.req_id, result.map(|()| Body::Ok(pb::Empty {})));
            }),
            Op::Get(g) => self.answer_later(|this| async move { this.get(g).await }),
            Op::Wait(w) => self.answer_later(|this| async move { this.wait(w).await }),
            Op::Put(p) => {
                let result = self.check_own_id(p.id).and_then(|()| {
                    let charge = self.charge_bytes(p.data.len() as u64)?;
                    let store = self.node.store();
                    let data = store.new_data_for(&p.data, Some(&self.tenant))?;
                    store.insert_put(p.id, data, 1, &self.tenant)?;
                    self.keep_charge(p.id, charge);
                    Ok(())
                });
                if result.is_ok() {
                    self.made(p.id);
                    self.hold(p.id);
                }
                self.reply_result(p.req_id, result.map(|()| Body::Ok(pb::Empty {})));
            }
            Op::CreateBuffer(b) if b.copy_from != 0 => {
                // After the ops before it (a release sent before has freed
                // its space); answered once the bytes are copied and stored.
                self.answer_later(|this| async move {
                    let result = this.copy_in(b.id, b.copy_from, b.size).await;
                    this.reply_result(b.req_id, result.map(|()| Body::Ok(pb::Empty {})));
                });
            }
            Op::CreateBuffer(b) => {
                let result = self.check_own_id(b.id).and_then(|()| {
                    let charge = self.charge_bytes(b.size)?;
                    // The declared size is checked against the store's limits here.
                    if b.stream {
                        let block = self.node.store().allocate_for(b.size, Some(&self.tenant))?;
                        self.node.uploads.begin(b.id, block, self.raw_caller())?;
                        self.streams.lock().unwrap().insert(b.id);
                    } else {
                        // A segment of its own: the driver never maps the arena.
                        let block = self
                            .node
                            .store()
                            .allocate_segment(b.size, Some(&self.tenant))?;
                        self.buffers.lock().unwrap().insert(b.id, block);
                    }
                    self.keep_charge(b.id, charge);
                    Ok(())
                });
                self.reply_result(
                    b.req_id,
                    result.map(|()| Body::Buffer(pb::BufferReply { offset: 0 })),
                );
            }
            Op::Seal(s) => {
                let streamed = self.streams.lock().unwrap().remove(&s.id);
                let block = if streamed {
                    match self.node.uploads.finish(s.id) {
                        Ok(block) => Some(block),
                        Err(e) => {
                            // An incomplete put is not kept.
                            self.node.uploads.discard(s.id);
                            return self.reply(s.req_id, Body::Error(e.to_proto()));
                        }
                    }
                } else {
                    self.buffers.lock().unwrap().remove(&s.id)
                };
                let result = match block {
                    // A segment is sealed first: nobody writes it from then on
                    // (refused while the driver still maps it writable; the
                    // put fails and its buffer is freed).
                    Some(block) => block
                        .segment()
                        .map_or(Ok(()), |segment| segment.seal())
                        .map_err(|e| {
                            ReefError::new(
                                e.code,
                                format!("sealing object {:#x}: {}", s.id, e.message),
                            )
                        })
                        .and_then(|()| {
                            self.node.store().insert_put(
                                s.id,
                                Arc::new(Data::Arena(block)),
                                1,
                                &self.tenant,
                            )
                        }),
                    None => Err(ReefError::new(
                        ErrorCode::BadArgument,
                        format!("no buffer was created for object {:#x}", s.id),
                    )),
                };
                if result.is_ok() {
                    self.made(s.id);
                    self.hold(s.id);
                }
                self.reply_result(s.req_id, result.map(|()| Body::Ok(pb::Empty {})));
            }
            Op::Release(r) => {
                let mut held = self.held.lock().unwrap();
                let mut streams = self.streams.lock().unwrap();
                let mut charges = self.charges.lock().unwrap();
                let mut buffers = self.buffers.lock().unwrap();
                for id in r.ids {
                    charges.remove(&id);
                    // A put given up before its seal.
                    buffers.remove(&id);
                    // A streamed put given up before its seal.
                    if streams.remove(&id) {
                        self.node.uploads.discard(id);
                    }
                    if held.remove(&id) {
                        self.node.store().release(id);
                    }
                }
            }
            Op::Unpin(u) => {
                let mut pins = self.pins.lock().unwrap();
                for id in u.ids {
                    if let Some(v) = pins.get_mut(&id) {
                        v.pop();
                        if v.is_empty() {
                            pins.remove(&id);
                        }
                    }
                }
            }
            Op::Cancel(c) => {
                let id = c.id;
                self.when_allowed(
                    vec![id],
                    move |this| {
                        this.node.tasks.table().stop(id, StopReason::Cancelled);
                    },
                    |_, _| {},
                );
            }
            Op::Logs(l) => {
                // From this node's log files, or the node that ran the call.
                let viewer = super::state::scope::Viewer::tenant(self.tenant.clone());
                self.answer_later(|this| async move {
                    let result = super::state::logs::whole_call(&this.node, &viewer, l.id).await;
                    this.reply_result(l.req_id, result.map(Body::Logs));
                });
            }
            Op::LookupActor(l) => self.answer_later(|this| async move {
                let result = this.node.actors.lookup(&this.tenant, &l.name).await;
                this.reply_result(
                    l.req_id,
                    result.map(|actor_id| Body::Actor(pb::ActorReply { actor_id })),
                );
            }),
            Op::KillActor(k) => self.answer_later(|this| async move {
                let result = this
                    .node
                    .actors
                    .kill(k.actor_id, this.caller().as_ref())
                    .await;
                this.reply_result(k.req_id, result.map(|()| Body::Ok(pb::Empty {})));
            }),
        }
    }

    /// Creates an actor whose object arguments the session may use; the
    /// reply waits for the placement (a taken name, an infeasible actor
    /// fail the create itself).
    async fn create_actor(self: &Arc<Self>, c: pb::CreateActor) {
        let ids: Vec<ObjectId> = c
            .args
            .iter()
            .filter_map(|a| match a.kind {
                Some(pb::arg::Kind::Object(id)) => Some(id),
                _ => None,
            })
            .collect();
        if let Err(arg) = self.check(&ids).await {
            let e = ReefError::unknown_object(arg);
            return self.reply(c.req_id, Body::Error(e.to_proto()));
        }
        let created = args(c.args).and_then(|a| {
            self.node.actors.create(ActorSpec {
                module: c.module,
                class: c.class,
                args: a,
                name: Some(c.name),
                options: actor_options(c.options),
                owner: Some(self.prefix),
                strategy: Strategy::from_proto(c.strategy.as_ref()),
                lifecycle: Lifecycle::from_proto(c.lifecycle),
                tenant: self.tenant.clone(),
            })
        });
        let result = when_placed(created).await;
        self.reply_result(
            c.req_id,
            result.map(|actor_id| Body::Actor(pb::ActorReply { actor_id })),
        );
    }

    /// Lets tenant `to` use `ids` (objects the session may use).
    async fn share(&self, ids: Vec<ObjectId>, to: &str) -> ReefResult<()> {
        reef_core::tenant::validate_name(to)
            .map_err(|e| ReefError::new(ErrorCode::BadArgument, e))?;
        let to = TenantId::new(to);
        // Only a tenant the cluster has (an object's list of tenants is
        // bounded: made-up names must not fill it). A tenant added a moment
        // ago reaches this node with the next view: waited for, briefly.
        let known = |view: &Arc<pb::ClusterView>| {
            view.version == 0
                || view
                    .principals
                    .iter()
                    .any(|p| !p.admin && TenantId::from_wire(&p.tenant) == to)
        };
        let deadline = std::time::Instant::now() + NEW_TENANT_WAIT;
        if !self.node.cluster.view_until(deadline, known).await {
            return Err(ReefError::new(
                ErrorCode::BadArgument,
                format!("cannot share with tenant {:?}: no such tenant", to.as_str()),
            ));
        }
        let from = self.restricted.then_some(&self.tenant);
        for id in ids {
            self.node.objects.share(id, from, &to).await?;
        }
        Ok(())
    }

    /// Another node's object not held here yet (passed on by id, see
    /// `share`): a local entry, resolved by asking its owner, held until
    /// the driver releases its handle.
    fn hold_foreign(&self, id: ObjectId) {
        if self.node.objects.owns(id) || self.held.lock().unwrap().contains(&id) {
            return;
        }
        if !self.node.store().contains(id) && self.node.objects.hold(id).is_ok() {
            self.hold(id);
        }
    }

    /// Who this session's driver is on its raw connections.
    fn raw_caller(&self) -> reef_core::Caller {
        match self.caller() {
            Some(tenant) => reef_core::Caller::Tenant(tenant),
            None => reef_core::Caller::Admin,
        }
    }

    /// Who calls an actor from this session: its tenant, or anyone (admin).
    fn caller(&self) -> Option<TenantId> {
        self.restricted.then(|| self.tenant.clone())
    }

    async fn get(&self, g: pb::Get) {
        let fetch = async {
            let mut values = Vec::with_capacity(g.ids.len());
            for id in &g.ids {
                let fetched = match self.check(&[*id]).await {
                    Ok(()) => {
                        self.hold_foreign(*id);
                        self.node.objects.fetch(*id).await
                    }
                    Err(id) => Err(ReefError::unknown_object(id)),
                };
                let value = match fetched {
                    Ok(data) => self.object_value(*id, data, g.segments, g.stream_threshold),
                    Err(e) => pb::object_value::Value::Error(e.to_proto()),
                };
                values.push(pb::ObjectValue {
                    id: *id,
                    value: Some(value),
                });
            }
            values
        };
        let result = if g.timeout_ms == 0 {
            Ok(fetch.await)
        } else {
            tokio::time::timeout(Duration::from_millis(g.timeout_ms), fetch)
                .await
                .map_err(|_| {
                    ReefError::new(
                        ErrorCode::Timeout,
                        format!(
                            "get of {} objects timed out after {} ms",
                            g.ids.len(),
                            g.timeout_ms
                        ),
                    )
                })
        };
        self.reply_result(
            g.req_id,
            result.map(|values| Body::Get(pb::GetReply { values })),
        );
    }

    fn object_value(
        &self,
        id: ObjectId,
        data: Arc<Data>,
        segments: bool,
        stream_threshold: u64,
    ) -> pb::object_value::Value {
        match &*data {
            // A same-machine driver maps a segment holding only this object.
            Data::Arena(block) if segments => {
                let len = block.len();
                if block.segment().is_some() {
                    self.pin(id, data.clone());
                    return pb::object_value::Value::Segment(len);
                }
                // An object of the arena (a put copied in, a task's result,
                // a restored spill) moves once into a sealed segment; later
                // gets map that segment.
                match self.node.store().promote_to_segment(id, &data) {
                    Ok(moved) => {
                        self.pin(id, moved);
                        pb::object_value::Value::Segment(len)
                    }
                    // No room for the copy (e.g. STORE_FULL while every
                    // object is pinned): as a get that cannot restore fails.
                    Err(e) => pb::object_value::Value::Error(e.to_proto()),
                }
            }
            // A remote driver pulls large objects over raw connections.
            data_ref if stream_threshold > 0 && data_ref.len() >= stream_threshold => {
                let len = data_ref.len();
                self.pin(id, data.clone());
                pb::object_value::Value::Streamed(len)
            }
            // Heap objects are `Bytes`: handed to the reply without a copy.
            Data::Inline(bytes) => pb::object_value::Value::Inline(bytes.clone()),
            Data::Arena(block) => {
                pb::object_value::Value::Inline(Bytes::copy_from_slice(block.as_slice()))
            }
        }
    }

    /// Pinned (no spill, no reuse) until the driver has read it (`Unpin`).
    fn pin(&self, id: ObjectId, data: Arc<Data>) {
        self.pins.lock().unwrap().entry(id).or_default().push(data);
    }

    /// A put of `len` bytes whose bytes the node copies out of the driver's
    /// memory at `addr` (`CreateBuffer.copy_from`) into a block of the
    /// arena: the driver never maps the arena, and the bytes are copied once.
    async fn copy_in(self: &Arc<Self>, id: ObjectId, addr: u64, len: u64) -> ReefResult<()> {
        let peer = self.peer.lock().unwrap().clone().ok_or_else(|| {
            ReefError::new(
                ErrorCode::BadArgument,
                "copy_from needs the session's descriptor connection (Hello.fd_socket)",
            )
        })?;
        self.check_own_id(id)?;
        let charge = self.charge_bytes(len)?;
        let block = self.node.store().allocate_for(len, Some(&self.tenant))?;
        let block = tokio::task::spawn_blocking(move || {
            // SAFETY: the block is new and ours alone until stored below.
            peer.read(addr, unsafe { block.as_mut_slice() })?;
            Ok::<_, ReefError>(block)
        })
        .await
        .map_err(ReefError::internal)??;
        self.node
            .store()
            .insert_put(id, Arc::new(Data::Arena(block)), 1, &self.tenant)?;
        self.keep_charge(id, charge);
        self.made(id);
        self.hold(id);
        Ok(())
    }

    async fn wait(&self, w: pb::Wait) {
        let wanted = (w.num_returns as usize).min(w.ids.len());
        let mut ready = Vec::new();
        let mut pending = FuturesUnordered::new();
        for id in &w.ids {
            let id = *id;
            let node = &self.node;
            pending.push(async move {
                // Another tenant's object is ready at once, as an unknown one is.
                if self.check(&[id]).await.is_ok() {
                    let _ = node.store().wait_sealed(id).await;
                }
                id
            });
        }
        let collect = async {
            while ready.len() < wanted {
                match pending.next().await {
                    Some(id) => ready.push(id),
                    None => break,
                }
            }
        };
        if w.timeout_ms == 0 {
            collect.await;
        } else {
            let _ = tokio::time::timeout(Duration::from_millis(w.timeout_ms), collect).await;
        }
        // Report ready ids in the order they were asked for.
        let order: HashMap<u64, usize> = w.ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        ready.sort_by_key(|id| order[id]);
        self.reply(w.req_id, Body::Wait(pb::WaitReply { ready }));
    }

    /// The driver left: its tasks fail, its anonymous actors die, its objects
    /// and pins are released.
    pub fn close(&self) {
        {
            // Held while `held` is drained below: a later `hold` sees it.
            let mut deferred = self.deferred.lock().unwrap();
            deferred.closed = true;
            deferred.queue.clear();
        }
        self.deferred_room.notify_waiters();
        self.node
            .tasks
            .table()
            .stop_all(Some(self.prefix), StopReason::OwnerDied);
        self.node.actors.owner_left(self.prefix);
        for id in self.held.lock().unwrap().drain() {
            self.node.store().release(id);
        }
        self.pins.lock().unwrap().clear();
        self.buffers.lock().unwrap().clear();
        self.charges.lock().unwrap().clear();
        for id in self.streams.lock().unwrap().drain() {
            self.node.uploads.discard(id);
        }
        self.fds.unregister(self.prefix);
        self.job.end();
        self.slot.lock().unwrap().take();
        tracing::debug!(session = self.prefix, "driver session closed");
    }
}

impl super::fds::FdSession for Session {
    /// The driver's process, as its descriptor connection found it: where
    /// `CreateBuffer.copy_from` reads.
    fn set_peer(&self, peer: Arc<super::fds::Peer>) {
        *self.peer.lock().unwrap() = Some(peer);
    }

    /// A descriptor of this session's segment `id` for its driver (see
    /// `rpc::fds`): the buffer of a put it created and has not sealed
    /// (`KIND_BUFFER`), or a sealed object one of its gets answered as a
    /// segment and it has not unpinned (`KIND_READ`). Nothing else: not
    /// another session's, not an object this session did not get.
    fn segment_fd(&self, kind: u8, id: ObjectId) -> ReefResult<std::os::fd::OwnedFd> {
        use reef_core::segments::{KIND_BUFFER, KIND_READ};
        let dup = |segment: &Segment| {
            rustix::io::fcntl_dupfd_cloexec(segment.fd(), 0)
                .map_err(|e| ReefError::internal(format!("duplicating a segment: {e}")))
        };
        if self.is_closed() {
            return Err(ReefError::new(ErrorCode::Cancelled, "the session ended"));
        }
        match kind {
            KIND_BUFFER => {
                let buffers = self.buffers.lock().unwrap();
                match buffers.get(&id).and_then(|b| b.segment()) {
                    Some(segment) => dup(segment),
                    None => Err(ReefError::new(
                        ErrorCode::BadArgument,
                        format!("this session has no unsealed buffer for object {id:#x}"),
                    )),
                }
            }
            KIND_READ => {
                let pins = self.pins.lock().unwrap();
                let segment = pins
                    .get(&id)
                    .and_then(|v| v.last())
                    .and_then(|d| match &**d {
                        Data::Arena(block) => block.segment().filter(|s| s.is_sealed()),
                        Data::Inline(_) => None,
                    });
                match segment {
                    Some(segment) => dup(segment),
                    None => Err(ReefError::unknown_object(id)),
                }
            }
            other => Err(ReefError::new(
                ErrorCode::BadArgument,
                format!("unknown descriptor request kind {other}"),
            )),
        }
    }
}
