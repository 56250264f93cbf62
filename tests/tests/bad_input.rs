//! Bad input: each gets a clear, typed error naming the cause, and the node
//! keeps serving every other request without losing any other object.

use std::time::Duration;

use reef::{Cluster, ErrorCode, Module, ObjectRef};
use reef_testkit::{guest, node, node_with};
use reef_tests::{still_serving, task_error};

async fn setup() -> (Cluster, Module, Module, ObjectRef, Vec<u8>) {
    let cluster = node().await;
    let demo = cluster.register_file(guest("demo")).await.unwrap();
    let bad = cluster.register_file(guest("bad")).await.unwrap();
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 199) as u8 + 1).collect();
    let kept = cluster.put_bytes(&bytes).await.unwrap();
    (cluster, demo, bad, kept, bytes)
}

#[tokio::test]
async fn invalid_wasm_bytes_are_rejected() {
    let (cluster, demo, _bad, kept, bytes) = setup().await;
    let err = cluster
        .register(b"definitely not wasm".to_vec())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidModule);
    assert!(err.message.contains("not a WebAssembly module"), "{err}");
    let mut truncated = std::fs::read(guest("demo")).unwrap();
    truncated.truncate(truncated.len() / 2);
    let err = cluster.register(truncated).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidModule, "{err}");
    still_serving(&cluster, &demo, Some((&kept, &bytes))).await;
}

#[tokio::test]
async fn a_module_missing_the_guest_exports_is_rejected() {
    let (cluster, demo, _bad, kept, bytes) = setup().await;
    // A core module with memory and an allocator but none of the guest functions.
    let core = wat::parse_str(
        r#"(module
            (memory (export "memory") 1)
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8)
            (func (export "reef:runtime/guest@0.2.0#describe") (result i32) i32.const 0))"#,
    )
    .unwrap();
    let err = cluster.register(core).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidModule);
    assert!(err.message.contains("run-task"), "{err}");
    still_serving(&cluster, &demo, Some((&kept, &bytes))).await;
}

#[tokio::test]
async fn a_module_for_another_wit_version_names_both_versions() {
    let cluster = node().await;
    let component = wat::parse_str(
        r#"(component
            (core module $m (func (export "f")))
            (core instance $i (instantiate $m))
            (func $f (canon lift (core func $i "f")))
            (instance $guest (export "describe" (func $f)))
            (export "reef:runtime/guest@9.9.9" (instance $guest)))"#,
    )
    .unwrap();
    let err = cluster.register(component).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidModule);
    assert!(
        err.message.contains("reef:runtime/guest@9.9.9") && err.message.contains("0.2.0"),
        "{err}"
    );
}

#[tokio::test]
async fn a_core_module_for_the_previous_wit_version_names_both_versions() {
    let cluster = node().await;
    // What an SDK built for reef:runtime@0.1.0 exports and imports.
    let core = wat::parse_str(
        r#"(module
            (import "reef:runtime/host@0.1.0" "log" (func (param i32 i32 i32)))
            (memory (export "memory") 1)
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8)
            (func (export "reef:runtime/guest@0.1.0#describe") (result i32) i32.const 0)
            (func (export "reef:runtime/guest@0.1.0#run-task")
                (param i32 i32 i32 i32) (result i32) i32.const 0))"#,
    )
    .unwrap();
    let err = cluster.register(core).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidModule);
    assert!(
        err.message.contains("built for reef:runtime/")
            && err.message.contains("@0.1.0")
            && err.message.contains("speaks reef:runtime@0.2.0"),
        "{err}"
    );
}

