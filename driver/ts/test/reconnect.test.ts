// A driver whose node (the head) is SIGKILLed and restarted on the same data
// directory and port reconnects by itself: the same `Cluster` runs tasks
// again, an old handle to a detached named actor on a worker still answers,
// and an object of the old session is `OBJECT_LOST` at once. A driver whose
// node stays down gives up after `reconnectTimeoutMs` with `UNAVAILABLE`
// naming the node.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";

import { Cluster, ConnectionError, freePort, LocalNode, ReefError } from "@reef/driver";

import { eventually, guest, hostBinary } from "./helpers.js";

const HEAD_ARGS = ["--heartbeat-ms", "200", "--node-timeout-ms", "8000", "--num-cpus", "1"];
/** Bounds each get after the restart: a hang fails with a `TimeoutError` naming the step, not the test's timeout. */
const BOUND = { timeoutMs: 30_000 };

/** Kills a node with SIGKILL (it dies without stopping) and waits for it to exit. */
async function kill(node: LocalNode): Promise<void> {
  const exited = new Promise<void>((resolve) => node.child.once("exit", () => resolve()));
  node.child.kill("SIGKILL");
  await exited;
}

async function aliveNodes(cluster: Cluster): Promise<number> {
  return (await cluster.status()).nodes.filter((n) => n.state === "alive").length;
}

/** Whether exactly the driver's node (by id: not its predecessor at the same address) and `worker` are alive. */
async function joined(cluster: Cluster, worker: LocalNode): Promise<boolean> {
  const alive = (await cluster.status()).nodes.filter((n) => n.state === "alive");
  return (
    alive.length === 2 &&
    alive.some((n) => n.nodeId === cluster.nodeId) &&
    alive.some((n) => n.address === worker.address)
  );
}

describe("reconnect", () => {
  const dirs: string[] = [];
  const nodes: LocalNode[] = [];
  const clusters: Cluster[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), "reef-ts-reconnect-"));
    dirs.push(d);
    return d;
  };

  after(async () => {
    for (const c of clusters) await c.close().catch(() => undefined);
    for (const n of nodes) await n.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test("a driver on the head reconnects after the head restarts", { timeout: 120_000 }, async () => {
    const headDir = dir();
    const port = await freePort();
    const head = await LocalNode.start({ hostBinary, dataDir: headDir, port, args: HEAD_ARGS });
    nodes.push(head);
    const worker = await LocalNode.start({
      hostBinary,
      dataDir: dir(),
      head: false,
      // `marker`: only the worker has it, so the actor lives there.
      args: ["--address", head.address, "--token-file", join(headDir, "node-token"), "--num-cpus", "2", "--resource", "marker=1"],
    });
    nodes.push(worker);
    const cluster = await Cluster.connect(head.address, { tokenFile: head.tokenFile });
    clusters.push(cluster);
    await eventually(async () => (await aliveNodes(cluster)) === 2, 30_000, "the worker to join");
    const m = await cluster.registerFile(guest("demo"));
    const acc = await cluster
      .actor(m, "Accumulator")
      .arg(1)
      .name("survivor")
      .lifetime("detached")
      .options({ resources: { marker: 1 } })
      .create();
    assert.equal(await cluster.get<number>(acc.call("add", 1)), 2);
    // Objects of this session, on the head alone: a put, and a result.
    const put = await cluster.put(7);
    const sum = cluster.task(m, "add").args(1, 2).submit();
    assert.equal(await cluster.get<number>(sum), 3);

    await kill(head);
    const restarted = await LocalNode.start({ hostBinary, dataDir: headDir, port, args: HEAD_ARGS });
    nodes.push(restarted);

    // An async call waits for the new session and runs on it.
    const again = await cluster.registerFile(guest("demo"));
    assert.equal(again.hash, m.hash);
    await cluster.waitConnected();
    await eventually(() => joined(cluster, worker), 30_000, "the worker to rejoin the restarted head");

    const refs = Array.from({ length: 20 }, (_, i) => cluster.task(m, "add").args(i, 1).submit());
    assert.deepEqual(
      await cluster.getAll<number>(refs, BOUND),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    // The old handle to the detached actor still answers, with its state.
    assert.equal(await cluster.get<number>(acc.call("add", 1), BOUND), 3);
    assert.equal((await cluster.getActor("survivor")).id, acc.id);

    // The old session's objects are gone, with a typed error at once.
    for (const old of [put, sum]) {
      await assert.rejects(cluster.get(old), (e: unknown) => {
        assert.ok(e instanceof ReefError);
        assert.equal(e.code, "OBJECT_LOST");
        assert.match(e.message, /earlier session/);
        return true;
      });
    }
    const { ready } = await cluster.wait([put], { timeoutMs: 0 });
    assert.equal(ready.length, 1, "a lost object counts as ready");
    assert.throws(() => cluster.task(m, "add").arg(put).arg(1).submit(), (e: unknown) => {
      assert.ok(e instanceof ReefError);
      assert.equal(e.code, "OBJECT_LOST");
      return true;
    });
    assert.equal(await cluster.get<number>(await cluster.put(8), BOUND), 8);
    await acc.kill();
  });

  test("a driver gives up after its reconnect timeout", { timeout: 60_000 }, async () => {
    const head = await LocalNode.start({ hostBinary, dataDir: dir() });
    nodes.push(head);
    const cluster = await Cluster.connect(head.address, { tokenFile: head.tokenFile, reconnectTimeoutMs: 2_000 });
    clusters.push(cluster);
    const m = await cluster.registerFile(guest("demo"));
    assert.equal(await cluster.get<number>(cluster.task(m, "add").args(1, 2).submit()), 3);
    // A get in flight when the node dies rejects (typed, naming the node) rather than hanging.
    const bad = await cluster.registerFile(guest("bad"));
    const inFlight = cluster.get(cluster.task(bad, "loop_forever").submit());
    inFlight.catch(() => undefined);

    await kill(head);
    await assert.rejects(inFlight, (e: unknown) => {
      assert.ok(e instanceof ConnectionError, String(e));
      assert.equal(e.code, "UNAVAILABLE");
      assert.ok(e.message.includes(head.address), e.message);
      return true;
    });
    // The driver sees the break when the session's stream reports it, then gives up 2 s later.
    let failure: unknown;
    await eventually(
      async () => {
        failure = await cluster.waitConnected().then(
          () => undefined,
          (e: unknown) => e,
        );
        return failure !== undefined;
      },
      30_000,
      "the driver to give up",
    );
    assert.ok(failure instanceof ConnectionError, String(failure));
    assert.equal(failure.code, "UNAVAILABLE");
    assert.match(failure.message, /gave up reconnecting/);
    assert.ok(failure.message.includes(head.address), failure.message);
    await assert.rejects(cluster.put(1), /gave up reconnecting/);
    assert.throws(() => cluster.task(m, "add").args(1, 2).submit(), /gave up reconnecting/);
  });
});
