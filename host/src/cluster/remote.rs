//! Work and objects that cross nodes.
//!
//! * A task placed on another node is *forwarded*: this node (the owner of its
//!   result id) keeps the pending result and a `Forwarded` record; the other
//!   node runs it and reports the result (`ObjectsReady`): small results come
//!   back inline, large ones stay where they were made and the owner records
//!   the holder. Should that node die first, the owner fails the result with
//!   NODE_DIED.
//! * A node that needs an object it does not have asks the owner
//!   (`Locate`), then pulls the bytes from a holder (`transfer`) into its own
//!   arena, tells the owner it holds a copy (`AddLocation`) and serves it to
//!   its guests zero-copy. Concurrent needs of one object share one pull.
//! * When the owner frees an object, it tells every holder (`Free`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reef_proto as pb;

use super::placement::Strategy;
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::node::{owner_index, Node};
use crate::store::{Data, Located, ObjectId};
use crate::tasks::{ArgSpec, CallOptions, TaskSpec};

/// A task or actor call this node forwarded, until its result is reported.
pub struct Forwarded {
    pub node_id: String,
    /// What runs there, for errors ("task `f`", "a call of `Counter.add`").
    pub what: String,
    /// Object arguments held here until the result comes.
    pub args: Vec<ArgSpec>,
}

impl Node {
    /// Sends a task (its result already pending here, its arguments held)
    /// to another node.
    pub fn forward_task(self: &Arc<Self>, spec: TaskSpec, to: &pb::NodeView) -> ReefResult<()> {
        let link = self.peer(&to.node_id)?;
        let work = pb::ForwardedWork {
            work: Some(pb::forwarded_work::Work::Task(task_to_proto(&spec))),
            strategy: Some(spec.strategy.to_proto()),
            hops: spec.hops + 1,
        };
        self.tasks.note_forwarded(&spec);
        self.cluster.forwarded.lock().unwrap().insert(
            spec.return_id,
            Forwarded {
                node_id: to.node_id.clone(),
                what: format!("task `{}`", spec.function),
                args: spec.args,
            },
        );
        link.forward(work);
        Ok(())
    }

    /// Work another node forwarded here.
    pub fn accept_forwarded(self: &Arc<Self>, work: pb::ForwardedWork) {
        use pb::forwarded_work::Work;
        let strategy = Strategy::from_proto(work.strategy.as_ref());
        let task = match work.work {
            Some(Work::Task(task)) => task,
            Some(Work::CreateActor(create)) => return self.accept_actor(create, strategy),
            Some(Work::CallActor(call)) => return self.accept_call(call),
            None => return tracing::warn!("empty forwarded work"),
        };
        let spec = match task_from_proto(task, strategy, work.hops) {
            Ok(spec) => spec,
            Err(e) => return tracing::warn!("bad forwarded task: {e}"),
        };
        let node = self.clone();
        if node.registry.get(&spec.module).is_ok() {
            return node.submit_forwarded(spec);
        }
        // First use of a module here: fetch it from the control plane by hash.
        tokio::spawn(async move {
            if let Err(e) = node.fetch_module(&spec.module).await {
                node.store.create_pending(spec.return_id, 1).ok();
                node.store.resolve(spec.return_id, Err(e));
                node.report_if_foreign(spec.return_id);
                return;
            }
            node.submit_forwarded(spec);
        });
    }

    fn submit_forwarded(self: &Arc<Self>, spec: TaskSpec) {
        let id = spec.return_id;
        if let Err(e) = self.submit_task(spec) {
            tracing::warn!("forwarded task {id:#x}: {e}");
        }
    }

