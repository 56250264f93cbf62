// The TypeScript driver over TLS: a node started with `host start
// --tls-cert/--tls-key/--tls-ca` (certificates from `host tls init`) is
// reached with `{ tlsCa }` for the session and for streamed objects (raw
// connections under ALPN `reef-raw`); without the CA the driver fails with
// an error that says so.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { ArgumentError, Cluster, LocalNode, ReefError } from "@reef/driver";

import { guest, hostBinary } from "./helpers.js";

describe("TLS", () => {
  let certs: string;
  let node: LocalNode;
  const ca = () => join(certs, "ca.pem");
  const token = () => (node.tokenFile ? { tokenFile: node.tokenFile } : {});

  before(async () => {
    certs = mkdtempSync(join(tmpdir(), "reef-ts-tls-"));
    execFileSync(hostBinary, ["tls", "init", certs]);
    node = await LocalNode.start({
      hostBinary,
      args: [
        "--object-store-memory",
        "256MiB",
        "--tls-cert",
        join(certs, "cert.pem"),
        "--tls-key",
        join(certs, "key.pem"),
        "--tls-ca",
        ca(),
      ],
    });
  });

  after(async () => {
    await node?.stop();
    if (certs) rmSync(certs, { recursive: true, force: true });
  });

  test("a driver trusting the cluster CA runs a task and streams a 24 MiB object both ways", { timeout: 60_000 }, async () => {
    const cluster = await Cluster.connect(`https://${node.address}`, { ...token(), tlsCa: ca(), sharedMemory: false });
    try {
      assert.equal(cluster.isSameMachine, false);
      const n = 3 << 20;
      const xs = new Float64Array(n);
      for (let i = 0; i < n; i++) xs[i] = i;
      const obj = await cluster.put(xs);
      const demo = await cluster.registerFile(guest("demo"));
      const sum = cluster.task(demo, "sum_slice").arg(obj).arg(0).arg(n).memoryLimit(1 << 30).submit();
      assert.equal(await cluster.get<number>(sum), (n * (n - 1)) / 2);
      const back = await cluster.getBytes(obj);
      assert.equal(Buffer.compare(Buffer.from(back), Buffer.from(xs.buffer)), 0);
    } finally {
      await cluster.close();
    }
  });

  test("the CA can come from $REEF_TLS_CA", { timeout: 30_000 }, async () => {
    process.env.REEF_TLS_CA = ca();
    try {
      const cluster = await Cluster.connect(node.address, { ...token(), sharedMemory: false });
      assert.ok((await cluster.status()).nodes.length >= 1);
      await cluster.close();
    } finally {
      delete process.env.REEF_TLS_CA;
    }
  });

  test("without the CA the driver fails and says how to connect", { timeout: 30_000 }, async () => {
    await assert.rejects(
      Cluster.connect(`https://${node.address}`, token()),
      (e: unknown) => e instanceof ArgumentError && /tlsCa/.test(e.message),
    );
    await assert.rejects(
      Cluster.connect(node.address, { ...token(), connectTimeoutMs: 5_000 }),
      (e: unknown) => e instanceof ReefError && /tlsCa/.test(e.message),
    );
  });

  test("a CA that did not sign the node's certificate is refused", { timeout: 30_000 }, async () => {
    const other = mkdtempSync(join(tmpdir(), "reef-ts-tls-other-"));
    try {
      execFileSync(hostBinary, ["tls", "init", other]);
      await assert.rejects(
        Cluster.connect(node.address, { ...token(), tlsCa: join(other, "ca.pem"), connectTimeoutMs: 5_000 }),
        (e: unknown) => e instanceof ReefError,
      );
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  test("a tlsCa file that holds no certificate is a BAD_ARGUMENT", async () => {
    await assert.rejects(
      Cluster.connect(node.address, { ...token(), tlsCa: node.tokenFile ?? "/nonexistent" }),
      (e: unknown) => e instanceof ArgumentError && /TLS CA/.test(e.message),
    );
  });
});
