// Large objects from a driver that is not on the node's machine (as on
// another machine): streamed over raw TCP connections to the node's port,
// here over loopback with `sharedMemory: false`.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

import { Cluster, LocalNode } from "@reef/driver";

import { eventually, guest, hostBinary, repo } from "./helpers.js";

/** Deterministic bytes that differ everywhere. */
function pattern(len: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(len);
  let x = seed | 1;
  for (let i = 0; i + 4 <= len; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeInt32LE(x | 0, i);
  }
  for (let i = len - (len % 4); i < len; i++) out[i] = i & 0xff;
  return out;
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("remote driver (sharedMemory: false)", () => {
  let node: LocalNode;
  let cluster: Cluster;
  const token = () => (node.tokenFile ? { tokenFile: node.tokenFile } : {});
  const arenaUsed = async () => (await cluster.status()).store.arenaUsed;

  before(async () => {
    node = await LocalNode.start({ hostBinary, args: ["--object-store-memory", "640MiB"] });
    cluster = await Cluster.connect(node.address, { ...token(), sharedMemory: false });
    assert.equal(cluster.isSameMachine, false);
  });

  after(async () => {
    await cluster?.close().catch(() => undefined);
    await node?.stop();
  });

  test("a 256 MiB object round-trips over TCP, checked by a guest and a checksum", { timeout: 120_000 }, async () => {
    const n = 32 << 20;
    const xs = new Float64Array(n);
    for (let i = 0; i < n; i++) xs[i] = i;
    const bytes = new Uint8Array(xs.buffer);
    const before = await arenaUsed();

    const obj = await cluster.put(xs);
    assert.ok((await arenaUsed()) >= before + bytes.length);

    const demo = await cluster.registerFile(guest("demo"));
    const sum = cluster.task(demo, "sum_slice").arg(obj).arg(0).arg(n).memoryLimit(1 << 30).submit();
    assert.equal(await cluster.get(sum), ((n - 1) * n) / 2);

    // (Its speed is a figure of `make bench`, group `remote`.)
    const back = await cluster.getBytes(obj);
    assert.equal(back.length, bytes.length);
    assert.equal(sha256(back), sha256(bytes));

    // An odd size, and a small object that stays inline.
    const odd = pattern((3 << 20) + 12_345, 7);
    assert.equal(sha256(await cluster.getBytes(await cluster.put(odd))), sha256(odd));
    const small = pattern(1000, 3);
    const used = await arenaUsed();
    const r = await cluster.put(small);
    assert.equal(await arenaUsed(), used);
    assert.deepEqual(Buffer.from(await cluster.getBytes(r)), small);
  });

  test("getBytes into a caller's buffer: streamed and inline objects, a buffer too small", { timeout: 120_000 }, async () => {
    const before = await arenaUsed();
    const big = pattern((3 << 20) + 5, 11);
    const small = pattern(999, 5);
    const [bigRef, smallRef] = [await cluster.put(big), await cluster.put(small)];
    const into = new Uint8Array(4 << 20).fill(0xee);

    const back = await cluster.getBytes(bigRef, { into });
    assert.equal(back.buffer, into.buffer, "the bytes land in the caller's buffer");
    assert.equal(back.length, big.length);
    assert.equal(sha256(back), sha256(big));
    assert.equal(into[big.length], 0xee, "nothing written past the object");

    const inline = await cluster.getBytes(smallRef, { into });
    assert.equal(inline.buffer, into.buffer);
    assert.deepEqual(Buffer.from(inline), small);

    await assert.rejects(cluster.getBytes(bigRef, { into: new Uint8Array(1 << 20) }), (e: Error) => {
      assert.equal(e.name, "ArgumentError");
      assert.match(e.message, /options\.into holds 1048576 bytes, the object 3145733/);
      return true;
    });
    await assert.rejects(cluster.getBytes(bigRef, { into: [1, 2] as unknown as Uint8Array }), /must be a Uint8Array/);
    // The refused get unpinned the object: it is still read, and freed on release.
    assert.equal(sha256(await cluster.getBytes(bigRef)), sha256(big));
    bigRef.release();
    smallRef.release();
    await eventually(async () => (await arenaUsed()) <= before, 10_000, "the released object freed");
  });

  test("a large result the caller dropped is not kept by the driver", { timeout: 120_000 }, async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const before = await arenaUsed();
    const obj = await cluster.put(pattern(96 << 20, 13));
    // Its memory, watched through a WeakRef from a function of its own (a
    // suspended async frame would keep its locals).
    const watch = async () => new WeakRef((await cluster.getBytes(obj)).buffer);
    const memory = await watch();
    // A deref keeps its target until the current job ends: collect in the next one.
    const tick = () => new Promise((r) => setTimeout(r, 10));
    let freed = false;
    for (let i = 0; i < 10 && !freed; i++) {
      await tick();
      gc();
      await tick();
      freed = memory.deref() === undefined;
    }
    assert.ok(freed, "the 96 MiB result is still reachable after 10 collections");
    obj.release();
    await eventually(async () => (await arenaUsed()) <= before, 10_000, "the arena back to its usage before");
  });

  test("a driver killed mid-put leaves no buffer behind", { timeout: 120_000 }, async () => {
    const before = await arenaUsed();
    const size = 256 << 20;
    const dir = mkdtempSync(join(tmpdir(), "reef-ts-remote-"));
    // A driver process that puts 256 MiB over TCP (and is killed meanwhile).
    const script = join(dir, "put.mjs");
    const driver = pathToFileURL(join(repo, "driver", "ts", "dist", "index.js")).href;
    writeFileSync(
      script,
      `import { Cluster } from ${JSON.stringify(driver)};
const cluster = await Cluster.connect(${JSON.stringify(node.address)}, ${JSON.stringify({ ...token(), sharedMemory: false })});
const data = new Uint8Array(${size}).fill(7);
process.stdout.write("ready\\n");
await cluster.put(data);
setInterval(() => {}, 1000);
`,
    );
    const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (b: Buffer) => b.toString().includes("ready") && resolve());
        child.on("exit", (code) => reject(new Error(`the driver exited (${code}) before putting`)));
      });
      // Killed as soon as the node holds its buffer (mid-stream).
      await eventually(async () => (await arenaUsed()) >= before + size, 60_000, "the put's buffer");
      child.kill("SIGKILL");
      await eventually(async () => (await arenaUsed()) === before, 10_000, "the arena back to its usage before");
    } finally {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