#[tokio::test]
async fn a_component_importing_http_is_refused_with_the_denied_imports() {
    let cluster = node().await;
    let component = wat::parse_str(
        r#"(component
            (import "wasi:http/outgoing-handler@0.2.0" (instance))
            (import "wasi:http/types@0.2.0" (instance))
            (core module $m (func (export "f")))
            (core instance $i (instantiate $m))
            (func $f (canon lift (core func $i "f")))
            (instance $guest (export "describe" (func $f)))
            (export "reef:runtime/guest@0.2.0" (instance $guest)))"#,
    )
    .unwrap();
    let err = cluster.register(component).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotGranted);
    assert!(
        err.message.contains("not granted")
            && err.message.contains("wasi:http/outgoing-handler@0.2.0")
            && err.message.contains("wasi:http/types@0.2.0"),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_functions_methods_classes_and_modules() {
    let (cluster, demo, _bad, kept, bytes) = setup().await;
    let e = task_error(
        &cluster,
        cluster.task(&demo, "no_such_task").submit().unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::UnknownFunction);
    assert!(e.message.contains("no_such_task"), "{e}");
    let acc = cluster.actor(&demo, "Accumulator").create().await.unwrap();
    let e = task_error(&cluster, acc.call("no_such_method").submit().unwrap()).await;
    assert_eq!(e.code, ErrorCode::UnknownFunction);
    assert!(e.message.contains("no_such_method"), "{e}");
    let e = cluster
        .actor(&demo, "NoSuchClass")
        .create()
        .await
        .err()
        .unwrap();
    assert_eq!(e.code, ErrorCode::UnknownFunction);
    let ghost = Module {
        hash: "00".repeat(32),
        ..demo.clone()
    };
    let e = task_error(&cluster, cluster.task(&ghost, "noop").submit().unwrap()).await;
    assert_eq!(e.code, ErrorCode::UnknownModule);
    // The actor survived the bad call.
    assert_eq!(
        cluster
            .get::<f64>(&acc.call("add").arg(1.0).submit().unwrap())
            .await
            .unwrap(),
        1.0
    );
    still_serving(&cluster, &demo, Some((&kept, &bytes))).await;
}

#[tokio::test]
async fn wrong_argument_types_and_counts() {
    let (cluster, demo, _bad, kept, bytes) = setup().await;
    let e = task_error(
        &cluster,
        cluster.task(&demo, "add").arg(1.0).submit().unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{e}");
    let e = task_error(
        &cluster,
        cluster
            .task(&demo, "add")
            .arg("one")
            .arg(2.0)
            .submit()
            .unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{e}");
    // An inline value where an object is expected.
    let e = task_error(
        &cluster,
        cluster.task(&demo, "view_len").arg(3u64).submit().unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{e}");
    still_serving(&cluster, &demo, Some((&kept, &bytes))).await;
}

#[tokio::test]
async fn a_reference_to_an_unknown_object() {
    let (cluster, demo, _bad, kept, bytes) = setup().await;
    let elsewhere = node().await;
    let foreign = elsewhere.put_bytes(b"lives on another node").await.unwrap();
    let e = task_error(
        &cluster,
        cluster.task(&demo, "echo").arg(&foreign).submit().unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::UnknownObject, "{e}");
    let e = cluster.get_bytes(&foreign).await.err().unwrap();
    assert_eq!(e.code, ErrorCode::UnknownObject, "{e}");
    still_serving(&cluster, &demo, Some((&kept, &bytes))).await;
}

#[tokio::test]
async fn misbehaving_guests_fail_only_their_own_task() {
    let (cluster, demo, bad, kept, bytes) = setup().await;
    let cases: Vec<(&str, ErrorCode, &str)> = vec![
        ("trap", ErrorCode::GuestTrap, "unreachable"),
        ("panic", ErrorCode::GuestPanic, "boom 42"),
        ("stack_overflow", ErrorCode::StackOverflow, "stack"),
    ];
    for (task, code, text) in cases {
        let e = task_error(&cluster, cluster.task(&bad, task).submit().unwrap()).await;
        assert_eq!(e.code, code, "{task}: {e}");
        assert!(e.message.contains(text), "{task}: {e}");
        if task != "stack_overflow" {
            assert!(!e.backtrace.is_empty(), "{task}: no backtrace");
        }
    }
    let e = task_error(
        &cluster,
        cluster
            .task(&bad, "loop_forever")
            .cpu_time(Duration::from_millis(300))
            .submit()
            .unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::CpuTimeLimit, "{e}");
    let e = task_error(
        &cluster,
        cluster
            .task(&bad, "eat_memory")
            .memory_limit(64 << 20)
            .submit()
            .unwrap(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::MemoryLimit, "{e}");
    assert!(e.message.contains(&(64u64 << 20).to_string()), "{e}");
    still_serving(&cluster, &demo, Some((&kept, &bytes))).await;
}

#[tokio::test]
async fn bad_view_buffers_are_refused() {
    let (cluster, demo, bad, kept, bytes) = setup().await;
    for task in ["misaligned_view", "oob_view"] {
        let e = task_error(
            &cluster,
            cluster.task(&bad, task).arg(&kept).submit().unwrap(),
        )
        .await;
        assert_eq!(e.code, ErrorCode::ViewError, "{task}: {e}");
    }
    still_serving(&cluster, &demo, Some((&kept, &bytes))).await;
}

#[tokio::test]
async fn a_put_larger_than_store_and_spill_fails_clearly() {
    let (cluster, demo, _bad, kept, bytes) = setup().await;
    let huge = vec![7u8; 300 << 20]; // the test node's store is 256 MiB
    let e = cluster.put_bytes(&huge).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::StoreFull);
    assert!(e.message.contains(&(300u64 << 20).to_string()), "{e}");
    still_serving(&cluster, &demo, Some((&kept, &bytes))).await;
}

#[tokio::test]
async fn full_store_spills_and_restores() {
    let cluster = node_with(&["--object-store-memory", "64MiB"]).await;
    let demo = cluster.register_file(guest("demo")).await.unwrap();
    // Five 20 MiB objects in a 64 MiB arena: the oldest are spilled to disk.
    let mut refs = Vec::new();
    for i in 0..5u8 {
        refs.push(cluster.put_bytes(&vec![i + 1; 20 << 20]).await.unwrap());
    }
    let status = cluster.status().await.unwrap();
    assert!(status.store.unwrap().spilled_bytes >= 20 << 20);
    for (i, r) in refs.iter().enumerate() {
        let r = cluster.task(&demo, "touch_view").arg(r).submit().unwrap();
        let pages = (20u64 << 20) / 4096;
        assert_eq!(
            cluster.get::<u64>(&r).await.unwrap(),
            pages * (i as u64 + 1)
        );
    }
    // Everything pinned at once cannot fit: a clear error, not a crash.
    let pinned: Vec<_> = futures_lite(&cluster, &refs).await;
    assert!(pinned.iter().any(|r| r.is_err()));
    let e = pinned.into_iter().find_map(|r| r.err()).unwrap();
    assert_eq!(e.code, ErrorCode::StoreFull, "{e}");
}

/// Reads every object at once (each read pins its object until dropped).
async fn futures_lite(
    cluster: &Cluster,
    refs: &[ObjectRef],
) -> Vec<reef::Result<reef::ObjectData>> {
    let refs: Vec<&ObjectRef> = refs.iter().collect();
    cluster.get_many_bytes(&refs, None).await.unwrap()
}

#[tokio::test]
async fn a_driver_that_disconnects_mid_dag() {
    let (cluster, demo, _bad, kept, bytes) = setup().await;
    let other = Cluster::connect_with_token(cluster.address(), cluster.token())
        .await
        .unwrap();
    let bad = other.register_file(guest("bad")).await.unwrap();
    let root = other.task(&bad, "loop_forever").submit().unwrap();
    let _child = other.task(&demo, "echo").arg(&root).submit().unwrap();
    let theirs = other.put_bytes(&vec![1u8; 1 << 20]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(other);
    drop(theirs);
    drop(root);
    drop(_child);
    // Its running task is stopped and its objects are freed; ours are intact.
    let mut idle = false;
    for _ in 0..100 {
        let s = cluster.status().await.unwrap();
        if s.tasks.is_empty() {
            idle = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(idle, "the disconnected driver's tasks are still running");
    still_serving(&cluster, &demo, Some((&kept, &bytes))).await;
}

#[tokio::test]
async fn guests_get_no_filesystem_environment_or_network() {
    let (cluster, demo, bad, kept, bytes) = setup().await;
    let r = cluster.task(&bad, "sandbox_probe").submit().unwrap();
    let report: String = cluster.get(&r).await.unwrap();
    assert_eq!(
        report, "file=denied dir=denied env=denied args=denied net=denied",
        "the sandbox let something through"
    );
    still_serving(&cluster, &demo, Some((&kept, &bytes))).await;
}

/// A negative or NaN resource amount would slip past every `<=` check (and
/// a negative one would grow the node's free CPUs): refused at the edge.
#[tokio::test]
async fn resource_amounts_must_be_finite_and_non_negative() {
    let (cluster, demo, _bad, kept, bytes) = setup().await;
    for cpus in [-1.0, f64::NAN, f64::INFINITY] {
        let r = cluster
            .task(&demo, "add")
            .arg(1.0)
            .arg(2.0)
            .num_cpus(cpus)
            .submit()
            .unwrap();
        let e = task_error(&cluster, r).await;
        assert_eq!(e.code, ErrorCode::BadArgument, "{cpus}: {e}");
        assert!(e.message.contains("resource `CPU`"), "{e}");
    }
    let r = cluster
        .task(&demo, "add")
        .arg(1.0)
        .arg(2.0)
        .resource("gpu", -2.0)
        .submit()
        .unwrap();
    let e = task_error(&cluster, r).await;
    assert_eq!(e.code, ErrorCode::BadArgument, "{e}");
    assert!(e.message.contains("resource `gpu`"), "{e}");
    still_serving(&cluster, &demo, Some((&kept, &bytes))).await;
}
