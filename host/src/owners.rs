//! Which tenants may use an object: [`Owners`], kept by the node that owns
//! the object's id (see `ids`), where the id was allocated.
//!
//! An object belongs to the tenant that made it (a driver's put, the
//! submitter of a task or actor call whose result it is, the tenant a guest
//! that put it works for); `share` adds tenants. The table only answers;
//! the checks are made where requests enter a node (`rpc::session`, the
//! peer service) and an entry goes when its object is freed here.

use crate::fastmap::FastMap;
use std::sync::Mutex;

use reef_core::TenantId;

use crate::store::ObjectId;

/// The most tenants one object's list may hold (its maker and those it was
/// shared with): the list lives as long as the object, so `share` may not
/// grow it without a bound.
pub const MAX_TENANTS: usize = 64;

/// What [`Owners::share`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Shared {
    Yes,
    /// Nothing is recorded for the object here.
    Unknown,
    /// Its list already holds `MAX_TENANTS` tenants.
    Full,
}

/// Tenants allowed to use each object this node owns (and foreign objects
/// whose owner said so, while a copy is held here).
#[derive(Default)]
pub struct Owners {
    tenants: Mutex<FastMap<ObjectId, Vec<TenantId>>>,
}

impl Owners {
    /// A new object `id` is `tenant`'s, its maker's, only (whatever an
    /// earlier object of the same id allowed: callers record only after the
    /// object was made, so an id in use is never taken over).
    pub fn record(&self, id: ObjectId, tenant: &TenantId) {
        self.tenants
            .lock()
            .unwrap()
            .insert(id, vec![tenant.clone()]);
    }

    /// Adds `to` to the tenants of a recorded object.
    pub fn share(&self, id: ObjectId, to: &TenantId) -> Shared {
        match self.tenants.lock().unwrap().get_mut(&id) {
            Some(list) if list.contains(to) => Shared::Yes,
            Some(list) if list.len() >= MAX_TENANTS => Shared::Full,
            Some(list) => {
                list.push(to.clone());
                Shared::Yes
            }
            None => Shared::Unknown,
        }
    }

    /// Whether `tenant` may use `id`; `None` when nothing is recorded here.
    pub fn allows(&self, id: ObjectId, tenant: &TenantId) -> Option<bool> {
        let tenants = self.tenants.lock().unwrap();
        tenants.get(&id).map(|list| list.contains(tenant))
    }

    /// The tenants of an object, for listings (empty when not recorded).
    pub fn of(&self, id: ObjectId) -> Vec<TenantId> {
        self.tenants
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .unwrap_or_default()
    }

    /// The object was freed here.
    pub fn forget(&self, id: ObjectId) {
        self.tenants.lock().unwrap().remove(&id);
    }

    /// Objects recorded (for tests and metrics).
    pub fn len(&self) -> usize {
        self.tenants.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_is_its_makers_until_shared() {
        let owners = Owners::default();
        let (a, b) = (TenantId::new("a"), TenantId::new("b"));
        assert_eq!(owners.allows(7, &a), None);
        owners.record(7, &a);
        assert_eq!(owners.allows(7, &a), Some(true));
        assert_eq!(owners.allows(7, &b), Some(false));
        assert_eq!(owners.share(7, &b), Shared::Yes);
        assert_eq!(owners.allows(7, &b), Some(true));
        assert_eq!(owners.share(8, &b), Shared::Unknown);
        assert_eq!(owners.of(7), vec![a.clone(), b.clone()]);
        // The list is bounded; sharing again with a tenant on it still works.
        for n in 2..MAX_TENANTS {
            assert_eq!(
                owners.share(7, &TenantId::new(format!("t{n}"))),
                Shared::Yes
            );
        }
        assert_eq!(owners.share(7, &TenantId::new("one-more")), Shared::Full);
        assert_eq!(owners.share(7, &b), Shared::Yes);
        assert_eq!(owners.of(7).len(), MAX_TENANTS);
        owners.forget(7);
        assert_eq!(owners.allows(7, &a), None);
        assert!(owners.is_empty());
    }
}
