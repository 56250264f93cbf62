// Task retries through the TypeScript driver: `maxRetries` and
// `retryExceptions` reach the node (a guest failure is retried only when
// listed) and bad values are refused before anything is sent.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ArgumentError, Cluster, Module, ReefError } from "@reef/driver";

import { guest, startNode, type TestNode } from "./helpers.js";

describe("task retries", () => {
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

  /** Runs `flaky(name, failures)` against a fresh named Counter; (result or error, calls made). */
  async function flaky(name: string, failures: number, options: object): Promise<[unknown, number]> {
    const counter = await cluster.actor(nested, "Counter").arg(0).name(name).create();
    const task = cluster.task(nested, "flaky").arg(name).arg(failures).options(options).submit();
    const result = await cluster.get<number>(task).catch((e: unknown) => e);
    const calls = await cluster.get<number>(counter.call("total"));
    return [result, calls];
  }

  test("retryExceptions: true retries guest errors until one attempt succeeds", async () => {
    const [result, calls] = await flaky("ts-all", 2, { retryExceptions: true });
    assert.equal(result, 3);
    assert.equal(calls, 3);
  });

  test("a listed code is retried; maxRetries bounds the attempts and the error names them", async () => {
    const [result, calls] = await flaky("ts-listed", 5, { retryExceptions: ["GUEST_ERROR"], maxRetries: 1 });
    assert.ok(result instanceof ReefError, String(result));
    assert.equal(result.code, "GUEST_ERROR");
    assert.match(result.message, /flaky: call 2 fails \(after 2 attempts\)/);
    assert.equal(calls, 2);
  });

  test("without retryExceptions a guest error fails at once", async () => {
    const [result, calls] = await flaky("ts-off", 1, {});
    assert.ok(result instanceof ReefError, String(result));
    assert.equal(result.code, "GUEST_ERROR");
    assert.equal(calls, 1);
  });

  test("bad retry options are refused", () => {
    const task = () => cluster.task(nested, "flaky");
    assert.throws(() => task().maxRetries(-1), ArgumentError);
    assert.throws(() => task().options({ retryExceptions: ["NOT_A_CODE"] } as object), ArgumentError);
    assert.throws(() => cluster.actor(nested, "Counter").options({ maxRetries: 1 } as object), ArgumentError);
  });
});
