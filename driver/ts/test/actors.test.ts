// Actor restarts and lifetimes through the TypeScript driver: `maxRestarts`,
// `maxTaskRetries` and `lifetime` reach the node, and bad values are refused
// before anything is sent.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ActorDeadError, ArgumentError, Cluster, Module, ReefError } from "@reef/driver";

import { guest, startNode, type TestNode } from "./helpers.js";

describe("actor restarts", () => {
  let n: TestNode;
  let cluster: Cluster;
  let nested: Module;

  before(async () => {
    n = await startNode();
    cluster = n.cluster;
    nested = await cluster.registerFile(guest("nested"));
  });

  after(async () => {
    await n?.stop();
  });

  test("a trapping actor restarts with its constructor's argument while maxRestarts allows", async () => {
    const counter = await cluster.actor(nested, "Counter").arg(10).maxRestarts(1).create();
    assert.equal(await cluster.get<number>(counter.call("add", 1)), 11);
    const crash = counter.call("crash");
    const next = counter.call("add", 1);
    await assert.rejects(cluster.get(crash), (e: unknown) => e instanceof ReefError && e.code === "GUEST_TRAP");
    assert.equal(await cluster.get<number>(next), 11);
    const status = await cluster.status();
    assert.ok(status.actors.some((a) => a.actorId === counter.id && a.state === "alive (restarts: 1)"));
    const again = counter.call("crash");
    const dead = counter.call("add", 1);
    await assert.rejects(cluster.get(again));
    await assert.rejects(cluster.get(dead), (e: unknown) => e instanceof ActorDeadError && /GUEST_TRAP/.test(e.message));
  });

  test("maxTaskRetries runs the call that failed again", async () => {
    const counter = await cluster.actor(nested, "Counter").arg(5).options({ maxRestarts: 3, maxTaskRetries: 2 }).create();
    const crash = counter.call("crash");
    const next = counter.call("add", 1);
    await assert.rejects(cluster.get(crash), (e: unknown) => e instanceof ReefError && e.code === "GUEST_TRAP");
    assert.equal(await cluster.get<number>(next), 6);
    const status = await cluster.status();
    assert.ok(status.actors.some((a) => a.actorId === counter.id && a.state === "alive (restarts: 3)"));
  });

  test("a detached actor outlives its driver; an owned one does not", async () => {
    const other = await Cluster.connect(n.node.address, n.node.tokenFile ? { tokenFile: n.node.tokenFile } : {});
    await other.actor(nested, "Counter").arg(1).name("ts-owned").create();
    await other.actor(nested, "Counter").arg(1).name("ts-kept").lifetime("detached").create();
    await other.close();
    const deadline = Date.now() + 10_000;
    for (;;) {
      const gone = await cluster.getActor("ts-owned").then(
        () => false,
        () => true,
      );
      if (gone) break;
      assert.ok(Date.now() < deadline, "ts-owned outlived its driver");
      await new Promise((r) => setTimeout(r, 50));
    }
    const kept = await cluster.getActor("ts-kept");
    assert.equal(await cluster.get<number>(kept.call("add", 1)), 2);
    await kept.kill();
  });

  test("bad actor options are refused", () => {
    const actor = () => cluster.actor(nested, "Counter");
    assert.throws(() => actor().maxRestarts(-2), ArgumentError);
    assert.throws(() => actor().maxTaskRetries(1.5), ArgumentError);
    assert.throws(() => actor().options({ lifetime: "forever" } as object), ArgumentError);
  });
});
