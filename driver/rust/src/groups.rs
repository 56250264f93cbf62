//! Placement groups: bundles of resources reserved together across nodes,
//! as in Ray. Create one, wait until it is ready, then run tasks and actors
//! in its bundles with `Strategy::PlacementGroup` (see `PlacementGroup::bundle`);
//! removing it frees the resources and ends what runs in it.
//!
//! ```no_run
//! # async fn demo(cluster: &reef::Cluster, module: &reef::Module) -> reef::Result<()> {
//! use reef::PlacementStrategy;
//! let mut pg = cluster
//!     .placement_group(PlacementStrategy::StrictSpread)
//!     .bundle([("CPU", 1.0)])
//!     .bundle([("CPU", 1.0)])
//!     .create()
//!     .await?;
//! pg.ready(std::time::Duration::from_secs(10)).await?;
//! let r = cluster.task(module, "noop").strategy(pg.bundle(1)).submit()?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::time::Duration;

use reef_proto as pb;

use crate::error::{Error, ErrorCode, Result};
use crate::options::Strategy;
use crate::Cluster;

/// How a group's bundles are spread over nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PlacementStrategy {
    /// As few nodes as possible (more when one cannot hold them all).
    #[default]
    Pack,
    /// As many nodes as possible (fewer when there are not enough).
    Spread,
    /// All bundles on one node, or the group is not created.
    StrictPack,
    /// Every bundle on a different node, or the group is not created.
    StrictSpread,
}

impl PlacementStrategy {
    fn to_proto(self) -> pb::PlacementStrategy {
        match self {
            PlacementStrategy::Pack => pb::PlacementStrategy::Pack,
            PlacementStrategy::Spread => pb::PlacementStrategy::Spread,
            PlacementStrategy::StrictPack => pb::PlacementStrategy::StrictPack,
            PlacementStrategy::StrictSpread => pb::PlacementStrategy::StrictSpread,
        }
    }
}

/// Builds a placement group: `cluster.placement_group(strategy).bundle(..)..create()`.
pub struct PlacementGroupBuilder<'a> {
    cluster: &'a Cluster,
    strategy: PlacementStrategy,
    name: String,
    bundles: Vec<pb::ResourceMap>,
    node_ids: Vec<String>,
}

impl<'a> PlacementGroupBuilder<'a> {
    pub(crate) fn new(cluster: &'a Cluster, strategy: PlacementStrategy) -> Self {
        PlacementGroupBuilder {
            cluster,
            strategy,
            name: String::new(),
            bundles: Vec::new(),
            node_ids: Vec::new(),
        }
    }

    /// Adds a bundle: resource amounts by name ("CPU", "memory" in bytes, or
    /// a custom resource).
    pub fn bundle<'n>(mut self, resources: impl IntoIterator<Item = (&'n str, f64)>) -> Self {
        let amounts: HashMap<String, f64> = resources
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        self.bundles.push(pb::ResourceMap { amounts });
        self
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Pins bundle i to `node_ids[i]` (an unknown or dead node is an error).
    pub fn on_nodes(mut self, node_ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.node_ids = node_ids.into_iter().map(Into::into).collect();
        self
    }

    /// Asks the control plane for the group. A group that can never fit the
    /// cluster fails here (INFEASIBLE); one that fits only later is pending
    /// (see `PlacementGroup::ready`).
    pub async fn create(self) -> Result<PlacementGroup> {
        let info = self
            .cluster
            .groups_client()
            .await?
            .create(pb::CreatePlacementGroupRequest {
                name: self.name,
                strategy: self.strategy.to_proto() as i32,
                bundles: self.bundles,
                node_ids: self.node_ids,
                // The node sets it from the credential.
                tenant: String::new(),
            })
            .await?
            .into_inner();
        if info.state == pb::PlacementGroupState::PgFailed as i32 {
            return Err(Error::new(ErrorCode::Infeasible, info.error));
        }
        Ok(PlacementGroup {
            cluster: self.cluster.clone(),
            info,
        })
    }
}

/// A placement group the driver created (it lives until removed).
#[derive(Clone)]
pub struct PlacementGroup {
    cluster: Cluster,
    info: pb::PlacementGroupInfo,
}

impl PlacementGroup {
    pub fn id(&self) -> u64 {
        self.info.id
    }

    /// The group as last seen (state, and the node of each bundle once created).
    pub fn info(&self) -> &pb::PlacementGroupInfo {
        &self.info
    }

    /// Node id of each bundle (empty until the group is created).
    pub fn bundle_nodes(&self) -> &[String] {
        &self.info.bundle_nodes
    }

    /// Runs a task or actor on bundle `index`'s resources.
    pub fn bundle(&self, index: u32) -> Strategy {
        Strategy::PlacementGroup {
            group: self.id(),
            bundle: Some(index),
        }
    }

    /// Runs a task or actor in any bundle it fits in.
    pub fn any_bundle(&self) -> Strategy {
        Strategy::PlacementGroup {
            group: self.id(),
            bundle: None,
        }
    }

    /// Waits until every bundle is reserved. Fails when the group failed or
    /// was removed, or with TIMEOUT.
    pub async fn ready(&mut self, timeout: Duration) -> Result<()> {
        let info = self
            .cluster
            .groups_client()
            .await?
            .wait(pb::WaitPlacementGroupRequest {
                id: self.id(),
                timeout_ms: timeout.as_millis().max(1) as u64,
            })
            .await?
            .into_inner();
        self.info = info;
        match pb::PlacementGroupState::try_from(self.info.state) {
            Ok(pb::PlacementGroupState::PgCreated) => Ok(()),
            Ok(pb::PlacementGroupState::PgRemoved) => Err(Error::new(
                ErrorCode::PlacementGroupRemoved,
                format!("placement group {} was removed", self.id()),
            )),
            Ok(pb::PlacementGroupState::PgFailed) => {
                Err(Error::new(ErrorCode::Infeasible, self.info.error.clone()))
            }
            _ => Err(Error::new(
                ErrorCode::Timeout,
                format!(
                    "placement group {} is not ready after {timeout:?}",
                    self.id()
                ),
            )),
        }
    }

    /// Frees the bundles' resources; tasks and actors running in the group
    /// fail with PLACEMENT_GROUP_REMOVED.
    pub async fn remove(&self) -> Result<()> {
        self.cluster
            .groups_client()
            .await?
            .remove(pb::PlacementGroupId { id: self.id() })
            .await?;
        Ok(())
    }
}
