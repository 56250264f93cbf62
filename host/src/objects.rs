//! The object directory: where every object this node knows lives, and the
//! one way to read, hold, fetch or free one.
//!
//! * **Local objects** are in the [`ObjectStore`] (arena or heap).
//! * **Ownership.** Objects are owner-based, as in Ray: the node whose index
//!   is in an id (see `ids`) is the object's owner. It knows whether the
//!   object is ready and which nodes hold a copy (`copies`); any node asks
//!   the owner (`Peer.Locate`) and pulls from a holder (`transfer`) into its
//!   own arena, tells the owner it holds a copy (`AddLocation`) and serves
//!   it to its guests zero-copy. Concurrent needs of one object share one
//!   pull. When the owner frees an object, it tells every holder (`Free`).
//! * **Results produced elsewhere.** A task or actor call forwarded to
//!   another node leaves its result pending here with a [`Forwarded`]
//!   record; the other node reports the result (`ObjectsReady`): small
//!   results come back inline, large ones stay where they were made and the
//!   owner records the holder. Should that node die first, an actor call's
//!   result fails with NODE_DIED; a task's failed attempt (that node died,
//!   or reported a failure) goes back to the task service, which retries or
//!   fails it (see `tasks`).
//! * **Lost objects.** When every copy of a result is gone (its holders
//!   died, or a pull from each failed), the owner rebuilds it from its
//!   lineage (see `lineage`): the entry goes back to pending and the task
//!   that made it runs again through the task service ([`Rebuild`]), with
//!   its own lost or freed arguments rebuilt the same way when it needs
//!   them. Another node that finds an object lost asks its owner again.

use crate::fastmap::{FastMap, FastSet};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reef_core::TenantId;
use reef_proto as pb;

use crate::cluster::{alive_by_index, Membership};
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::guest::types::{Arg, ObjectRef};
use crate::ids::{object_id, owner_index, prefix};
use crate::lineage::Lineage;
use crate::owners::{self, Owners, Shared};
use crate::placement::ArgumentBytes;
use crate::spec::{object_ids, ArgSpec, Attempt, Call, FailedAttempt, TaskSpec};
use crate::store::{Data, Located, ObjectId, ObjectStore, Resolved};
use crate::transfer::Puller;

/// How long a node waits for an object's owner to say who may use it.
const ACCESS_WAIT: Duration = Duration::from_secs(10);
/// How long a result waits for its owner to appear in this node's view
/// (see `ObjectDirectory::when_owner_known`).
const OWNER_WAIT: Duration = Duration::from_secs(10);

/// A task or actor call this node forwarded, until its result is reported.
pub struct Forwarded {
    pub node_id: String,
    /// What runs there, for errors ("task `f`", "a call of `Counter.add`").
    pub what: String,
    /// For a task: the attempt running there, to run it again should it
    /// fail (and for `host status`).
    pub task: Option<Box<Attempt>>,
    /// Object arguments held here until the result comes.
    pub args: Vec<ArgSpec>,
    /// For an actor call: the actor and the call, for the actor manager to
    /// retry or fail should the actor's node die.
    pub actor_call: Option<(u64, String, u32, Option<TenantId>)>,
}

impl Forwarded {
    /// The task attempt running there (0 for an actor call).
    fn attempt(&self) -> u32 {
        self.task.as_ref().map_or(0, |a| a.number)
    }
}

/// An actor call whose actor's node died before it answered (its
/// arguments still held, its result pending).
pub struct LostCall {
    pub actor: u64,
    pub call: Call,
}

/// Runs a task again to rebuild its lost result (the task service).
pub trait Rebuild: Send + Sync {
    /// Submits `spec` (owned here, its result pending here, a reference
    /// held on each object argument) as a fresh attempt; its result is
    /// sealed like any task's.
    fn rebuild(&self, spec: TaskSpec);
}

/// How long a node other than the owner keeps asking the owner about an
/// object whose holders it could not reach (the owner may not know yet
/// that they died: that takes the node timeout).
const ASK_OWNER_FOR: Duration = Duration::from_secs(60);

pub struct ObjectDirectory {
    store: Arc<ObjectStore>,
    /// Owner side: the specs of finished tasks, to rebuild lost results.
    lineage: Lineage,
    /// The task service, which runs tasks again (set once at start).
    rebuilder: OnceLock<Weak<dyn Rebuild>>,
    cluster: Arc<Membership>,
    /// Pulls objects from other nodes (absent on a node without a token).
    puller: Option<Puller>,
    /// Counter of the ids the node allocates itself (slot 0).
    next_object: AtomicU64,
    /// Owner side: nodes other than this one holding a copy of our objects.
    copies: Mutex<FastMap<ObjectId, Vec<String>>>,
    /// Owner side: results being produced on another node.
    forwarded: Mutex<FastMap<ObjectId, Forwarded>>,
    /// Producer side: the attempt number of each other node's task result
    /// being made here, sent with the result (the owner ignores a stale one).
    attempts: Mutex<FastMap<ObjectId, u32>>,
    /// Owner side: the tenants that may use each object.
    owners: Owners,
}

