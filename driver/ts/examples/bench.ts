// Measures the TypeScript driver against a private node:
//   node dist-test/examples/bench.js [--module target/guests/demo.wasm]
// Prints one line per figure (median of several runs where it makes sense).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { Cluster, LocalNode } from "@reef/driver";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
const hostBinary = process.env.REEF_HOST ?? join(repo, "target", "release", "host");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function time<T>(f: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await f();
  return [performance.now() - t0, v];
}

function row(name: string, value: string): void {
  console.log(`${name.padEnd(44)} ${value}`);
}

async function connect(node: LocalNode, sharedMemory = true): Promise<Cluster> {
  return Cluster.connect(node.address, { ...(node.tokenFile ? { tokenFile: node.tokenFile } : {}), sharedMemory });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { module: { type: "string", default: join(repo, "target", "guests", "demo.wasm") } },
  });
  const dataDir = mkdtempSync(join(tmpdir(), "reef-ts-bench-"));
  try {
    // First registration on a fresh node, then after a restart on the same data dir.
    let node = await LocalNode.start({ hostBinary, dataDir });
    const [connectMs, cluster0] = await time(() => connect(node));
    row("connect (TCP hello, move to unix socket)", `${connectMs.toFixed(1)} ms (${cluster0.transport.split(":")[0]})`);
    const [firstMs, m0] = await time(() => cluster0.registerFile(values.module!));
    row(`register ${m0.size} B module, fresh node`, `${firstMs.toFixed(0)} ms (cached=${m0.cached})`);
    await cluster0.close();
    await node.stop();
    node = await LocalNode.start({ hostBinary, dataDir });
    const cluster = await connect(node);
    try {
      const [cachedMs, m] = await time(() => cluster.registerFile(values.module!));
      row("register again after a node restart", `${cachedMs.toFixed(0)} ms (cached=${m.cached})`);

      // Trivial task round trip.
      await cluster.get(cluster.task(m, "noop").submit());
      const rtts: number[] = [];
      for (let i = 0; i < 200; i++) {
        const [ms] = await time(() => cluster.get(cluster.task(m, "noop").submit()));
        rtts.push(ms);
      }
      row("noop task round trip (median of 200)", `${(median(rtts) * 1000).toFixed(0)} µs`);

      const acc = await cluster.actor(m, "Accumulator").create();
      const calls: number[] = [];
      for (let i = 0; i < 200; i++) {
        const [ms] = await time(() => cluster.get(acc.call("add", 1)));
        calls.push(ms);
      }
      row("actor call round trip (median of 200)", `${(median(calls) * 1000).toFixed(0)} µs`);

      const n = 10_000;
      const before = cluster.sent;
      const [batchMs] = await time(async () => {
        const refs = Array.from({ length: n }, () => cluster.task(m, "noop").submit());
        await cluster.getAll(refs);
        for (const r of refs) r.release();
      });
      const batches = cluster.sent.batches - before.batches;
      row(`${n} noop tasks submitted, then one getAll`, `${batchMs.toFixed(0)} ms (${((n / batchMs) * 1000).toFixed(0)} tasks/s, ${batches} batches)`);

      const xs = new Float64Array(8_000_000).map((_, i) => i);
      for (const shared of [true, false]) {
        const c = shared ? cluster : await connect(node, false);
        const how = shared ? "unix socket" : "tcp";
        const puts: number[] = [];
        const gets: number[] = [];
        for (let i = 0; i < 3; i++) {
          const [p, r] = await time(() => c.put(xs));
          const [g] = await time(() => c.getBytes(r));
          r.release();
          puts.push(p);
          gets.push(g);
        }
        row(`put 64 MB Float64Array (${how}, median of 3)`, `${median(puts).toFixed(0)} ms`);
        row(`getBytes 64 MB (${how}, median of 3)`, `${median(gets).toFixed(0)} ms`);
        if (!shared) await c.close();
      }
      const data = await cluster.put(xs);
      const sums: number[] = [];
      for (let i = 0; i < 5; i++) {
        const [ms] = await time(() => cluster.get(cluster.task(m, "sum_slice").arg(data).arg(0).arg(8_000_000).submit()));
        sums.push(ms);
      }
      row("sum_slice over a 64 MB view (median of 5)", `${median(sums).toFixed(1)} ms`);
    } finally {
      await cluster.close();
      await node.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
