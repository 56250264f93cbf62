//! Local resource accounting: tasks and actors take CPUs, memory and custom
//! resources from the node's pool and wait until they fit.
//!
//! Waiters queue per tenant. When resources free up, the next grant goes to
//! the tenant with the least *virtual time* among those whose oldest
//! fitting request fits now (stride scheduling): each grant advances its
//! tenant's virtual time by the CPUs granted divided by the tenant's weight
//! (`host tenant add|set --weight`), so tenants competing with equal-length
//! work get grants in the ratio of their weights, and a tenant's flood
//! never sits in front of another tenant's request. Within a tenant,
//! requests are served in the order they were made (a later small request
//! may pass an earlier one that does not fit yet). A tenant that starts
//! waiting again after a pause starts at the virtual time of the last grant
//! (idle time is not banked as credit). The pool is work-conserving: a
//! tenant alone gets every free CPU.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

pub use reef_core::{Resources, TenantId};

/// What a grant of no CPUs costs in virtual time, per unit of weight: a
/// 0-CPU request (an actor by default) still takes a turn.
const MIN_COST: f64 = 0.01;
/// How long after grants last alternated between tenants a pool still
/// counts as shared (`Scheduler::crowds_others`).
const SHARED_WINDOW: Duration = Duration::from_millis(100);

/// Whom a request is for: the tenant whose line it joins, and the
/// tenant's weight (its share of the pool when tenants compete).
#[derive(Clone, Debug, PartialEq)]
pub struct Share {
    pub tenant: TenantId,
    pub weight: f64,
    /// The most CPUs the tenant's work may hold in this pool at once
    /// (`host tenant add|set --max-cpus-in-use`): a request past it waits
    /// for the tenant's own work to end, and other tenants go first.
    pub max_cpus_in_use: Option<f64>,
    /// The most grants (wasm instances: running tasks, live actors) the
    /// tenant may hold in this pool at once (`--max-instances`): a request
    /// past it waits like one past `max_cpus_in_use`.
    pub max_instances: Option<u64>,
}

impl Share {
    /// `weight` must be finite and > 0 (the control plane checks it); any
    /// other value counts as 1.
    pub fn new(tenant: TenantId, weight: f64) -> Self {
        let weight = if weight.is_finite() && weight > 0.0 {
            weight
        } else {
            1.0
        };
        Share {
            tenant,
            weight,
            max_cpus_in_use: None,
            max_instances: None,
        }
    }

    /// The same share, holding at most `max` CPUs at once (`None`: no cap).
    pub fn with_max_cpus_in_use(mut self, max: Option<f64>) -> Self {
        self.max_cpus_in_use = max.filter(|m| m.is_finite() && *m >= 0.0);
        self
    }

    /// The same share, holding at most `max` grants at once (`None`: no cap).
    pub fn with_max_instances(mut self, max: Option<u64>) -> Self {
        self.max_instances = max;
        self
    }

    /// The default tenant, weight 1 (work of no tenant: tests, benches).
    pub fn default_tenant() -> Self {
        Share::new(TenantId::new(TenantId::DEFAULT), 1.0)
    }

    /// Virtual time one grant of `request` costs this tenant.
    fn cost(&self, request: &Resources) -> f64 {
        request.cpus.max(MIN_COST) / self.weight
    }
}

struct Waiter {
    seq: u64,
    wake: oneshot::Sender<()>,
}

/// A tenant's waiters with the same request, in order.
struct Class {
    request: Resources,
    waiters: VecDeque<Waiter>,
}

/// One tenant's line, and its virtual time.
struct Line {
    share: Share,
    /// CPUs granted so far divided by weight, from where it last started
    /// waiting (see `PoolState::vtime`).
    pass: f64,
    classes: Vec<Class>,
    queued: usize,
    /// CPUs its granted work holds now.
    in_use: f64,
    /// Grants it holds now (each a task's or an actor's instance).
    instances: u64,
    /// Actor creations that passed its `--max-instances` and have not
    /// taken their instance yet (see [`Scheduler::reserve_instance`]).
    reserved: u64,
}

impl Line {
    /// Whether the tenant's caps let it hold `request` more.
    fn within_cap(&self, request: &Resources) -> bool {
        self.share
            .max_cpus_in_use
            .is_none_or(|max| self.in_use + request.cpus <= max + reef_core::EPSILON)
            && self
                .share
                .max_instances
                .is_none_or(|max| self.instances < max)
    }