impl ObjectDirectory {
    pub fn new(
        store: Arc<ObjectStore>,
        cluster: Arc<Membership>,
        puller: Option<Puller>,
        lineage: Lineage,
    ) -> Self {
        ObjectDirectory {
            store,
            lineage,
            rebuilder: OnceLock::new(),
            cluster,
            puller,
            next_object: AtomicU64::new(1),
            copies: Mutex::default(),
            forwarded: Mutex::default(),
            attempts: Mutex::default(),
            owners: Owners::default(),
        }
    }

    /// The tenants that may use the objects owned here.
    pub fn owners(&self) -> &Owners {
        &self.owners
    }

    /// Whether `tenant` may use object `id`, if this node can tell without
    /// asking another: recorded here, or ours and so unknown (`false`);
    /// `None` for another node's object (see [`ObjectDirectory::may_use`]).
    pub fn may_use_now(&self, id: ObjectId, tenant: &TenantId) -> Option<bool> {
        match self.owners.allows(id, tenant) {
            Some(allowed) => Some(allowed),
            None if self.owns(id) || !self.cluster.is_clustered() => Some(false),
            None => None,
        }
    }

    /// Whether `tenant` may use object `id`; another node's object is
    /// asked of its owner (`Peer.ObjectAccess`). Unreachable owner: no.
    pub async fn may_use(&self, id: ObjectId, tenant: &TenantId) -> bool {
        if let Some(allowed) = self.may_use_now(id, tenant) {
            return allowed;
        }
        let request = pb::ObjectAccessRequest {
            ids: vec![id],
            tenant: tenant.to_wire(),
            unrestricted: false,
            share_with: String::new(),
        };
        match self.ask_access(id, request).await {
            Ok(allowed) => allowed.contains(&id),
            Err(e) => {
                tracing::debug!("asking the owner of object {id:#x}: {e}");
                false
            }
        }
    }

    /// Lets tenant `to` use object `id`, which `from` may use (any object
    /// known to its owner when `from` is `None`, the admin). Another node's
    /// object is shared by its owner. An object `from` may not use fails
    /// as an unknown one does.
    pub async fn share(
        &self,
        id: ObjectId,
        from: Option<&TenantId>,
        to: &TenantId,
    ) -> ReefResult<()> {
        let allowed = match from {
            Some(tenant) => self.owners.allows(id, tenant),
            None => self.owners.allows(id, to).map(|_| true),
        };
        match allowed {
            Some(true) => {
                return match self.owners.share(id, to) {
                    Shared::Full => Err(ReefError::new(
                        ErrorCode::QuotaExceeded,
                        format!(
                            "object {id:#x} is shared with {} tenants already, the most one \
                             object may be",
                            owners::MAX_TENANTS
                        ),
                    )),
                    _ => Ok(()),
                };
            }
            Some(false) => return Err(ReefError::unknown_object(id)),
            None if self.owns(id) || !self.cluster.is_clustered() => {
                return Err(ReefError::unknown_object(id))
            }
            None => {}
        }
        let request = pb::ObjectAccessRequest {
            ids: vec![id],
            tenant: from.map(TenantId::to_wire).unwrap_or_default(),
            unrestricted: from.is_none(),
            share_with: to.as_str().to_string(),
        };
        if self.ask_access(id, request).await?.contains(&id) {
            Ok(())
        } else {
            Err(ReefError::unknown_object(id))
        }
    }

    /// Owner side of `Peer.ObjectAccess`: which of `ids` the asker may use
    /// (granting `share_with` those when it names a tenant).
    pub fn answer_access(&self, request: pb::ObjectAccessRequest) -> Vec<ObjectId> {
        let tenant = TenantId::from_wire(&request.tenant);
        let share_with =
            (!request.share_with.is_empty()).then(|| TenantId::new(request.share_with));
        request
            .ids
            .into_iter()
            .filter(|id| self.owns(*id))
            .filter(|id| match request.unrestricted {
                true => self.owners.allows(*id, &tenant).is_some(),
                false => self.owners.allows(*id, &tenant) == Some(true),
            })
            // One whose tenant list is full is not shared (the asker hears
            // it as unknown).
            .filter(|id| {
                share_with
                    .as_ref()
                    .is_none_or(|to| self.owners.share(*id, to) == Shared::Yes)
            })
            .collect()
    }

