// Shared by the tests: paths in the repository and private nodes.

import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { Cluster, LocalNode } from "@reef/driver";

/** The repository root (tests run from driver/ts/dist-test/test/). */
export const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");

/** target/release/host, or $REEF_HOST. */
export const hostBinary = process.env.REEF_HOST ?? join(repo, "target", "release", "host");

/** target/guests/<name>.wasm; fails clearly when it was not built. */
export function guest(name: string): string {
  const path = join(repo, "target", "guests", `${name}.wasm`);
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run scripts/build-guests.sh`);
  }
  return path;
}

export interface TestNode {
  node: LocalNode;
  cluster: Cluster;
  stop(): Promise<void>;
}

/**
 * Starts a private head node (`host start --head --stop-on-stdin-close`, a
 * 256 MiB arena, a temporary data dir) and connects with the token the node
 * wrote to `<data-dir>/token`, when it wrote one.
 */
export async function startNode(args: string[] = []): Promise<TestNode> {
  if (!existsSync(hostBinary)) {
    throw new Error(`${hostBinary} is missing: cargo build --release -p host`);
  }
  const node = await LocalNode.start({ hostBinary, args: ["--object-store-memory", "256MiB", ...args] });
  let cluster: Cluster;
  try {
    cluster = await Cluster.connect(node.address, node.tokenFile ? { tokenFile: node.tokenFile } : {});
  } catch (e) {
    await node.stop();
    throw e;
  }
  return {
    node,
    cluster,
    async stop() {
      await cluster.close().catch(() => undefined);
      await node.stop();
    },
  };
}

/** Polls `check` every 20 ms until it returns true or `timeoutMs` passes. */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
