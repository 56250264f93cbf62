//! `--filter key=value`: the keys each kind of row has, and matching.

use pb::StateKind;
use reef_core::TenantId;
use reef_proto as pb;

use crate::error::{ErrorCode, ReefError, ReefResult};

/// The keys rows of `kind` can be filtered by.
pub fn keys(kind: StateKind) -> &'static [&'static str] {
    match kind {
        StateKind::Nodes => &["node_id", "address", "state", "head"],
        StateKind::Tasks => &[
            "task_id",
            "module",
            "function",
            "state",
            "node_id",
            "attempt",
            "error_code",
            "tenant",
        ],
        StateKind::Actors => &[
            "actor_id", "name", "module", "class", "state", "node_id", "tenant",
        ],
        StateKind::Objects => &["object_id", "state", "node_id", "owner_index"],
        StateKind::Groups => &["placement_group_id", "bundle_index", "node_id", "tenant"],
        StateKind::Jobs => &[
            "job_id",
            "driver_address",
            "node_id",
            "state",
            "submission_id",
            "tenant",
        ],
        StateKind::Modules => &["hash", "sdk", "node_id"],
        StateKind::Unspecified => &[],
    }
}

/// A row's field by name (ids in hex), for matching.
pub trait Fields {
    fn field(&self, key: &str) -> Option<String>;
}

/// Checked filters: every key exists for the kind.
#[derive(Clone, Debug, Default)]
pub struct Filters(Vec<(String, String)>);

impl Filters {
    pub fn parse(kind: StateKind, filters: &[pb::StateFilter]) -> ReefResult<Filters> {
        let known = keys(kind);
        for f in filters {
            if !known.contains(&f.key.as_str()) {
                return Err(ReefError::new(
                    ErrorCode::BadArgument,
                    format!(
                        "unknown filter key `{}` for {}: use one of {}",
                        f.key,
                        kind_name(kind),
                        known.join(", ")
                    ),
                ));
            }
        }
        Ok(Filters(
            filters
                .iter()
                .map(|f| (f.key.clone(), f.value.clone()))
                .collect(),
        ))
    }

    pub fn matches(&self, row: &impl Fields) -> bool {
        self.0.iter().all(|(key, want)| match row.field(key) {
            Some(have) => same(key, &have, want),
            None => false,
        })
    }
}

/// Ids compare as numbers (`0x1f` or `31`), modules by hash prefix, the
/// rest as text (a state matches its first word: `dead` matches `dead: ...`).
fn same(key: &str, have: &str, want: &str) -> bool {
    if key.ends_with("_id") && key != "node_id" || key == "bundle_index" || key == "attempt" {
        if let (Some(a), Some(b)) = (parse_id(have), parse_id(want)) {
            return a == b;
        }
    }
    match key {
        "module" | "hash" => !want.is_empty() && have.starts_with(want),
        "state" => have == want || have.split([':', ' ']).next() == Some(want),
        _ => have == want,
    }
}

/// An id as typed: `0x...` hex or decimal.
pub fn parse_id(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

pub fn kind_name(kind: StateKind) -> &'static str {
    match kind {
        StateKind::Nodes => "nodes",
        StateKind::Tasks => "tasks",
        StateKind::Actors => "actors",
        StateKind::Objects => "objects",
        StateKind::Groups => "groups",
        StateKind::Jobs => "jobs",
        StateKind::Modules => "modules",
        StateKind::Unspecified => "unspecified",
    }
}

fn hex(id: u64) -> Option<String> {
    Some(format!("{id:#x}"))
}

impl Fields for pb::NodeStatus {
    fn field(&self, key: &str) -> Option<String> {
        match key {
            "node_id" => Some(self.node_id.clone()),
            "address" => Some(self.address.clone()),
            "state" => Some(self.state.clone()),
            "head" => Some(self.head.to_string()),
            _ => None,
        }
    }
}

impl Fields for pb::TaskInfo {
    fn field(&self, key: &str) -> Option<String> {
        match key {
            "task_id" => hex(self.task_id),
            "module" => Some(self.module.clone()),
            "function" => Some(self.function.clone()),
            "state" => Some(self.state.clone()),
            "node_id" => Some(self.node_id.clone()),
            "attempt" => Some(self.attempt.to_string()),
            "error_code" => Some(self.error_code.clone()),
            "tenant" => Some(TenantId::from_wire(&self.tenant).to_string()),
            _ => None,
        }
    }
}

impl Fields for pb::ActorInfo {
    fn field(&self, key: &str) -> Option<String> {
        match key {
            "actor_id" => hex(self.actor_id),
            "name" => Some(self.name.clone()),
            "module" => Some(self.module.clone()),
            "class" => Some(self.class.clone()),
            "state" => Some(self.state.clone()),
            "node_id" => Some(self.node_id.clone()),
            "tenant" => Some(TenantId::from_wire(&self.tenant).to_string()),
            _ => None,
        }
    }
}

impl Fields for pb::ObjectInfo {
    fn field(&self, key: &str) -> Option<String> {
        match key {
            "object_id" => hex(self.object_id),
            "state" => Some(self.state.clone()),
            "node_id" => Some(self.node_id.clone()),
            "owner_index" => Some(self.owner_index.to_string()),
            _ => None,
        }
    }
}

impl Fields for pb::BundleInfo {
    fn field(&self, key: &str) -> Option<String> {
        match key {
            "placement_group_id" => hex(self.placement_group_id),
            "bundle_index" => Some(self.bundle_index.to_string()),
            "node_id" => Some(self.node_id.clone()),
            "tenant" => Some(TenantId::from_wire(&self.tenant).to_string()),
            _ => None,
        }
    }
}

impl Fields for pb::JobRow {
    fn field(&self, key: &str) -> Option<String> {
        match key {
            "job_id" => Some(self.job_id.to_string()),
            "driver_address" => Some(self.driver_address.clone()),
            "node_id" => Some(self.node_id.clone()),
            "state" => Some(self.state.clone()),
            "submission_id" => Some(self.submission_id.clone()),
            "tenant" => Some(TenantId::from_wire(&self.tenant).to_string()),
            _ => None,
        }
    }
}

impl Fields for pb::ModuleRow {
    fn field(&self, key: &str) -> Option<String> {
        let m = self.module.as_ref()?;
        match key {
            "hash" => Some(m.hash.clone()),
            "sdk" => Some(m.sdk.clone()),
            "node_id" => Some(self.node_ids.join(",")),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused_with_the_known_ones() {
        let bad = [pb::StateFilter {
            key: "colour".into(),
            value: "red".into(),
        }];
        let e = Filters::parse(StateKind::Tasks, &bad).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadArgument);
        assert!(e.message.contains("function"), "{}", e.message);
    }

    #[test]
    fn ids_match_in_hex_or_decimal_and_states_by_first_word() {
        let row = pb::ActorInfo {
            actor_id: 31,
            state: "dead: killed".into(),
            ..Default::default()
        };
        let f = |k: &str, v: &str| {
            Filters::parse(
                StateKind::Actors,
                &[pb::StateFilter {
                    key: k.into(),
                    value: v.into(),
                }],
            )
            .unwrap()
        };
        assert!(f("actor_id", "0x1f").matches(&row));
        assert!(f("actor_id", "31").matches(&row));
        assert!(!f("actor_id", "32").matches(&row));
        assert!(f("state", "dead").matches(&row));
        assert!(!f("state", "alive").matches(&row));
    }
}
