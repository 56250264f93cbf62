//! Per-tenant namespaces of actor (and placement-group) names: two tenants
//! may both name an actor `model`, and each finds its own.
//!
//! A name is claimed cluster-wide under its *scoped* form: `tenant::name`
//! for every tenant but the default one, whose names stay as given (so a
//! cluster of one tenant sees no change) unless they contain `::` (then
//! `default::name`). Tenant names have no `:`, so no two tenants' names
//! can meet.

use reef_core::TenantId;

const SEPARATOR: &str = "::";

/// The form `name` of `tenant` is claimed under.
pub fn scoped(tenant: &TenantId, name: &str) -> String {
    if tenant.is_default() && !name.contains(SEPARATOR) {
        name.to_string()
    } else {
        format!("{tenant}{SEPARATOR}{name}")
    }
}

/// The name as its tenant gave it.
pub fn shown(scoped: &str) -> &str {
    scoped
        .split_once(SEPARATOR)
        .map_or(scoped, |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tenant_has_its_own_names() {
        let (d, a) = (TenantId::default(), TenantId::new("team-a"));
        assert_eq!(scoped(&d, "model"), "model");
        assert_eq!(scoped(&a, "model"), "team-a::model");
        assert_ne!(scoped(&d, "team-a::model"), scoped(&a, "model"));
        for (t, n) in [(&d, "model"), (&a, "model"), (&d, "x::y"), (&a, "x::y")] {
            assert_eq!(shown(&scoped(t, n)), n);
        }
    }
}
