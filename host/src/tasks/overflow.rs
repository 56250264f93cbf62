//! A flood of short tasks from a tenant alone on a node, handed from the RPC
//! thread to the guest threads.
//!
//! A short task is driven on the RPC thread (see `inline`): a sync round trip
//! then costs no hand-off between threads. A flood of them kept that one
//! thread busy while the other cores idled (one driver's async `noop`s:
//! ~37,000/s, the RPC thread at 100 %, the guest threads ~2 % each). Handing
//! each call, or each finished store, to another thread cost more than it
//! saved: the store, the instance and the call's records were made on one
//! core and touched on another, and each hand-off woke a thread.
//!
//! So whole tasks are handed over, before their first poll: the RPC thread
//! keeps at most [`SPAWNED_MAX`] short tasks in flight, the next ones (those
//! a driver submitted or another node forwarded, asking for CPUs alone,
//! outside placement groups: a guest's child task queued behind a task or a
//! resource held elsewhere would hold its puller for as long as that takes)
//! wait here in submission order, and one puller per guest thread drives them one
//! at a time from start to end (its own store, its own seal: nothing crosses
//! threads but the queue's lock). The RPC thread goes on reading and
//! answering the driver. A queued task takes its place in the CPU line when
//! it starts, not when it is queued, so no CPU is ever granted to a task
//! nobody polls (a puller waiting for CPUs held by queued tasks would wait
//! forever), and the tasks a puller takes were queued in submission order.
//! A task with object arguments is admitted only once they are all here
//! (`Tasks::schedule` waits for them on the RPC thread): a puller holding a
//! task that waits for an argument rebuilt by a task queued behind it would
//! wait forever.
//!
//! The queue also takes a tenant's first short tasks while a driver session
//! reads a batch of more ops than one slice (`Overflow::reading`): the RPC
//! thread is busy reading, and tasks it ran inline meanwhile left the guest
//! threads idle. A DAG's submissions were read with the guest threads idle
//! for ~40 % of a run (its roots and their first dependents ran inline
//! between slices); queued, the 10,000-task DAG on one node went from
//! 39-44k to 43-49k tasks/s (5 runs each, alternated); async noops (also
//! large batches) and a sync round trip (one op a batch) unchanged.
//!
//! Only a tenant alone on the node queues: not while another tenant's short
//! task was started here within [`ALONE_AFTER`]. With the guest threads
//! driving a flood, the RPC thread, which reads and answers the other
//! tenants' drivers, got a smaller part of a core: another tenant's p99
//! round trip under a 145k-task flood was 4.2-13.6 ms, against 1.0-3.3 ms
//! with that flood driven from the RPC thread and its calls run on the guest
//! threads (see docs/security.md#fair-sharing). A tenant that arrives while a
//! flood is queued does not wait behind it (its tasks are spawned on the RPC
//! thread), but shares the cores with the pullers until the queue is empty.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reef_core::TenantId;

use crate::runtime::GuestRuntime;

/// Short tasks the RPC thread keeps spawned before the next ones wait in the
/// queue (enough to keep it busy between two reads of a driver's stream).
pub const SPAWNED_MAX: usize = 16;

/// How long after another tenant's short task a tenant counts as alone.
pub const ALONE_AFTER: Duration = Duration::from_secs(10);

type Drive = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct Overflow {
    guests: Arc<GuestRuntime>,
    /// Short tasks spawned where they were scheduled, not finished (an
    /// atomic: a finished task gives its place back without the lock).
    spawned: AtomicUsize,
    /// Driver sessions in the middle of a large batch of ops (see
    /// [`Overflow::reading`]).
    reading: AtomicUsize,
    state: Mutex<State>,
}

/// A driver session reading a large batch: while one is, a tenant alone
/// queues its short tasks for the guest threads (see [`Overflow::reading`]).
pub struct Reading(Arc<Overflow>);

impl Drop for Reading {
    fn drop(&mut self) {
        self.0.reading.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where a short task starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Spawned where it was scheduled (the RPC thread): give it to `spawn`.
    Spawn,
    /// Queued: give it to `queue`, without a place in the CPU line (it
    /// takes one when it starts).
    Queue,
}

#[derive(Default)]
struct State {
    /// Tasks not started yet, oldest first, all of `owner`.
    queue: VecDeque<Drive>,
    owner: Option<TenantId>,
    /// Tasks admitted to the queue and not in it yet (the queue stays
    /// `owner`'s meanwhile).
    admitted: usize,
    /// Guest threads taking tasks from `queue`.
    pullers: usize,
    /// The tenant of the latest short task, and when the one before it was
    /// another tenant's.
    latest: Option<TenantId>,
    mixed_at: Option<Instant>,
}

impl Overflow {
    pub fn new(guests: Arc<GuestRuntime>) -> Arc<Self> {
        Arc::new(Overflow {
            guests,
            spawned: AtomicUsize::new(0),
            reading: AtomicUsize::new(0),
            state: Default::default(),
        })
    }

