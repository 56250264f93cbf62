// The driver against a real node: `host start --head` on a free port.

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";

import {
  ActorDeadError,
  BadArgumentError,
  CancelledError,
  Cluster,
  ConnectionError,
  InvalidModuleError,
  Module,
  NameTakenError,
  NodeError,
  NotFoundError,
  NotGrantedError,
  ObjectRef,
  ReefError,
  TaskError,
  TimeoutError,
} from "@reef/driver";

import { eventually, guest, startNode, type TestNode } from "./helpers.js";

describe("driver against a real node", () => {
  let n: TestNode;
  let cluster: Cluster;
  let demo: Module;
  let bad: Module;
  let dag: Module;

  before(async () => {
    n = await startNode();
    cluster = n.cluster;
    demo = await cluster.registerFile(guest("demo"));
    bad = await cluster.registerFile(guest("bad"));
    dag = await cluster.registerFile(guest("dag"));
  });

  after(async () => {
    await n?.stop();
  });

  test("seed demo: 64 MiB f64 array, four sum_slice tasks, Accumulator 10/5/100", async () => {
    const xs = new Float64Array(8_000_000);
    for (let i = 0; i < xs.length; i++) xs[i] = i;
    const data = await cluster.put(xs);
    const parts = [0, 1, 2, 3].map((q) =>
      cluster
        .task(demo, "sum_slice")
        .arg(data)
        .arg(q * 2_000_000)
        .arg((q + 1) * 2_000_000)
        .submit(),
    );
    const sums = await cluster.getAll<number>(parts);
    const expected = [0, 1, 2, 3].map((q) => {
      let s = 0;
      for (let i = q * 2_000_000; i < (q + 1) * 2_000_000; i++) s += i;
      return s;
    });
    assert.deepEqual(sums, expected);
    assert.equal(sums[0]!.toExponential(1), "2.0e+12");
    assert.equal(sums[3]!.toExponential(1), "1.4e+13");
    assert.equal(sums.reduce((a, b) => a + b, 0).toExponential(1), "3.2e+13");

    const acc = await cluster.actor(demo, "Accumulator").create();
    const totals: number[] = [];
    for (const x of [10, 5, 100]) totals.push(await cluster.get<number>(acc.call("add", x)));
    assert.deepEqual(totals, [10, 15, 115]);
    assert.equal(await cluster.get<number>(acc.method("total").submit()), 115);
    // The big array comes back intact.
    const back = await cluster.getBytes(data);
    assert.equal(back.length, 64_000_000);
    const f = await cluster.getF64s(data);
    assert.equal(f.length, 8_000_000);
    assert.equal(f[0], 0);
    assert.equal(f[7_999_999], 7_999_999);
    data.release();
  });

  test("a DAG: task results feed further tasks without coming back to the driver", async () => {
    const n = 1000;
    const xs = cluster.task(dag, "make_range").arg(n).submit();
    const squares = cluster.task(dag, "square_sum").arg(xs).submit();
    const sum = cluster.task(dag, "sum").arg(xs).submit();
    const doubled = cluster.task(dag, "scale").arg(xs).arg(2).submit();
    const doubledSum = cluster.task(dag, "sum").arg(doubled).submit();
    const combined = cluster.task(dag, "combine").arg(squares).arg(sum).submit();
    const total = cluster.task(dag, "total").arg(combined).arg(doubledSum).submit();
    const expected = ((n - 1) * n * (2 * n - 1)) / 6 + (3 * (n - 1) * n) / 2;
    assert.equal(await cluster.get<number>(total), expected);
    // All seven submissions went out before the first get: a handful of batches at most.
    const { ops, batches } = cluster.sent;
    assert.ok(batches < ops, `batches ${batches} < ops ${ops}`);
  });

  test("actor calls run in submission order and are batched", async () => {
    const acc = await cluster.actor(demo, "Accumulator").arg(0).create();
    const before = cluster.sent;
    const refs = Array.from({ length: 200 }, (_, i) => acc.call("add", i + 1));
    const totals = await cluster.getAll<number>(refs);
    let s = 0;
    assert.deepEqual(
      totals,
      Array.from({ length: 200 }, (_, i) => (s += i + 1)),
    );
    const after = cluster.sent;
    // 200 calls and one get: two batches.
    assert.equal(after.ops - before.ops, 201);
    assert.ok(after.batches - before.batches <= 2, `${after.batches - before.batches} batches`);
    await acc.kill();
  });

  test("named actors are found and killed", async () => {
    const a = await cluster.actor(demo, "Accumulator").arg(1).name("ts-acc").create();
    const found = await cluster.getActor("ts-acc");
    assert.equal(found.id, a.id);
    assert.equal(await cluster.get<number>(found.call("add", 2)), 3);
    await assert.rejects(cluster.actor(demo, "Accumulator").name("ts-acc").create(), (e: unknown) => {
      assert.ok(e instanceof NameTakenError, String(e));
      assert.equal(e.code, "NAME_TAKEN");
      return true;
    });
    await a.kill();
    await assert.rejects(cluster.get(a.call("total")), (e: unknown) => {
      assert.ok(e instanceof ReefError, String(e));
      assert.ok(e.code === "ACTOR_DEAD" || e.code === "UNKNOWN_ACTOR", e.message);
      assert.ok(e instanceof ActorDeadError || e instanceof NotFoundError);
      return true;
    });
    await assert.rejects(cluster.getActor("ts-acc"), (e: unknown) => {
      assert.ok(e instanceof NotFoundError, String(e));
      assert.equal(e.code, "UNKNOWN_ACTOR");
      return true;
    });
  });

  test("wait returns the ready refs and honours its timeout", async () => {
    const fast = cluster.task(demo, "add").arg(1).arg(2).submit();
    const slow = cluster.task(bad, "loop_forever").cpuTimeMs(10_000).submit();
    const t0 = Date.now();
    const { ready, notReady } = await cluster.wait([slow, fast], { numReturns: 1, timeoutMs: 5_000 });
    assert.deepEqual(
      ready.map((r) => r.id),
      [fast.id],
    );
    assert.deepEqual(
      notReady.map((r) => r.id),
      [slow.id],
    );
    assert.ok(Date.now() - t0 < 5_000, "wait returned once one ref was ready");
    const t1 = Date.now();
    const second = await cluster.wait([slow], { numReturns: 1, timeoutMs: 200 });
    const waited = Date.now() - t1;
    assert.equal(second.ready.length, 0);
    assert.equal(second.notReady[0], slow);
    assert.ok(waited >= 150 && waited < 3_000, `waited ${waited} ms`);
    await assert.rejects(cluster.get(slow, { timeoutMs: 100 }), (e: unknown) => {
      assert.ok(e instanceof TimeoutError, String(e));
      assert.equal(e.code, "TIMEOUT");
      return true;
    });
    cluster.cancel(slow);
    await assert.rejects(cluster.get(slow), CancelledError);
  });

  test("cancel stops a looping task; the node keeps working", async () => {
    const looping = cluster.task(bad, "loop_forever").submit();
    await eventually(
      async () => (await cluster.status()).tasks.some((t) => t.returnId === looping.id && t.state === "running"),
      10_000,
      "loop_forever to run",
    );
    cluster.cancel(looping);
    await assert.rejects(cluster.getBytes(looping), (e: unknown) => {
      assert.ok(e instanceof CancelledError, String(e));
      assert.equal(e.code, "CANCELLED");
      return true;
    });
    const ok = cluster.task(demo, "add").arg(2).arg(2).submit();
    assert.equal(await cluster.get(ok), 4);
    await eventually(
      async () => !(await cluster.status()).tasks.some((t) => t.returnId === looping.id),
      10_000,
      "the cancelled task to leave the task table",
    );
  });

  test("logs: stdout, stderr and log lines of a finished task", async () => {
    const r = cluster.task(bad, "print").submit();
    await cluster.getBytes(r);
    const logs = await cluster.logs(r);
    assert.match(logs.stdout, /hello stdout/);
    assert.match(logs.stderr, /hello stderr/);
    assert.ok(logs.log.some((l) => l.includes("hello log")), JSON.stringify(logs.log));
  });

  test("errors are typed and carry the node's code", async () => {
    const unknown = cluster.task(demo, "no_such_task").submit();
    await assert.rejects(cluster.get(unknown), (e: unknown) => {
      assert.ok(e instanceof NotFoundError, String(e));
      assert.ok(e instanceof ReefError);
      assert.equal(e.code, "UNKNOWN_FUNCTION");
      assert.match(e.message, /no_such_task/);
      return true;
    });
    const failed = cluster.task(bad, "fail").arg("custom failure 7").submit();
    await assert.rejects(cluster.get(failed), (e: unknown) => {
      assert.ok(e instanceof TaskError, String(e));
      assert.equal(e.code, "GUEST_ERROR");
      assert.match(e.message, /custom failure 7/);
      return true;
    });
    const panicked = cluster.task(bad, "panic").submit();
    await assert.rejects(cluster.get(panicked), (e: unknown) => {
      assert.ok(e instanceof TaskError, String(e));
      assert.equal(e.code, "GUEST_PANIC");
      assert.match(e.message, /boom 42/);
      return true;
    });
    const trapped = cluster.task(bad, "trap").submit();
    await assert.rejects(cluster.get(trapped), (e: unknown) => {
      assert.ok(e instanceof TaskError, String(e));
      assert.equal(e.code, "GUEST_TRAP");
      return true;
    });
    // The guest checks argument types: a string where a number is expected.
    const wrongType = cluster.task(demo, "add").arg("one").arg(2).submit();
    await assert.rejects(cluster.get(wrongType), (e: unknown) => {
      assert.ok(e instanceof BadArgumentError, String(e));
      assert.equal(e.code, "BAD_ARGUMENT");
      return true;
    });
    // A task whose argument is a failed task's result fails too.
    const dependent = cluster.task(demo, "add").arg(failed).arg(1).submit();
    await assert.rejects(cluster.get(dependent), (e: unknown) => {
      assert.ok(e instanceof ReefError, String(e));
      assert.equal(e.code, "DEPENDENCY_FAILED");
      return true;
    });
    await assert.rejects(cluster.register(new TextEncoder().encode("not wasm")), (e: unknown) => {
      assert.ok(e instanceof InvalidModuleError, String(e));
      assert.equal(e.code, "INVALID_MODULE");
      return true;
    });
    await assert.rejects(cluster.actor(demo, "NoSuchClass").create(), (e: unknown) => {
      assert.ok(e instanceof NotFoundError, String(e));
      assert.equal(e.code, "UNKNOWN_FUNCTION");
      return true;
    });
    // The node is fine afterwards.
    assert.equal(await cluster.get(cluster.task(demo, "add").arg(20).arg(22).submit()), 42);
  });

  test("put/get: MessagePack values, raw bytes, typed decode", async () => {
    const value = { name: "reef", n: 42, xs: [1, 2.5, "three", null, true], nested: { ok: false } };
    assert.deepEqual(await cluster.get(await cluster.put(value)), value);
    assert.equal(await cluster.get<string>(await cluster.put("héllo")), "héllo");
    const big = 2n ** 60n + 1n;
    assert.equal(await cluster.get(await cluster.put(big), { bigint: true }), big);
    const small = new Uint8Array([0, 1, 2, 250, 255]);
    assert.deepEqual(await cluster.getBytes(await cluster.put(small)), small);
    // 10 MiB through the arena and back through a guest (echo returns its argument's bytes).
    const large = new Uint8Array(10 << 20);
    for (let i = 0; i < large.length; i++) large[i] = i % 251;
    const r = await cluster.put(large);
    const echoed = cluster.task(demo, "echo").arg(r).memoryLimit(64 << 20).submit();
    assert.ok(Buffer.from(await cluster.getBytes(echoed)).equals(large));
    // Inline raw bytes as an argument.
    const inline = cluster.task(demo, "echo").arg(new Uint8Array([9, 8, 7])).submit();
    assert.deepEqual([...(await cluster.getBytes(inline))], [9, 8, 7]);
    // Raw bytes are not MessagePack: get() says so with a typed error.
    const notMsgpack = await cluster.put(new Uint8Array([0xc1]));
    await assert.rejects(cluster.get(notMsgpack), (e: unknown) => e instanceof ReefError && e.code === "BAD_ARGUMENT");
  });

  test("status lists the node, its modules and the store", async () => {
    const s = await cluster.status();
    assert.equal(s.nodes.length, 1);
    assert.equal(s.nodes[0]!.nodeId, cluster.nodeId);
    assert.ok(s.modules.some((m) => m.hash === demo.hash));
    assert.ok(s.store.arenaCapacity >= 256 << 20, String(s.store.arenaCapacity));
    const cpu = s.nodes[0]!.resources.find((r) => r.name.toLowerCase() === "cpu");
    assert.ok(cpu && cpu.total > 0, JSON.stringify(s.nodes[0]!.resources));
  });

  test("registering the same bytes again gives the same module", async () => {
    const again = await cluster.registerFile(guest("demo"));
    assert.equal(again.hash, demo.hash);
    assert.deepEqual(again.tasks, demo.tasks);
  });

  test("grants: refused imports are listed; a grant is part of the module's hash", async () => {
    // componentize-py's output before its filesystem and socket imports are stripped.
    const wasi = guest("python_nested_wasi");
    await assert.rejects(cluster.registerFile(wasi), (e: unknown) => {
      assert.ok(e instanceof NotGrantedError, String(e));
      assert.ok(e instanceof InvalidModuleError, String(e));
      assert.equal(e.code, "NOT_GRANTED");
      assert.match(e.message, /wasi:filesystem\/preopens@/);
      assert.match(e.message, /wasi:sockets\/tcp@/);
      return true;
    });
    await assert.rejects(cluster.registerFile(wasi, { grants: ["filesystem"] }), (e: unknown) => {
      assert.ok(e instanceof NotGrantedError, String(e));
      assert.doesNotMatch(e.message, /wasi:filesystem/);
      assert.match(e.message, /wasi:sockets\/tcp@/);
      return true;
    });
    // A core module with the filesystem grant sees its scratch directory.
    const granted = await cluster.registerFile(guest("bad"), { grants: ["filesystem"] });
    assert.deepEqual(granted.grants, ["filesystem"]);
    assert.deepEqual(bad.grants, []);
    assert.notEqual(granted.hash, bad.hash);
    assert.equal(await cluster.get(cluster.task(granted, "scratch_probe").submit()), "scratch=ok (20 bytes)");
    assert.equal(await cluster.get(cluster.task(bad, "scratch_probe").submit()), "scratch=denied");
  });
});

