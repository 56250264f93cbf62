//! Where a task or actor runs (`SchedulingStrategy` on the wire).

use reef_proto as pb;
use reef_proto::scheduling_strategy::Kind;

/// A scheduling strategy.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Strategy {
    /// On the node that received the call when it fits there now; else the
    /// node holding most of its argument bytes; else any node with room
    /// (spillback).
    #[default]
    Default,
    /// Round-robin over the nodes with room.
    Spread,
    /// On one node (by id, see `Cluster::status`); `soft` falls back to the
    /// default when that node is dead or full, hard fails instead.
    NodeAffinity { node_id: String, soft: bool },
    /// In a placement group's bundle, on its reserved resources (`bundle:
    /// None`: any bundle of the group it fits in).
    PlacementGroup { group: u64, bundle: Option<u32> },
}

impl Strategy {
    /// The strategy of a request (unset: the default).
    pub fn from_proto(s: Option<&pb::SchedulingStrategy>) -> Strategy {
        match s.and_then(|s| s.kind.as_ref()) {
            Some(Kind::Spread(_)) => Strategy::Spread,
            Some(Kind::NodeAffinity(a)) => Strategy::NodeAffinity {
                node_id: a.node_id.clone(),
                soft: a.soft,
            },
            Some(Kind::PlacementGroup(b)) => Strategy::PlacementGroup {
                group: b.placement_group_id,
                bundle: u32::try_from(b.bundle_index).ok(),
            },
            Some(Kind::Default(_)) | None => Strategy::Default,
        }
    }

    pub fn to_proto(&self) -> pb::SchedulingStrategy {
        let kind = match self {
            Strategy::Default => Kind::Default(pb::Empty {}),
            Strategy::Spread => Kind::Spread(pb::Empty {}),
            Strategy::NodeAffinity { node_id, soft } => Kind::NodeAffinity(pb::NodeAffinity {
                node_id: node_id.clone(),
                soft: *soft,
            }),
            Strategy::PlacementGroup { group, bundle } => Kind::PlacementGroup(pb::BundleRef {
                placement_group_id: *group,
                // -1: any bundle (an index past i32 is no bundle a group has).
                bundle_index: bundle.map_or(-1, |b| i32::try_from(b).unwrap_or(i32::MAX)),
            }),
        };
        pb::SchedulingStrategy { kind: Some(kind) }
    }

    /// The placement group the strategy uses, if any.
    pub fn group(&self) -> Option<u64> {
        match self {
            Strategy::PlacementGroup { group, .. } => Some(*group),
            _ => None,
        }
    }
}

impl From<Option<&pb::SchedulingStrategy>> for Strategy {
    fn from(s: Option<&pb::SchedulingStrategy>) -> Self {
        Strategy::from_proto(s)
    }
}

impl From<&Strategy> for pb::SchedulingStrategy {
    fn from(s: &Strategy) -> Self {
        s.to_proto()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_wire() {
        for s in [
            Strategy::Default,
            Strategy::Spread,
            Strategy::NodeAffinity {
                node_id: "n1".into(),
                soft: true,
            },
            Strategy::NodeAffinity {
                node_id: "n2".into(),
                soft: false,
            },
            Strategy::PlacementGroup {
                group: 7,
                bundle: None,
            },
            Strategy::PlacementGroup {
                group: 7,
                bundle: Some(2),
            },
        ] {
            let wire = s.to_proto();
            assert_eq!(Strategy::from_proto(Some(&wire)), s, "{wire:?}");
            // And through the encoded bytes.
            let bytes = prost::Message::encode_to_vec(&wire);
            let decoded: pb::SchedulingStrategy = prost::Message::decode(&bytes[..]).unwrap();
            assert_eq!(Strategy::from(Some(&decoded)), s);
        }
    }

    #[test]
    fn group_names_the_placement_group() {
        let in_group = Strategy::PlacementGroup {
            group: 9,
            bundle: Some(1),
        };
        assert_eq!(in_group.group(), Some(9));
        assert_eq!(Strategy::Default.group(), None);
        assert_eq!(Strategy::Spread.group(), None);
    }

    #[test]
    fn unset_means_default() {
        assert_eq!(Strategy::from_proto(None), Strategy::Default);
        let empty = pb::SchedulingStrategy { kind: None };
        assert_eq!(Strategy::from_proto(Some(&empty)), Strategy::Default);
        let any_bundle = pb::SchedulingStrategy {
            kind: Some(Kind::PlacementGroup(pb::BundleRef {
                placement_group_id: 3,
                bundle_index: -5,
            })),
        };
        assert_eq!(
            Strategy::from_proto(Some(&any_bundle)),
            Strategy::PlacementGroup {
                group: 3,
                bundle: None
            }
        );
    }
}
