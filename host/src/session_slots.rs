//! Session slots: the part of an id prefix that tells one driver session of a
//! node from another (see `node::ID_PREFIX_SHIFT`).
//!
//! A session's objects carry its slot, so a slot may only go to a new session
//! once no live session holds it: two live sessions sharing a slot would make
//! ids that collide (a submit answered with another driver's object). Slots
//! are handed out in turn from a starting point, skipping those held, so a
//! slot freed by a session that just ended is reused as late as possible.
//!
//! Slots are counted per tenant too: a tenant may hold at most its cap of a
//! node's slots (`--max-sessions-per-tenant`), so one tenant opening
//! sessions until the node has none left cannot lock the others out.

use std::sync::{Arc, Mutex};

use reef_core::TenantId;

use crate::fastmap::FastMap;

/// The slots `1..count` of one node (slot 0 is the node's own ids).
pub struct SessionSlots {
    inner: Arc<Mutex<Slots>>,
}

struct Slots {
    held: Vec<bool>,
    /// Where the search for the next free slot starts.
    next: usize,
    in_use: usize,
    /// Slots held by each tenant with any.
    by_tenant: FastMap<TenantId, usize>,
}

/// A slot held by a live session; given back when dropped.
pub struct SlotLease {
    slot: u64,
    tenant: TenantId,
    slots: Arc<Mutex<Slots>>,
}

/// Why no slot was given.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Every slot of the node is held.
    Full,
    /// The tenant holds its cap of slots already (this many).
    TenantCap(usize),
}

impl SessionSlots {
    /// Slots `1..count`, the first handed out being the one after `start`
    /// (taken modulo the count).
    pub fn new(count: u64, start: u64) -> Self {
        assert!(
            count >= 2,
            "a node needs slot 0 and at least one session slot"
        );
        let mut held = vec![false; count as usize];
        held[0] = true; // the node's own
        SessionSlots {
            inner: Arc::new(Mutex::new(Slots {
                held,
                next: (start % count) as usize,
                in_use: 0,
                by_tenant: FastMap::default(),
            })),
        }
    }

    /// A slot no live session holds, for a session of `tenant`, which may
    /// hold `cap` slots at most (`None`: no cap, the admin's).
    pub fn acquire(&self, tenant: &TenantId, cap: Option<usize>) -> Result<SlotLease, Refused> {
        let mut s = self.inner.lock().unwrap();
        let held = s.by_tenant.get(tenant).copied().unwrap_or(0);
        if cap.is_some_and(|cap| held >= cap) {
            return Err(Refused::TenantCap(held));
        }
        let count = s.held.len();
        let slot = (1..=count)
            .map(|step| (s.next + step) % count)
            .find(|&slot| !s.held[slot])
            .ok_or(Refused::Full)?;
        s.held[slot] = true;
        s.next = slot;
        s.in_use += 1;
        *s.by_tenant.entry(tenant.clone()).or_default() += 1;
        Ok(SlotLease {
            slot: slot as u64,
            tenant: tenant.clone(),
            slots: self.inner.clone(),
        })
    }

    /// How many slots live sessions hold.
    pub fn in_use(&self) -> usize {
        self.inner.lock().unwrap().in_use
    }
}

impl SlotLease {
    pub fn slot(&self) -> u64 {
        self.slot
    }
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        let mut s = self.slots.lock().unwrap();
        s.held[self.slot as usize] = false;
        s.in_use -= 1;
        if let Some(n) = s.by_tenant.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                s.by_tenant.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> TenantId {
        TenantId::default()
    }

    #[test]
    fn a_tenant_holds_its_cap_of_slots_at_most() {
        let slots = SessionSlots::new(8, 0);
        let (a, b) = (TenantId::new("a"), TenantId::new("b"));
        let held: Vec<_> = (0..3)
            .map(|_| slots.acquire(&b, Some(3)).unwrap())
            .collect();
        assert_eq!(
            slots.acquire(&b, Some(3)).err(),
            Some(Refused::TenantCap(3))
        );
        // Another tenant, and the admin (no cap), still get slots.
        let _a = slots.acquire(&a, Some(3)).unwrap();
        let _admin = slots.acquire(&b, None).unwrap();
        drop(held);
        assert!(slots.acquire(&b, Some(3)).is_ok());
        // The node's own limit holds whatever the caps.
        let _rest: Vec<_> = (0..5).map(|_| slots.acquire(&a, None).unwrap()).collect();
        assert_eq!(slots.acquire(&a, None).err(), Some(Refused::Full));
    }

    #[test]
    fn a_held_slot_is_never_handed_out_again_after_wrapping() {
        let slots = SessionSlots::new(4, 0);
        let long_lived = slots.acquire(&t(), None).unwrap();
        // Many short sessions come and go: the slot counter wraps many times.
        for _ in 0..20 {
            let short = slots.acquire(&t(), None).unwrap();
            assert_ne!(short.slot(), long_lived.slot());
            assert_ne!(short.slot(), 0, "slot 0 is the node's own");
        }
        assert_eq!(slots.in_use(), 1);
    }

    #[test]
    fn slots_run_out_and_come_back_when_sessions_end() {
        let slots = SessionSlots::new(4, 2);
        let held: Vec<_> = (0..3).map(|_| slots.acquire(&t(), None).unwrap()).collect();
        let mut numbers: Vec<_> = held.iter().map(SlotLease::slot).collect();
        assert_eq!(
            numbers,
            [3, 1, 2],
            "in turn from after the start, skipping 0"
        );
        assert!(slots.acquire(&t(), None).is_err(), "every slot is held");
        numbers.sort();
        assert_eq!(numbers, [1, 2, 3]);
        drop(held);
        assert_eq!(slots.in_use(), 0);
        assert!(slots.acquire(&t(), None).is_ok());
    }

    #[test]
    fn a_freed_slot_is_reused_last() {
        let slots = SessionSlots::new(5, 0);
        let a = slots.acquire(&t(), None).unwrap();
        let b = slots.acquire(&t(), None).unwrap();
        let first = a.slot();
        drop(a);
        // The free slots after `b` come before the one just given back.
        let c = slots.acquire(&t(), None).unwrap();
        let d = slots.acquire(&t(), None).unwrap();
        assert_eq!((b.slot(), c.slot(), d.slot()), (2, 3, 4));
        assert_eq!(slots.acquire(&t(), None).unwrap().slot(), first);
    }
}
