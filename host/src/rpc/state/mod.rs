//! The state API: `host list|get|summary`, answered by any node for the
//! whole cluster. Nodes come from the cluster view, jobs from the control
//! plane; tasks, actors, objects, bundles and modules from every alive node
//! (this one directly, the others through `PeerState.LocalState`, asked in
//! parallel and waited for at most `FAN_OUT_DEADLINE`; those that did not
//! answer are named in `missing_nodes`).

pub mod api;
pub mod filter;
pub mod logs;
pub mod peer;
mod rows;
pub mod scope;