    /// Gets a module's bytes from the control plane and registers it here.
    pub async fn fetch_module(self: &Arc<Self>, hash: &str) -> ReefResult<()> {
        let wasm = self
            .cluster
            .gcs()?
            .get_module(hash)
            .await
            .map_err(|s| super::rpc_error(&format!("fetching module {hash}"), s))?;
        let module = self.registry.register(self, wasm.to_vec()).await?;
        if module.hash != hash {
            return Err(ReefError::new(
                ErrorCode::InvalidModule,
                format!(
                    "the control plane returned module {} for {hash}",
                    module.hash
                ),
            ));
        }
        Ok(())
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
            tracing::warn!("result {id:#x}: its owner (node index {owner}) is gone");
            self.store.release(id);
            return;
        };
        // Callers seal the result first, so this normally answers at once.
        let Some(located) = self.store.located_now(id) else {
            let node = self.clone();
            tokio::spawn(async move {
                let _ = node.store.wait_sealed(id).await;
                node.report_if_foreign(id);
            });
            return;
        };
        let result = match located {
            Ok(Located::Local(data)) if data.len() < self.store.inline_threshold() => {
                pb::ready_object::Result::Inline(inline_bytes(&data))
            }
            Ok(_) => pb::ready_object::Result::HolderNodeId(self.id.clone()),
            Err(e) => pb::ready_object::Result::Error(e.to_proto()),
        };
        let size = self.store.local_size(id).unwrap_or(0);
        if !matches!(result, pb::ready_object::Result::HolderNodeId(_)) {
            self.store.release(id);
        }
        match self.peer(&owner.node_id) {
            Ok(link) => link.report(pb::ReadyObject {
                id,
                size,
                result: Some(result),
            }),
            Err(e) => tracing::warn!("reporting result {id:#x}: {e}"),
        }
    }

    /// Owner side: results of forwarded tasks.
    pub fn on_objects_ready(&self, objects: Vec<pb::ReadyObject>) {
        for object in objects {
            let id = object.id;
            let forwarded = self.cluster.forwarded.lock().unwrap().remove(&id);
            if let Some(f) = &forwarded {
                self.release_args(&f.args);
                self.tasks.forget_forwarded(id);
            }
            match object.result {
                Some(pb::ready_object::Result::Inline(bytes)) => {
                    self.store.resolve(id, Ok(Arc::new(Data::Inline(bytes))))
                }
                Some(pb::ready_object::Result::HolderNodeId(holder)) => {
                    self.cluster
                        .copies
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
                    self.store.resolve(id, Err(error_from_proto(e)))
                }
                None => {}
            }
        }
    }

    /// Owner side: where an object is, once it is sealed.
    pub async fn locate_for(&self, id: ObjectId, timeout: Duration) -> pb::LocateReply {
        use pb::locate_reply::Result as R;
        let located = tokio::time::timeout(timeout, self.store.locate(id)).await;
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
                let mut holders = vec![self.id.clone()];
                holders.extend(self.copies_of(id));
                (data.len(), R::Holders(pb::Holders { node_ids: holders }))
            }
            Ok(Ok(Located::Remote { size, holders })) => {
                let mut all = holders;
                for c in self.copies_of(id) {
                    if !all.contains(&c) {
                        all.push(c);
                    }
                }
                (size, R::Holders(pb::Holders { node_ids: all }))
            }
        };
        pb::LocateReply {
            size,
            result: Some(result),
        }
    }

    fn copies_of(&self, id: ObjectId) -> Vec<String> {
        self.cluster
            .copies
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .unwrap_or_default()
    }

    pub fn add_location(&self, id: ObjectId, node_id: String) {
        if !self.store.contains(id) {
            return;
        }
        let mut copies = self.cluster.copies.lock().unwrap();
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
        let Some(holders) = self.cluster.copies.lock().unwrap().remove(&id) else {
            return;
        };
        for holder in holders {
            if let Ok(link) = self.peer(&holder) {
                let mut client = link.client.clone();
                tokio::spawn(async move {
                    let _ = client.free(pb::FreeRequest { ids: vec![id] }).await;
                });
            }
        }
    }

    /// Listens for freed objects (see `ObjectStore::on_freed`).
    pub fn start_free_listener(self: &Arc<Self>) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        self.store.on_freed(tx);
        let node = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(id) = rx.recv().await {
                let Some(node) = node.upgrade() else { return };
                if node.owns(id) {
                    node.free_copies(id);
                }
            }
        });
    }

    /// A node died: work forwarded to it fails, and it holds no copies any more.
    pub fn on_node_dead(&self, node_id: &str) {
        let lost: Vec<(u64, Forwarded)> = {
            let mut forwarded = self.cluster.forwarded.lock().unwrap();
            let ids: Vec<u64> = forwarded
                .iter()
                .filter(|(_, f)| f.node_id == node_id)
                .map(|(id, _)| *id)
                .collect();
            ids.iter()
                .filter_map(|id| forwarded.remove(id).map(|f| (*id, f)))
                .collect()
        };
        for (id, f) in lost {
            self.tasks.forget_forwarded(id);
            self.store.resolve(
                id,
                Err(ReefError::new(
                    ErrorCode::NodeDied,
                    format!("node {node_id}, which was running {}, died", f.what),
                )),
            );
            self.release_args(&f.args);
        }
        self.on_actor_node_dead(node_id);
        for holders in self.cluster.copies.lock().unwrap().values_mut() {
            holders.retain(|h| h != node_id);
        }
    }

    /// Takes a reference on an object for a local user. An object owned by
    /// another node and not known here gets a local entry, resolved by
    /// asking its owner (inline bytes, or where to pull it from).
    pub fn hold_object(self: &Arc<Self>, id: ObjectId) -> ReefResult<()> {
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
        let node = self.clone();
        tokio::spawn(async move {
            let reply = match node.peer(&owner.node_id) {
                Ok(link) => link
                    .locate
                    .clone()
                    .locate(pb::LocateRequest {
                        id,
                        timeout_ms: 0,
                        requester_node_id: node.id.clone(),
                    })
                    .await
                    .map(|r| r.into_inner())
                    .map_err(|s| super::rpc_error(&format!("locating object {id:#x}"), s)),
                Err(e) => Err(e),
            };
            use pb::locate_reply::Result as R;
            match reply.map(|r| (r.size, r.result)) {
                Ok((_, Some(R::Inline(bytes)))) => {
                    node.store.resolve(id, Ok(Arc::new(Data::Inline(bytes))))
                }
                Ok((size, Some(R::Holders(h)))) => node.store.set_remote(id, size, h.node_ids),
                Ok((_, Some(R::Error(e)))) => node.store.resolve(id, Err(error_from_proto(e))),
                Ok((_, None)) => node.store.resolve(
                    id,
                    Err(ReefError::new(ErrorCode::Internal, "empty locate reply")),
                ),
                Err(e) => node.store.resolve(id, Err(e)),
            }
        });
        Ok(())
    }

    /// An object's bytes here, waiting for it and pulling it from another
    /// node when it lives elsewhere.
    pub async fn fetch(self: &Arc<Self>, id: ObjectId) -> ReefResult<Arc<Data>> {
        match self.store.locate(id).await? {
            Located::Local(data) => Ok(data),
            Located::Remote { size, holders } => {
                let view = self.cluster.view();
                let addresses: Vec<String> = holders
                    .iter()
                    .filter_map(|h| {
                        view.nodes
                            .iter()
                            .find(|n| &n.node_id == h && n.state == pb::NodeState::Alive as i32)
                            .map(|n| n.address.clone())
                    })
                    .collect();
                if addresses.is_empty() {
                    return Err(ReefError::new(
                        ErrorCode::ObjectLost,
                        format!("object {id:#x}: every node that held it is gone ({holders:?})"),
                    ));
                }
                let (data, first) = self.pull(id, size, addresses).await?;
                // One caller per transfer does the bookkeeping.
                if first && !self.owns(id) {
                    // Kept as a cached copy until the owner frees it.
                    let _ = self.store.add_ref(id);
                    if let Some(owner) = self.cluster.node_by_index(owner_index(id)) {
                        if let Ok(link) = self.peer(&owner.node_id) {
                            let mut client = link.client.clone();
                            let me = self.id.clone();
                            tokio::spawn(async move {
                                let _ = client
                                    .add_location(pb::AddLocationRequest { id, node_id: me })
                                    .await;
                            });
                        }
                    }
                }
                Ok(data)
            }
        }
    }
}

