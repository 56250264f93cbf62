use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::tables::ActorClassInfo;
use crate::test_util::on_both_stores;

fn on_both(f: impl Fn(&Gcs)) {
    on_both_stores(|store| f(&Gcs::with_storage(store)));
}

fn cpus(n: f64) -> Resources {
    Resources::from([("CPU".to_owned(), n)])
}

fn module(hash: &str) -> ModuleRecord {
    ModuleRecord {
        hash: hash.into(),
        size_bytes: 123,
        sdk: "reef-rust/0.1".into(),
        tasks: vec!["add".into()],
        actors: vec![ActorClassInfo {
            name: "Counter".into(),
            methods: vec!["incr".into()],
        }],
        registered_at_ms: 1,
    }
}

fn dead(reason: &str) -> ActorState {
    ActorState::Dead {
        reason: reason.into(),
    }
}

#[test]
fn gcs_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Gcs>();
    let gcs = Arc::new(Gcs::in_memory());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let gcs = gcs.clone();
            std::thread::spawn(move || {
                (0..25)
                    .map(|_| gcs.new_actor_id().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=100).collect::<Vec<_>>());
}

#[test]
fn node_lifecycle() {
    on_both(|gcs| {
        gcs.register_node(NodeInfo::new("n1", "10.0.0.1:7000", cpus(4.0)))
            .unwrap();
        gcs.register_node(NodeInfo::new("n2", "10.0.0.2:7000", cpus(2.0)))
            .unwrap();
        assert_eq!(gcs.nodes().unwrap().len(), 2);

        gcs.heartbeat("n1", cpus(1.5)).unwrap();
        let n1 = gcs.node("n1").unwrap().unwrap();
        assert_eq!(n1.resources_available, cpus(1.5));
        assert_eq!(n1.resources_total, cpus(4.0));

        assert!(matches!(
            gcs.heartbeat("nope", cpus(1.0)),
            Err(GcsError::NotFound { what: "node", .. })
        ));
        assert!(matches!(
            gcs.heartbeat("n1", cpus(f64::NAN)),
            Err(GcsError::InvalidArgument(_))
        ));
        assert!(matches!(
            gcs.register_node(NodeInfo::new("n3", "x", cpus(-1.0))),
            Err(GcsError::InvalidArgument(_))
        ));

        assert_eq!(gcs.mark_dead("n2").unwrap().state, NodeState::Dead);
        assert_eq!(gcs.mark_dead("n2").unwrap().state, NodeState::Dead);
        assert!(matches!(
            gcs.heartbeat("n2", cpus(1.0)),
            Err(GcsError::NodeDead { .. })
        ));
        let alive: Vec<_> = gcs
            .alive_nodes()
            .unwrap()
            .into_iter()
            .map(|n| n.node_id)
            .collect();
        assert_eq!(alive, vec!["n1"]);
    });
}

#[test]
fn stale_nodes_expire() {
    on_both(|gcs| {
        let mut old = NodeInfo::new("old", "a:1", cpus(1.0));
        old.last_heartbeat_ms = 1_000;
        let mut fresh = NodeInfo::new("fresh", "a:2", cpus(1.0));
        fresh.last_heartbeat_ms = 9_500;
        gcs.register_node(old).unwrap();
        gcs.register_node(fresh).unwrap();

        let expired = gcs.expire_nodes_at(10_000, Duration::from_secs(5)).unwrap();
        assert_eq!(expired, vec!["old"]);
        assert_eq!(gcs.node("old").unwrap().unwrap().state, NodeState::Dead);
        assert!(gcs.node("fresh").unwrap().unwrap().is_alive());
        // Already dead nodes are not reported again.
        assert!(gcs
            .expire_nodes_at(10_000, Duration::from_secs(5))
            .unwrap()
            .is_empty());
    });
}

