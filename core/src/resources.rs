//! Resources a task or actor asks for, a node offers, or a bundle reserves:
//! CPUs, bytes of the `memory` resource, and custom named amounts.
//!
//! On the wire they are either a request (`reef.v1.Resources`, with an
//! optional CPU count) or a resource map (`reef.v1.ResourceMap`: `"CPU"`,
//! `"memory"` and custom names).

use std::collections::BTreeMap;
use std::fmt;

use reef_proto as pb;
use serde::{Deserialize, Serialize};

/// Slack for float comparisons: `0.1 + 0.2` CPUs must fit in `0.3`.
pub const EPSILON: f64 = 1e-9;

/// The CPU resource's name in a resource map.
pub const CPU: &str = "CPU";
/// The memory resource's name in a resource map (bytes).
pub const MEMORY: &str = "memory";

/// An amount of each resource. Stored (serde) as the resource map's form.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "BTreeMap<String, f64>", from = "BTreeMap<String, f64>")]
pub struct Resources {
    pub cpus: f64,
    pub memory: u64,
    pub custom: BTreeMap<String, f64>,
}

/// A resource map that cannot be a node's or a request's resources.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ResourcesError {
    #[error("{what} has a resource with an empty name")]
    EmptyName { what: String },
    #[error("{what} resource `{name}` must be finite and non-negative, got {amount}")]
    Invalid {
        what: String,
        name: String,
        amount: f64,
    },
    #[error("available resource `{name}` = {amount} exceeds the node's total {total}")]
    AboveTotal {
        name: String,
        amount: f64,
        total: f64,
    },
}

impl Resources {
    /// No resources at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// `n` CPUs and nothing else.
    pub fn cpus(n: f64) -> Self {
        Resources {
            cpus: n,
            ..Self::default()
        }
    }

    /// Whether `self` fits in `available` (a resource absent there is 0).
    pub fn fits_in(&self, available: &Resources) -> bool {
        self.cpus <= available.cpus + EPSILON
            && self.memory <= available.memory
            && self
                .custom
                .iter()
                .all(|(k, v)| *v <= available.get(k) + EPSILON)
    }

    /// The amount of one resource by its map name (0 when absent).
    pub fn get(&self, name: &str) -> f64 {
        match name {
            CPU => self.cpus,
            MEMORY => self.memory as f64,
            other => self.custom.get(other).copied().unwrap_or(0.0),
        }
    }

    /// Sets one resource by its map name (memory is rounded down to bytes).
    pub fn set(&mut self, name: &str, amount: f64) {
        match name {
            CPU => self.cpus = amount,
            MEMORY => self.memory = amount as u64,
            other => {
                self.custom.insert(other.to_owned(), amount);
            }
        }
    }

    /// `self += other`, per resource.
    pub fn add(&mut self, other: &Resources) {
        self.cpus += other.cpus;
        self.memory += other.memory;
        for (k, v) in &other.custom {
            *self.custom.entry(k.clone()).or_default() += v;
        }
    }

    /// `self -= other`, per resource (floats may go negative, memory stops
    /// at 0).
    pub fn subtract(&mut self, other: &Resources) {
        self.cpus -= other.cpus;
        self.memory = self.memory.saturating_sub(other.memory);
        for (k, v) in &other.custom {
            *self.custom.entry(k.clone()).or_default() -= v;
        }
    }

    /// Each resource clamped to `[0, total]` (a resource `total` lacks to 0).
    pub fn clamp_to(&mut self, total: &Resources) {
        self.cpus = self.cpus.clamp(0.0, total.cpus.max(0.0));
        self.memory = self.memory.min(total.memory);
        for (k, v) in self.custom.iter_mut() {
            *v = v.clamp(0.0, total.get(k).max(0.0));
        }
    }

    /// The sum of several.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Resources>) -> Resources {
        let mut out = Resources::new();
        for r in all {
            out.add(r);
        }
        out
    }

    /// Every amount by its map name: CPU, memory, then custom ones by name.
    pub fn rows(&self) -> Vec<(String, f64)> {
        let mut rows = vec![
            (CPU.to_owned(), self.cpus),
            (MEMORY.to_owned(), self.memory as f64),
        ];
        rows.extend(self.custom.iter().map(|(k, v)| (k.clone(), *v)));
        rows
    }

    /// The wire's resource map as resources (not validated: see
    /// [`Resources::validated`]).
    pub fn from_map(map: &pb::ResourceMap) -> Resources {
        let mut r = Resources::new();
        for (name, amount) in &map.amounts {
            r.set(name, *amount);
        }
        r
    }

    /// The resources as the wire's resource map.
    pub fn to_map(&self) -> pb::ResourceMap {
        pb::ResourceMap {
            amounts: self.rows().into_iter().collect(),
        }
    }

    /// A resource map checked to be usable: every name non-empty, every
    /// amount finite and non-negative. The error names the offending
    /// resource and `what` (`"total"`, `"bundle 2"`, ...).
    pub fn validated(what: &str, map: &pb::ResourceMap) -> Result<Resources, ResourcesError> {
        for (name, amount) in &map.amounts {
            if name.is_empty() {
                return Err(ResourcesError::EmptyName { what: what.into() });
            }
            if !amount.is_finite() || *amount < 0.0 {
                return Err(ResourcesError::Invalid {
                    what: what.into(),
                    name: name.clone(),
                    amount: *amount,
                });
            }
        }
        Ok(Resources::from_map(map))
    }

    /// Checks that a node's `available` is consistent with its `total`: no
    /// resource the node does not have, none above its total.
    pub fn check_within(&self, total: &Resources) -> Result<(), ResourcesError> {
        for (name, amount) in self.rows() {
            let cap = total.get(&name);
            if amount > cap + EPSILON {
                return Err(ResourcesError::AboveTotal {
                    name,
                    amount,
                    total: cap,
                });
            }
        }
        Ok(())
    }

    /// A call's request (`reef.v1.Resources`); `default_cpus` when it names
    /// no CPU count.
    pub fn from_request(request: &pb::Resources, default_cpus: f64) -> Resources {
        Resources {
            cpus: request.num_cpus.unwrap_or(default_cpus),
            memory: request.memory,
            custom: request
                .custom
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        }
    }

    /// The resources as a call's request.
    pub fn to_request(&self) -> pb::Resources {
        pb::Resources {
            num_cpus: Some(self.cpus),
            memory: self.memory,
            custom: self.custom.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }
}

