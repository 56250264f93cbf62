//! Who work belongs to and who is asking: the tenant a task, actor or object
//! belongs to, and the kind of credential a request came with.

use std::fmt;
use std::sync::Arc;

/// The name of a tenant: the unit of isolation, quotas and fair sharing.
/// Cheap to clone (shared); every task, actor and session carries one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Arc<str>);

impl TenantId {
    /// The tenant a cluster starts with; its token is `<data-dir>/token`.
    pub const DEFAULT: &'static str = "default";

    pub fn new(name: impl Into<Arc<str>>) -> Self {
        TenantId(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_default(&self) -> bool {
        &*self.0 == Self::DEFAULT
    }

    /// From the wire, where the empty string means the default tenant.
    pub fn from_wire(name: &str) -> Self {
        if name.is_empty() {
            TenantId::default()
        } else {
            TenantId::new(name)
        }
    }

    /// For the wire: the default tenant is sent as the empty string.
    pub fn to_wire(&self) -> String {
        if self.is_default() {
            String::new()
        } else {
            self.0.to_string()
        }
    }
}

impl Default for TenantId {
    fn default() -> Self {
        TenantId::new(Self::DEFAULT)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.0)
    }
}

/// Longest tenant name.
pub const MAX_NAME_LEN: usize = 64;

/// Checks a tenant name: 1 to [`MAX_NAME_LEN`] characters of `a-z`, `0-9`,
/// `-` and `_` (it names files and metric labels).
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "a tenant name has 1 to {MAX_NAME_LEN} characters (got {})",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
    {
        return Err(format!(
            "tenant name {name:?}: {c:?} is not allowed (use a-z, 0-9, - and _)"
        ));
    }
    Ok(())
}

/// Who sent a request, as its credential says. Servers put it into the
/// request's extensions when they authenticate it; handlers authorize with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Another node of the cluster (cluster-internal services).
    Node,
    /// An operator: manages tenants, sees everything, stops nodes.
    Admin,
    /// A driver of one tenant.
    Tenant(TenantId),
}

impl Caller {
    /// The tenant whose work a request may see and change; `None` for
    /// callers that see all (admin and nodes).
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Caller::Tenant(t) => Some(t),
            Caller::Node | Caller::Admin => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_tenant_is_empty_on_the_wire() {
        assert_eq!(TenantId::default().to_wire(), "");
        assert_eq!(TenantId::from_wire(""), TenantId::default());
        let t = TenantId::new("team-a");
        assert_eq!(TenantId::from_wire(&t.to_wire()), t);
        assert_eq!(Caller::Tenant(t.clone()).tenant(), Some(&t));
        assert_eq!(Caller::Admin.tenant(), None);
    }

    #[test]
    fn tenant_names_are_checked() {
        assert!(validate_name("team-a_2").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("Team").is_err());
        assert!(validate_name("a/b").unwrap_err().contains("'/'"));
        assert!(validate_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
    }
}
