//! Local resource accounting: tasks and actors take CPUs, memory and custom
//! resources from the node's pool and wait, in submission order, until they fit.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Resources a task or actor asks for, or a node offers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resources {
    pub cpus: f64,
    pub memory: u64,
    pub custom: BTreeMap<String, f64>,
}

impl Resources {
    pub fn fits_in(&self, available: &Resources) -> bool {
        self.cpus <= available.cpus + 1e-9
            && self.memory <= available.memory
            && self
                .custom
                .iter()
                .all(|(k, v)| *v <= available.custom.get(k).copied().unwrap_or(0.0) + 1e-9)
    }
    fn take(&self, from: &mut Resources) {
        from.cpus -= self.cpus;
        from.memory -= self.memory;
        for (k, v) in &self.custom {
            *from.custom.entry(k.clone()).or_default() -= v;
        }
    }
    fn give(&self, to: &mut Resources) {
        to.cpus += self.cpus;
        to.memory += self.memory;
        for (k, v) in &self.custom {
            *to.custom.entry(k.clone()).or_default() += v;
        }
    }
    /// Rows for `host status`: (name, amount).
    pub fn rows(&self) -> Vec<(String, f64)> {
        let mut rows = vec![
            ("CPU".to_string(), self.cpus),
            ("memory".to_string(), self.memory as f64),
        ];
        rows.extend(self.custom.iter().map(|(k, v)| (k.clone(), *v)));
        rows
    }
}

struct Waiter {
    request: Resources,
    wake: oneshot::Sender<()>,
}

struct PoolState {
    available: Resources,
    waiters: VecDeque<Waiter>,
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
}

impl Scheduler {
    pub fn new(total: Resources) -> Arc<Self> {
        Arc::new(Scheduler {
            state: Mutex::new(PoolState {
                available: total.clone(),
                waiters: VecDeque::new(),
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
        self.state.lock().unwrap().waiters.len()
    }

    /// Whether the request could ever run here.
    pub fn feasible(&self, request: &Resources) -> bool {
        request.fits_in(&self.total)
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
        let wait = if state.waiters.is_empty() && request.fits_in(&state.available) {
            request.take(&mut state.available);
            None
        } else {
            let (tx, rx) = oneshot::channel();
            state.waiters.push_back(Waiter {
                request: request.clone(),
                wake: tx,
            });
            Some(rx)
        };
        Ticket {
            scheduler: self.clone(),
            request: request.clone(),
            wait,
        }
    }

    fn release(&self, resources: &Resources) {
        let mut state = self.state.lock().unwrap();
        resources.give(&mut state.available);
        let mut i = 0;
        while i < state.waiters.len() {
            if state.waiters[i].request.fits_in(&state.available) {
                let waiter = state.waiters.remove(i).unwrap();
                waiter.request.take(&mut state.available);
                if waiter.wake.send(()).is_err() {
                    // The waiter gave up (cancelled): return its share.
                    waiter.request.give(&mut state.available);
                }
            } else {
                i += 1;
            }
        }
    }
}

/// A place in line for resources (see `Scheduler::enqueue`).
pub struct Ticket {
    scheduler: Arc<Scheduler>,
    request: Resources,
    wait: Option<oneshot::Receiver<()>>,
}

impl Ticket {
    pub async fn granted(self) -> Permit {
        if let Some(rx) = self.wait {
            // The releaser moved the resources to us before waking us; if
            // we were dropped meanwhile, it takes them back (see `release`).
            let _ = rx.await;
        }
        Permit {
            scheduler: self.scheduler,
            resources: self.request,
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
