//! Session slots: the part of an id prefix that tells one driver session of a
//! node from another (see `node::ID_PREFIX_SHIFT`).
//!
//! A session's objects carry its slot, so a slot may only go to a new session
//! once no live session holds it: two live sessions sharing a slot would make
//! ids that collide (a submit answered with another driver's object). Slots
//! are handed out in turn from a starting point, skipping those held, so a
//! slot freed by a session that just ended is reused as late as possible.

use std::sync::{Arc, Mutex};

/// The slots `1..count` of one node (slot 0 is the node's own ids).
pub struct SessionSlots {
    inner: Arc<Mutex<Slots>>,
}

struct Slots {
    held: Vec<bool>,
    /// Where the search for the next free slot starts.
    next: usize,
    in_use: usize,
}

/// A slot held by a live session; given back when dropped.
pub struct SlotLease {
    slot: u64,
    slots: Arc<Mutex<Slots>>,
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
            })),
        }
    }

    /// A slot no live session holds, or None when every slot is taken.
    pub fn acquire(&self) -> Option<SlotLease> {
        let mut s = self.inner.lock().unwrap();
        let count = s.held.len();
        let slot = (1..=count)
            .map(|step| (s.next + step) % count)
            .find(|&slot| !s.held[slot])?;
        s.held[slot] = true;
        s.next = slot;
        s.in_use += 1;
        Some(SlotLease {
            slot: slot as u64,
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_slot_is_never_handed_out_again_after_wrapping() {
        let slots = SessionSlots::new(4, 0);
        let long_lived = slots.acquire().unwrap();
        // Many short sessions come and go: the slot counter wraps many times.
        for _ in 0..20 {
            let short = slots.acquire().unwrap();
            assert_ne!(short.slot(), long_lived.slot());
            assert_ne!(short.slot(), 0, "slot 0 is the node's own");
        }
        assert_eq!(slots.in_use(), 1);
    }

    #[test]
    fn slots_run_out_and_come_back_when_sessions_end() {
        let slots = SessionSlots::new(4, 2);
        let held: Vec<_> = (0..3).map(|_| slots.acquire().unwrap()).collect();
        let mut numbers: Vec<_> = held.iter().map(SlotLease::slot).collect();
        assert_eq!(
            numbers,
            [3, 1, 2],
            "in turn from after the start, skipping 0"
        );
        assert!(slots.acquire().is_none(), "every slot is held");
        numbers.sort();
        assert_eq!(numbers, [1, 2, 3]);
        drop(held);
        assert_eq!(slots.in_use(), 0);
        assert!(slots.acquire().is_some());
    }

    #[test]
    fn a_freed_slot_is_reused_last() {
        let slots = SessionSlots::new(5, 0);
        let a = slots.acquire().unwrap();
        let b = slots.acquire().unwrap();
        let first = a.slot();
        drop(a);
        // The free slots after `b` come before the one just given back.
        let c = slots.acquire().unwrap();
        let d = slots.acquire().unwrap();
        assert_eq!((b.slot(), c.slot(), d.slot()), (2, 3, 4));
        assert_eq!(slots.acquire().unwrap().slot(), first);
    }
}
