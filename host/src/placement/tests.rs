//! One table of cases per strategy: the facts a node has, and the decision.

use super::*;

fn cpus(n: f64) -> Resources {
    Resources {
        cpus: n,
        ..Default::default()
    }
}

fn map(r: &Resources) -> pb::ResourceMap {
    crate::cluster::to_map(r)
}

/// A node of the view with `total` and `free` CPUs.
fn node(id: &str, total: f64, free: f64) -> pb::NodeView {
    pb::NodeView {
        node_id: id.into(),
        address: format!("{id}:1"),
        state: pb::NodeState::Alive as i32,
        total: Some(map(&cpus(total))),
        available: Some(map(&cpus(free))),
        ..Default::default()
    }
}

fn dead(id: &str) -> pb::NodeView {
    pb::NodeView {
        state: pb::NodeState::Dead as i32,
        death_reason: "missed heartbeats".into(),
        ..node(id, 4.0, 4.0)
    }
}

/// The deciding node `here` with `total` and `free` CPUs and `queued` work,
/// and the cluster view `others` (plus itself, as the view lists every node).
struct Case {
    name: &'static str,
    strategy: Strategy,
    need: f64,
    here: (f64, f64, usize),
    others: Vec<pb::NodeView>,
    args: ArgumentBytes,
    hops: u32,
    spread: usize,
    group: Option<GroupFacts>,
    expect: Result<Decision, ErrorCode>,
}

impl Default for Case {
    fn default() -> Self {
        Case {
            name: "",
            strategy: Strategy::Default,
            need: 1.0,
            here: (2.0, 2.0, 0),
            others: vec![],
            args: ArgumentBytes::default(),
            hops: 0,
            spread: 0,
            group: None,
            expect: Ok(Decision::Local),
        }
    }
}

fn run(cases: Vec<Case>) {
    for case in cases {
        let (total, free, queued) = case.here;
        let mut view = pb::ClusterView {
            nodes: vec![node("here", total, free)],
            ..Default::default()
        };
        view.nodes.extend(case.others.iter().cloned());
        let local = Local {
            node_id: "here",
            total: cpus(total),
            available: cpus(free),
            queued,
            clustered: true,
            group: case.group.clone(),
        };
        let need = cpus(case.need);
        let request = Request {
            resources: &need,
            strategy: &case.strategy,
            hops: case.hops,
            spread: case.spread,
        };
        let got = place(&request, &local, &view, &case.args).map_err(|e| e.code);
        assert_eq!(got, case.expect, "case `{}`", case.name);
    }
}

fn remote(n: pb::NodeView) -> Result<Decision, ErrorCode> {
    Ok(Decision::Remote(Box::new(n)))
}

#[test]
fn default_and_locality() {
    run(vec![
        Case {
            name: "fits here now: runs here",
            others: vec![node("a", 4.0, 4.0)],
            ..Default::default()
        },
        Case {
            name: "alone in the cluster: here",
            ..Default::default()
        },
        Case {
            name: "full here: spills back to the node with the most free CPU",
            here: (2.0, 0.0, 0),
            others: vec![node("a", 4.0, 1.0), node("b", 4.0, 3.0)],
            expect: remote(node("b", 4.0, 3.0)),
            ..Default::default()
        },
        Case {
            name: "full here, two nodes as free: the counter picks the first",
            here: (2.0, 0.0, 0),
            others: vec![
                node("a", 4.0, 3.0),
                node("b", 4.0, 3.0),
                node("c", 4.0, 1.0),
            ],
            spread: 4,
            expect: remote(node("a", 4.0, 3.0)),
            ..Default::default()
        },
        Case {
            name: "full here, two nodes as free: the next placement the second",
            here: (2.0, 0.0, 0),
            others: vec![
                node("a", 4.0, 3.0),
                node("b", 4.0, 3.0),
                node("c", 4.0, 1.0),
            ],
            spread: 5,
            expect: remote(node("b", 4.0, 3.0)),
            ..Default::default()
        },
        Case {
            name: "work queued here: a free node takes it",
            here: (2.0, 2.0, 1),
            others: vec![node("a", 4.0, 2.0)],
            expect: remote(node("a", 4.0, 2.0)),
            ..Default::default()
        },
        Case {
            name: "arguments elsewhere, that node has room: goes to them",
            others: vec![node("a", 4.0, 2.0)],
            args: ArgumentBytes {
                here: 10,
                best_elsewhere: Some(("a".into(), 1 << 20)),
            },
            expect: remote(node("a", 4.0, 2.0)),
            ..Default::default()
        },
        Case {
            name: "arguments elsewhere, that node is full: here",
            others: vec![node("a", 4.0, 0.0)],
            args: ArgumentBytes {
                here: 0,
                best_elsewhere: Some(("a".into(), 1 << 20)),
            },
            ..Default::default()
        },
        Case {
            name: "more argument bytes here than elsewhere: here",
            others: vec![node("a", 4.0, 4.0)],
            args: ArgumentBytes {
                here: 1 << 21,
                best_elsewhere: Some(("a".into(), 1 << 20)),
            },
            ..Default::default()
        },
        Case {
            name: "forwarded work that fits here's total stays",
            here: (2.0, 0.0, 3),
            others: vec![node("a", 4.0, 4.0)],
            hops: 1,
            ..Default::default()
        },
        Case {
            name: "dead nodes are never chosen",
            here: (2.0, 0.0, 0),
            others: vec![dead("a")],
            ..Default::default()
        },
    ]);
}

