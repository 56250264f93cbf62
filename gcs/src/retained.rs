//! Bounded histories that tenants share (finished jobs, dead actors,
//! removed placement groups): ids kept per tenant, oldest first. Past the
//! bound the tenant keeping the most loses its oldest, so one tenant's churn
//! never pushes another tenant's history out.

use std::collections::{HashMap, VecDeque};

#[derive(Debug, Default)]
pub struct Retained {
    by_tenant: HashMap<String, VecDeque<u64>>,
    count: usize,
}

impl Retained {
    /// Keeps `id`, `tenant`'s newest.
    pub fn push(&mut self, tenant: &str, id: u64) {
        match self.by_tenant.get_mut(tenant) {
            Some(ids) => ids.push_back(id),
            None => {
                self.by_tenant
                    .insert(tenant.to_owned(), VecDeque::from([id]));
            }
        }
        self.count += 1;
    }

    /// Ids kept, all tenants together.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The ids to forget for at most `keep` to stay: the tenant keeping the
    /// most gives its oldest first.
    pub fn trim(&mut self, keep: usize) -> Vec<u64> {
        let mut gone = Vec::new();
        while self.count > keep {
            let Some((tenant, ids)) = self.by_tenant.iter_mut().max_by_key(|(_, ids)| ids.len())
            else {
                break;
            };
            if let Some(id) = ids.pop_front() {
                gone.push(id);
                self.count -= 1;
            }
            if ids.is_empty() {
                let tenant = tenant.clone();
                self.by_tenant.remove(&tenant);
            }
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_bound_the_tenant_keeping_most_gives_its_oldest() {
        let mut kept = Retained::default();
        kept.push("a", 1);
        for id in 10..20 {
            kept.push("b", id);
        }
        assert_eq!(kept.trim(11), Vec::<u64>::new());
        assert_eq!(kept.trim(5), vec![10, 11, 12, 13, 14, 15]);
        kept.push("a", 30);
        // A and B keep 2 and 4: B's oldest go until they are even.
        assert_eq!(kept.trim(4), vec![16, 17]);
        assert_eq!(kept.len(), 4);
        assert_eq!(kept.trim(0).len(), 4);
        assert!(kept.is_empty() && kept.by_tenant.is_empty());
    }
}