    /// Where a short task of `tenant` starts: spawned, unless it `may_queue`,
    /// `SPAWNED_MAX` are in flight (or tasks already wait), the tenant is
    /// alone on the node and the queue is free or already its own. Follow
    /// at once with `spawn` or `queue`.
    pub fn admit(&self, tenant: &TenantId, may_queue: bool) -> Admission {
        let mut state = self.state.lock().unwrap();
        state.note(tenant);
        let alone = state.mixed_at.is_none_or(|at| at.elapsed() >= ALONE_AFTER);
        // Tenants competing: guests run below the RPC thread's priority.
        self.guests.set_shared(!alone);
        let queues = may_queue
            && self.guests.threads() > 0
            && (self.spawned.load(Ordering::Relaxed) >= SPAWNED_MAX
                || self.reading.load(Ordering::Relaxed) > 0
                || !state.queue.is_empty()
                || state.admitted > 0)
            && state.owner.as_ref().is_none_or(|owner| owner == tenant)
            && alone;
        if queues {
            state.owner.get_or_insert_with(|| tenant.clone());
            state.admitted += 1;
            Admission::Queue
        } else {
            self.spawned.fetch_add(1, Ordering::Relaxed);
            Admission::Spawn
        }
    }

    /// Marks a driver session reading a batch of more ops than it handles
    /// in one slice, until the guard is dropped. The RPC thread then has
    /// more to do than run tasks: meanwhile a tenant alone queues its short
    /// tasks for the guest threads, which would idle otherwise.
    pub fn reading(self: &Arc<Self>) -> Reading {
        self.reading.fetch_add(1, Ordering::Relaxed);
        Reading(self.clone())
    }

    /// Tasks queued or admitted to the queue, not started: they wait for
    /// CPUs, so placement counts them as the CPU line's waiting requests
    /// (work spills to other nodes while they wait).
    pub fn waiting(&self) -> usize {
        let state = self.state.lock().unwrap();
        state.queue.len() + state.admitted
    }

    /// Spawns a task admitted with `Admission::Spawn` on the current runtime.
    pub fn spawn<F>(self: &Arc<Self>, drive: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(self.clone().run_spawned(drive));
    }

    /// Drives a task admitted with `Admission::Spawn` in the caller's own
    /// tokio task (one already spawned where it was scheduled), then gives
    /// its place back.
    pub async fn run_spawned<F>(self: Arc<Self>, drive: F)
    where
        F: Future<Output = ()>,
    {
        drive.await;
        self.spawned.fetch_sub(1, Ordering::Relaxed);
    }

    /// Queues a task admitted with `Admission::Queue`; a puller per guest
    /// thread drains the queue.
    pub fn queue<F>(self: &Arc<Self>, drive: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let missing = {
            let mut state = self.state.lock().unwrap();
            state.admitted -= 1;
            state.queue.push_back(Box::pin(drive));
            let missing = self.guests.threads().saturating_sub(state.pullers);
            state.pullers += missing;
            missing
        };
        for _ in 0..missing {
            let this = self.clone();
            self.guests.spawn(async move { this.pull().await });
        }
    }

