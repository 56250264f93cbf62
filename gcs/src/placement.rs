//! Where the bundles of a placement group go: a pure function of the
//! bundles, the strategy, optional pinned nodes and the nodes' capacities.
//!
//! The control plane calls [`place_bundles`] twice: against the nodes'
//! *total* resources (an error there means the group can never fit and is
//! rejected at once), then against what is *available* now (an error there
//! means the group waits, `PG_PENDING`).
//!
//! | strategy | rule |
//! | --- | --- |
//! | `PACK` (and unspecified) | all on one node if one fits; else first-fit-decreasing over as few nodes as possible |
//! | `SPREAD` | distinct nodes for as many bundles as possible (maximum matching), the rest on the least used nodes that fit |
//! | `STRICT_PACK` | all bundles on one node, or fail |
//! | `STRICT_SPREAD` | every bundle on a different node, or fail (maximum matching) |
//!
//! Ties go to the node with the most free CPU, then to the earlier node in
//! the order given (the caller passes nodes by index).

use reef_proto::PlacementStrategy;

use crate::tables::Resources;

/// A node bundles may go on (callers pass alive, non-draining nodes only).
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub node_id: &'a str,
    /// What placement may use: the node's total or its available resources.
    pub capacity: &'a Resources,
}

/// Why bundles could not be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementError {
    /// A pinned node id is not among the candidates (unknown, dead or draining).
    UnknownNode(String),
    /// The bundles do not fit the capacities given; the message says which
    /// bundle and strategy.
    Infeasible(String),
    /// The request contradicts itself (pins that break a strict strategy,
    /// wrong number of pins).
    BadRequest(String),
}

impl std::fmt::Display for PlacementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlacementError::UnknownNode(id) => write!(f, "node {id} is not in the cluster"),
            PlacementError::Infeasible(m) | PlacementError::BadRequest(m) => f.write_str(m),
        }
    }
}

/// Places each bundle on a node: returns the node id per bundle.
///
/// `pinned` is empty, or has one entry per bundle: a node id the bundle must
/// go on, or `""` for "anywhere".
pub fn place_bundles(
    strategy: PlacementStrategy,
    bundles: &[Resources],
    pinned: &[String],
    nodes: &[Candidate<'_>],
) -> Result<Vec<String>, PlacementError> {
    if !pinned.is_empty() && pinned.len() != bundles.len() {
        return Err(PlacementError::BadRequest(format!(
            "node_ids names {} nodes for {} bundles (give one per bundle, or none)",
            pinned.len(),
            bundles.len()
        )));
    }
    let mut plan = Plan {
        free: nodes.iter().map(|n| n.capacity.clone()).collect(),
        assigned: vec![None; bundles.len()],
        bundles,
        nodes,
        strategy,
    };
    plan.pin(pinned)?;
    match strategy {
        PlacementStrategy::StrictPack => plan.strict_pack()?,
        PlacementStrategy::StrictSpread => plan.spread(true)?,
        PlacementStrategy::Spread => plan.spread(false)?,
        PlacementStrategy::Pack | PlacementStrategy::Unspecified => plan.pack()?,
    }
    Ok(plan
        .assigned
        .iter()
        .map(|n| nodes[n.expect("every bundle placed")].node_id.to_owned())
        .collect())
}

/// Work in progress: remaining capacity per node, node per bundle.
struct Plan<'a> {
    free: Vec<Resources>,
    assigned: Vec<Option<usize>>,
    bundles: &'a [Resources],
    nodes: &'a [Candidate<'a>],
    strategy: PlacementStrategy,
}

