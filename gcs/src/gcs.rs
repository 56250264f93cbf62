//! The [`Gcs`] facade: the control-plane operations the head node exposes.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::now_millis;
use crate::error::{GcsError, Result};
use crate::file_store::FileStore;
use crate::memory_store::MemoryStore;
use crate::storage::Storage;
use crate::tables::{
    encode, put_op, ActorName, ActorNameTable, ActorRecord, ActorState, ActorTable, Counter,
    Counters, JobRecord, JobState, JobTable, Kv, ModuleRecord, ModuleTable, NodeInfo, NodeState,
    NodeTable, Resources,
};

/// Global control store: cluster membership, modules, actors, jobs and KV.
///
/// All methods take `&self`; share it as `Arc<Gcs>` between the head node's
/// scheduler and (later) its gRPC service. Read-modify-write operations are
/// serialized by one internal writer lock, so the checks they make (name
/// uniqueness, node liveness, ...) hold when they write.
pub struct Gcs {
    store: Arc<dyn Storage>,
    nodes: NodeTable,
    modules: ModuleTable,
    actors: ActorTable,
    actor_names: ActorNameTable,
    jobs: JobTable,
    counters: Counters,
    kv: Kv,
    writer: Mutex<()>,
}

impl std::fmt::Debug for Gcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gcs").finish_non_exhaustive()
    }
}

fn validate_resources(what: &str, resources: &Resources) -> Result<()> {
    match resources
        .rows()
        .into_iter()
        .find(|(_, v)| !v.is_finite() || *v < 0.0)
    {
        Some((name, v)) => Err(GcsError::InvalidArgument(format!(
            "{what} resource `{name}` must be finite and non-negative, got {v}"
        ))),
        None => Ok(()),
    }
}

