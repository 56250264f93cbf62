// A private node: a child `host start --head` process on a free port with its
// own data directory, stopped (stdin closed) by `stop()`.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { ArgumentError, NodeError } from "./errors.js";

export interface LocalNodeOptions {
  /** The `host` binary: default `$REEF_HOST`, else `host` on `PATH`. */
  hostBinary?: string;
  /** Extra `host start` arguments, e.g. `["--num-cpus", "2"]`. */
  args?: string[];
  /** Data directory; default a fresh temporary one, removed by `stop()`. */
  dataDir?: string;
  /** How long to wait for the node's banner (default 30 s). */
  startTimeoutMs?: number;
  /** The port to listen on (default a free one): a node restarted on its data directory and port. */
  port?: number;
  /**
   * Start a head (default) or, with `false`, a worker: then `args` must say
   * which head to join (`--address`, `--token-file`).
   */
  head?: boolean;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export class LocalNode {
  private stopped = false;

  private constructor(
    readonly child: ChildProcess,
    /** `127.0.0.1:<port>`. */
    readonly address: string,
    readonly dataDir: string,
    private readonly ownsDir: boolean,
  ) {}

  /** Starts a head node and waits until it listens. */
  static async start(options: LocalNodeOptions = {}): Promise<LocalNode> {
    const binary = options.hostBinary ?? process.env.REEF_HOST ?? "host";
    const extra = options.args ?? [];
    if (!Array.isArray(extra) || extra.some((a) => typeof a !== "string")) {
      throw new ArgumentError("args must be an array of strings");
    }
    const ownsDir = options.dataDir === undefined;
    const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "reef-ts-node-"));
    const port = options.port ?? (await freePort());
    const args = ["start", ...(options.head === false ? [] : ["--head"])];
    args.push("--stop-on-stdin-close", "--port", String(port), "--data-dir", dataDir);
    if (!extra.includes("--object-store-memory")) args.push("--object-store-memory", "256MiB");
    args.push(...extra);
    // A file, not a pipe: a node must never block on a full pipe.
    const logFd = openSync(join(dataDir, "node.log"), "a");
    let child: ChildProcess;
    try {
      child = spawn(binary, args, { stdio: ["pipe", "pipe", logFd] });
    } finally {
      closeSync(logFd);
    }
    const node = new LocalNode(child, `127.0.0.1:${port}`, dataDir, ownsDir);
    try {
      await node.waitForBanner(options.startTimeoutMs ?? 30_000, binary);
    } catch (e) {
      await node.stop();
      throw e;
    }
    return node;
  }

  private waitForBanner(timeoutMs: number, binary: string): Promise<void> {
    const child = this.child;
    return new Promise((resolve, reject) => {
      let seen = "";
      const done = (e?: Error) => {
        clearTimeout(timer);
        child.stdout?.off("data", onData);
        child.off("exit", onExit);
        child.off("error", onError);
        // Keep draining stdout so the node never blocks on it.
        child.stdout?.resume();
        if (e) reject(e);
        else resolve();
      };
      const log = () => {
        try {
          return readFileSync(join(this.dataDir, "node.log"), "utf8");
        } catch {
          return "";
        }
      };
      const onData = (chunk: Buffer) => {
        seen += chunk.toString();
        if (seen.includes("listening on")) done();
      };
      const onExit = (code: number | null) =>
        done(new NodeError("INTERNAL", `the node exited (status ${code}) before listening:\n${seen}${log()}`));
      const onError = (e: Error) =>
        done(new NodeError("INTERNAL", `cannot start ${binary}: ${e.message} (set REEF_HOST to the host binary)`));
      const timer = setTimeout(
        () => done(new NodeError("INTERNAL", `the node did not listen within ${timeoutMs} ms:\n${seen}${log()}`)),
        timeoutMs,
      );
      child.stdout?.on("data", onData);
      child.on("exit", onExit);
      child.on("error", onError);
    });
  }

  /** The cluster token the node wrote to `<data-dir>/token`, if it did. */
  get token(): string | undefined {
    const path = this.tokenFile;
    return path ? readFileSync(path, "utf8").trim() : undefined;
  }

  /** `<data-dir>/token` when it exists. */
  get tokenFile(): string | undefined {
    const path = join(this.dataDir, "token");
    return existsSync(path) ? path : undefined;
  }

  /** The node's log (its stderr). */
  log(): string {
    try {
      return readFileSync(join(this.dataDir, "node.log"), "utf8");
    } catch {
      return "";
    }
  }

  /**
   * Stops the node: closes its stdin (it fails its tasks and removes its
   * arena), waits for it to exit (killing it after 10 s), removes the data
   * directory if it was a temporary one.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const child = this.child;
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.stdin?.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    if (this.ownsDir) {
      rmSync(this.dataDir, { recursive: true, force: true });
    }
  }
}