impl Plan<'_> {
    fn strategy_name(&self) -> &'static str {
        match self.strategy {
            PlacementStrategy::Unspecified => "PACK",
            s => s.as_str_name(),
        }
    }

    fn assign(&mut self, bundle: usize, node: usize) {
        self.free[node].subtract(&self.bundles[bundle]);
        self.assigned[bundle] = Some(node);
    }

    fn unassigned(&self) -> Vec<usize> {
        (0..self.bundles.len())
            .filter(|&b| self.assigned[b].is_none())
            .collect()
    }

    fn used_nodes(&self) -> Vec<usize> {
        let mut used: Vec<usize> = self.assigned.iter().flatten().copied().collect();
        used.sort_unstable();
        used.dedup();
        used
    }

    fn node_load(&self, node: usize) -> usize {
        self.assigned.iter().filter(|a| **a == Some(node)).count()
    }

    /// The fitting node with the most free CPU (earliest on ties).
    fn roomiest(&self, request: &Resources, among: impl Iterator<Item = usize>) -> Option<usize> {
        among
            .filter(|&n| request.fits_in(&self.free[n]))
            .fold(None, |best: Option<usize>, n| match best {
                Some(b) if self.free[b].cpus >= self.free[n].cpus => Some(b),
                _ => Some(n),
            })
    }

    fn pin(&mut self, pinned: &[String]) -> Result<(), PlacementError> {
        for (bundle, node_id) in pinned.iter().enumerate() {
            if node_id.is_empty() {
                continue;
            }
            let node = self
                .nodes
                .iter()
                .position(|n| n.node_id == node_id)
                .ok_or_else(|| PlacementError::UnknownNode(node_id.clone()))?;
            if !self.bundles[bundle].fits_in(&self.free[node]) {
                return Err(PlacementError::Infeasible(format!(
                    "bundle {bundle} {} does not fit on its node {node_id} (left: {})",
                    &self.bundles[bundle], &self.free[node],
                )));
            }
            self.assign(bundle, node);
        }
        Ok(())
    }

    fn strict_pack(&mut self) -> Result<(), PlacementError> {
        let used = self.used_nodes();
        if used.len() > 1 {
            return Err(PlacementError::BadRequest(format!(
                "STRICT_PACK puts every bundle on one node, but node_ids names {} nodes",
                used.len()
            )));
        }
        let rest = self.unassigned();
        let need = Resources::sum(rest.iter().map(|&b| &self.bundles[b]));
        let node = match used.first() {
            Some(&n) if need.fits_in(&self.free[n]) => Some(n),
            Some(_) => None,
            None => self.roomiest(&need, 0..self.nodes.len()),
        };
        let Some(node) = node else {
            return Err(PlacementError::Infeasible(format!(
                "STRICT_PACK: the {} bundles together need {} and no single node has that",
                self.bundles.len(),
                Resources::sum(self.bundles.iter()),
            )));
        };
        for b in rest {
            self.assign(b, node);
        }
        Ok(())
    }

    fn pack(&mut self) -> Result<(), PlacementError> {
        let mut rest = self.unassigned();
        // One node for everything when possible (on a node already used by
        // a pinned bundle if there is one).
        let need = Resources::sum(rest.iter().map(|&b| &self.bundles[b]));
        let used = self.used_nodes();
        let single = match used.as_slice() {
            [] => self.roomiest(&need, 0..self.nodes.len()),
            [n] if need.fits_in(&self.free[*n]) => Some(*n),
            _ => None,
        };
        if let Some(node) = single {
            for b in rest {
                self.assign(b, node);
            }
            return Ok(());
        }
        // First fit decreasing: big bundles first, each on a node already in
        // the group when it fits there, else on the roomiest new node.
        rest.sort_by(|&a, &b| size_key(&self.bundles[b]).total_cmp(&size_key(&self.bundles[a])));
        for b in rest {
            let used = self.used_nodes();
            let node = used
                .iter()
                .copied()
                .filter(|&n| self.bundles[b].fits_in(&self.free[n]))
                .max_by_key(|&n| self.node_load(n))
                .or_else(|| self.roomiest(&self.bundles[b], 0..self.nodes.len()));
            match node {
                Some(n) => self.assign(b, n),
                None => return Err(self.no_node_for(b)),
            }
        }
        Ok(())
    }

    /// SPREAD and STRICT_SPREAD: a maximum matching of the free bundles to
    /// nodes no other bundle uses; STRICT fails when it leaves any bundle
    /// out, SPREAD puts the leftovers on the least loaded nodes that fit.
    fn spread(&mut self, strict: bool) -> Result<(), PlacementError> {
        let used = self.used_nodes();
        let pinned_count = self.assigned.iter().flatten().count();
        if strict && used.len() < pinned_count {
            return Err(PlacementError::BadRequest(
                "STRICT_SPREAD puts each bundle on a different node, but node_ids repeats a node"
                    .into(),
            ));
        }
        let rest = self.unassigned();
        let open: Vec<usize> = (0..self.nodes.len())
            .filter(|n| !used.contains(n))
            .collect();
        let matched = self.max_matching(&rest, &open);
        for (&b, node) in rest.iter().zip(&matched) {
            if let Some(n) = node {
                self.assign(b, *n);
            }
        }
        let left = self.unassigned();
        if strict && !left.is_empty() {
            return Err(PlacementError::Infeasible(format!(
                "STRICT_SPREAD needs {} distinct nodes that each fit their bundle, \
                 only {} can be matched (bundle {} {} has no node of its own)",
                self.bundles.len(),
                self.bundles.len() - left.len(),
                left[0],
                &self.bundles[left[0]],
            )));
        }
        for b in left {
            let node = (0..self.nodes.len())
                .filter(|&n| self.bundles[b].fits_in(&self.free[n]))
                .min_by_key(|&n| self.node_load(n));
            match node {
                Some(n) => self.assign(b, n),
                None => return Err(self.no_node_for(b)),
            }
        }
        Ok(())
    }

    /// Kuhn's augmenting paths: bundle `rest[i]` → node in `open`, each node
    /// at most once, an edge when the bundle fits the node on its own.
    fn max_matching(&self, rest: &[usize], open: &[usize]) -> Vec<Option<usize>> {
        let fits_on: Vec<Vec<usize>> = rest
            .iter()
            .map(|&b| {
                let mut nodes: Vec<usize> = open
                    .iter()
                    .copied()
                    .filter(|&n| self.bundles[b].fits_in(&self.free[n]))
                    .collect();
                // Roomiest first, so ties prefer the least loaded node.
                nodes.sort_by(|&x, &y| self.free[y].cpus.total_cmp(&self.free[x].cpus));
                nodes
            })
            .collect();
        let mut owner: std::collections::HashMap<usize, usize> = Default::default();
        for i in 0..rest.len() {
            let mut seen = std::collections::HashSet::new();
            augment(i, &fits_on, &mut owner, &mut seen);
        }
        let mut out = vec![None; rest.len()];
        for (node, i) in owner {
            out[i] = Some(node);
        }
        out
    }

    fn no_node_for(&self, bundle: usize) -> PlacementError {
        PlacementError::Infeasible(format!(
            "{}: bundle {bundle} {} fits on no node",
            self.strategy_name(),
            &self.bundles[bundle],
        ))
    }
}