    /// A guest thread's puller: drives queued tasks one at a time until the
    /// queue is empty.
    async fn pull(self: Arc<Self>) {
        loop {
            let next = {
                let mut state = self.state.lock().unwrap();
                let next = state.queue.pop_front();
                if state.queue.is_empty() && state.admitted == 0 {
                    state.owner = None;
                }
                if next.is_none() {
                    state.pullers -= 1;
                }
                next
            };
            match next {
                Some(drive) => drive.await,
                None => return,
            }
        }
    }
}

impl State {
    /// A short task of `tenant` is admitted: whether tenants alternate.
    fn note(&mut self, tenant: &TenantId) {
        if self.latest.as_ref() != Some(tenant) {
            if self.latest.is_some() {
                self.mixed_at = Some(Instant::now());
            }
            self.latest = Some(tenant.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::Semaphore;

    use super::*;

    fn overflow() -> Arc<Overflow> {
        Overflow::new(Arc::new(GuestRuntime::new(2.0, 0).unwrap()))
    }

    fn start(
        overflow: &Arc<Overflow>,
        tenant: &str,
        drive: impl Future<Output = ()> + Send + 'static,
    ) {
        match overflow.admit(&TenantId::new(tenant), true) {
            Admission::Spawn => overflow.spawn(drive),
            Admission::Queue => overflow.queue(drive),
        }
    }

    /// 100 tasks of tenant b, each held until `gate` opens: the first
    /// `SPAWNED_MAX` are spawned here, the others queue and run on the
    /// guest threads; a task of tenant a submitted meanwhile does not queue.
    #[tokio::test]
    async fn a_flood_goes_to_the_guest_threads_beyond_the_first_ones() {
        let overflow = overflow();
        let guests = overflow.guests.clone();
        let (done, on_guest) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let gate = Arc::new(Semaphore::new(0));
        for _ in 0..100 {
            let (done, on_guest, gate, guests) =
                (done.clone(), on_guest.clone(), gate.clone(), guests.clone());
            start(&overflow, "b", async move {
                if guests.on_guest_thread() {
                    on_guest.fetch_add(1, Ordering::SeqCst);
                }
                let _ = gate.acquire().await.unwrap();
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        // A puller holds one task at a time: most of b's still wait.
        assert!(overflow.state.lock().unwrap().queue.len() >= 100 - SPAWNED_MAX - 2);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let on = guests.clone();
        start(&overflow, "a", async move {
            let _ = tx.send(on.on_guest_thread());
        });
        assert!(!rx.await.unwrap(), "tenant a's task waited behind b's");
        gate.add_permits(1000);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while done.load(Ordering::SeqCst) < 100 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "b's tasks did not all run"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(on_guest.load(Ordering::SeqCst), 100 - SPAWNED_MAX);
        // The pullers leave once the queue is empty, and it is nobody's.
        while overflow.state.lock().unwrap().pullers > 0 {
            assert!(tokio::time::Instant::now() < deadline, "the pullers stayed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let state = overflow.state.lock().unwrap();
        assert!(state.queue.is_empty() && state.owner.is_none());
        assert_eq!(overflow.spawned.load(Ordering::SeqCst), 0);
    }

    /// While a driver session reads a large batch, a tenant alone queues
    /// from its first task on (the RPC thread is busy reading); after, its
    /// tasks start where they were scheduled again.
    #[tokio::test]
    async fn a_tenant_alone_queues_while_a_session_reads_a_large_batch() {
        let overflow = overflow();
        let on_guest = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        let run = |overflow: &Arc<Overflow>| {
            let (on_guest, ran, guests) = (on_guest.clone(), ran.clone(), overflow.guests.clone());
            start(overflow, "b", async move {
                if guests.on_guest_thread() {
                    on_guest.fetch_add(1, Ordering::SeqCst);
                }
                ran.fetch_add(1, Ordering::SeqCst);
            });
        };
        let reading = overflow.reading();
        for _ in 0..3 {
            run(&overflow);
        }
        drop(reading);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while ran.load(Ordering::SeqCst) < 3 || overflow.state.lock().unwrap().pullers > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the tasks did not run"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(on_guest.load(Ordering::SeqCst), 3);
        run(&overflow);
        while ran.load(Ordering::SeqCst) < 4 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the last task did not run"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            on_guest.load(Ordering::SeqCst),
            3,
            "spawned on the RPC thread"
        );
        assert_eq!(overflow.reading.load(Ordering::SeqCst), 0);
    }

    /// A flood from a tenant that is not alone on the node stays on the RPC
    /// thread, as before the queue existed.
    #[tokio::test]
    async fn a_tenant_not_alone_does_not_queue() {
        let overflow = overflow();
        start(&overflow, "a", async {});
        let gate = Arc::new(Semaphore::new(0));
        let on_guest = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let (gate, on_guest, guests) =
                (gate.clone(), on_guest.clone(), overflow.guests.clone());
            start(&overflow, "b", async move {
                if guests.on_guest_thread() {
                    on_guest.fetch_add(1, Ordering::SeqCst);
                }
                let _ = gate.acquire().await.unwrap();
            });
        }
        {
            let state = overflow.state.lock().unwrap();
            assert!(state.queue.is_empty() && state.owner.is_none());
            assert_eq!(state.admitted, 0);
        }
        gate.add_permits(1000);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while overflow.spawned.load(Ordering::SeqCst) > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "b's tasks did not all run"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(on_guest.load(Ordering::SeqCst), 0);
    }
}