#[test]
fn modules_are_immutable_once_registered() {
    on_both(|gcs| {
        assert!(gcs.register_module(module("aa")).unwrap());
        let mut changed = module("aa");
        changed.size_bytes = 999;
        assert!(!gcs.register_module(changed).unwrap());
        assert_eq!(gcs.module("aa").unwrap().unwrap().size_bytes, 123);
        assert!(gcs.register_module(module("bb")).unwrap());
        assert_eq!(gcs.modules().unwrap().len(), 2);
        assert_eq!(gcs.module("cc").unwrap(), None);
    });
}

#[test]
fn actor_crud() {
    on_both(|gcs| {
        let id = gcs.new_actor_id().unwrap();
        gcs.register_actor(ActorRecord::new(id, "aa", "Counter", 1))
            .unwrap();
        assert_eq!(gcs.actor(id).unwrap().unwrap().state, ActorState::Pending);

        let placed = gcs.set_actor_node(id, Some("n1".into())).unwrap();
        assert_eq!(placed.node_id.as_deref(), Some("n1"));
        gcs.set_actor_state(id, ActorState::Alive).unwrap();
        assert_eq!(gcs.actors_on_node("n1").unwrap().len(), 1);
        assert!(gcs.actors_on_node("n2").unwrap().is_empty());

        assert!(matches!(
            gcs.set_actor_state(999, ActorState::Alive),
            Err(GcsError::NotFound { what: "actor", .. })
        ));
        assert!(gcs.remove_actor(id).unwrap());
        assert!(!gcs.remove_actor(id).unwrap());
        assert!(gcs.actors().unwrap().is_empty());
    });
}

#[test]
fn named_actor_conflicts() {
    on_both(|gcs| {
        let a = gcs.new_actor_id().unwrap();
        let b = gcs.new_actor_id().unwrap();
        let c = gcs.new_actor_id().unwrap();
        gcs.register_named_actor("svc", ActorRecord::new(a, "aa", "Counter", 1))
            .unwrap();
        assert_eq!(gcs.lookup_actor("svc").unwrap().unwrap().actor_id, a);
        assert_eq!(gcs.lookup_actor("other").unwrap(), None);

        // Pending holders count as live.
        match gcs.register_named_actor("svc", ActorRecord::new(b, "aa", "Counter", 1)) {
            Err(GcsError::NameTaken { name, holder }) => {
                assert_eq!(name, "svc");
                assert_eq!(holder, a);
            }
            other => panic!("expected NameTaken, got {other:?}"),
        }
        assert_eq!(gcs.actor(b).unwrap(), None, "rejected actor not stored");

        // Re-registering the holder itself is fine; so is going Alive.
        gcs.register_named_actor("svc", ActorRecord::new(a, "aa", "Counter", 1))
            .unwrap();
        gcs.set_actor_state(a, ActorState::Alive).unwrap();
        assert!(gcs
            .register_named_actor("svc", ActorRecord::new(b, "aa", "Counter", 1))
            .is_err());

        // Death frees the name.
        gcs.set_actor_state(a, dead("killed")).unwrap();
        assert_eq!(gcs.lookup_actor("svc").unwrap(), None);
        gcs.register_named_actor("svc", ActorRecord::new(b, "aa", "Counter", 1))
            .unwrap();
        assert_eq!(gcs.lookup_actor("svc").unwrap().unwrap().actor_id, b);

        // The old holder cannot come back while b holds the name.
        assert!(matches!(
            gcs.set_actor_state(a, ActorState::Alive),
            Err(GcsError::NameTaken { .. })
        ));
        assert!(!gcs.actor(a).unwrap().unwrap().is_live());

        // Removing the holder frees the name too.
        assert!(gcs.remove_actor(b).unwrap());
        assert_eq!(gcs.lookup_actor("svc").unwrap(), None);
        let mut named = ActorRecord::new(c, "aa", "Counter", 1);
        named.name = Some("svc".into());
        gcs.register_actor(named).unwrap();
        assert_eq!(gcs.lookup_actor("svc").unwrap().unwrap().actor_id, c);

        assert!(matches!(
            gcs.register_named_actor("", ActorRecord::new(99, "aa", "Counter", 1)),
            Err(GcsError::InvalidArgument(_))
        ));
    });
}