    /// The class whose oldest waiter is oldest among those that fit
    /// `available` (and the tenant's cap), and that waiter's number.
    fn next_fitting(&self, available: &Resources) -> Option<(usize, u64)> {
        self.classes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.request.fits_in(available) && self.within_cap(&c.request))
            .filter_map(|(i, c)| c.waiters.front().map(|w| (i, w.seq)))
            .min_by_key(|(_, seq)| *seq)
    }
}

struct PoolState {
    available: Resources,
    /// One per tenant that waits, or was granted more than the virtual time
    /// has reached (bounded by the tenants with work on this node).
    lines: Vec<Line>,
    next_seq: u64,
    queued: usize,
    /// The virtual time of the latest grant: a tenant that starts waiting
    /// (its line empty) starts here if it is behind.
    vtime: f64,
    /// Whom the latest grant went to, and when a grant last went to another
    /// tenant than the one before it (see `Scheduler::crowds_others`).
    last_granted: Option<TenantId>,
    shared_at: Option<Instant>,
}

impl PoolState {
    /// The line of `share`'s tenant (made if new), its weight brought up
    /// to date, its virtual time moved up to the pool's when it was not
    /// waiting.
    fn line(&mut self, share: &Share) -> usize {
        let i = match self
            .lines
            .iter()
            .position(|l| l.share.tenant == share.tenant)
        {
            Some(i) => i,
            None => {
                self.lines.push(Line {
                    share: share.clone(),
                    pass: self.vtime,
                    classes: Vec::new(),
                    queued: 0,
                    in_use: 0.0,
                    instances: 0,
                    reserved: 0,
                });
                self.lines.len() - 1
            }
        };
        let vtime = self.vtime;
        let line = &mut self.lines[i];
        line.share.weight = share.weight;
        line.share.max_cpus_in_use = share.max_cpus_in_use;
        line.share.max_instances = share.max_instances;
        if line.queued == 0 && line.pass < vtime {
            line.pass = vtime;
        }
        i
    }

    /// Charges line `i` for a grant of `request`.
    fn charge(&mut self, i: usize, request: &Resources) {
        let line = &mut self.lines[i];
        if self.last_granted.as_ref() != Some(&line.share.tenant) {
            if self.last_granted.is_some() {
                self.shared_at = Some(Instant::now());
            }
            self.last_granted = Some(line.share.tenant.clone());
        }
        self.vtime = self.vtime.max(line.pass);
        line.pass += line.share.cost(request);
        line.in_use += request.cpus;
        line.instances += 1;
    }

    /// `tenant`'s work gave `request` back.
    fn uncharge(&mut self, tenant: &TenantId, request: &Resources) {
        if let Some(line) = self.lines.iter_mut().find(|l| l.share.tenant == *tenant) {
            line.in_use = (line.in_use - request.cpus).max(0.0);
            line.instances = line.instances.saturating_sub(1);
        }
    }

    /// Grants waiters while one fits: each time to the tenant of least
    /// virtual time (the oldest waiter on a tie) among those with a
    /// fitting request.
    fn dispatch(&mut self) {
        loop {
            let mut best: Option<(usize, usize, f64, u64)> = None;
            for (l, line) in self.lines.iter().enumerate() {
                if line.queued == 0 {
                    continue;
                }
                let Some((c, seq)) = line.next_fitting(&self.available) else {
                    continue;
                };
                let better = match best {
                    None => true,
                    Some((_, _, pass, s)) => (line.pass, seq) < (pass, s),
                };
                if better {
                    best = Some((l, c, line.pass, seq));
                }
            }
            let Some((l, c, _, _)) = best else { break };
            let line = &mut self.lines[l];
            let class = &mut line.classes[c];
            let waiter = class.waiters.pop_front().expect("a class has waiters");
            let request = class.request.clone();
            if class.waiters.is_empty() {
                line.classes.swap_remove(c);
            }
            line.queued -= 1;
            self.queued -= 1;
            if waiter.wake.is_closed() {
                continue; // gave up (cancelled): not granted, not charged
            }
            self.available.subtract(&request);
            if waiter.wake.send(()).is_err() {
                // Gave up just now: return its share.
                self.available.add(&request);
                continue;
            }
            self.charge(l, &request);
        }
        self.prune();
    }