#[test]
fn pending_and_infeasible() {
    run(vec![
        Case {
            name: "pending: nobody has room now, here can hold it later",
            here: (2.0, 0.0, 5),
            others: vec![node("a", 2.0, 0.0)],
            ..Default::default()
        },
        Case {
            name: "pending elsewhere: only another node can ever hold it",
            need: 3.0,
            others: vec![node("a", 1.0, 1.0), node("b", 4.0, 0.0)],
            expect: remote(node("b", 4.0, 0.0)),
            ..Default::default()
        },
        Case {
            name: "infeasible in the cluster",
            need: 8.0,
            others: vec![node("a", 4.0, 4.0)],
            expect: Err(ErrorCode::Infeasible),
            ..Default::default()
        },
        Case {
            name: "infeasible alone",
            need: 8.0,
            expect: Err(ErrorCode::Infeasible),
            ..Default::default()
        },
    ]);
}

#[test]
fn spread() {
    let others = vec![node("a", 2.0, 2.0), node("b", 2.0, 2.0)];
    let case = |spread: usize, expect| Case {
        name: "spread turns round the nodes with room",
        strategy: Strategy::Spread,
        others: others.clone(),
        spread,
        expect,
        ..Default::default()
    };
    run(vec![
        case(0, Ok(Decision::Local)),
        case(1, remote(node("a", 2.0, 2.0))),
        case(2, remote(node("b", 2.0, 2.0))),
        case(3, Ok(Decision::Local)),
        Case {
            name: "spread skips full nodes",
            strategy: Strategy::Spread,
            here: (2.0, 0.0, 0),
            others: vec![node("a", 2.0, 0.0), node("b", 2.0, 2.0)],
            spread: 7,
            expect: remote(node("b", 2.0, 2.0)),
            ..Default::default()
        },
        Case {
            name: "spread with no room anywhere: among those that can ever",
            strategy: Strategy::Spread,
            here: (2.0, 0.0, 0),
            others: vec![node("a", 2.0, 0.0)],
            spread: 1,
            expect: remote(node("a", 2.0, 0.0)),
            ..Default::default()
        },
    ]);
}

#[test]
fn node_affinity() {
    let affinity = |node_id: &str, soft| Strategy::NodeAffinity {
        node_id: node_id.into(),
        soft,
    };
    run(vec![
        Case {
            name: "hard, to another node with room",
            strategy: affinity("a", false),
            others: vec![node("a", 2.0, 2.0)],
            expect: remote(node("a", 2.0, 2.0)),
            ..Default::default()
        },
        Case {
            name: "hard, to a full node: waits there",
            strategy: affinity("a", false),
            others: vec![node("a", 2.0, 0.0)],
            expect: remote(node("a", 2.0, 0.0)),
            ..Default::default()
        },
        Case {
            name: "hard, to this node while full: waits here",
            strategy: affinity("here", false),
            here: (2.0, 0.0, 2),
            others: vec![node("a", 2.0, 2.0)],
            ..Default::default()
        },
        Case {
            name: "hard, to this node that can never hold it",
            strategy: affinity("here", false),
            need: 3.0,
            others: vec![node("a", 4.0, 4.0)],
            expect: Err(ErrorCode::Infeasible),
            ..Default::default()
        },
        Case {
            name: "hard, to an unknown node",
            strategy: affinity("nope", false),
            others: vec![node("a", 2.0, 2.0)],
            expect: Err(ErrorCode::UnknownNode),
            ..Default::default()
        },
        Case {
            name: "hard, to a dead node",
            strategy: affinity("a", false),
            others: vec![dead("a"), node("b", 2.0, 2.0)],
            expect: Err(ErrorCode::NodeDied),
            ..Default::default()
        },
        Case {
            name: "hard, to a node too small",
            strategy: affinity("a", false),
            need: 3.0,
            others: vec![node("a", 2.0, 2.0)],
            expect: Err(ErrorCode::Infeasible),
            ..Default::default()
        },
        Case {
            name: "soft, to a dead node: default placement",
            strategy: affinity("a", true),
            others: vec![dead("a"), node("b", 2.0, 2.0)],
            ..Default::default()
        },
        Case {
            name: "soft, to a full node: spills to one with room",
            strategy: affinity("a", true),
            here: (2.0, 0.0, 0),
            others: vec![node("a", 2.0, 0.0), node("b", 2.0, 2.0)],
            expect: remote(node("b", 2.0, 2.0)),
            ..Default::default()
        },
        Case {
            name: "soft, to this node while full: elsewhere",
            strategy: affinity("here", true),
            here: (2.0, 0.0, 0),
            others: vec![node("a", 2.0, 2.0)],
            expect: remote(node("a", 2.0, 2.0)),
            ..Default::default()
        },
    ]);
}