fn inline_bytes(data: &Data) -> Bytes {
    match data {
        Data::Inline(b) => b.clone(),
        Data::Arena(_) => Bytes::copy_from_slice(data.as_slice()),
    }
}

pub fn error_from_proto(e: pb::Error) -> ReefError {
    ReefError::new(
        ErrorCode::try_from(e.code).unwrap_or(ErrorCode::Internal),
        e.message,
    )
    .with_backtrace(e.backtrace)
}

pub(crate) fn args_to_proto(args: &[ArgSpec]) -> Vec<pb::Arg> {
    args.iter()
        .map(|a| pb::Arg {
            kind: Some(match a {
                ArgSpec::Inline(b) => pb::arg::Kind::Inline(b.clone()),
                ArgSpec::Object(id) => pb::arg::Kind::Object(*id),
            }),
        })
        .collect()
}

pub(crate) fn options_to_proto(o: &CallOptions) -> pb::CallOptions {
    pb::CallOptions {
        resources: o.resources.as_ref().map(|r| pb::Resources {
            num_cpus: Some(r.cpus),
            memory: r.memory,
            custom: r.custom.clone().into_iter().collect(),
        }),
        memory_limit: o.memory_limit.unwrap_or(0),
        cpu_time_ms: o.cpu_time_ms.unwrap_or(0),
    }
}

fn task_to_proto(spec: &TaskSpec) -> pb::SubmitTask {
    pb::SubmitTask {
        return_id: spec.return_id,
        module: spec.module.clone(),
        function: spec.function.clone(),
        args: args_to_proto(&spec.args),
        options: Some(options_to_proto(&spec.options)),
        strategy: Some(spec.strategy.to_proto()),
    }
}

fn task_from_proto(t: pb::SubmitTask, strategy: Strategy, hops: u32) -> ReefResult<TaskSpec> {
    let options: CallOptions = crate::rpc::session::options(t.options);
    Ok(TaskSpec {
        return_id: t.return_id,
        module: t.module,
        function: t.function,
        args: crate::rpc::session::args(t.args)?,
        options,
        owner: None,
        strategy,
        hops,
    })
}

impl Node {
    /// Pulls an object's bytes from one of `holders` (addresses) into this
    /// node's store (see `transfer`); true for the one caller whose pull
    /// moved the bytes (concurrent callers share it).
    async fn pull(
        self: &Arc<Self>,
        id: ObjectId,
        size: u64,
        holders: Vec<String>,
    ) -> ReefResult<(Arc<Data>, bool)> {
        let puller = self.puller.get().ok_or_else(|| {
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