    /// Asks the owner of `id` (another node) `request`.
    async fn ask_access(
        &self,
        id: ObjectId,
        request: pb::ObjectAccessRequest,
    ) -> ReefResult<Vec<ObjectId>> {
        let owner = self
            .cluster
            .node_by_index(owner_index(id))
            .ok_or_else(|| ReefError::unknown_object(id))?;
        let mut client = self.cluster.peer(&owner.node_id)?.client.clone();
        // The asking session's later ops wait for this answer: bounded.
        let reply = tokio::time::timeout(ACCESS_WAIT, client.object_access(request))
            .await
            .map_err(|_| {
                ReefError::new(
                    ErrorCode::Timeout,
                    format!("asking who may use object {id:#x}: no answer in {ACCESS_WAIT:?}"),
                )
            })?
            .map_err(|s| {
                crate::cluster::rpc_error(&format!("asking who may use object {id:#x}"), s)
            })?;
        Ok(reply.into_inner().allowed)
    }

    /// Gives the directory the service that runs tasks again (once, at start).
    pub fn set_rebuilder(&self, rebuilder: Weak<dyn Rebuild>) {
        let _ = self.rebuilder.set(rebuilder);
    }

    pub fn lineage(&self) -> &Lineage {
        &self.lineage
    }

    /// Owner side: a task whose result `spec.return_id` is owned here was
    /// submitted; keep what it takes to run it again (see `lineage`).
    pub fn keep_lineage(&self, spec: TaskSpec) {
        let id = spec.return_id;
        if !self.lineage.enabled() || !self.owns(id) {
            return;
        }
        self.lineage.record(spec);
        // Freed meanwhile: the free listener may have run first.
        if !self.store.contains(id) {
            self.lineage.on_freed(id);
        }
    }

    /// The local store (objects held here, in the arena or on the heap).
    pub fn store(&self) -> &Arc<ObjectStore> {
        &self.store
    }

    pub fn puller(&self) -> Option<&Puller> {
        self.puller.as_ref()
    }

    /// A fresh id for an object the node creates itself.
    pub fn new_object_id(&self) -> ObjectId {
        let counter = self.next_object.fetch_add(1, Ordering::Relaxed);
        object_id(prefix(self.cluster.index(), 0), counter)
    }

    /// Whether this node owns the object id (it tracks the object's copies).
    pub fn owns(&self, id: ObjectId) -> bool {
        owner_index(id) == self.cluster.index()
    }

    fn node_id(&self) -> &str {
        self.cluster.node_id()
    }

    /// Seals a result here and, when another node owns it, reports it there.
    pub fn seal(self: &Arc<Self>, id: ObjectId, value: Resolved) {
        self.store.resolve(id, value);
        self.report_if_foreign(id);
    }

    /// Seals a call's result with an error and lets its arguments go.
    pub fn fail(self: &Arc<Self>, id: ObjectId, e: ReefError, args: &[ArgSpec]) {
        self.seal(id, Err(e));
        self.release_args(args);
    }