/// Compact human form for messages: `{CPU: 2, memory: 1000, GPU: 1}`
/// (zero CPU and memory left out).
impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.cpus != 0.0 {
            parts.push(format!("{CPU}: {}", self.cpus));
        }
        if self.memory != 0 {
            parts.push(format!("{MEMORY}: {}", self.memory));
        }
        parts.extend(self.custom.iter().map(|(k, v)| format!("{k}: {v}")));
        write!(f, "{{{}}}", parts.join(", "))
    }
}

impl From<BTreeMap<String, f64>> for Resources {
    fn from(map: BTreeMap<String, f64>) -> Self {
        map.into_iter().collect()
    }
}

impl From<Resources> for BTreeMap<String, f64> {
    fn from(r: Resources) -> Self {
        r.rows().into_iter().collect()
    }
}

impl<const N: usize> From<[(String, f64); N]> for Resources {
    fn from(pairs: [(String, f64); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl FromIterator<(String, f64)> for Resources {
    fn from_iter<I: IntoIterator<Item = (String, f64)>>(pairs: I) -> Self {
        let mut r = Resources::new();
        for (name, amount) in pairs {
            r.set(&name, amount);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(pairs: &[(&str, f64)]) -> Resources {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn fits_with_the_tolerance() {
        assert!(Resources::cpus(0.3).fits_in(&Resources::cpus(0.1 + 0.2)));
        assert!(!Resources::cpus(0.3 + 1e-6).fits_in(&Resources::cpus(0.3)));
        assert!(r(&[("GPU", 0.3)]).fits_in(&r(&[("GPU", 0.1 + 0.2)])));
        assert!(!r(&[("GPU", 1.0)]).fits_in(&r(&[("CPU", 8.0)])));
        assert!(Resources::new().fits_in(&Resources::new()));
        assert!(!r(&[("memory", 1001.0)]).fits_in(&r(&[("memory", 1000.0)])));
        // Many small grants summed back fit the whole.
        let mut taken = Resources::new();
        for _ in 0..10 {
            taken.add(&Resources::cpus(0.1));
        }
        assert!(taken.fits_in(&Resources::cpus(1.0)));
    }

    #[test]
    fn arithmetic() {
        let total = r(&[("CPU", 4.0), ("memory", 100.0), ("GPU", 1.0)]);
        let mut free = total.clone();
        free.subtract(&r(&[("CPU", 6.0), ("memory", 150.0), ("GPU", 0.5)]));
        assert_eq!(free.cpus, -2.0);
        assert_eq!(free.memory, 0);
        free.clamp_to(&total);
        assert_eq!(free, r(&[("CPU", 0.0), ("GPU", 0.5)]));
        assert_eq!(
            Resources::sum([&total, &total]),
            r(&[("CPU", 8.0), ("memory", 200.0), ("GPU", 2.0)])
        );
        assert_eq!(total.to_string(), "{CPU: 4, memory: 100, GPU: 1}");
    }

    #[test]
    fn maps_round_trip() {
        let x = r(&[("CPU", 2.5), ("memory", 1e9), ("GPU", 1.0)]);
        assert_eq!(Resources::from_map(&x.to_map()), x);
        assert_eq!(x.to_map().amounts["memory"], 1e9);
        let request = x.to_request();
        assert_eq!(Resources::from_request(&request, 1.0), x);
        let no_cpus = pb::Resources {
            num_cpus: None,
            memory: 5,
            custom: Default::default(),
        };
        assert_eq!(Resources::from_request(&no_cpus, 1.0).cpus, 1.0);
        // Stored as the resource map's form.
        let json = serde_json::to_string(&x).unwrap();
        assert_eq!(json, r#"{"CPU":2.5,"GPU":1.0,"memory":1000000000.0}"#);
        assert_eq!(serde_json::from_str::<Resources>(&json).unwrap(), x);
    }

    #[test]
    fn validation_names_the_resource() {
        let map = |pairs: &[(&str, f64)]| pb::ResourceMap {
            amounts: pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        };
        assert!(Resources::validated("total", &map(&[("CPU", 2.0)])).is_ok());
        let err = Resources::validated("total", &map(&[("CPU", -1.0)])).unwrap_err();
        assert!(err.to_string().contains("`CPU`"), "{err}");
        let err = Resources::validated("total", &map(&[("GPU", f64::NAN)])).unwrap_err();
        assert!(err.to_string().contains("`GPU`") && err.to_string().contains("NaN"));
        assert!(Resources::validated("x", &map(&[("m", f64::INFINITY)])).is_err());
        assert!(Resources::validated("x", &map(&[("", 1.0)])).is_err());
        let err = Resources::cpus(9.0)
            .check_within(&Resources::cpus(8.0))
            .unwrap_err();
        assert!(err.to_string().contains("exceeds"), "{err}");
        assert!(r(&[("GPU", 1.0)])
            .check_within(&Resources::cpus(8.0))
            .is_err());
        assert!(Resources::cpus(8.0)
            .check_within(&Resources::cpus(8.0))
            .is_ok());
    }
}
