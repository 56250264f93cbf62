//! A registered module as the node runs it: compiled, ready to instantiate,
//! with what it exports and what it was granted.

use std::path::PathBuf;

use reef_proto as pb;
use serde::{Deserialize, Serialize};
use wasmtime::component::{ComponentExportIndex, InstancePre};

use crate::grants::Grants;
use crate::guest::ctx::GuestCtx;
use crate::guest::resident::ResidentRuns;
use crate::tasks::inline::RunTimes;

/// What a module exports, as its `describe` reported it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ModuleInfo {
    pub sdk: String,
    pub tasks: Vec<String>,
    pub actors: Vec<ActorClassInfo>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ActorClassInfo {
    pub name: String,
    pub methods: Vec<String>,
}

impl ModuleInfo {
    pub fn actor(&self, class: &str) -> Option<&ActorClassInfo> {
        self.actors.iter().find(|a| a.name == class)
    }
}

/// The indices of the `guest` exports, looked up once per module.
#[derive(Clone)]
pub struct GuestExports {
    pub describe: ComponentExportIndex,
    pub run_task: ComponentExportIndex,
    pub actor_init: ComponentExportIndex,
    pub actor_call: ComponentExportIndex,
}

pub struct Module {
    pub hash: String,
    pub info: ModuleInfo,
    pub pre: InstancePre<GuestCtx>,
    pub exports: GuestExports,
    pub size: u64,
    /// The compiled artifact came from the disk cache.
    pub cached: bool,
    /// Where the module's data segments end in linear memory: views must
    /// stay above (the memory image is mapped below).
    pub image_end: u64,
    /// What the module was granted (part of its hash).
    pub grants: Grants,
    /// The directory preopened as `/scratch` when `filesystem` is granted.
    pub scratch: Option<PathBuf>,
    /// The CPU time recent calls of each task function took (where the next
    /// call starts: `tasks::inline`).
    pub run_times: RunTimes,
    /// Whether its fresh instances' written pages need merging before a
    /// slot reset (`guest::resident`).
    pub resident: ResidentRuns,
}

impl Module {
    /// The module as `RegisterModule` and `host status` show it.
    pub fn to_proto(&self) -> pb::ModuleInfo {
        pb::ModuleInfo {
            hash: self.hash.clone(),
            sdk: self.info.sdk.clone(),
            tasks: self.info.tasks.clone(),
            actors: self
                .info
                .actors
                .iter()
                .map(|a| pb::ActorClass {
                    name: a.name.clone(),
                    methods: a.methods.clone(),
                })
                .collect(),
            size: self.size,
            cached: self.cached,
            grants: self.grants.names().into_iter().map(String::from).collect(),
        }
    }
}
