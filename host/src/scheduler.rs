//! Local resource accounting: tasks and actors take CPUs, memory and custom
//! resources from the node's pool and wait, in submission order, until they fit.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

pub use reef_core::Resources;

struct Waiter {
    seq: u64,
    wake: oneshot::Sender<()>,
}

/// Waiters with the same request, in order.
struct Class {
    request: Resources,
    waiters: VecDeque<Waiter>,
}

struct PoolState {
    available: Resources,
    classes: Vec<Class>,
    next_seq: u64,
    queued: usize,
}

pub struct Scheduler {
    total: Resources,
    state: Mutex<PoolState>,
}

/// Resources held by a running task or a live actor; given back on drop.
pub struct Permit {
    scheduler: Arc<Scheduler>,
    resources: Resources,
}

impl Permit {
    pub fn resources(&self) -> &Resources {
        &self.resources
    }
    /// The pool it came from (the node's, or a placement-group bundle's).
    pub fn pool(&self) -> &Arc<Scheduler> {
        &self.scheduler
    }
}

impl Scheduler {
    pub fn new(total: Resources) -> Arc<Self> {
        Arc::new(Scheduler {
            state: Mutex::new(PoolState {
                available: total.clone(),
                classes: Vec::new(),
                next_seq: 0,
                queued: 0,
            }),
            total,
        })
    }

    pub fn total(&self) -> &Resources {
        &self.total
    }
    pub fn available(&self) -> Resources {
        self.state.lock().unwrap().available.clone()
    }
    pub fn queued(&self) -> usize {
        self.state.lock().unwrap().queued
    }

    /// Whether the request could ever run here.
    pub fn feasible(&self, request: &Resources) -> bool {
        request.fits_in(&self.total)
    }

    /// Holds `request` now if it fits and nobody waits, else None.
    pub fn try_acquire(self: &Arc<Self>, request: &Resources) -> Option<Permit> {
        let mut state = self.state.lock().unwrap();
        if state.queued > 0 || !request.fits_in(&state.available) {
            return None;
        }
        state.available.subtract(request);
        Some(Permit {
            scheduler: self.clone(),
            resources: request.clone(),
        })
    }

    /// Waits until `request` fits, then holds it.
    pub async fn acquire(self: &Arc<Self>, request: &Resources) -> Permit {
        self.enqueue(request).granted().await
    }

    /// Takes a place in line for `request` now (so requests are served in the
    /// order they were made, not the order their tasks happen to be polled);
    /// `Ticket::granted` waits for the resources. A later small request may
    /// pass an earlier one that does not fit yet.
    pub fn enqueue(self: &Arc<Self>, request: &Resources) -> Ticket {
        let mut state = self.state.lock().unwrap();
        let wait = if state.queued == 0 && request.fits_in(&state.available) {
            state.available.subtract(request);
            None
        } else {
            let (tx, rx) = oneshot::channel();
            let seq = state.next_seq;
            state.next_seq += 1;
            state.queued += 1;
            let waiter = Waiter { seq, wake: tx };
            match state.classes.iter_mut().find(|c| &c.request == request) {
                Some(c) => c.waiters.push_back(waiter),
                None => state.classes.push(Class {
                    request: request.clone(),
                    waiters: VecDeque::from([waiter]),
                }),
            }
            Some(rx)
        };
        Ticket {
            scheduler: self.clone(),
            request: request.clone(),
            wait,
            used: false,
        }
    }

    fn release(&self, resources: &Resources) {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        state.available.add(resources);
        loop {
            // The oldest waiter, among the heads of the classes that fit now.
            let next = state
                .classes
                .iter()
                .enumerate()
                .filter(|(_, c)| c.request.fits_in(&state.available))
                .min_by_key(|(_, c)| c.waiters.front().map_or(u64::MAX, |w| w.seq))
                .map(|(i, _)| i);
            let Some(i) = next else { break };
            let class = &mut state.classes[i];
            let waiter = class.waiters.pop_front().unwrap();
            let request = class.request.clone();
            if class.waiters.is_empty() {
                state.classes.swap_remove(i);
            }
            state.queued -= 1;
            state.available.subtract(&request);
            if waiter.wake.send(()).is_err() {
                // The waiter gave up (cancelled): return its share.
                state.available.add(&request);
            }
        }
    }
}

/// A place in line for resources (see `Scheduler::enqueue`).
pub struct Ticket {
    scheduler: Arc<Scheduler>,
    request: Resources,
    wait: Option<oneshot::Receiver<()>>,
    /// Turned into a permit.
    used: bool,
}

impl Ticket {
    pub async fn granted(mut self) -> Permit {
        if let Some(rx) = self.wait.as_mut() {
            // The releaser moves the resources to us before waking us.
            let _ = rx.await;
        }
        // From here the permit gives the resources back, not the ticket.
        self.used = true;
        Permit {
            scheduler: self.scheduler.clone(),
            resources: std::mem::take(&mut self.request),
        }
    }
}

/// A ticket dropped before it became a permit (its task was cancelled)
/// gives back what it was granted; one still in line is skipped by `release`,
/// whose wake-up then fails.
impl Drop for Ticket {
    fn drop(&mut self) {
        if self.used {
            return;
        }
        let granted = match self.wait.as_mut() {
            None => true,
            Some(rx) => rx.try_recv().is_ok(),
        };
        if granted {
            self.scheduler.release(&self.request);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.scheduler.release(&self.resources);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus(n: f64) -> Resources {
        Resources {
            cpus: n,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn waits_until_resources_free_and_serves_in_order() {
        let s = Scheduler::new(cpus(2.0));
        let a = s.acquire(&cpus(2.0)).await;
        let s2 = s.clone();
        let waiting = tokio::spawn(async move { s2.acquire(&cpus(1.0)).await });
        tokio::task::yield_now().await;
        assert_eq!(s.queued(), 1);
        drop(a);
        let b = waiting.await.unwrap();
        assert_eq!(s.available().cpus, 1.0);
        drop(b);
        assert_eq!(s.available().cpus, 2.0);
        assert!(!s.feasible(&cpus(3.0)));
    }

    #[tokio::test]
    async fn a_granted_ticket_dropped_unused_gives_its_share_back() {
        let s = Scheduler::new(cpus(1.0));
        let ticket = s.enqueue(&cpus(1.0));
        assert_eq!(s.available().cpus, 0.0);
        drop(ticket);
        assert_eq!(s.available().cpus, 1.0);
        let waiting = s.enqueue(&cpus(1.0));
        let queued = s.enqueue(&cpus(1.0));
        drop(waiting.granted().await);
        // `queued` was granted on release, then dropped unused.
        drop(queued);
        assert_eq!(s.available().cpus, 1.0);
    }

    #[tokio::test]
    async fn cancelled_waiter_returns_its_share() {
        let s = Scheduler::new(cpus(1.0));
        let a = s.acquire(&cpus(1.0)).await;
        let s2 = s.clone();
        let waiting = tokio::spawn(async move { s2.acquire(&cpus(1.0)).await });
        tokio::task::yield_now().await;
        waiting.abort();
        let _ = waiting.await;
        drop(a);
        assert_eq!(s.available().cpus, 1.0);
    }
}