#[test]
fn jobs_start_and_end() {
    on_both(|gcs| {
        let j1 = gcs.start_job("127.0.0.1:1", "first").unwrap();
        let j2 = gcs.start_job("127.0.0.1:2", "second").unwrap();
        assert_eq!((j1, j2), (1, 2));
        let job = gcs.job(j1).unwrap().unwrap();
        assert_eq!(job.state, JobState::Running);
        assert_eq!(job.ended_at_ms, None);

        let ended = gcs.end_job(j1).unwrap();
        assert_eq!(ended.state, JobState::Finished);
        let at = ended.ended_at_ms.unwrap();
        assert_eq!(gcs.end_job(j1).unwrap().ended_at_ms, Some(at));
        assert!(matches!(
            gcs.end_job(42),
            Err(GcsError::NotFound { what: "job", .. })
        ));
        assert_eq!(gcs.jobs().unwrap().len(), 2);
    });
}

#[test]
fn kv_through_gcs() {
    on_both(|gcs| {
        assert!(gcs.kv_put("ns", b"a/1", b"x", false).unwrap());
        assert!(gcs.kv_put("ns", b"a/2", b"y", false).unwrap());
        assert!(gcs.kv_put("ns", b"b/1", b"z", false).unwrap());
        assert_eq!(
            gcs.kv_keys("ns", b"a/").unwrap(),
            vec![b"a/1".to_vec(), b"a/2".to_vec()]
        );
        assert_eq!(
            gcs.kv_get("ns", b"b/1").unwrap().as_deref(),
            Some(&b"z"[..])
        );
        assert!(gcs.kv_delete("ns", b"b/1").unwrap());
        assert_eq!(gcs.kv().keys("ns", b"").unwrap().len(), 2);
    });
}

#[test]
fn file_backed_gcs_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (job, actor) = {
        let gcs = Gcs::open(dir.path()).unwrap();
        gcs.register_node(NodeInfo::new("n1", "10.0.0.1:7000", cpus(4.0)))
            .unwrap();
        gcs.register_module(module("aa")).unwrap();
        let actor = gcs.new_actor_id().unwrap();
        gcs.register_named_actor("svc", ActorRecord::new(actor, "aa", "Counter", 1))
            .unwrap();
        let job = gcs.start_job("driver:1", "persisted").unwrap();
        gcs.kv_put("ns", b"k", b"v", true).unwrap();
        (job, actor)
    };

    let gcs = Gcs::open(dir.path()).unwrap();
    assert_eq!(gcs.node("n1").unwrap().unwrap().resources_total, cpus(4.0));
    assert_eq!(gcs.module("aa").unwrap().unwrap(), module("aa"));
    assert_eq!(gcs.lookup_actor("svc").unwrap().unwrap().actor_id, actor);
    assert_eq!(gcs.job(job).unwrap().unwrap().description, "persisted");
    assert_eq!(gcs.kv_get("ns", b"k").unwrap().as_deref(), Some(&b"v"[..]));
    // The name claim is durable too.
    assert!(matches!(
        gcs.register_named_actor("svc", ActorRecord::new(actor + 1, "aa", "Counter", 1)),
        Err(GcsError::NameTaken { .. })
    ));
}

#[test]
fn ids_stay_unique_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut jobs = Vec::new();
    let mut actors = Vec::new();
    for _ in 0..3 {
        let gcs = Gcs::open(dir.path()).unwrap();
        for _ in 0..2 {
            jobs.push(gcs.start_job("d", "").unwrap());
            actors.push(gcs.new_actor_id().unwrap());
        }
    }
    assert_eq!(jobs, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(actors, vec![1, 2, 3, 4, 5, 6]);
    let gcs = Gcs::open(dir.path()).unwrap();
    assert_eq!(gcs.jobs().unwrap().len(), 6);
}

#[test]
fn in_memory_gcs_starts_empty() {
    let gcs = Gcs::in_memory();
    assert!(gcs.nodes().unwrap().is_empty());
    assert_eq!(gcs.start_job("d", "").unwrap(), 1);
}