describe("connections", () => {
  test("a closed cluster rejects calls with ConnectionError; the node survives the driver", async () => {
    const n = await startNode();
    try {
      const other = await Cluster.connect(n.node.address, n.node.tokenFile ? { tokenFile: n.node.tokenFile } : {});
      const m = await other.registerFile(guest("demo"));
      const r = other.task(m, "add").arg(1).arg(1).submit();
      assert.equal(await other.get(r), 2);
      await other.close();
      await assert.rejects(other.get(r), ConnectionError);
      assert.throws(() => other.task(m, "add").arg(1).arg(1).submit(), ConnectionError);
      // The first connection still works.
      assert.equal(await n.cluster.get(n.cluster.task(m, "add").arg(3).arg(4).submit()), 7);
      assert.ok(r instanceof ObjectRef);
    } finally {
      await n.stop();
    }
  });

  test("without shared memory (as from another machine) large objects go through the socket", async () => {
    const n = await startNode();
    try {
      const remote = await Cluster.connect(n.node.address, {
        ...(n.node.tokenFile ? { tokenFile: n.node.tokenFile } : {}),
        sharedMemory: false,
      });
      try {
        assert.equal(remote.isSameMachine, false);
        assert.equal(remote.transport, n.node.address);
        assert.equal(n.cluster.isSameMachine, true);
        assert.match(n.cluster.transport, /^unix:/);
        const big = new Uint8Array(24 << 20);
        for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) % 256;
        const r = await remote.put(big);
        const m = await remote.registerFile(guest("demo"));
        const echoed = remote.task(m, "echo").arg(r).memoryLimit(128 << 20).submit();
        assert.ok(Buffer.from(await remote.getBytes(echoed)).equals(big));
        // Written through the socket, the object is the same one a shared-memory driver reads.
        const view = remote.task(m, "view_len").arg(r).submit();
        assert.equal(await remote.get(view), big.length);
      } finally {
        await remote.close();
      }
    } finally {
      await n.stop();
    }
  });

  test("a node that stops fails pending calls with a NodeError, not a hang", async () => {
    const n = await startNode();
    try {
      const m = await n.cluster.registerFile(guest("bad"));
      const looping = n.cluster.task(m, "loop_forever").submit();
      const pending = assert.rejects(n.cluster.get(looping), (e: unknown) => {
        assert.ok(e instanceof NodeError, String(e));
        assert.ok(["NODE_STOPPING", "UNAVAILABLE", "INTERNAL"].includes(e.code), e.message);
        return true;
      });
      // Stopping a node takes the admin credential (written beside the tenant token).
      const admin = await Cluster.connect(n.node.address, {
        tokenFile: join(dirname(n.node.tokenFile!), "admin-token"),
      });
      await admin.stopNode();
      await admin.close().catch(() => undefined);
      await pending;
    } finally {
      await n.stop();
    }
  });

  test("connecting to nothing fails with a typed error", async () => {
    await assert.rejects(Cluster.connect("127.0.0.1:1", { connectTimeoutMs: 500 }), (e: unknown) => {
      assert.ok(e instanceof ConnectionError, String(e));
      assert.equal(e.code, "UNAVAILABLE");
      return true;
    });
  });
});