impl Gcs {
    /// Opens a durable GCS whose state lives in `dir` (created if needed).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::with_storage(Arc::new(FileStore::open(dir)?)))
    }

    /// An ephemeral GCS that forgets everything on drop.
    pub fn in_memory() -> Self {
        Self::with_storage(Arc::new(MemoryStore::new()))
    }

    /// A GCS over any storage backend.
    pub fn with_storage(store: Arc<dyn Storage>) -> Self {
        Self {
            nodes: NodeTable::new(store.clone()),
            modules: ModuleTable::new(store.clone()),
            actors: ActorTable::new(store.clone()),
            actor_names: ActorNameTable::new(store.clone()),
            jobs: JobTable::new(store.clone()),
            counters: Counters::new(store.clone()),
            kv: Kv::new(store.clone()),
            store,
            writer: Mutex::new(()),
        }
    }

    /// The underlying storage backend.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.store
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- nodes -------------------------------------------------------

    /// Records a (re)started node as alive. Re-registering an id overwrites
    /// the previous record, dead or not.
    pub fn register_node(&self, info: NodeInfo) -> Result<()> {
        validate_resources("total", &info.resources_total)?;
        validate_resources("available", &info.resources_available)?;
        let _w = self.lock();
        self.nodes.put(&info)?;
        tracing::info!(node_id = %info.node_id, address = %info.address, "node registered");
        Ok(())
    }

    /// Refreshes a node's liveness and available resources.
    ///
    /// Fails with [`GcsError::NodeDead`] once the node was marked dead: the
    /// node should shut down (it may rejoin under a new id).
    pub fn heartbeat(&self, node_id: &str, available: Resources) -> Result<()> {
        validate_resources("available", &available)?;
        let _w = self.lock();
        let mut node = self.nodes.require(node_id)?;
        if node.state == NodeState::Dead {
            return Err(GcsError::NodeDead {
                node_id: node_id.to_owned(),
            });
        }
        node.resources_available = available;
        node.last_heartbeat_ms = now_millis();
        self.nodes.put(&node)
    }

    /// Marks a node dead (idempotent) and returns its final record.
    pub fn mark_dead(&self, node_id: &str) -> Result<NodeInfo> {
        let _w = self.lock();
        let mut node = self.nodes.require(node_id)?;
        if node.state != NodeState::Dead {
            node.state = NodeState::Dead;
            self.nodes.put(&node)?;
            tracing::warn!(node_id, "node marked dead");
        }
        Ok(node)
    }

    /// Marks dead every alive node whose last heartbeat is older than
    /// `timeout`; returns their ids.
    pub fn expire_nodes(&self, timeout: Duration) -> Result<Vec<String>> {
        self.expire_nodes_at(now_millis(), timeout)
    }

    /// [`Gcs::expire_nodes`] with an explicit current time (unix millis).
    pub fn expire_nodes_at(&self, now_ms: u64, timeout: Duration) -> Result<Vec<String>> {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let _w = self.lock();
        let mut expired = Vec::new();
        for mut node in self.nodes.all()? {
            if node.is_alive() && now_ms.saturating_sub(node.last_heartbeat_ms) > timeout_ms {
                node.state = NodeState::Dead;
                self.nodes.put(&node)?;
                tracing::warn!(node_id = %node.node_id, "node missed heartbeats; marked dead");
                expired.push(node.node_id);
            }
        }
        Ok(expired)
    }

    pub fn node(&self, node_id: &str) -> Result<Option<NodeInfo>> {
        self.nodes.get(node_id)
    }

    /// Every node ever registered, dead ones included, by id.
    pub fn nodes(&self) -> Result<Vec<NodeInfo>> {
        self.nodes.all()
    }

    pub fn alive_nodes(&self) -> Result<Vec<NodeInfo>> {
        let mut nodes = self.nodes.all()?;
        nodes.retain(NodeInfo::is_alive);
        Ok(nodes)
    }

    // ---- modules -----------------------------------------------------

    /// Registers a module. Modules are content-addressed and immutable: if
    /// the hash is already known the stored record is kept and `false` is
    /// returned.
    pub fn register_module(&self, record: ModuleRecord) -> Result<bool> {
        let _w = self.lock();
        if self.modules.get(&record.hash)?.is_some() {
            return Ok(false);
        }
        self.modules.put(&record)?;
        tracing::info!(hash = %record.hash, sdk = %record.sdk, "module registered");
        Ok(true)
    }

    pub fn module(&self, hash: &str) -> Result<Option<ModuleRecord>> {
        self.modules.get(hash)
    }

    pub fn modules(&self) -> Result<Vec<ModuleRecord>> {
        self.modules.all()
    }

    // ---- actors ------------------------------------------------------

    /// Reserves `n` ids of `counter` with one durable write; returns the last
    /// (the caller owns `last - n + 1 ..= last`). Unique across restarts.
    pub fn reserve_ids(&self, counter: Counter, n: u64) -> Result<u64> {
        self.counters.advance(counter, n)
    }

    /// Allocates a fresh actor id (unique across restarts, starting at 1).
    pub fn new_actor_id(&self) -> Result<u64> {
        self.counters.next(Counter::Actor)
    }

    /// Inserts or overwrites an actor record. If `record.name` is set the
    /// name is claimed as in [`Gcs::register_named_actor`].
    pub fn register_actor(&self, record: ActorRecord) -> Result<()> {
        let _w = self.lock();
        self.put_actor_locked(&record)
    }

    /// Registers `record` under `name`, failing with
    /// [`GcsError::NameTaken`] if another live (pending or alive) actor
    /// holds it. Dead actors free their name.
    pub fn register_named_actor(
        &self,
        name: impl Into<String>,
        mut record: ActorRecord,
    ) -> Result<()> {
        record.name = Some(name.into());
        self.register_actor(record)
    }

    /// The live actor holding `name`, if any.
    pub fn lookup_actor(&self, name: &str) -> Result<Option<ActorRecord>> {
        let Some(entry) = self.actor_names.get(name)? else {
            return Ok(None);
        };
        Ok(self
            .actors
            .get(&entry.actor_id)?
            .filter(|a| a.is_live() && a.name.as_deref() == Some(name)))
    }

    pub fn actor(&self, actor_id: u64) -> Result<Option<ActorRecord>> {
        self.actors.get(&actor_id)
    }

    /// Every actor record, dead ones included, by id.
    pub fn actors(&self) -> Result<Vec<ActorRecord>> {
        self.actors.all()
    }

    /// Actors placed on `node_id`, dead ones included.
    pub fn actors_on_node(&self, node_id: &str) -> Result<Vec<ActorRecord>> {
        let mut actors = self.actors.all()?;
        actors.retain(|a| a.node_id.as_deref() == Some(node_id));
        Ok(actors)
    }

    /// Sets an actor's lifecycle state; returns the updated record.
    pub fn set_actor_state(&self, actor_id: u64, state: ActorState) -> Result<ActorRecord> {
        self.update_actor(actor_id, |a| a.state = state)
    }

    /// Sets (or clears) the node hosting an actor; returns the updated record.
    pub fn set_actor_node(&self, actor_id: u64, node_id: Option<String>) -> Result<ActorRecord> {
        self.update_actor(actor_id, |a| a.node_id = node_id)
    }

    /// Deletes an actor record (and its name claim); returns whether it
    /// existed. Usually actors are marked dead instead, keeping history.
    pub fn remove_actor(&self, actor_id: u64) -> Result<bool> {
        let _w = self.lock();
        let Some(actor) = self.actors.get(&actor_id)? else {
            return Ok(false);
        };
        if let Some(name) = &actor.name {
            if self
                .actor_names
                .get(name)?
                .is_some_and(|e| e.actor_id == actor_id)
            {
                self.actor_names.delete(name)?;
            }
        }
        self.actors.delete(&actor_id)
    }

    fn update_actor(&self, actor_id: u64, f: impl FnOnce(&mut ActorRecord)) -> Result<ActorRecord> {
        let _w = self.lock();
        let mut actor = self.actors.require(&actor_id)?;
        f(&mut actor);
        // A dead actor may be revived (restart); it must not steal a name
        // someone else claimed meanwhile, so go through the claim path.
        self.put_actor_locked(&actor)?;
        Ok(actor)
    }

    /// Writes an actor, claiming its name if it has one. Caller holds the
    /// writer lock.
    fn put_actor_locked(&self, record: &ActorRecord) -> Result<()> {
        let Some(name) = &record.name else {
            return self.actors.put(record);
        };
        if name.is_empty() {
            return Err(GcsError::InvalidArgument("actor name is empty".into()));
        }
        if record.is_live() {
            if let Some(holder) = self.lookup_actor(name)? {
                if holder.actor_id != record.actor_id {
                    return Err(GcsError::NameTaken {
                        name: name.clone(),
                        holder: holder.actor_id,
                    });
                }
            }
        } else {
            // A dead actor holds nothing; don't disturb the index.
            return self.actors.put(record);
        }
        let index = encode(&ActorName {
            name: name.clone(),
            actor_id: record.actor_id,
        })?;
        let actor = encode(record)?;
        self.store
            .write_batch(&[put_op::<ActorName>(&index), put_op::<ActorRecord>(&actor)])?;
        tracing::info!(actor_id = record.actor_id, name, "named actor registered");
        Ok(())
    }

    // ---- jobs --------------------------------------------------------

    /// Starts a job and returns its id (unique across restarts, from 1).
    pub fn start_job(
        &self,
        driver_address: impl Into<String>,
        description: impl Into<String>,
    ) -> Result<u64> {
        let _w = self.lock();
        let job_id = self.counters.next(Counter::Job)?;
        let record = JobRecord {
            job_id,
            driver_address: driver_address.into(),
            description: description.into(),
            started_at_ms: now_millis(),
            ended_at_ms: None,
            state: JobState::Running,
        };
        self.jobs.put(&record)?;
        tracing::info!(job_id, driver = %record.driver_address, "job started");
        Ok(job_id)
    }

    /// Marks a job finished (idempotent); returns its final record.
    pub fn end_job(&self, job_id: u64) -> Result<JobRecord> {
        let _w = self.lock();
        let mut job = self.jobs.require(&job_id)?;
        if job.state != JobState::Finished {
            job.state = JobState::Finished;
            job.ended_at_ms = Some(now_millis());
            self.jobs.put(&job)?;
            tracing::info!(job_id, "job finished");
        }
        Ok(job)
    }

    pub fn job(&self, job_id: u64) -> Result<Option<JobRecord>> {
        self.jobs.get(&job_id)
    }

    pub fn jobs(&self) -> Result<Vec<JobRecord>> {
        self.jobs.all()
    }

    // ---- kv ----------------------------------------------------------

    /// The namespaced user KV (also reachable through the `kv_*` methods).
    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    pub fn kv_get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.kv.get(namespace, key)
    }

    /// See [`Kv::put`]: returns whether the key was newly added.
    pub fn kv_put(
        &self,
        namespace: &str,
        key: &[u8],
        value: &[u8],
        overwrite: bool,
    ) -> Result<bool> {
        self.kv.put(namespace, key, value, overwrite)
    }

    pub fn kv_delete(&self, namespace: &str, key: &[u8]) -> Result<bool> {
        self.kv.delete(namespace, key)
    }

    /// Keys in `namespace` starting with `prefix`, in byte order.
    pub fn kv_keys(&self, namespace: &str, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.kv.keys(namespace, prefix)
    }
}

#[cfg(test)]
mod tests;