fn augment(
    i: usize,
    fits_on: &[Vec<usize>],
    owner: &mut std::collections::HashMap<usize, usize>,
    seen: &mut std::collections::HashSet<usize>,
) -> bool {
    for &node in &fits_on[i] {
        if !seen.insert(node) {
            continue;
        }
        let free = match owner.get(&node) {
            None => true,
            Some(&j) => augment(j, fits_on, owner, seen),
        };
        if free {
            owner.insert(node, i);
            return true;
        }
    }
    false
}

/// Sort key for first-fit decreasing: CPU first, then everything else.
fn size_key(r: &Resources) -> f64 {
    r.cpus * 1e6 + r.rows().iter().map(|(_, v)| v).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use PlacementStrategy::*;

    fn r(cpu: f64) -> Resources {
        Resources::from([("CPU".to_owned(), cpu)])
    }

    fn cluster(caps: &[f64]) -> (Vec<String>, Vec<Resources>) {
        let ids = (0..caps.len()).map(|i| format!("n{i}")).collect();
        (ids, caps.iter().map(|c| r(*c)).collect())
    }

    fn place(
        strategy: PlacementStrategy,
        bundles: &[f64],
        pinned: &[&str],
        caps: &[f64],
    ) -> Result<Vec<String>, PlacementError> {
        let (ids, res) = cluster(caps);
        let nodes: Vec<Candidate> = ids
            .iter()
            .zip(&res)
            .map(|(id, c)| Candidate {
                node_id: id,
                capacity: c,
            })
            .collect();
        let bundles: Vec<Resources> = bundles.iter().map(|c| r(*c)).collect();
        let pinned: Vec<String> = pinned.iter().map(|s| s.to_string()).collect();
        place_bundles(strategy, &bundles, &pinned, &nodes)
    }

    fn distinct(nodes: &[String]) -> usize {
        let mut v = nodes.to_vec();
        v.sort();
        v.dedup();
        v.len()
    }

    #[test]
    fn pack_uses_one_node_when_it_can() {
        let out = place(Pack, &[1.0, 1.0, 1.0], &[], &[2.0, 4.0, 3.0]).unwrap();
        assert_eq!(out, vec!["n1"; 3]);
        assert_eq!(
            place(Unspecified, &[1.0, 1.0], &[], &[2.0]).unwrap().len(),
            2
        );
    }

    #[test]
    fn pack_falls_back_to_few_nodes() {
        // 6 CPUs over nodes of 4, 4, 4: two nodes, not three.
        let out = place(Pack, &[2.0, 2.0, 1.0, 1.0], &[], &[4.0, 4.0, 4.0]).unwrap();
        assert_eq!(distinct(&out), 2, "{out:?}");
        // A bundle no node can hold.
        let err = place(Pack, &[1.0, 5.0], &[], &[4.0, 4.0]).unwrap_err();
        assert!(
            matches!(&err, PlacementError::Infeasible(m) if m.contains("bundle 1")),
            "{err}"
        );
    }

    #[test]
    fn spread_uses_distinct_nodes_where_possible() {
        let out = place(Spread, &[1.0, 1.0, 1.0], &[], &[4.0, 4.0, 4.0]).unwrap();
        assert_eq!(distinct(&out), 3);
        // Four bundles, three nodes: best effort, still all placed.
        let out = place(Spread, &[1.0; 4], &[], &[4.0, 4.0, 4.0]).unwrap();
        assert_eq!(distinct(&out), 3);
        // The matching must not waste the only big node on a small bundle.
        let out = place(Spread, &[1.0, 3.0], &[], &[4.0, 1.0]).unwrap();
        assert_eq!(out, vec!["n1", "n0"]);
        assert!(place(Spread, &[8.0], &[], &[4.0, 4.0]).is_err());
    }

    #[test]
    fn strict_pack_is_one_node_or_nothing() {
        let out = place(StrictPack, &[2.0, 2.0], &[], &[3.0, 4.0]).unwrap();
        assert_eq!(out, vec!["n1", "n1"]);
        let err = place(StrictPack, &[2.0, 2.0, 2.0], &[], &[4.0, 4.0, 4.0]).unwrap_err();
        assert!(
            matches!(&err, PlacementError::Infeasible(m) if m.contains("STRICT_PACK")),
            "{err}"
        );
    }

    #[test]
    fn strict_spread_is_distinct_nodes_or_nothing() {
        let out = place(StrictSpread, &[1.0, 1.0, 1.0], &[], &[1.0, 1.0, 1.0]).unwrap();
        assert_eq!(distinct(&out), 3);
        // Needs a matching: the 2-CPU bundle must take the only 2-CPU node.
        let out = place(StrictSpread, &[1.0, 2.0], &[], &[2.0, 1.0]).unwrap();
        assert_eq!(out, vec!["n1", "n0"]);
        let err = place(StrictSpread, &[1.0; 4], &[], &[4.0, 4.0, 4.0]).unwrap_err();
        assert!(
            matches!(&err, PlacementError::Infeasible(m) if m.contains("STRICT_SPREAD")),
            "{err}"
        );
    }

    #[test]
    fn pinned_nodes_are_honoured_and_checked() {
        let out = place(Spread, &[1.0, 1.0], &["n2", ""], &[4.0, 4.0, 4.0]).unwrap();
        assert_eq!(out[0], "n2");
        assert_ne!(out[1], "n2");
        let out = place(StrictPack, &[1.0, 1.0], &["", "n1"], &[4.0, 4.0]).unwrap();
        assert_eq!(out, vec!["n1", "n1"]);
        assert_eq!(
            place(Pack, &[1.0], &["ghost"], &[4.0]).unwrap_err(),
            PlacementError::UnknownNode("ghost".into())
        );
        assert!(matches!(
            place(StrictPack, &[1.0, 1.0], &["n0", "n1"], &[4.0, 4.0]),
            Err(PlacementError::BadRequest(_))
        ));
        assert!(matches!(
            place(StrictSpread, &[1.0, 1.0], &["n0", "n0"], &[4.0, 4.0]),
            Err(PlacementError::BadRequest(_))
        ));
        assert!(matches!(
            place(Pack, &[1.0, 1.0], &["n0"], &[4.0]),
            Err(PlacementError::BadRequest(_))
        ));
        let err = place(Pack, &[5.0], &["n0"], &[4.0, 8.0]).unwrap_err();
        assert!(
            matches!(&err, PlacementError::Infeasible(m) if m.contains("n0")),
            "{err}"
        );
    }

    #[test]
    fn other_resources_count_too() {
        let caps = [
            Resources::from([("CPU".into(), 4.0)]),
            Resources::from([("CPU".into(), 1.0), ("GPU".into(), 1.0)]),
        ];
        let nodes = [
            Candidate {
                node_id: "cpu",
                capacity: &caps[0],
            },
            Candidate {
                node_id: "gpu",
                capacity: &caps[1],
            },
        ];
        let bundles = [Resources::from([("GPU".into(), 1.0)]), r(2.0)];
        let out = place_bundles(StrictSpread, &bundles, &[], &nodes).unwrap();
        assert_eq!(out, vec!["gpu", "cpu"]);
        assert!(place_bundles(StrictPack, &bundles, &[], &nodes).is_err());
    }
}
