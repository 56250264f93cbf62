//! What a guest's host calls may reach: [`HostServices`], a small handle
//! held in every instance's store data instead of the whole node.
//!
//! A guest can read and create objects (through the node's object
//! directory), submit tasks and create, find and call actors (through
//! [`Dispatch`], which the node implements over its task and actor
//! services), and learn which node it runs on. Nothing else of the node is
//! in reach of a host call.

use std::sync::{Arc, Weak};

use futures::future::BoxFuture;
use reef_core::TenantId;
use wasmtime::Engine;

use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::objects::ObjectDirectory;
use crate::spec::{ActorSpec, ArgSpec, Placed, TaskSpec};
use crate::store::ObjectId;

/// New work a guest starts: tasks and actors (see `node.rs`).
pub trait Dispatch: Send + Sync {
    /// Submits a task whose result id is allocated already.
    fn submit(&self, spec: TaskSpec) -> ReefResult<()>;
    /// Creates an actor; its id at once, and when it is placed.
    fn create_actor(&self, spec: ActorSpec) -> ReefResult<(u64, Placed)>;
    /// Finds a named actor of `tenant` anywhere in the cluster.
    fn lookup_actor(&self, tenant: &TenantId, name: String) -> BoxFuture<'static, ReefResult<u64>>;
    /// Calls a method of an actor of `caller`'s (another tenant's answers
    /// as an unknown actor); the result `return_id` is created at once.
    fn call_actor(
        &self,
        caller: &TenantId,
        actor: u64,
        return_id: ObjectId,
        method: String,
        args: Vec<ArgSpec>,
    ) -> ReefResult<()>;
}

/// The host services of one node, cloned into every guest instance.
#[derive(Clone)]
pub struct HostServices {
    node_id: Arc<str>,
    engine: Engine,
    objects: Arc<ObjectDirectory>,
    /// Weak: the services that run guests hold this handle themselves.
    work: Weak<dyn Dispatch>,
    /// The tenant the running guest works for: its nested tasks, actors and
    /// lookups are that tenant's (the node's own handle: the default tenant).
    tenant: TenantId,
}

impl HostServices {
    pub fn new(
        node_id: &str,
        engine: Engine,
        objects: Arc<ObjectDirectory>,
        work: Weak<dyn Dispatch>,
    ) -> Self {
        HostServices {
            node_id: node_id.into(),
            engine,
            objects,
            work,
            tenant: TenantId::default(),
        }
    }

    /// The same services, for a guest working for `tenant`.
    pub fn for_tenant(&self, tenant: &TenantId) -> Self {
        HostServices {
            tenant: tenant.clone(),
            ..self.clone()
        }
    }

    /// The tenant the guest works for.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn objects(&self) -> &Arc<ObjectDirectory> {
        &self.objects
    }

    /// An object the guest made (a put, a nested task's or call's result)
    /// belongs to the tenant it works for.
    pub fn made(&self, id: ObjectId) {
        self.objects.owners().record(id, &self.tenant);
    }

    /// Task and actor dispatch; NODE_STOPPING once the node is gone.
    pub fn work(&self) -> ReefResult<Arc<dyn Dispatch>> {
        self.work
            .upgrade()
            .ok_or_else(|| ReefError::new(ErrorCode::NodeStopping, "the node is stopping"))
    }
}