#[test]
fn placement_group_bundles() {
    let group = |state: pb::PlacementGroupState, nodes: &[&str]| pb::PlacementGroupInfo {
        id: 7,
        state: state as i32,
        bundles: nodes.iter().map(|_| map(&cpus(1.0))).collect(),
        bundle_nodes: nodes.iter().map(|n| n.to_string()).collect(),
        ..Default::default()
    };
    let created = |nodes: &[&str]| GroupFacts {
        held_here: false,
        info: Some(group(pb::PlacementGroupState::PgCreated, nodes)),
    };
    let pg = |bundle| Strategy::PlacementGroup { group: 7, bundle };
    run(vec![
        Case {
            name: "bundle held here",
            strategy: pg(Some(0)),
            group: Some(GroupFacts {
                held_here: true,
                info: None,
            }),
            ..Default::default()
        },
        Case {
            name: "named bundle on another node",
            strategy: pg(Some(1)),
            others: vec![node("a", 2.0, 0.0)],
            group: Some(created(&["here", "a"])),
            expect: remote(node("a", 2.0, 0.0)),
            ..Default::default()
        },
        Case {
            name: "any bundle: round-robin over those it fits in",
            strategy: pg(None),
            others: vec![node("a", 2.0, 2.0)],
            spread: 1,
            group: Some(created(&["here", "a"])),
            expect: remote(node("a", 2.0, 2.0)),
            ..Default::default()
        },
        Case {
            name: "any bundle: too big for every bundle",
            strategy: pg(None),
            need: 2.0,
            group: Some(created(&["here", "a"])),
            others: vec![node("a", 2.0, 2.0)],
            expect: Err(ErrorCode::Infeasible),
            ..Default::default()
        },
        Case {
            name: "bundle index out of range",
            strategy: pg(Some(5)),
            group: Some(created(&["here"])),
            expect: Err(ErrorCode::BadArgument),
            ..Default::default()
        },
        Case {
            name: "the bundle's node died",
            strategy: pg(Some(0)),
            others: vec![dead("a")],
            group: Some(created(&["a"])),
            expect: Err(ErrorCode::NodeDied),
            ..Default::default()
        },
        Case {
            name: "group not ready yet",
            strategy: pg(Some(0)),
            group: Some(GroupFacts {
                held_here: false,
                info: Some(group(pb::PlacementGroupState::PgPending, &["here"])),
            }),
            expect: Err(ErrorCode::UnknownPlacementGroup),
            ..Default::default()
        },
        Case {
            name: "group removed",
            strategy: pg(Some(0)),
            group: Some(GroupFacts {
                held_here: false,
                info: Some(group(pb::PlacementGroupState::PgRemoved, &["here"])),
            }),
            expect: Err(ErrorCode::PlacementGroupRemoved),
            ..Default::default()
        },
        Case {
            name: "unknown group",
            strategy: pg(Some(0)),
            expect: Err(ErrorCode::UnknownPlacementGroup),
            ..Default::default()
        },
    ]);
}

#[test]
fn only_a_dead_node_able_to_run_the_work_makes_a_first_attempt_wait() {
    let view = |nodes: Vec<pb::NodeView>| pb::ClusterView {
        nodes,
        ..Default::default()
    };
    let one_dead = view(vec![node("h", 0.0, 0.0), dead("w")]);
    let default = Strategy::Default;
    // dead() had 4 CPUs.
    assert!(a_dead_node_could_run(&cpus(1.0), &default, &one_dead));
    assert!(a_dead_node_could_run(
        &cpus(1.0),
        &Strategy::Spread,
        &one_dead
    ));
    assert!(!a_dead_node_could_run(&cpus(8.0), &default, &one_dead));
    // An alive node is placement's business, not a reason to wait.
    let alive = view(vec![node("w", 4.0, 0.0)]);
    assert!(!a_dead_node_could_run(&cpus(1.0), &default, &alive));
    // No node joining changes a bundle or a named node.
    let group = Strategy::PlacementGroup {
        group: 7,
        bundle: Some(0),
    };
    assert!(!a_dead_node_could_run(&cpus(1.0), &group, &one_dead));
    let named = Strategy::NodeAffinity {
        node_id: "h".into(),
        soft: false,
    };
    assert!(!a_dead_node_could_run(&cpus(1.0), &named, &one_dead));
}