    /// Forgets lines that wait for nothing and are not ahead of the
    /// virtual time (they would start from it anyway).
    fn prune(&mut self) {
        let vtime = self.vtime;
        self.lines.retain(|l| {
            l.queued > 0
                || l.pass > vtime
                || l.in_use > reef_core::EPSILON
                || l.instances > 0
                || l.reserved > 0
        });
    }
}

pub struct Scheduler {
    total: Resources,
    state: Mutex<PoolState>,
}

/// An instance reserved under a tenant's `--max-instances`
/// ([`Scheduler::reserve_instance`]); given back on drop.
#[derive(Debug)]
pub struct InstanceReservation {
    pool: std::sync::Weak<Scheduler>,
    tenant: TenantId,
}

impl Drop for InstanceReservation {
    fn drop(&mut self) {
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let mut state = pool.state.lock().unwrap();
        if let Some(line) = state
            .lines
            .iter_mut()
            .find(|l| l.share.tenant == self.tenant)
        {
            line.reserved = line.reserved.saturating_sub(1);
        }
        state.prune();
    }
}

/// Resources held by a running task or a live actor; given back on drop.
pub struct Permit {
    scheduler: Arc<Scheduler>,
    resources: Resources,
    /// Whom it was granted to (`None`: a placement-group reservation, no
    /// tenant's).
    share: Option<Share>,
}

impl Permit {
    pub fn resources(&self) -> &Resources {
        &self.resources
    }
    /// The pool it came from (the node's, or a placement-group bundle's).
    pub fn pool(&self) -> &Arc<Scheduler> {
        &self.scheduler
    }
    /// Whom it was granted to (the default tenant's for a reservation).
    pub fn share(&self) -> Share {
        self.share.clone().unwrap_or_else(Share::default_tenant)
    }
}

