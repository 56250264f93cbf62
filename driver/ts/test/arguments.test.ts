// Wrong argument types fail with ArgumentError before anything is sent.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Arg, ArgumentError, Cluster, Module, ObjectRef, ReefError } from "@reef/driver";

import { guest, startNode, type TestNode } from "./helpers.js";

describe("ArgumentError before anything is sent", () => {
  let n: TestNode;
  let cluster: Cluster;
  let demo: Module;
  let ref: ObjectRef;

  before(async () => {
    n = await startNode();
    cluster = n.cluster;
    demo = await cluster.registerFile(guest("demo"));
    ref = cluster.task(demo, "add").arg(1).arg(2).submit();
    assert.equal(await cluster.get(ref), 3);
  });

  after(async () => {
    await n?.stop();
  });

  /** Runs `f`, expects an ArgumentError matching `pattern`, and checks no operation left the driver. */
  async function refused(f: () => unknown, pattern: RegExp): Promise<void> {
    const sent = cluster.sent.ops;
    let error: unknown;
    try {
      await f();
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof ArgumentError, `expected an ArgumentError, got ${String(error)}`);
    assert.ok(error instanceof ReefError);
    assert.equal(error.code, "BAD_ARGUMENT");
    assert.match(error.message, pattern);
    // Let any queued operation flush, then check nothing was sent.
    await new Promise((r) => setImmediate(r));
    assert.equal(cluster.sent.ops, sent, `nothing sent for ${pattern}`);
  }

  const untyped = <T>(v: unknown) => v as T;

  test("task and actor names must be strings", async () => {
    await refused(() => cluster.task(demo, untyped<string>(42)), /name must be a string, got number/);
    await refused(() => cluster.task(demo, ""), /must not be empty/);
    await refused(() => cluster.task(untyped<Module>({ hash: 1 }), "add"), /module must be a Module/);
    await refused(() => cluster.actor(demo, untyped<string>(null)), /class name must be a string, got null/);
    await refused(() => cluster.actor(demo, "Accumulator").name(untyped<string>(7)), /name must be a string/);
    await refused(() => cluster.getActor(untyped<string>(["acc"])), /name must be a string, got Array/);
    const acc = await cluster.actor(demo, "Accumulator").create();
    await refused(() => acc.call(untyped<string>(Symbol("add"))), /method must be a string/);
  });

  test("register options: unknown grants are refused before anything is sent", async () => {
    const wasm = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
    await refused(() => cluster.register(wasm, { grants: untyped(["gpu"]) }), /unknown grant string "gpu" \(grants are: filesystem, network\)/);
    await refused(() => cluster.register(wasm, { grants: untyped("filesystem") }), /grants must be an array/);
    await refused(() => cluster.register(wasm, untyped(7)), /expected options as an object, got number/);
  });

  test("arguments of unsupported types", async () => {
    await refused(() => cluster.task(demo, "add").arg(untyped(() => 1)), /argument 0: a function cannot be sent/);
    await refused(() => cluster.task(demo, "add").arg(1).arg(untyped(Symbol("x"))), /argument 1: a symbol/);
    await refused(() => cluster.task(demo, "add").arg(untyped({ a: [1, { f: () => 2 }] })), /argument 0\.a\[1\]\.f: a function/);
    class Point {
      constructor(readonly x: number) {}
    }
    await refused(() => cluster.task(demo, "add").arg(untyped(new Point(1))), /a Point instance cannot be sent/);
    await refused(() => cluster.task(demo, "add").arg(untyped([ref])), /an ObjectRef can only be a whole argument/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await refused(() => cluster.task(demo, "add").arg(untyped(cyclic)), /cycle/);
    await refused(() => cluster.put(untyped(() => 0)), /put: value: a function/);
    await refused(() => Arg.bytes(untyped("text")), /expected a Uint8Array/);
  });

  test("options and refs are checked", async () => {
    await refused(() => cluster.wait([ref], { timeoutMs: -1 }), /timeoutMs must be at least 0, got -1/);
    await refused(() => cluster.wait([ref], { timeoutMs: untyped("1s") }), /timeoutMs must be a finite number, got string/);
    await refused(() => cluster.wait([ref], { numReturns: 2 }), /numReturns \(2\) is more than the 1 refs/);
    await refused(() => cluster.wait([ref], { numReturns: 0.5 }), /whole number/);
    await refused(() => cluster.wait(untyped(ref)), /refs must be an array/);
    await refused(() => cluster.wait([untyped(42)]), /refs\[0\] must be an ObjectRef, got number/);
    await refused(() => cluster.get(untyped("ref")), /ref must be an ObjectRef, got string/);
    await refused(() => cluster.get(ref, { timeoutMs: Number.NaN }), /finite number/);
    await refused(() => cluster.getBytes(untyped(undefined)), /must be an ObjectRef, got undefined/);
    await refused(() => cluster.cancel(untyped(1n)), /must be an ObjectRef, got bigint/);
    await refused(() => cluster.logs(untyped({ id: 1n })), /must be an ObjectRef, got Object/);
    await refused(() => cluster.task(demo, "add").numCpus(-1), /numCpus must be at least 0/);
    await refused(() => cluster.task(demo, "add").memoryLimit(1.5), /whole number/);
    await refused(() => cluster.task(demo, "add").options(untyped({ gpus: 1 })), /unknown option "gpus"/);
    await refused(() => cluster.register(untyped("demo.wasm")), /expected the module's bytes as a Uint8Array/);
    await refused(() => cluster.registerFile(untyped(3)), /path must be a string/);
    const released = await cluster.put(1);
    released.release();
    await new Promise((r) => setImmediate(r)); // the Release itself goes out
    await refused(() => cluster.get(released), /was released/);
    await refused(() => cluster.task(demo, "echo").arg(released), /was released/);
  });

  test("refs of another connection are refused", async () => {
    const other = await Cluster.connect(n.node.address, n.node.tokenFile ? { tokenFile: n.node.tokenFile } : {});
    try {
      const foreign = await other.put("elsewhere");
      await refused(() => cluster.get(foreign), /another cluster connection/);
      await refused(() => cluster.task(demo, "echo").arg(foreign), /another cluster connection/);
    } finally {
      await other.close();
    }
  });

  test("connect options are checked", async () => {
    await assert.rejects(Cluster.connect(untyped(6390)), ArgumentError);
    await assert.rejects(Cluster.connect(n.node.address, { token: untyped(5) }), /token must be a string/);
    await assert.rejects(Cluster.connect(n.node.address, { tokenFile: "/nonexistent/token" }), ArgumentError);
  });
});
