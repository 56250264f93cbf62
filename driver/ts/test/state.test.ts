// The state API and logs through the TypeScript driver's typed calls, against
// a real node: listings with filters and limits, get, summary, typed errors
// for unknown ids and filter keys, and logs (an actor's followed as calls happen).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { BadArgumentError, Cluster, Module, NotFoundError } from "@reef/driver";

import { guest, startNode, type TestNode } from "./helpers.js";

describe("state API", () => {
  let n: TestNode;
  let cluster: Cluster;
  let bad: Module;

  before(async () => {
    n = await startNode();
    cluster = n.cluster;
    bad = await cluster.registerFile(guest("bad"));
  });

  after(async () => {
    await n?.stop();
  });

  test("lists, gets and summarizes finished and failed tasks", async () => {
    const printed = cluster.task(bad, "print").submit();
    const failed = cluster.task(bad, "fail").arg("ts says no").submit();
    await cluster.get(printed);
    await assert.rejects(cluster.get(failed));

    const prints = await cluster.listTasks({ filters: { function: "print" } });
    assert.equal(prints.total, 1);
    assert.equal(prints.rows[0].taskId, printed.id);
    assert.equal(prints.rows[0].state, "finished");
    assert.equal(prints.rows[0].nodeId, cluster.nodeId);
    assert.deepEqual(prints.missingNodes, []);

    const [attempt] = await cluster.getTask(failed);
    assert.equal(attempt.state, "failed");
    assert.equal(attempt.errorCode, "GUEST_ERROR");
    assert.match(attempt.errorMessage, /ts says no/);

    const limited = await cluster.listTasks({ limit: 1 });
    assert.equal(limited.rows.length, 1);
    assert.ok(limited.total >= 2);

    const rows = await cluster.summary("tasks");
    const fail = rows.find((r) => r.key.endsWith(" fail"));
    assert.equal(fail?.byState.failed, 1);

    const nodes = await cluster.listNodes();
    assert.equal(nodes.rows.length, 1);
    const modules = await cluster.listModules({ filters: { hash: bad.hash.slice(0, 12) } });
    assert.equal(modules.rows[0].hash, bad.hash);
  });

  test("unknown ids and filter keys are typed errors", async () => {
    await assert.rejects(cluster.getTask(0xdeadbeefn), (e: unknown) => e instanceof NotFoundError && e.code === "UNKNOWN_OBJECT");
    await assert.rejects(
      cluster.getActorInfo(0xdeadbeefn),
      (e: unknown) => e instanceof NotFoundError && e.code === "UNKNOWN_ACTOR",
    );
    await assert.rejects(
      cluster.listTasks({ filters: { colour: "red" } }),
      (e: unknown) => e instanceof BadArgumentError && /unknown filter key `colour`/.test((e as Error).message),
    );
    await assert.rejects(cluster.logLines(0xdeadbeefn).next(), (e: unknown) => e instanceof NotFoundError);
  });

  test("logs of a task, and of an actor followed as calls happen", async () => {
    const printed = cluster.task(bad, "print").submit();
    await cluster.get(printed);
    const lines = [];
    for await (const l of cluster.logLines(printed)) lines.push(l);
    assert.deepEqual(
      lines.map((l) => [l.stream, l.text]),
      [
        ["stdout", "hello stdout\n"],
        ["stderr", "hello stderr\n"],
        ["log", "[info] hello log"],
      ],
    );

    const talker = await cluster.actor(bad, "Talker").create();
    const info = await cluster.getActorInfo(talker);
    assert.equal(info.class, "Talker");
    const follow = cluster.logLines(talker, { follow: true });
    const seen: string[] = [];
    const waitFor = async (text: string) => {
      while (!seen.includes(text)) {
        const next = await follow.next();
        assert.ok(!next.done, `the log ended before "${text}"`);
        seen.push(next.value.text);
      }
    };
    await waitFor("talker ready\n");
    cluster.get(talker.call("say", "one"));
    await waitFor("[info] one");
    cluster.get(talker.call("say", "two"));
    await waitFor("said two\n");
    await talker.kill();
    for (;;) {
      const next = await follow.next();
      if (next.done) break;
    }
  });
});