    /// Takes a reference on every object argument for as long as the call is pending.
    pub fn hold_args(self: &Arc<Self>, args: &[ArgSpec]) -> ReefResult<()> {
        let ids: Vec<ObjectId> = object_ids(args).collect();
        for (i, id) in ids.iter().enumerate() {
            if let Err(e) = self.hold(*id) {
                for held in &ids[..i] {
                    self.store.release(*held);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    pub fn release_args(&self, args: &[ArgSpec]) {
        for id in object_ids(args) {
            self.store.release(id);
        }
    }

    /// Waits for every object argument and turns the arguments into WIT
    /// values; an argument whose task failed fails this call. Also returns
    /// the ids the guest may read.
    pub async fn resolve_args(
        self: &Arc<Self>,
        args: &[ArgSpec],
    ) -> ReefResult<(Vec<Arg>, FastSet<ObjectId>)> {
        let mut out = Vec::with_capacity(args.len());
        let mut allowed = FastSet::default();
        for (i, arg) in args.iter().enumerate() {
            match arg {
                ArgSpec::Inline(b) => out.push(Arg::Inline(b.to_vec())),
                ArgSpec::Object(id) => {
                    // Boxed: a queued task's future keeps this state (see `Tasks::run`).
                    let data = Box::pin(self.fetch(*id)).await.map_err(|e| {
                        ReefError::new(
                            ErrorCode::DependencyFailed,
                            format!("argument {i} (object {id:#x}) failed: {e}"),
                        )
                    })?;
                    allowed.insert(*id);
                    out.push(Arg::Object(ObjectRef {
                        id: *id,
                        size: data.len(),
                    }));
                }
            }
        }
        Ok((out, allowed))
    }

    /// Bytes of the object arguments held here, and the other node holding
    /// the most (as far as this node knows: its own objects' copies).
    pub fn argument_bytes(&self, args: &[ArgSpec]) -> ArgumentBytes {
        let mut here = 0;
        let mut elsewhere: HashMap<String, u64> = HashMap::new();
        for id in object_ids(args) {
            if let Some(size) = self.store.local_size(id) {
                here += size;
            } else if let Some((size, holders)) = self.store.remote_info(id) {
                for h in holders {
                    *elsewhere.entry(h).or_default() += size;
                }
            }
        }
        ArgumentBytes {
            here,
            best_elsewhere: elsewhere.into_iter().max_by_key(|(_, b)| *b),
        }
    }

    /// Producer side: attempt `number` of the task making another node's
    /// object `id` runs here (its report names it).
    pub fn note_attempt(&self, id: ObjectId, number: u32) {
        self.attempts.lock().unwrap().insert(id, number);
    }

    /// Producer side: attempt of `id` sent on to another node, which
    /// reports it to the owner itself.
    pub fn forget_attempt(&self, id: ObjectId) {
        self.take_attempt(id);
    }

    /// The attempt that made `id` here, for its report (0: not a task).
    fn take_attempt(&self, id: ObjectId) -> u32 {
        self.attempts.lock().unwrap().remove(&id).unwrap_or(0)
    }

    /// Records work whose result `id` (pending here) another node produces.
    pub fn note_forwarded(&self, id: ObjectId, forwarded: Forwarded) {
        self.forwarded.lock().unwrap().insert(id, forwarded);
    }

    /// Whether work this node forwarded to make `id` has not reported yet.
    pub fn is_forwarded(&self, id: ObjectId) -> bool {
        self.forwarded.lock().unwrap().contains_key(&id)
    }

    /// Forgets a forward that could not be sent; its arguments stay held.
    pub fn forget_forwarded(&self, id: ObjectId) {
        self.forwarded.lock().unwrap().remove(&id);
    }

    /// Forwarded tasks still running elsewhere: (result id, module,
    /// function, attempt, tenant).
    pub fn forwarded_tasks(&self) -> Vec<(ObjectId, String, String, u32, reef_core::TenantId)> {
        self.forwarded
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(id, f)| {
                let a = f.task.as_ref()?;
                Some((
                    *id,
                    a.spec.module.clone(),
                    a.spec.function.clone(),
                    a.number,
                    a.spec.tenant.clone(),
                ))
            })
            .collect()
    }

    /// Seals a failed task's result where its owner reads it. On the owner,
    /// here. Elsewhere the owner is told and the local entry let go (the
    /// caller's reference): the owner may still retry the task, so a task
    /// here waiting for the result learns the outcome from the owner.
    pub fn seal_failure(self: &Arc<Self>, id: ObjectId, e: ReefError) {
        if self.owns(id) || !self.cluster.is_clustered() {
            return self.store.resolve(id, Err(e));
        }
        self.report_failure(id, e);
        self.store.release(id);
    }

    /// Tells the owner of `id` that the work producing it failed here.
    fn report_failure(self: &Arc<Self>, id: ObjectId, e: ReefError) {
        let owner = owner_index(id);
        let Some(owner) = self.cluster.node_by_index(owner) else {
            let report = move |this: &Arc<Self>| this.report_failure(id, e);
            return self.when_owner_known(id, owner, report, move |this| {
                this.take_attempt(id);
            });
        };
        let attempt = self.take_attempt(id);
        match self.cluster.peer(&owner.node_id) {
            Ok(link) => link.report(pb::ReadyObject {
                id,
                size: 0,
                result: Some(pb::ready_object::Result::Error(e.to_proto())),
                attempt,
            }),
            Err(e) => tracing::warn!("reporting result {id:#x}: {e}"),
        }
    }

    /// After a result is sealed here: if another node owns its id, tell it.
    /// Small results and errors travel inline and the local entry goes; a
    /// large result stays here (its reference is the owner's, dropped on `Free`).
    pub fn report_if_foreign(self: &Arc<Self>, id: ObjectId) {
        if self.owns(id) || !self.cluster.is_clustered() {
            return;
        }
        let owner = owner_index(id);
        let Some(owner) = self.cluster.node_by_index(owner) else {
            let report = move |this: &Arc<Self>| this.report_if_foreign(id);
            return self.when_owner_known(id, owner, report, move |this| {
                this.take_attempt(id);
                this.store.release(id);
            });
        };
        // Callers seal the result first, so this normally answers at once.
        let Some(located) = self.store.located_now(id) else {
            let this = self.clone();
            tokio::spawn(async move {
                let _ = this.store.wait_sealed(id).await;
                this.report_if_foreign(id);
            });
            return;
        };
        let result = match located {
            Ok(Located::Local(data)) if data.len() < self.store.inline_threshold() => {
                pb::ready_object::Result::Inline(inline_bytes(&data))
            }
            Ok(_) => pb::ready_object::Result::HolderNodeId(self.node_id().to_string()),
            Err(e) => pb::ready_object::Result::Error(e.to_proto()),
        };
        let size = self.store.local_size(id).unwrap_or(0);
        if !matches!(result, pb::ready_object::Result::HolderNodeId(_)) {
            self.store.release(id);
        }
        let attempt = self.take_attempt(id);
        match self.cluster.peer(&owner.node_id) {
            Ok(link) => link.report(pb::ReadyObject {
                id,
                size,
                result: Some(result),
                attempt,
            }),
            Err(e) => tracing::warn!("reporting result {id:#x}: {e}"),
        }
    }

    /// `report` again once node `index` (the owner of result `id`) is in
    /// this node's view. An owner missing from the view may have joined a
    /// moment ago (a restarted head forwards work before this node's view
    /// has it); one still missing after `OWNER_WAIT` is gone: `gone` lets
    /// the result go.
    fn when_owner_known(
        self: &Arc<Self>,
        id: ObjectId,
        index: u32,
        report: impl FnOnce(&Arc<Self>) + Send + 'static,
        gone: impl FnOnce(&Arc<Self>) + Send + 'static,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            let deadline = std::time::Instant::now() + OWNER_WAIT;
            let known = |view: &Arc<pb::ClusterView>| alive_by_index(view, index).is_some();
            if this.cluster.view_until(deadline, known).await {
                return report(&this);
            }
            tracing::warn!("result {id:#x}: its owner (node index {index}) is gone");
            gone(&this);
        });
    }

    /// Owner side: results of forwarded work. A task's failed attempt is
    /// returned (its arguments still held) for the task service to retry or
    /// fail. A report of a task attempt that is no longer the one running
    /// (its node was declared dead and the task run again) is stale: it
    /// neither settles the task nor lets its arguments go.
    pub fn on_objects_ready(&self, objects: Vec<pb::ReadyObject>) -> Vec<FailedAttempt> {
        let mut failed = Vec::new();
        for object in objects {
            let id = object.id;
            let forwarded = {
                let mut forwarded = self.forwarded.lock().unwrap();
                let current = forwarded.get(&id).map(Forwarded::attempt);
                match current {
                    Some(n) if object.attempt == 0 || n == 0 || n == object.attempt => {
                        forwarded.remove(&id)
                    }
                    // A task attempt, but not the one in flight (or none is).
                    _ if object.attempt != 0 && self.owns(id) => {
                        drop(forwarded);
                        self.drop_stale_report(object, current);
                        continue;
                    }
                    _ => None,
                }
            };
            if let (Some(pb::ready_object::Result::Error(e)), Some(f)) =
                (&object.result, &forwarded)
            {
                if let Some(attempt) = &f.task {
                    failed.push(FailedAttempt {
                        attempt: (**attempt).clone(),
                        error: ReefError::from_proto(e.clone()),
                        node_id: f.node_id.clone(),
                    });
                    continue;
                }
            }
            match &forwarded {
                Some(f) => self.release_args(&f.args),
                // The failure of an attempt already settled (its node was
                // declared dead and the task retried): the retry decides.
                None if matches!(object.result, Some(pb::ready_object::Result::Error(_)))
                    && self.owns(id) =>
                {
                    tracing::debug!(
                        "result {id:#x}: a failure reported after its attempt was retried"
                    );
                    continue;
                }
                None => {}
            }
            match object.result {
                Some(pb::ready_object::Result::Inline(bytes)) => {
                    self.store.resolve(id, Ok(Arc::new(Data::Inline(bytes))))
                }
                Some(pb::ready_object::Result::HolderNodeId(holder)) => {
                    self.copies
                        .lock()
                        .unwrap()
                        .entry(id)
                        .or_default()
                        .push(holder.clone());
                    if self.store.contains(id) {
                        self.store.set_remote(id, object.size, vec![holder]);
                    } else {
                        // Freed meanwhile: the holder's copy goes too.
                        self.free_copies(id);
                    }
                }
                Some(pb::ready_object::Result::Error(e)) => {
                    self.store.resolve(id, Err(ReefError::from_proto(e)))
                }
                None => {}
            }
        }
        failed
    }

    /// A report of attempt `object.attempt` while attempt `current` runs
    /// (or none: the task was settled meanwhile). A copy it left on its
    /// holder is freed there (unless that node runs the current attempt,
    /// whose entry has the same id).
    fn drop_stale_report(&self, object: pb::ReadyObject, current: Option<u32>) {
        let id = object.id;
        tracing::debug!(
            result = %format_args!("{id:#x}"),
            attempt = object.attempt,
            current = ?current,
            "stale report ignored"
        );
        let Some(pb::ready_object::Result::HolderNodeId(holder)) = object.result else {
            return;
        };
        let running_there = self
            .forwarded
            .lock()
            .unwrap()
            .get(&id)
            .is_some_and(|f| f.node_id == holder);
        if running_there || self.copies_of(id).contains(&holder) {
            return;
        }
        if let Ok(link) = self.cluster.peer(&holder) {
            let mut client = link.client.clone();
            tokio::spawn(async move {
                let _ = client.free(pb::FreeRequest { ids: vec![id] }).await;
            });
        }
    }

    /// Owner side: where an object is, once it is sealed.
    pub async fn locate_for(self: &Arc<Self>, id: ObjectId, timeout: Duration) -> pb::LocateReply {
        use pb::locate_reply::Result as R;
        let located = tokio::time::timeout(timeout, self.locate_alive(id)).await;
        let (size, result) = match located {
            Err(_) => (
                0,
                R::Error(
                    ReefError::new(ErrorCode::Timeout, format!("object {id:#x} is not ready"))
                        .to_proto(),
                ),
            ),
            Ok(Err(e)) => (0, R::Error(e.to_proto())),
            Ok(Ok(Located::Local(data))) if data.len() < self.store.inline_threshold() => {
                (data.len(), R::Inline(inline_bytes(&data)))
            }
            Ok(Ok(Located::Local(data))) => {
                let mut holders = vec![self.node_id().to_string()];
                holders.extend(self.copies_of(id));
                (data.len(), R::Holders(pb::Holders { node_ids: holders }))
            }
            Ok(Ok(Located::Remote { size, holders })) => {
                (size, R::Holders(pb::Holders { node_ids: holders }))
            }
        };
        pb::LocateReply {
            size,
            result: Some(result),
        }
    }

    /// Owner side: where an object is (every node known to hold a copy),
    /// rebuilding it first when none of them is alive.
    async fn locate_alive(self: &Arc<Self>, id: ObjectId) -> ReefResult<Located> {
        loop {
            match self.store.locate(id).await? {
                Located::Remote { size, holders } => {
                    let all = self.with_copies(id, &holders);
                    if !self.alive_addresses(&all).is_empty() {
                        return Ok(Located::Remote { size, holders: all });
                    }
                    let lost = format!("every node that held it is gone ({all:?})");
                    self.rebuild(id, &holders, &lost);
                }
                located => return Ok(located),
            }
        }
    }

    /// The addresses of the nodes among `holders` that are alive in the view.
    fn alive_addresses(&self, holders: &[String]) -> Vec<String> {
        let view = self.cluster.view();
        holders
            .iter()
            .filter_map(|h| {
                view.nodes
                    .iter()
                    .find(|n| &n.node_id == h && n.state == pb::NodeState::Alive as i32)
                    .map(|n| n.address.clone())
            })
            .collect()
    }

    /// Owner side: every copy of `id` (last seen on `holders`) is lost. Its
    /// entry goes back to pending and its task runs again; when it cannot
    /// (see `Lineage::take_for_rebuild`) the entry fails with OBJECT_LOST.
    /// Nothing happens when another caller got there first.
    fn rebuild(self: &Arc<Self>, id: ObjectId, holders: &[String], lost: &str) {
        if !self.store.reopen(id, holders) {
            return;
        }
        match self.lineage.take_for_rebuild(id, lost) {
            Ok(spec) => {
                tracing::info!(object = %format_args!("{id:#x}"), function = %spec.function, "rebuilding lost object");
                self.resubmit(spec);
            }
            Err(e) => {
                tracing::warn!("{e}");
                self.store.resolve(id, Err(e));
            }
        }
    }

    /// Runs a task again for a lost result, with a reference on each of its
    /// object arguments taken here (so none can be freed between the check
    /// and the run). Arguments freed here since are made again first
    /// (pending entries, their own tasks run again) when their lineage is
    /// kept; else they fail, and so the task.
    fn resubmit(self: &Arc<Self>, spec: TaskSpec) {
        let args: Vec<ObjectId> = object_ids(&spec.args).collect();
        for (i, arg) in args.iter().enumerate() {
            if let Err(e) = self.hold_for_rebuild(*arg) {
                for held in &args[..i] {
                    self.store.release(*held);
                }
                let e = ReefError::new(
                    ErrorCode::DependencyFailed,
                    format!(
                        "rebuilding object {:#x}: argument {arg:#x}: {e}",
                        spec.return_id
                    ),
                );
                return self.store.resolve(spec.return_id, Err(e));
            }
        }
        let rebuilder = self.rebuilder.get().and_then(Weak::upgrade);
        match rebuilder {
            Some(r) => r.rebuild(spec),
            None => {
                self.release_args(&spec.args);
                self.store.resolve(
                    spec.return_id,
                    Err(ReefError::internal("the task service is stopped")),
                )
            }
        }
    }

    /// Takes a reference on an argument of a task run again; one of ours
    /// freed here is made again (see `resubmit`).
    fn hold_for_rebuild(self: &Arc<Self>, arg: ObjectId) -> ReefResult<()> {
        // Twice at most: a concurrent caller may make it again in between.
        for _ in 0..2 {
            if self.store.add_ref(arg).is_ok() {
                return Ok(());
            }
            if !self.owns(arg) {
                return self.hold(arg);
            }
            if self.store.create_pending(arg, 1).is_ok() {
                let lost = "freed here, needed to rebuild another object";
                match self.lineage.take_for_rebuild(arg, lost) {
                    Ok(arg_spec) => self.resubmit(arg_spec),
                    Err(e) => self.store.resolve(arg, Err(e)),
                }
                return Ok(());
            }
        }
        Err(ReefError::unknown_object(arg))
    }

    /// `holders` and the other copies of ours this node knows of.
    fn with_copies(&self, id: ObjectId, holders: &[String]) -> Vec<String> {
        let mut all = holders.to_vec();
        for c in self.copies_of(id) {
            if !all.contains(&c) {
                all.push(c);
            }
        }
        all
    }

    fn copies_of(&self, id: ObjectId) -> Vec<String> {
        self.copies
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .unwrap_or_default()
    }

    /// Owner side: another node holds a copy now.
    pub fn add_location(&self, id: ObjectId, node_id: String) {
        if !self.store.contains(id) {
            return;
        }
        let mut copies = self.copies.lock().unwrap();
        let list = copies.entry(id).or_default();
        if !list.contains(&node_id) {
            list.push(node_id);
        }
    }

    /// Holder side: the owner freed these objects.
    pub fn on_free(&self, ids: Vec<ObjectId>) {
        for id in ids {
            if !self.owns(id) {
                self.store.release(id);
            }
        }
    }

    /// Owner side: an object of ours was freed here: free every copy.
    fn free_copies(&self, id: ObjectId) {
        let Some(holders) = self.copies.lock().unwrap().remove(&id) else {
            return;
        };
        for holder in holders {
            if let Ok(link) = self.cluster.peer(&holder) {
                let mut client = link.client.clone();
                tokio::spawn(async move {
                    let _ = client.free(pb::FreeRequest { ids: vec![id] }).await;
                });
            }
        }
    }

    /// Frees the copies elsewhere of every object of ours freed here (see
    /// `ObjectStore::on_freed`), for as long as the directory lives.
    pub fn start_free_listener(self: &Arc<Self>) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        self.store.on_freed(tx);
        let directory = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(id) = rx.recv().await {
                let Some(directory) = directory.upgrade() else {
                    return;
                };
                // A notice of an earlier life of an entry a rebuild made
                // again meanwhile is stale: the copies recorded since are
                // the new entry's (freed with it).
                if directory.owns(id) && !directory.store.contains(id) {
                    directory.free_copies(id);
                    directory.lineage.on_freed(id);
                }
                if let Some(puller) = &directory.puller {
                    puller.forget(id);
                }
                if !directory.store.contains(id) {
                    directory.owners.forget(id);
                }
            }
        });
    }

    /// A node died: it holds no copies any more, and the work forwarded to
    /// it failed: actor calls fail with NODE_DIED; the tasks' attempts are
    /// returned (their arguments still held) for the task service to retry
    /// or fail.
    pub fn on_node_dead(&self, node_id: &str) -> (Vec<FailedAttempt>, Vec<LostCall>) {
        let lost: Vec<(ObjectId, Forwarded)> = {
            let mut forwarded = self.forwarded.lock().unwrap();
            let ids: Vec<ObjectId> = forwarded
                .iter()
                .filter(|(_, f)| f.node_id == node_id)
                .map(|(id, _)| *id)
                .collect();
            ids.iter()
                .filter_map(|id| forwarded.remove(id).map(|f| (*id, f)))
                .collect()
        };
        let mut failed = Vec::new();
        let mut calls = Vec::new();
        for (id, f) in lost {
            if let Some((actor, method, retries, caller)) = f.actor_call {
                let call = Call {
                    return_id: id,
                    method,
                    args: f.args,
                    retries,
                    caller,
                };
                calls.push(LostCall { actor, call });
                continue;
            }
            let error = ReefError::new(
                ErrorCode::NodeDied,
                format!("node {node_id}, which was running {}, died", f.what),
            );
            match f.task {
                Some(attempt) => failed.push(FailedAttempt {
                    attempt: *attempt,
                    error,
                    node_id: node_id.to_string(),
                }),
                None => {
                    self.store.resolve(id, Err(error));
                    self.release_args(&f.args);
                }
            }
        }
        for holders in self.copies.lock().unwrap().values_mut() {
            holders.retain(|h| h != node_id);
        }
        // In the order they were made (ids grow per caller).
        calls.sort_by_key(|c| c.call.return_id);
        (failed, calls)
    }

    /// Takes a reference on an object for a local user. An object owned by
    /// another node and not known here gets a local entry, resolved by
    /// asking its owner (inline bytes, or where to pull it from).
    pub fn hold(self: &Arc<Self>, id: ObjectId) -> ReefResult<()> {
        if self.store.add_ref(id).is_ok() {
            return Ok(());
        }
        if self.owns(id) || !self.cluster.is_clustered() {
            return Err(ReefError::unknown_object(id));
        }
        let owner = self.cluster.node_by_index(owner_index(id)).ok_or_else(|| {
            ReefError::new(
                ErrorCode::ObjectLost,
                format!(
                    "object {id:#x}: its owner (node index {}) is gone",
                    owner_index(id)
                ),
            )
        })?;
        if self.store.create_pending(id, 1).is_err() {
            // Created by a concurrent caller.
            return self.store.add_ref(id);
        }
        self.ask_owner(id, owner.node_id);
        Ok(())
    }

    /// Resolves the pending local entry of another node's object by asking
    /// its owner (inline bytes, or where to pull it from).
    fn ask_owner(self: &Arc<Self>, id: ObjectId, owner: String) {
        let this = self.clone();
        tokio::spawn(async move {
            let reply = match this.cluster.peer(&owner) {
                Ok(link) => link
                    .locate
                    .clone()
                    .locate(pb::LocateRequest {
                        id,
                        timeout_ms: 0,
                        requester_node_id: this.node_id().to_string(),
                    })
                    .await
                    .map(|r| r.into_inner())
                    .map_err(|s| crate::cluster::rpc_error(&format!("locating object {id:#x}"), s)),
                Err(e) => Err(e),
            };
            use pb::locate_reply::Result as R;
            let store = &this.store;
            match reply.map(|r| (r.size, r.result)) {
                Ok((_, Some(R::Inline(bytes)))) => {
                    store.resolve(id, Ok(Arc::new(Data::Inline(bytes))))
                }
                Ok((size, Some(R::Holders(h)))) => store.set_remote(id, size, h.node_ids),
                Ok((_, Some(R::Error(e)))) => store.resolve(id, Err(ReefError::from_proto(e))),
                Ok((_, None)) => store.resolve(
                    id,
                    Err(ReefError::new(ErrorCode::Internal, "empty locate reply")),
                ),
                Err(e) => store.resolve(id, Err(e)),
            }
        });
    }

    /// An object's bytes here, waiting for it and pulling it from another
    /// node when it lives elsewhere. An object whose every copy is lost is
    /// rebuilt by its owner (see `rebuild`); another node asks the owner again.
    pub async fn fetch(self: &Arc<Self>, id: ObjectId) -> ReefResult<Arc<Data>> {
        let started = Instant::now();
        let mut asked = 0u32;
        loop {
            let (size, holders) = match self.store.locate(id).await? {
                Located::Local(data) => return Ok(data),
                Located::Remote { size, holders } => (size, holders),
            };
            // The owner also knows of copies pulled since (a node's copy
            // outlives the node that made the object).
            let all = self.with_copies(id, &holders);
            let addresses = self.alive_addresses(&all);
            let lost = if addresses.is_empty() {
                ReefError::new(
                    ErrorCode::ObjectLost,
                    format!("object {id:#x}: every node that held it is gone ({all:?})"),
                )
            } else {
                match self.pull(id, size, addresses).await {
                    Ok((data, first)) => {
                        if first {
                            self.note_copy(id);
                        }
                        return Ok(data);
                    }
                    Err(e) if e.code == ErrorCode::ObjectLost => e,
                    Err(e) => return Err(e),
                }
            };
            if self.owns(id) {
                let why = format!("no node that held it answered ({all:?})");
                self.rebuild(id, &holders, &why);
                continue;
            }
            // Another node's object: ask its owner again, which rebuilds it
            // once it sees the holders dead.
            let Some(owner) = self.cluster.node_by_index(owner_index(id)) else {
                return Err(lost);
            };
            if started.elapsed() > ASK_OWNER_FOR {
                return Err(lost);
            }
            if asked > 0 {
                let pause = Duration::from_millis(50 << asked.min(5));
                tokio::time::sleep(pause).await;
            }
            asked += 1;
            if self.store.reopen(id, &holders) {
                self.ask_owner(id, owner.node_id);
            }
        }
    }

    /// After this node pulled a copy of another node's object: keep it as
    /// a cached copy until the owner frees it, and tell the owner.
    fn note_copy(&self, id: ObjectId) {
        if self.owns(id) {
            return;
        }
        let _ = self.store.add_ref(id);
        if let Some(owner) = self.cluster.node_by_index(owner_index(id)) {
            if let Ok(link) = self.cluster.peer(&owner.node_id) {
                let mut client = link.client.clone();
                let me = self.node_id().to_string();
                tokio::spawn(async move {
                    let _ = client
                        .add_location(pb::AddLocationRequest { id, node_id: me })
                        .await;
                });
            }
        }
    }

    /// Pulls an object's bytes from one of `holders` (addresses) into this
    /// node's store (see `transfer`); true for the one caller whose pull
    /// moved the bytes (concurrent callers share it).
    async fn pull(
        &self,
        id: ObjectId,
        size: u64,
        holders: Vec<String>,
    ) -> ReefResult<(Arc<Data>, bool)> {
        let puller = self.puller.as_ref().ok_or_else(|| {
            ReefError::new(
                ErrorCode::Internal,
                "this node cannot pull objects (no token)",
            )
        })?;
        let first = puller.pull_once(id, size, holders).await?;
        match self.store.locate(id).await? {
            Located::Local(data) => Ok((data, first)),
            Located::Remote { .. } => Err(ReefError::internal(format!(
                "object {id:#x} is still remote after a pull"
            ))),
        }
    }
}

fn inline_bytes(data: &Data) -> Bytes {
    match data {
        Data::Inline(b) => b.clone(),
        Data::Arena(_) => Bytes::copy_from_slice(data.as_slice()),
    }
}
