//! Resource maps: conversion from and to the wire form, validation, and the
//! arithmetic placement needs.

use reef_proto::ResourceMap;

use crate::tables::Resources;

/// Slack for float comparisons: `0.1 + 0.2` CPUs must fit in `0.3`.
const EPSILON: f64 = 1e-9;

/// The wire map as a sorted map (absent → empty).
pub fn from_proto(map: Option<&ResourceMap>) -> Resources {
    map.map(|m| m.amounts.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default()
}

/// The sorted map as the wire map.
pub fn to_proto(resources: &Resources) -> ResourceMap {
    ResourceMap {
        amounts: resources.iter().map(|(k, v)| (k.clone(), *v)).collect(),
    }
}

/// Every amount finite and non-negative, every name non-empty. The error
/// names the offending resource and `what` (`"total"`, `"bundle 2"`, ...).
pub fn validate(what: &str, resources: &Resources) -> Result<(), String> {
    for (name, amount) in resources {
        if name.is_empty() {
            return Err(format!("{what} has a resource with an empty name"));
        }
        if !amount.is_finite() || *amount < 0.0 {
            return Err(format!(
                "{what} resource `{name}` must be finite and non-negative, got {amount}"
            ));
        }
    }
    Ok(())
}

/// Checks that a node's `available` is consistent with its `total`: no
/// resource the node does not have, none above its total.
pub fn validate_available(available: &Resources, total: &Resources) -> Result<(), String> {
    validate("available", available)?;
    for (name, amount) in available {
        let cap = total.get(name).copied().unwrap_or(0.0);
        if *amount > cap + EPSILON {
            return Err(format!(
                "available resource `{name}` = {amount} exceeds the node's total {cap}"
            ));
        }
    }
    Ok(())
}

/// Whether `request` fits in `free` (a resource absent from `free` is 0).
pub fn fits(request: &Resources, free: &Resources) -> bool {
    request
        .iter()
        .all(|(name, amount)| *amount <= free.get(name).copied().unwrap_or(0.0) + EPSILON)
}

/// `into -= amount`, per resource (may go negative; see [`adjusted`]).
pub fn subtract(into: &mut Resources, amount: &Resources) {
    for (name, v) in amount {
        *into.entry(name.clone()).or_insert(0.0) -= v;
    }
}

/// `into += amount`, per resource.
pub fn add(into: &mut Resources, amount: &Resources) {
    for (name, v) in amount {
        *into.entry(name.clone()).or_insert(0.0) += v;
    }
}

/// `base + delta`, each resource clamped to `[0, total]`.
pub fn adjusted(base: &Resources, delta: &Resources, total: &Resources) -> Resources {
    let mut out = base.clone();
    add(&mut out, delta);
    for (name, v) in out.iter_mut() {
        let cap = total.get(name).copied().unwrap_or(0.0);
        *v = v.clamp(0.0, cap.max(0.0));
    }
    out
}

/// Sum of several maps.
pub fn sum<'a>(maps: impl IntoIterator<Item = &'a Resources>) -> Resources {
    let mut out = Resources::new();
    for m in maps {
        add(&mut out, m);
    }
    out
}

/// The CPU amount (0 when absent): the tie-breaker "most free CPU".
pub fn cpu(resources: &Resources) -> f64 {
    resources.get("CPU").copied().unwrap_or(0.0)
}

/// Compact human form for messages: `{CPU: 2, memory: 1000}`.
pub fn describe(resources: &Resources) -> String {
    let parts: Vec<String> = resources.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(pairs: &[(&str, f64)]) -> Resources {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn validation_names_the_resource() {
        assert!(validate("total", &r(&[("CPU", 2.0)])).is_ok());
        let err = validate("total", &r(&[("CPU", -1.0)])).unwrap_err();
        assert!(err.contains("`CPU`"), "{err}");
        let err = validate("total", &r(&[("GPU", f64::NAN)])).unwrap_err();
        assert!(err.contains("`GPU`") && err.contains("NaN"), "{err}");
        assert!(validate("x", &r(&[("m", f64::INFINITY)])).is_err());
        let err = validate_available(&r(&[("CPU", 9.0)]), &r(&[("CPU", 8.0)])).unwrap_err();
        assert!(err.contains("exceeds"), "{err}");
        assert!(validate_available(&r(&[("GPU", 1.0)]), &r(&[("CPU", 8.0)])).is_err());
    }

    #[test]
    fn fits_and_arithmetic() {
        assert!(fits(&r(&[("CPU", 0.3)]), &r(&[("CPU", 0.1 + 0.2)])));
        assert!(!fits(&r(&[("GPU", 1.0)]), &r(&[("CPU", 8.0)])));
        assert!(fits(&Resources::new(), &Resources::new()));
        let total = r(&[("CPU", 4.0)]);
        let mut delta = Resources::new();
        subtract(&mut delta, &r(&[("CPU", 6.0)]));
        assert_eq!(adjusted(&total, &delta, &total), r(&[("CPU", 0.0)]));
        assert_eq!(sum([&total, &total]), r(&[("CPU", 8.0)]));
    }
}
