// `getAll` with `onProgress` against a real node: the counts go up to the total.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Cluster, Module, ObjectRef, ReefError } from "@reef/driver";

import { guest, startNode, type TestNode } from "./helpers.js";

describe("getAll progress", () => {
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

  function pauses(count: number): ObjectRef[] {
    return Array.from({ length: count }, (_, i) => cluster.task(nested, "pause").arg(10).arg(i + 0.5).submit());
  }

  test("onProgress sees increasing counts ending at the total", async () => {
    const refs = pauses(40);
    const seen: [number, number][] = [];
    const values = await cluster.getAll<number>(refs, { onProgress: (done, total) => seen.push([done, total]) });
    assert.deepEqual(
      values,
      Array.from({ length: 40 }, (_, i) => i + 0.5),
    );
    assert.deepEqual(seen[0], [0, 40]);
    assert.deepEqual(seen.at(-1), [40, 40]);
    assert.ok(seen.every(([, total]) => total === 40), JSON.stringify(seen));
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]![0] > seen[i - 1]![0], JSON.stringify(seen));
  });

  test("a failed result counts as ready; the error is thrown after", async () => {
    const refs = [...pauses(3), cluster.task(nested, "pause").arg("not a number").arg(1.5).submit()];
    let last: [number, number] | undefined;
    await assert.rejects(
      cluster.getAll<number>(refs, { onProgress: (done, total) => (last = [done, total]) }),
      ReefError,
    );
    assert.deepEqual(last, [4, 4]);
  });

  test("onProgress must be a function", async () => {
    await assert.rejects(cluster.getAll(pauses(1), { onProgress: 3 as never }), /onProgress must be a function/);
  });
});