impl Scheduler {
    pub fn new(total: Resources) -> Arc<Self> {
        Arc::new(Scheduler {
            state: Mutex::new(PoolState {
                available: total.clone(),
                lines: Vec::new(),
                next_seq: 0,
                queued: 0,
                vtime: 0.0,
                last_granted: None,
                shared_at: None,
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
    /// Whether `tenant` has requests waiting in this pool while the pool
    /// was shared with other tenants within `SHARED_WINDOW`: its work then
    /// keeps off the RPC thread (see `tasks::inline`). A tenant alone on a
    /// node keeps the inline path however much it queues.
    pub fn crowds_others(&self, tenant: &TenantId) -> bool {
        let state = self.state.lock().unwrap();
        // The clock is read only for a tenant with work waiting.
        state
            .lines
            .iter()
            .any(|l| l.share.tenant == *tenant && l.queued > 0)
            && state
                .shared_at
                .is_some_and(|at| at.elapsed() < SHARED_WINDOW)
    }
    /// The grants `tenant` holds in this pool now (its running tasks' and
    /// live actors' instances). Creations check `reserve_instance` instead.
    #[cfg(test)]
    fn instances_of(&self, tenant: &TenantId) -> u64 {
        let state = self.state.lock().unwrap();
        state
            .lines
            .iter()
            .find(|l| l.share.tenant == *tenant)
            .map_or(0, |l| l.instances)
    }

    /// Takes a place for one more instance of `share`'s tenant, at most
    /// `max` held or reserved at once: an actor creation reserves its
    /// instance when it is checked, so a burst of creations cannot all pass
    /// the check before any of them holds its instance. Drop the
    /// reservation once the instance is granted (or the creation failed).
    /// `Err` carries the instances held and reserved.
    pub fn reserve_instance(
        self: &Arc<Self>,
        share: &Share,
        max: u64,
    ) -> Result<InstanceReservation, u64> {
        let mut state = self.state.lock().unwrap();
        let i = state.line(share);
        let line = &mut state.lines[i];
        let in_use = line.instances + line.reserved;
        if in_use >= max {
            return Err(in_use);
        }
        line.reserved += 1;
        Ok(InstanceReservation {
            pool: Arc::downgrade(self),
            tenant: share.tenant.clone(),
        })
    }

    /// Whether the request could ever run here.
    pub fn feasible(&self, request: &Resources) -> bool {
        request.fits_in(&self.total)
    }

    /// Holds `request` now if it fits and nobody waits, else None (for
    /// reserving placement-group bundles: no tenant is charged).
    pub fn try_acquire(self: &Arc<Self>, request: &Resources) -> Option<Permit> {
        let mut state = self.state.lock().unwrap();
        if state.queued > 0 || !request.fits_in(&state.available) {
            return None;
        }
        state.available.subtract(request);
        Some(Permit {
            scheduler: self.clone(),
            resources: request.clone(),
            share: None,
        })
    }

    /// Waits until `request` fits and is `share`'s turn, then holds it.
    pub async fn acquire(self: &Arc<Self>, share: &Share, request: &Resources) -> Permit {
        self.enqueue(share, request).granted().await
    }

    /// Takes a place in `share`'s tenant's line for `request` now (so a
    /// tenant's requests are served in the order they were made, not the
    /// order their tasks happen to be polled); `Ticket::granted` waits for
    /// the resources. Granted at once when it fits and nobody waits.
    pub fn enqueue(self: &Arc<Self>, share: &Share, request: &Resources) -> Ticket {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        let line = state.line(share);
        let wait = if state.queued == 0
            && request.fits_in(&state.available)
            && state.lines[line].within_cap(request)
        {
            state.available.subtract(request);
            state.charge(line, request);
            None
        } else {
            let (tx, mut rx) = oneshot::channel();
            let seq = state.next_seq;
            state.next_seq += 1;
            state.queued += 1;
            let waiter = Waiter { seq, wake: tx };
            let line = &mut state.lines[line];
            line.queued += 1;
            match line.classes.iter_mut().find(|c| &c.request == request) {
                Some(c) => c.waiters.push_back(waiter),
                None => line.classes.push(Class {
                    request: request.clone(),
                    waiters: VecDeque::from([waiter]),
                }),
            }
            // Others wait for requests that do not fit; this one may.
            if request.fits_in(&state.available) {
                state.dispatch();
            }
            match rx.try_recv() {
                Ok(()) => None,
                Err(_) => Some(rx),
            }
        };
        Ticket {
            scheduler: self.clone(),
            request: request.clone(),
            share: share.clone(),
            wait,
            used: false,
        }
    }

    fn release(&self, resources: &Resources, share: Option<&Share>) {
        let mut state = self.state.lock().unwrap();
        state.available.add(resources);
        if let Some(share) = share {
            state.uncharge(&share.tenant, resources);
        }
        state.dispatch();
    }
}

/// A place in line for resources (see `Scheduler::enqueue`).
pub struct Ticket {
    scheduler: Arc<Scheduler>,
    request: Resources,
    share: Share,
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
            share: Some(self.share.clone()),
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
            self.scheduler.release(&self.request, Some(&self.share));
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.scheduler.release(&self.resources, self.share.as_ref());
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

    fn share(tenant: &str, weight: f64) -> Share {
        Share::new(TenantId::new(tenant), weight)
    }

    fn any() -> Share {
        Share::default_tenant()
    }

    #[tokio::test]
    async fn a_tenant_queueing_crowds_others_only_on_a_shared_pool() {
        let s = Scheduler::new(cpus(1.0));
        let (a, b) = (TenantId::new("a"), TenantId::new("b"));
        // b alone, queueing: it crowds no one.
        let held = s.enqueue(&share("b", 1.0), &cpus(1.0)).granted().await;
        let b1 = s.enqueue(&share("b", 1.0), &cpus(1.0));
        let _b2 = s.enqueue(&share("b", 1.0), &cpus(1.0));
        assert!(!s.crowds_others(&b));
        // a is granted between b's grants: now b's queue crowds a.
        let a1 = s.enqueue(&share("a", 3.0), &cpus(1.0));
        drop(held);
        let a1 = a1.granted().await;
        assert!(s.crowds_others(&b));
        assert!(!s.crowds_others(&a), "a has nothing waiting");
        drop(a1);
        let b1 = b1.granted().await;
        assert!(s.crowds_others(&b), "b still has one waiting");
        drop(b1);
        assert!(!s.crowds_others(&b), "b has nothing waiting");
    }

    #[tokio::test]
    async fn waits_until_resources_free_and_serves_in_order() {
        let s = Scheduler::new(cpus(2.0));
        let a = s.acquire(&any(), &cpus(2.0)).await;
        let s2 = s.clone();
        let waiting = tokio::spawn(async move { s2.acquire(&any(), &cpus(1.0)).await });
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
        let ticket = s.enqueue(&any(), &cpus(1.0));
        assert_eq!(s.available().cpus, 0.0);
        drop(ticket);
        assert_eq!(s.available().cpus, 1.0);
        let waiting = s.enqueue(&any(), &cpus(1.0));
        let queued = s.enqueue(&any(), &cpus(1.0));
        drop(waiting.granted().await);
        // `queued` was granted on release, then dropped unused.
        drop(queued);
        assert_eq!(s.available().cpus, 1.0);
    }

    #[tokio::test]
    async fn cancelled_waiter_returns_its_share() {
        let s = Scheduler::new(cpus(1.0));
        let a = s.acquire(&any(), &cpus(1.0)).await;
        let s2 = s.clone();
        let waiting = tokio::spawn(async move { s2.acquire(&any(), &cpus(1.0)).await });
        tokio::task::yield_now().await;
        waiting.abort();
        let _ = waiting.await;
        drop(a);
        assert_eq!(s.available().cpus, 1.0);
    }

    /// Whose tickets are granted, in order, when `holder` and then each
    /// granted ticket is dropped in turn (one CPU).
    async fn grant_order(
        s: &Arc<Scheduler>,
        holder: Permit,
        mut line: Vec<(String, Ticket)>,
    ) -> String {
        drop(holder);
        let mut order = String::new();
        while !line.is_empty() {
            let granted = line
                .iter_mut()
                .position(|(_, t)| match t.wait.as_mut() {
                    None => true,
                    Some(rx) => match rx.try_recv() {
                        Ok(()) => {
                            t.wait = None;
                            true
                        }
                        Err(_) => false,
                    },
                })
                .expect("one ticket is granted whenever the CPU is free");
            let (who, ticket) = line.remove(granted);
            order.push_str(&who);
            drop(ticket.granted().await);
        }
        assert_eq!(s.available().cpus, 1.0);
        order
    }

    #[tokio::test]
    async fn tenants_share_by_weight_not_by_arrival() {
        let s = Scheduler::new(cpus(1.0));
        let holder = s.acquire(&any(), &cpus(1.0)).await;
        let (a, b) = (share("a", 3.0), share("b", 1.0));
        // B's flood is queued first, then A's.
        let mut line: Vec<(String, Ticket)> = (0..8)
            .map(|_| ("b".to_string(), s.enqueue(&b, &cpus(1.0))))
            .collect();
        line.extend((0..8).map(|_| ("a".to_string(), s.enqueue(&a, &cpus(1.0)))));
        let order = grant_order(&s, holder, line).await;
        // A (weight 3) gets three grants for each of B's while both wait.
        let first = &order[..8];
        assert_eq!(first.matches('a').count(), 6, "{order}");
        assert_eq!(order.matches('a').count(), 8);
    }

    #[tokio::test]
    async fn a_tenant_behind_a_flood_goes_next() {
        let s = Scheduler::new(cpus(1.0));
        let holder = s.acquire(&any(), &cpus(1.0)).await;
        let b = share("b", 1.0);
        let mut line: Vec<(String, Ticket)> = (0..1000)
            .map(|_| ("b".to_string(), s.enqueue(&b, &cpus(1.0))))
            .collect();
        line.push(("a".to_string(), s.enqueue(&share("a", 1.0), &cpus(1.0))));
        let order = grant_order(&s, holder, line).await;
        assert!(
            order.starts_with("ba") || order.starts_with('a'),
            "{}",
            &order[..10]
        );
    }

    #[tokio::test]
    async fn a_tenant_alone_takes_every_cpu() {
        let s = Scheduler::new(cpus(4.0));
        let a = share("a", 1.0);
        let tickets: Vec<Ticket> = (0..4).map(|_| s.enqueue(&a, &cpus(1.0))).collect();
        assert!(tickets.iter().all(|t| t.wait.is_none()), "granted at once");
        assert_eq!(s.available().cpus, 0.0);
        drop(tickets);
        assert_eq!(s.available().cpus, 4.0);
    }

    #[tokio::test]
    async fn a_capped_tenant_waits_for_its_own_work_and_others_go_first() {
        let s = Scheduler::new(cpus(4.0));
        let a = share("a", 1.0).with_max_cpus_in_use(Some(1.0));
        let b = share("b", 1.0);
        let first = s.acquire(&a, &cpus(1.0)).await;
        // Free CPUs, but A holds its cap: it waits, B does not.
        let second = s.enqueue(&a, &cpus(1.0));
        assert!(second.wait.is_some(), "A passed its cap");
        let b1 = s.enqueue(&b, &cpus(1.0));
        let b2 = s.enqueue(&b, &cpus(1.0));
        assert!(b1.wait.is_none() && b2.wait.is_none(), "B waited behind A");
        assert_eq!(s.available().cpus, 1.0);
        // A's own work ending lets its next request in.
        drop(first);
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), second.granted())
            .await
            .expect("A's waiter was not granted after its work ended");
        assert_eq!(s.available().cpus, 1.0);
        drop((second, b1, b2));
        assert_eq!(s.available().cpus, 4.0);
    }

    #[tokio::test]
    async fn an_instance_capped_tenant_waits_for_its_own_work() {
        let s = Scheduler::new(cpus(4.0));
        let a = share("a", 1.0).with_max_instances(Some(2));
        let b = share("b", 1.0);
        // Actors of no CPUs count as instances too.
        let actor = s.acquire(&a, &cpus(0.0)).await;
        let task = s.acquire(&a, &cpus(1.0)).await;
        assert_eq!(s.instances_of(&a.tenant), 2);
        let third = s.enqueue(&a, &cpus(1.0));
        assert!(third.wait.is_some(), "A passed its instance cap");
        let other = s.enqueue(&b, &cpus(1.0));
        assert!(other.wait.is_none(), "B waited behind A");
        drop(actor);
        let third = tokio::time::timeout(std::time::Duration::from_secs(5), third.granted())
            .await
            .expect("A's waiter was not granted after its actor ended");
        assert_eq!(s.instances_of(&a.tenant), 2);
        drop((task, third, other));
        assert_eq!(s.instances_of(&a.tenant), 0);
        assert_eq!(s.available().cpus, 4.0);
    }

    #[tokio::test]
    async fn instance_reservations_count_until_given_back() {
        let s = Scheduler::new(cpus(1.0));
        let a = share("a", 1.0).with_max_instances(Some(2));
        // Two creations reserve before either holds its instance: a third
        // is refused, naming what is held and reserved.
        let first = s.reserve_instance(&a, 2).unwrap();
        let second = s.reserve_instance(&a, 2).unwrap();
        assert_eq!(s.reserve_instance(&a, 2).unwrap_err(), 2);
        // The first takes its instance and gives its reservation back: still 2.
        let held = s.acquire(&a, &cpus(0.0)).await;
        drop(first);
        assert_eq!(s.reserve_instance(&a, 2).unwrap_err(), 2);
        // The second creation failed: its place is free again.
        drop(second);
        let third = s.reserve_instance(&a, 2).unwrap();
        drop((held, third));
        assert!(s.reserve_instance(&a, 2).is_ok());
    }

    #[tokio::test]
    async fn idle_time_is_no_credit() {
        let s = Scheduler::new(cpus(1.0));
        let (a, b) = (share("a", 1.0), share("b", 1.0));
        // A alone had many grants...
        for _ in 0..100 {
            drop(s.acquire(&a, &cpus(1.0)).await);
        }
        let holder = s.acquire(&a, &cpus(1.0)).await;
        // ... B arriving now does not get them as credit: they alternate.
        let mut line: Vec<(String, Ticket)> = Vec::new();
        for _ in 0..6 {
            line.push(("b".to_string(), s.enqueue(&b, &cpus(1.0))));
            line.push(("a".to_string(), s.enqueue(&a, &cpus(1.0))));
        }
        let order = grant_order(&s, holder, line).await;
        assert!(!order.contains("bb") && !order.contains("aa"), "{order}");
    }

    #[tokio::test]
    async fn a_cancelled_waiter_is_not_charged_and_memory_is_bounded() {
        let s = Scheduler::new(cpus(1.0));
        let holder = s.acquire(&any(), &cpus(1.0)).await;
        let a = share("a", 1.0);
        let gone: Vec<Ticket> = (0..100).map(|_| s.enqueue(&a, &cpus(1.0))).collect();
        drop(gone);
        let waiting = s.enqueue(&share("b", 1.0), &cpus(1.0));
        drop(holder);
        drop(waiting.granted().await);
        assert_eq!(s.queued(), 0);
        assert_eq!(s.available().cpus, 1.0);
        // The line of a tenant that waits for nothing and is not ahead is forgotten.
        let state = s.state.lock().unwrap();
        assert!(!state.lines.iter().any(|l| l.share.tenant.as_str() == "a"));
    }
}
