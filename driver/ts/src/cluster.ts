// `Cluster`: the driver's handle to a node (and through it, the cluster), and
// the builders for tasks and actors.

import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";

import * as grpc from "@grpc/grpc-js";

import { Connection, grpcError, isRefusal, newClient } from "./connection.js";
import { ArgumentError, ConnectionError, ERROR_CODES, errorFor, fromProto, NodeError, ReefError } from "./errors.js";
import type { Arg as ProtoArg } from "./gen/reef/v1/Arg.js";
import type { CallOptions as ProtoCallOptions } from "./gen/reef/v1/CallOptions.js";
import type { ModuleInfo__Output } from "./gen/reef/v1/ModuleInfo.js";
import type { NodeClient } from "./gen/reef/v1/Node.js";
import type { RegisterModuleReply__Output } from "./gen/reef/v1/RegisterModuleReply.js";
import type { StatusReply__Output } from "./gen/reef/v1/StatusReply.js";
import { LocalNode, type LocalNodeOptions } from "./local.js";
import { ObjectRef } from "./object.js";
import * as state from "./state.js";
import { STREAM_THRESHOLD, Streamer } from "./stream.js";
import { resolveToken, type TokenOptions } from "./token.js";
import { decodeValue, encodeValue, isRaw, rawBytes, type DecodeOptions, type Value } from "./values.js";

export interface ConnectOptions extends TokenOptions {
  /** How long to wait for the node to answer (default 10 s). */
  connectTimeoutMs?: number;
  /**
   * On the node's machine, move the session to the node's Unix socket (same
   * protocol, cheaper than loopback TCP). Default true.
   */
  unixSocket?: boolean;
  /**
   * On the node's machine, move the session to the node's Unix socket.
   * Default true unless `$REEF_SAME_MACHINE` is `0`. Large objects (1 MiB
   * and more) are streamed over raw TCP connections to the node's port
   * either way: Node.js cannot receive the per-object memfds (SCM_RIGHTS)
   * the Rust driver maps, and no driver maps the node's arena.
   */
  sharedMemory?: boolean;
  /**
   * Connect with TLS (gRPC and object streams), verifying the node's
   * certificate against the CA in this PEM file (a node started with
   * `host start --tls-cert`; `host tls init` writes `ca.pem`). Default:
   * `$REEF_TLS_CA` when set, else plain TCP (an `https://` address then
   * fails for want of a CA).
   */
  tlsCa?: string;
  /**
   * How long (ms) the driver tries to open a new session when its session
   * with the node broke (the node restarted, the network failed), with
   * backoff from 100 ms doubling to 2 s. Default 60,000 (as Ray's
   * `gcs_rpc_server_reconnect_timeout_s`); 0: never reconnect. Calls in
   * flight when it broke fail with a `ConnectionError` (`UNAVAILABLE`);
   * async calls made meanwhile wait and run on the new session; `submit`
   * and `call` throw `UNAVAILABLE` meanwhile; after the timeout every call
   * fails with `UNAVAILABLE` naming the node and the last cause. A session
   * the node ended for its credential is not reopened; while reconnecting,
   * `PERMISSION_DENIED` (revoked) or `UNAUTHENTICATED` (unknown) stops at
   * once (a node just restarted holds requests until it has loaded the
   * cluster's credentials). Objects made in the old session are gone: using
   * one fails with `OBJECT_LOST`.
   */
  reconnectTimeoutMs?: number;
}

/** The default of `reconnectTimeoutMs`. */
export const DEFAULT_RECONNECT_TIMEOUT_MS = 60_000;
/** The first pause between reconnect attempts, doubling up to `BACKOFF_MAX_MS`. */
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 2_000;
/** How long an idempotent unary call that failed on the transport waits for the session to see the break. */
const SESSION_END_GRACE_MS = 1_000;

/** How a cluster opens its sessions (again, after one broke). */
interface SessionTarget {
  address: string;
  metadata: () => grpc.Metadata;
  tlsCa: Buffer | undefined;
  timeoutMs: number;
  /** Move the session to the node's Unix socket when on its machine. */
  unixSocket: boolean;
  sharedMemory: boolean;
}

/** The CA to trust: `tlsCa`, else `$REEF_TLS_CA`'s file; undefined for plain TCP. */
async function loadTlsCa(address: string, options: ConnectOptions): Promise<Buffer | undefined> {
  const path = options.tlsCa ?? (process.env.REEF_TLS_CA || undefined);
  if (path === undefined) {
    if (/^https:\/\//.test(address)) {
      throw new ArgumentError(`${address} is a TLS address: pass {tlsCa} (the cluster's CA file) or set REEF_TLS_CA`);
    }
    return undefined;
  }
  if (typeof path !== "string" || path === "") throw new ArgumentError(`tlsCa must be a file path, got ${describe(path)}`);
  let pem: Buffer;
  try {
    pem = await readFile(path);
  } catch (e) {
    throw new ArgumentError(`TLS CA: cannot read ${path}: ${(e as Error).message}`);
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new ArgumentError(`TLS CA: ${path} holds no PEM certificate`);
  }
  return pem;
}

/** A registered module. */
export class Module {
  /** Content hash: the module's name in task submissions. */
  readonly hash: string;
  /** The guest SDK that built it (e.g. `rust`, `python`). */
  readonly sdk: string;
  readonly tasks: readonly string[];
  readonly actors: readonly { readonly name: string; readonly methods: readonly string[] }[];
  /** Size of the registered bytes. */
  readonly size: number;
  /** The node loaded the compiled module from its cache (no recompilation). */
  readonly cached: boolean;
  /** The capabilities the module was granted (`"filesystem"`, `"network"`). */
  readonly grants: readonly Grant[];

  /** @internal */
  constructor(info: ModuleInfo__Output) {
    this.hash = info.hash;
    this.sdk = info.sdk;
    this.tasks = [...info.tasks];
    this.actors = info.actors.map((a) => ({ name: a.name, methods: [...a.methods] }));
    this.size = Number(info.size);
    this.cached = info.cached;
    this.grants = info.grants.filter((g): g is Grant => (GRANTS as readonly string[]).includes(g));
  }
}

/**
 * Capabilities a registration may grant: `filesystem` (wasi:filesystem, a
 * per-module scratch directory at `/scratch`), `network` (wasi:sockets).
 */
export const GRANTS = ["filesystem", "network"] as const;
export type Grant = (typeof GRANTS)[number];

export interface RegisterOptions {
  /**
   * Capabilities granted to the module (default none). A component importing
   * an interface of a capability not granted is refused with a
   * `NotGrantedError` listing the imports. The same bytes registered with
   * other grants are another module (another hash).
   */
  grants?: readonly Grant[];
}

/** What a finished task or actor call printed and logged. */
export interface Logs {
  stdout: string;
  stderr: string;
  log: string[];
}

export interface GetOptions extends DecodeOptions {
  /** Give up after this many milliseconds (a `TimeoutError`); default: wait as long as it takes. */
  timeoutMs?: number;
  /**
   * `getAll` only: called with (ready, total) as results become ready (a
   * failed one counts as ready), at most every 100 ms: first with (0, total),
   * last with (total, total), each count higher than the one before.
   */
  onProgress?: (done: number, total: number) => void;
}

/** How often `getAll` with `onProgress` asks which results are ready. */
const PROGRESS_INTERVAL_MS = 100;

export interface WaitOptions {
  /** How many of the refs must be ready (default 1). */
  numReturns?: number;
  /** Return after this many milliseconds even if fewer are ready; default: no limit. */
  timeoutMs?: number;
}

export interface WaitResult {
  /** Ready refs, in the order given. */
  ready: ObjectRef[];
  /** The others, in the order given. */
  notReady: ObjectRef[];
}

export interface CallOptions {
  /** CPUs to reserve (default 1 for tasks, 0 for actors). */
  numCpus?: number;
  /** Bytes of the node's `memory` resource to reserve. */
  memory?: number;
  /** Custom resources to reserve, e.g. `{ gpu: 1 }`. */
  resources?: Record<string, number>;
  /** Guest linear-memory limit in bytes (default: the node's, 256 MiB). */
  memoryLimit?: number;
  /** Guest CPU-time limit in milliseconds (default: the node's, 60 s). */
  cpuTimeMs?: number;
}

/** An error code a node sets (`ErrorCode` in proto/reef.proto). */
export type NodeErrorCode = (typeof ERROR_CODES)[number];

/** A task's options: those of every call, and its retries. */
export interface TaskOptions extends CallOptions {
  /**
   * How often a failed attempt runs again when its failure allows it (default
   * 3, as in Ray; 0: never). A node failure (the node running it died or
   * stopped, the host failed) always does; the result's ref stays the same.
   */
  maxRetries?: number;
  /**
   * Guest failures that allow a retry too: `true` for every one
   * (`GUEST_ERROR`, `GUEST_PANIC`, `GUEST_TRAP`), or a list of codes
   * (default: none, a guest failure fails the task at once).
   */
  retryExceptions?: boolean | NodeErrorCode[];
  /**
   * How many calls one wasm instance may serve, as Ray's `max_calls`
   * (default 1: a fresh instance per task; 0: no limit). With N > 1 an
   * instance whose task succeeded is kept on its node and serves up to N
   * tasks of the same module, tenant and limits; its globals survive
   * between calls (views and object access do not); a trap or error drops it.
   */
  maxCalls?: number;
}

/** How an actor survives failures and how long it lives. */
export interface ActorOptions extends CallOptions {
  /**
   * Restarts after its node died or its instance trapped (default 0; -1:
   * without limit). `actor-init` runs again with the same arguments.
   */
  maxRestarts?: number;
  /**
   * Retries of a call that was running when the actor failed (default 0; -1:
   * without limit); otherwise the call fails with `ACTOR_RESTARTING`.
   */
  maxTaskRetries?: number;
  /**
   * `"detached"`: the actor outlives this driver (only `kill` ends it).
   * Default `"owned"`: it ends with this driver's session, named or not.
   */
  lifetime?: "owned" | "detached";
}

/** The node's status. Ids are bigints; sizes are numbers. */
export interface Status {
  nodes: { nodeId: string; address: string; state: string; resources: { name: string; total: number; available: number }[] }[];
  /** `attempt`: 1 for the first attempt, more after retries. */
  tasks: { returnId: bigint; module: string; function: string; state: string; attempt: number }[];
  actors: { actorId: bigint; name: string; module: string; class: string; state: string }[];
  store: { arenaCapacity: number; arenaUsed: number; spilledBytes: number; objects: number; inlineBytes: number };
  modules: Module[];
}

/** What a task or actor-call argument may be. */
export type ArgValue = ObjectRef | Arg | ArrayBufferView | ArrayBuffer | Value;

/**
 * An explicit argument encoding, for when the default is not what you want:
 * by default an `ObjectRef` is passed by reference, typed arrays as raw bytes,
 * anything else as MessagePack.
 */
export class Arg {
  private constructor(
    /** @internal */ readonly inline: Uint8Array,
  ) {}

  /** A value MessagePack-encoded (a `Uint8Array` becomes a MessagePack `bin`). */
  static value(v: Value): Arg {
    return new Arg(encodeValue(v, "Arg.value"));
  }

  /** Raw bytes passed as they are. */
  static bytes(b: ArrayBufferView | ArrayBuffer): Arg {
    if (!isRaw(b)) throw new ArgumentError(`Arg.bytes: expected a Uint8Array or other binary view, got ${describe(b)}`);
    return new Arg(rawBytes(b));
  }

  /** A number encoded as a MessagePack float64 even when it is whole. */
  static f64(x: number): Arg {
    if (typeof x !== "number") throw new ArgumentError(`Arg.f64: expected a number, got ${describe(x)}`);
    const b = new Uint8Array(9);
    b[0] = 0xcb;
    new DataView(b.buffer).setFloat64(1, x, false);
    return new Arg(b);
  }
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  if (typeof v === "string") return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "..." : v)}`;
  return typeof v;
}

function checkName(v: unknown, what: string): string {
  if (typeof v !== "string") throw new ArgumentError(`${what} must be a string, got ${describe(v)}`);
  if (v === "") throw new ArgumentError(`${what} must not be empty`);
  return v;
}

function checkCount(v: unknown, what: string, { min = 0, integer = true } = {}): number {
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new ArgumentError(`${what} must be a finite number, got ${describe(v)}`);
  }
  if (integer && !Number.isInteger(v)) throw new ArgumentError(`${what} must be a whole number, got ${v}`);
  if (v < min) throw new ArgumentError(`${what} must be at least ${min}, got ${v}`);
  return v;
}

function checkOptions(o: unknown, what: string): Record<string, unknown> {
  if (o === undefined) return {};
  if (o === null || typeof o !== "object" || Array.isArray(o)) {
    throw new ArgumentError(`${what} must be an options object, got ${describe(o)}`);
  }
  return o as Record<string, unknown>;
}

/** The first `len` bytes of a caller's buffer, which must hold them. */
function intoFor(into: Uint8Array, len: number, what: string): Uint8Array {
  if (into.length < len) {
    throw new ArgumentError(`${what}: options.into holds ${into.length} bytes, the object ${len}`);
  }
  return into.subarray(0, len);
}

/** The same-machine path's default: on unless `$REEF_SAME_MACHINE` is `0`, `false`, `no` or `off`. */
function sameMachineDefault(): boolean {
  const v = process.env.REEF_SAME_MACHINE?.trim().toLowerCase();
  return !(v === "0" || v === "false" || v === "no" || v === "off");
}

/** Milliseconds for the wire: undefined = no limit (0); 0 asks for an immediate answer (1 ms). */
function timeoutField(v: unknown, what: string): string {
  if (v === undefined) return "0";
  const ms = checkCount(v, what, { integer: false });
  return String(Math.max(1, Math.ceil(ms)));
}

export class Cluster {
  /** The address given to `connect` (or the local node's). */
  readonly address: string;
  /** The private node started by `Cluster.local`, if any (stopped by `close`). */
  readonly node: LocalNode | undefined;
  /** The session opened last (live, or broken while the driver reconnects). */
  #conn: Connection;
  /** Every session this cluster opened (refs of earlier ones are lost, not foreign). */
  readonly #sessions = new WeakSet<Connection>();
  readonly #target: SessionTarget;
  readonly #reconnectTimeoutMs: number;
  /** While reconnecting: settles when a new session is live or the driver gave up. */
  #reconnecting: Promise<void> | undefined;
  /** Why the last session broke. */
  #cause: ReefError | undefined;
  /** Set for good: a refused credential, reconnecting off, or the timeout passed. */
  #failure: ReefError | undefined;
  #closing = false;
  readonly #metadata: () => grpc.Metadata;
  /** Raw connections for large objects. */
  readonly #streamer: Streamer;
  readonly #sameMachine: boolean;

  private constructor(
    target: SessionTarget,
    conn: Connection,
    reconnectTimeoutMs: number,
    node?: LocalNode,
    token?: string,
    sameMachine = false,
  ) {
    this.#sameMachine = sameMachine;
    this.address = target.address;
    this.#target = target;
    this.#reconnectTimeoutMs = reconnectTimeoutMs;
    this.#conn = conn;
    this.#metadata = target.metadata;
    this.node = node;
    this.#streamer = new Streamer(target.address, token, target.tlsCa);
    this.#watch(conn);
  }

  /** @internal The session opened last. */
  get conn(): Connection {
    return this.#conn;
  }

  #watch(conn: Connection): void {
    this.#sessions.add(conn);
    conn.node = this.address;
    conn.onLost = (e) => this.#lost(conn, e);
  }

  /** The session broke: reconnect, unless that cannot help. */
  #lost(conn: Connection, e: ReefError): void {
    if (conn !== this.#conn || this.#closing || this.#reconnecting || this.#failure) return;
    this.#cause = e;
    if (isRefusal(e) || this.#reconnectTimeoutMs === 0) {
      this.#failure = e;
      return;
    }
    const reconnecting: Promise<void> = this.#reconnect(e).finally(() => {
      if (this.#reconnecting === reconnecting) this.#reconnecting = undefined;
    });
    this.#reconnecting = reconnecting;
  }

  /** Opens a new session with backoff until the timeout passes (never rejects). */
  async #reconnect(cause: ReefError): Promise<void> {
    const timeout = this.#reconnectTimeoutMs;
    const deadline = Date.now() + timeout;
    let pause = BACKOFF_FIRST_MS;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      await new Promise((r) => setTimeout(r, Math.min(pause, left)));
      pause = Math.min(pause * 2, BACKOFF_MAX_MS);
      if (this.#closing) {
        this.#failure = new ConnectionError("UNAVAILABLE", "the cluster connection was closed");
        return;
      }
      try {
        const { conn } = await Cluster.#open(this.#target, Math.max(1, Math.min(this.#target.timeoutMs, deadline - Date.now())));
        if (this.#closing) {
          await conn.close();
          this.#failure = new ConnectionError("UNAVAILABLE", "the cluster connection was closed");
          return;
        }
        // Live from here (a break of the new session starts a new reconnect).
        this.#conn = conn;
        this.#reconnecting = undefined;
        this.#watch(conn);
        return;
      } catch (e) {
        const err = e instanceof ReefError ? e : new ConnectionError("UNAVAILABLE", String(e));
        // A revoked or unknown credential.
        if (err.code === "PERMISSION_DENIED" || err.code === "UNAUTHENTICATED") {
          this.#failure = err;
          return;
        }
        cause = err;
        this.#cause = err;
      }
    }
    this.#failure = new ConnectionError(
      "UNAVAILABLE",
      `gave up reconnecting to node ${this.address} after ${timeout} ms; last cause: ${cause.detail}`,
    );
  }

  /** The live session, waiting while the driver reconnects (bounded by `reconnectTimeoutMs`). */
  async #session(): Promise<Connection> {
    for (;;) {
      if (this.#failure) throw this.#failure;
      if (this.#reconnecting) {
        await this.#reconnecting;
        continue;
      }
      // Broken sessions start a reconnect (or fail) synchronously: a closed
      // one here was closed by `close()`.
      this.#conn.checkOpen();
      return this.#conn;
    }
  }

  /** The live session now, without waiting: `UNAVAILABLE` while reconnecting. */
  #live(): Connection {
    if (this.#failure) throw this.#failure;
    if (this.#reconnecting) {
      throw new ConnectionError(
        "UNAVAILABLE",
        `not connected: reconnecting to node ${this.address} (for up to ${this.#reconnectTimeoutMs} ms) after: ` +
          `${this.#cause?.detail ?? "the session broke"}; async calls wait for the new session, submit() does not ` +
          "(await cluster.waitConnected() first)",
      );
    }
    this.#conn.checkOpen();
    return this.#conn;
  }

  /**
   * Waits until the driver has a live session with its node: at once when it
   * has one; after its node restarted, until the driver reconnected. Rejects
   * with `UNAVAILABLE` naming the node and the last cause when it gave up.
   */
  async waitConnected(): Promise<void> {
    await this.#session();
  }

  /**
   * Runs an idempotent unary call on the live session; when it failed
   * because that session broke meanwhile, once more on the next one.
   */
  async #unaryIdempotent<T>(call: (client: NodeClient) => Promise<T>): Promise<T> {
    const conn = await this.#session();
    try {
      return await call(conn.client);
    } catch (e) {
      if (!(e instanceof ReefError) || e.code !== "UNAVAILABLE") throw e;
      // The call and the session share the channel: the session sees the break too.
      const grace = new Promise<void>((r) => setTimeout(r, SESSION_END_GRACE_MS).unref());
      await Promise.race([conn.ended, grace]);
      if (!conn.closed) throw e;
      return await call((await this.#session()).client);
    }
  }

  /** `OBJECT_LOST` when `r` was made by an earlier session of this cluster than `conn`. */
  #lostIn(r: ObjectRef, conn: Connection): ReefError | undefined {
    if (r.conn === conn) return undefined;
    const cause = r.conn.closedWith?.detail ?? "it ended";
    return errorFor(
      "OBJECT_LOST",
      `object ${r} is lost: it was made in an earlier session of this driver, which ended (${cause}); ` +
        "the node releases a session's objects when it ends, and this driver now runs in a new session",
    );
  }

  /**
   * Connects to a running node, e.g. `await Cluster.connect("127.0.0.1:6390")`.
   * The cluster token comes from `token`, `tokenFile`, `$REEF_TOKEN` or `$REEF_TOKEN_FILE`.
   */
  static async connect(address: string, options: ConnectOptions = {}): Promise<Cluster> {
    return Cluster.#connect(address, options);
  }

  /** Starts a private node (a child `host` process, see `LocalNode`) and connects to it. */
  static async local(options: LocalNodeOptions & ConnectOptions = {}): Promise<Cluster> {
    checkOptions(options, "options");
    const node = await LocalNode.start(options);
    try {
      const tokenFile = options.token === undefined ? (options.tokenFile ?? node.tokenFile) : undefined;
      return await Cluster.#connect(node.address, { ...options, tokenFile }, node);
    } catch (e) {
      await node.stop();
      throw e;
    }
  }

  static async #connect(address: string, options: ConnectOptions, node?: LocalNode): Promise<Cluster> {
    checkName(address, "address");
    checkOptions(options, "options");
    const timeoutMs =
      options.connectTimeoutMs === undefined ? 10_000 : checkCount(options.connectTimeoutMs, "connectTimeoutMs");
    const token = resolveToken(options);
    const metadata = () => {
      const m = new grpc.Metadata();
      if (token !== undefined) m.set("authorization", `Bearer ${token}`);
      // A driver started by `host job submit`: its sessions are the job's.
      const job = process.env.REEF_JOB_ID;
      if (job) m.set("reef-job-id", job);
      return m;
    };
    const tlsCa = await loadTlsCa(address, options);
    const reconnectTimeoutMs =
      options.reconnectTimeoutMs === undefined
        ? DEFAULT_RECONNECT_TIMEOUT_MS
        : checkCount(options.reconnectTimeoutMs, "reconnectTimeoutMs");
    const target: SessionTarget = {
      address,
      metadata,
      tlsCa,
      timeoutMs,
      unixSocket: options.unixSocket !== false,
      sharedMemory: options.sharedMemory ?? sameMachineDefault(),
    };
    const { conn, sameMachine } = await Cluster.#open(target, timeoutMs);
    return new Cluster(target, conn, reconnectTimeoutMs, node, token, sameMachine);
  }

  /** Opens a session: over TCP (or TLS), then on the node's machine moved to its Unix socket. */
  static async #open(target: SessionTarget, timeoutMs: number): Promise<{ conn: Connection; sameMachine: boolean }> {
    const { address, metadata, tlsCa } = target;
    const client = newClient(address, tlsCa);
    let conn: Connection;
    try {
      conn = await Connection.open(address, client, metadata, timeoutMs);
    } catch (e) {
      client.close();
      if (!tlsCa && e instanceof ReefError && e.code === "UNAVAILABLE") {
        // A plain client's bytes are not a TLS handshake: the node closes
        // the connection without a word.
        e.message += " (if the node serves TLS, connect with its CA: {tlsCa} or $REEF_TLS_CA)";
      }
      throw e;
    }
    // On the node's machine, move to its Unix socket: same protocol, a cheaper
    // transport than loopback TCP.
    const socket = conn.hello.socket_path;
    const sameMachine = target.sharedMemory && socket !== "" && existsSync(socket);
    if (target.unixSocket && sameMachine) {
      const unixClient = newClient(`unix:${socket}`);
      try {
        const unix = await Connection.open(`unix:${socket}`, unixClient, metadata, 2_000);
        await conn.close();
        conn = unix;
      } catch {
        unixClient.close();
      }
    }
    return { conn, sameMachine };
  }

  /** Whether the node is on this machine (the session then uses its Unix socket unless `unixSocket: false`). */
  get isSameMachine(): boolean {
    return this.#sameMachine;
  }

  /** Where the session runs: the TCP address, or `unix:<path>` after moving to the node's Unix socket. */
  get transport(): string {
    return this.conn.target;
  }

  /** The node's id, from its hello. */
  get nodeId(): string {
    return this.conn.hello.node_id;
  }

  /** Operations and batches sent on the session so far (diagnostics; lets tests prove nothing was sent). */
  get sent(): { ops: number; batches: number } {
    return { ops: this.conn.opsSent, batches: this.conn.batchesSent };
  }


  /** Registers a Wasm module (component or core module) from its bytes. */
  async register(wasm: Uint8Array, options: RegisterOptions = {}): Promise<Module> {
    if (!(wasm instanceof Uint8Array)) {
      throw new ArgumentError(`register: expected the module's bytes as a Uint8Array, got ${describe(wasm)}`);
    }
    const grants = checkGrants(options, "register");
    // Idempotent (the same bytes and grants are the same module): retried
    // once on a new session when the session broke.
    const reply = await this.#unaryIdempotent(
      (client) =>
        new Promise<RegisterModuleReply__Output>((resolve, reject) =>
          client.RegisterModule({ wasm, grants }, this.#metadata(), (e, r) =>
            e || !r ? reject(grpcError(e ?? new Error("empty reply"), "RegisterModule")) : resolve(r),
          ),
        ),
    );
    if (reply.result === "module" && reply.module) return new Module(reply.module);
    if (reply.result === "error" && reply.error) throw fromProto(reply.error);
    throw new NodeError("INTERNAL", "RegisterModule: empty reply");
  }

  /** Reads a `.wasm` file and registers it. */
  async registerFile(path: string, options: RegisterOptions = {}): Promise<Module> {
    checkName(path, "registerFile: path");
    checkGrants(options, "registerFile");
    let wasm: Uint8Array;
    try {
      wasm = await readFile(path);
    } catch (e) {
      throw new ArgumentError(`registerFile: cannot read ${path}: ${(e as Error).message}`);
    }
    return this.register(wasm, options);
  }

  /**
   * Stores an object. Binary data (`Uint8Array`, `Buffer`, `Float64Array`, any
   * typed array or `ArrayBuffer`) is stored as its raw bytes (a `Float64Array`
   * is what guests view as `&[f64]`); any other value is MessagePack-encoded.
   * Objects of 1 MiB and more are streamed over raw connections to the node's port.
   */
  async put(data: ArrayBufferView | ArrayBuffer | Value): Promise<ObjectRef> {
    const bytes = isRaw(data) ? rawBytes(data) : encodeValue(data, "put: value");
    const conn = await this.#session();
    const id = conn.newObjectId();
    const idField = String(id);
    if (bytes.length >= STREAM_THRESHOLD) {
      // The node allocates the declared size first; a failed push frees it.
      await conn.request("buffer", (req_id) => ({
        create_buffer: { req_id, id: idField, size: String(bytes.length), stream: true },
      }));
      try {
        await this.#streamer.push(id, bytes);
        await conn.request("ok", (req_id) => ({ seal: { req_id, id: idField } }));
      } catch (e) {
        if (!conn.closed) conn.send({ release: { ids: [idField] } });
        throw e;
      }
    } else {
      await conn.request("ok", (req_id) => ({ put: { req_id, id: idField, data: bytes } }));
    }
    return new ObjectRef(id, conn);
  }

  #checkRef(r: unknown, what: string): ObjectRef {
    if (!(r instanceof ObjectRef)) throw new ArgumentError(`${what} must be an ObjectRef, got ${describe(r)}`);
    if (!this.#sessions.has(r.conn)) throw new ArgumentError(`${what} belongs to another cluster connection`);
    if (r.released) throw new ArgumentError(`${what} (${r}) was released`);
    return r;
  }

  /** Waits for objects and returns each one's bytes or error. */
  async #fetch(
    refs: ObjectRef[],
    options: GetOptions,
    what: string,
    into?: Uint8Array,
  ): Promise<(Uint8Array | ReefError)[]> {
    const o = checkOptions(options, `${what}: options`);
    const timeout_ms = timeoutField(o.timeoutMs, `${what}: timeoutMs`);
    const conn = await this.#session();
    // Objects of an earlier session are gone: answered here, the node is not
    // asked (it would not know them).
    const lost = refs.map((r) => this.#lostIn(r, conn));
    const asked = refs.filter((_, i) => lost[i] === undefined);
    const ids = asked.map((r) => String(r.id));
    if (ids.length === 0) return lost as ReefError[];
    const reply = await conn.request(
      "get",
      (req_id) => ({
        get: {
          req_id,
          ids,
          timeout_ms,
          stream_threshold: String(STREAM_THRESHOLD),
        },
      }),
      asked,
    );
    const out: (Uint8Array | ReefError)[] = [];
    const unpin: string[] = [];
    try {
      const values = reply.values[Symbol.iterator]();
      for (const gone of lost) {
        if (gone) {
          out.push(gone);
          continue;
        }
        const v = values.next().value;
        if (!v) break;
        if (v.value === "inline" && v.inline) {
          const bytes = new Uint8Array(v.inline.buffer, v.inline.byteOffset, v.inline.byteLength);
          if (into === undefined) {
            out.push(bytes);
          } else {
            const target = intoFor(into, bytes.length, what);
            target.set(bytes);
            out.push(target);
          }
        } else if (v.value === "streamed" && v.streamed !== undefined) {
          unpin.push(v.id);
          const len = Number(v.streamed);
          out.push(await this.#streamer.pull(BigInt(v.id), len, into && intoFor(into, len, what)));
        } else if (v.value === "error" && v.error) {
          out.push(fromProto(v.error));
        } else {
          out.push(new NodeError("INTERNAL", `the node sent no value for object ${v.id}`));
        }
      }
    } finally {
      // The node pinned streamed objects until we have read them.
      if (unpin.length > 0 && !conn.closed) conn.send({ unpin: { ids: unpin } });
    }
    if (out.length !== refs.length) throw new NodeError("INTERNAL", "the node answered a get with the wrong count");
    return out;
  }

  /**
   * Waits for an object and returns its raw bytes. With `into`, they are
   * written into that buffer (at least the object's size) and its first
   * `size` bytes are returned (a view of `into`): a large buffer reused from
   * get to get is already in memory, where a fresh one of 1 GiB costs the
   * kernel ~260,000 page faults as the bytes arrive.
   */
  async getBytes(ref: ObjectRef, options: { timeoutMs?: number; into?: Uint8Array } = {}): Promise<Uint8Array> {
    const r = this.#checkRef(ref, "getBytes: ref");
    const into = checkOptions(options, "getBytes: options").into;
    if (into !== undefined && !(into instanceof Uint8Array)) {
      throw new ArgumentError(`getBytes: options.into must be a Uint8Array, got ${describe(into)}`);
    }
    const [v] = await this.#fetch([r], options, "getBytes", into);
    if (v instanceof ReefError) throw v;
    return v!;
  }

  /** Waits for an object of little-endian f64s (e.g. a put `Float64Array`) and returns them. */
  async getF64s(ref: ObjectRef, options: { timeoutMs?: number } = {}): Promise<Float64Array> {
    const bytes = await this.getBytes(ref, options);
    if (bytes.length % 8 !== 0) {
      throw new ReefError("BAD_ARGUMENT", `${ref} holds ${bytes.length} bytes: not a whole number of f64s`);
    }
    const aligned = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
    return new Float64Array(aligned.buffer, aligned.byteOffset, aligned.length / 8);
  }

  /** Waits for an object and decodes it from MessagePack. */
  async get<T = unknown>(ref: ObjectRef, options: GetOptions = {}): Promise<T> {
    const r = this.#checkRef(ref, "get: ref");
    const [v] = await this.#fetch([r], options, "get");
    if (v instanceof ReefError) throw v;
    return decodeValue<T>(v!, options);
  }

  /** Waits for several objects and decodes each one; the first error (in order) is thrown. */
  async getAll<T = unknown>(refs: readonly ObjectRef[], options: GetOptions = {}): Promise<T[]> {
    if (!Array.isArray(refs)) throw new ArgumentError(`getAll: refs must be an array of ObjectRef, got ${describe(refs)}`);
    const checked = refs.map((r, i) => this.#checkRef(r, `getAll: refs[${i}]`));
    const o = checkOptions(options, "getAll: options");
    if (o.onProgress !== undefined) {
      if (typeof o.onProgress !== "function") {
        throw new ArgumentError(`getAll: onProgress must be a function, got ${describe(o.onProgress)}`);
      }
      options = await this.#progress(checked, options, o.onProgress as (done: number, total: number) => void);
    }
    const values = await this.#fetch(checked, options, "getAll");
    return values.map((v) => {
      if (v instanceof ReefError) throw v;
      return decodeValue<T>(v, options);
    });
  }

  /**
   * Reports how many of `refs` are ready until all are (or `timeoutMs`
   * passes); answers the options for the fetch that follows, with the time left.
   */
  async #progress(
    refs: ObjectRef[],
    options: GetOptions,
    onProgress: (done: number, total: number) => void,
  ): Promise<GetOptions> {
    timeoutField(options.timeoutMs, "getAll: timeoutMs");
    const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
    const total = refs.length;
    let pending = refs;
    let reported = -1;
    for (;;) {
      const done = total - pending.length;
      if (done > reported) {
        onProgress(done, total);
        reported = done;
      }
      if (pending.length === 0) break;
      const left = deadline === undefined ? PROGRESS_INTERVAL_MS : deadline - Date.now();
      if (left <= 0) break;
      const { notReady } = await this.wait(pending, {
        numReturns: pending.length,
        timeoutMs: Math.max(1, Math.min(PROGRESS_INTERVAL_MS, left)),
      });
      pending = notReady;
    }
    return deadline === undefined ? options : { ...options, timeoutMs: Math.max(1, deadline - Date.now()) };
  }

  /**
   * Waits until `numReturns` (default 1) of `refs` are ready, or the timeout
   * passes. Never throws for a failed task: a failed result is "ready".
   */
  async wait(refs: readonly ObjectRef[], options: WaitOptions = {}): Promise<WaitResult> {
    if (!Array.isArray(refs)) throw new ArgumentError(`wait: refs must be an array of ObjectRef, got ${describe(refs)}`);
    const checked = refs.map((r, i) => this.#checkRef(r, `wait: refs[${i}]`));
    const o = checkOptions(options, "wait: options");
    const numReturns = o.numReturns === undefined ? Math.min(1, checked.length) : checkCount(o.numReturns, "wait: numReturns");
    if (numReturns > checked.length) {
      throw new ArgumentError(`wait: numReturns (${numReturns}) is more than the ${checked.length} refs given`);
    }
    const timeout_ms = timeoutField(o.timeoutMs, "wait: timeoutMs");
    const conn = await this.#session();
    // Objects of an earlier session are lost, so ready (a get fails at
    // once), like a failed task's result; the node is asked for the rest.
    const lost = checked.filter((r) => this.#lostIn(r, conn) !== undefined);
    const asked = checked.filter((r) => this.#lostIn(r, conn) === undefined);
    const ready = new Set(lost.map((r) => r.id));
    if (asked.length > 0 && ready.size < numReturns) {
      const ids = asked.map((r) => String(r.id));
      const num_returns = numReturns - ready.size;
      const reply = await conn.request(
        "wait",
        (req_id) => ({ wait: { req_id, ids, num_returns, timeout_ms } }),
        asked,
      );
      for (const id of reply.ready) ready.add(BigInt(id));
    }
    return {
      ready: checked.filter((r) => ready.has(r.id)),
      notReady: checked.filter((r) => !ready.has(r.id)),
    };
  }

  /** Cancels a pending or running task: its result becomes a `CancelledError`. Queued, not awaited. */
  cancel(ref: ObjectRef): void {
    const r = this.#checkRef(ref, "cancel: ref");
    const conn = this.#live();
    const lost = this.#lostIn(r, conn);
    if (lost) throw lost;
    conn.send({ cancel: { id: String(r.id) } });
  }

  /**
   * Lets tenant `tenant` use the object (get, wait, pass as an argument) by its id: objects are
   * their maker's tenant's only. Fails with `UNKNOWN_OBJECT` for an object this tenant may not use.
   */
  async share(ref: ObjectRef, tenant: string): Promise<void> {
    const r = this.#checkRef(ref, "share: ref");
    await (await this.#session()).request("ok", (req_id) => ({ share: { req_id, ids: [String(r.id)], tenant } }), r);
  }

  /** What a finished task (or actor call) printed and logged. */
  async logs(ref: ObjectRef): Promise<Logs> {
    const r = this.#checkRef(ref, "logs: ref");
    const l = await (await this.#session()).request("logs", (req_id) => ({ logs: { req_id, id: String(r.id) } }), r);
    return { stdout: l.stdout, stderr: l.stderr, log: [...l.log] };
  }

  /** Starts building a call of task `name` of `module` (a `Module` or its hash). */
  task(module: Module | string, name: string): TaskBuilder {
    return new TaskBuilder(this, moduleHash(module, "task"), checkName(name, "task: name"));
  }

  /** Starts building an actor of class `className` of `module`. */
  actor(module: Module | string, className: string): ActorBuilder {
    return new ActorBuilder(this, moduleHash(module, "actor"), checkName(className, "actor: class name"));
  }

  /** Finds a named actor (`NotFoundError` with code `UNKNOWN_ACTOR` when there is none). */
  async getActor(name: string): Promise<ActorHandle> {
    checkName(name, "getActor: name");
    const a = await (await this.#session()).request("actor", (req_id) => ({ lookup_actor: { req_id, name } }));
    return new ActorHandle(this, BigInt(a.actor_id), name);
  }

  /** The node's status: nodes, resources, tasks, actors, store usage, modules. */
  async status(): Promise<Status> {
    // Read-only: retried once on a new session when the session broke.
    const s = await this.#unaryIdempotent(
      (client) =>
        new Promise<StatusReply__Output>((resolve, reject) =>
          client.Status({}, this.#metadata(), (e, r) =>
            e || !r ? reject(grpcError(e ?? new Error("empty reply"), "Status")) : resolve(r),
          ),
        ),
    );
    const store = s.store;
    return {
      nodes: s.nodes.map((n) => ({
        nodeId: n.node_id,
        address: n.address,
        state: n.state,
        resources: n.resources.map((r) => ({ name: r.name, total: r.total, available: r.available })),
      })),
      tasks: s.tasks.map((t) => ({
        returnId: BigInt(t.return_id),
        module: t.module,
        function: t.function,
        state: t.state,
        attempt: Math.max(t.attempt, 1),
      })),
      actors: s.actors.map((a) => ({
        actorId: BigInt(a.actor_id),
        name: a.name,
        module: a.module,
        class: a.class,
        state: a.state,
      })),
      store: {
        arenaCapacity: Number(store?.arena_capacity ?? 0),
        arenaUsed: Number(store?.arena_used ?? 0),
        spilledBytes: Number(store?.spilled_bytes ?? 0),
        objects: Number(store?.objects ?? 0),
        inlineBytes: Number(store?.inline_bytes ?? 0),
      },
      modules: s.modules.map((m) => new Module(m)),
    };
  }

  /** The state API on the live session (waiting while reconnecting). */
  async #stateClient(): Promise<state.StateClient> {
    return { client: (await this.#session()).client, metadata: this.#metadata };
  }

  /** The state API on the live session now (`UNAVAILABLE` while reconnecting). */
  get #state(): state.StateClient {
    return { client: this.#live().client, metadata: this.#metadata };
  }

  /** The cluster's nodes. */
  async listNodes(options?: state.ListOptions): Promise<state.Listing<state.NodeInfo>> {
    const r = await state.list(await this.#stateClient(), "nodes", options);
    return state.listing(r, state.nodes(r));
  }

  /** Tasks of every node: waiting, running, and recently finished or failed (each node keeps its last 10,000). */
  async listTasks(options?: state.ListOptions): Promise<state.Listing<state.TaskInfo>> {
    const r = await state.list(await this.#stateClient(), "tasks", options);
    return state.listing(r, state.tasks(r));
  }

  async listActors(options?: state.ListOptions): Promise<state.Listing<state.ActorInfo>> {
    const r = await state.list(await this.#stateClient(), "actors", options);
    return state.listing(r, state.actors(r));
  }

  /** Object entries of every node (one per copy). */
  async listObjects(options?: state.ListOptions): Promise<state.Listing<state.ObjectInfo>> {
    const r = await state.list(await this.#stateClient(), "objects", options);
    return state.listing(r, state.objects(r));
  }

  /** Placement-group bundles reserved on the nodes. */
  async listGroups(options?: state.ListOptions): Promise<state.Listing<state.BundleInfo>> {
    const r = await state.list(await this.#stateClient(), "groups", options);
    return state.listing(r, state.groups(r));
  }

  async listJobs(options?: state.ListOptions): Promise<state.Listing<state.JobInfo>> {
    const r = await state.list(await this.#stateClient(), "jobs", options);
    return state.listing(r, state.jobs(r));
  }

  async listModules(options?: state.ListOptions): Promise<state.Listing<state.ModuleRow>> {
    const r = await state.list(await this.#stateClient(), "modules", options);
    return state.listing(r, state.modules(r));
  }

  /** Every attempt of a task (by its result's ref or id), wherever it ran (`NotFoundError` when no node knows it). */
  async getTask(task: ObjectRef | bigint): Promise<state.TaskInfo[]> {
    const id = task instanceof ObjectRef ? task.id : task;
    return state.tasks(await state.getState(await this.#stateClient(), "tasks", id));
  }

  /** An actor, wherever it lives (`NotFoundError` with `UNKNOWN_ACTOR` when none has it). */
  async getActorInfo(actor: ActorHandle | bigint): Promise<state.ActorInfo> {
    const id = actor instanceof ActorHandle ? actor.id : actor;
    return state.actors(await state.getState(await this.#stateClient(), "actors", id))[0];
  }

  /** Every node's entry of an object. */
  async getObject(object: ObjectRef | bigint): Promise<state.ObjectInfo[]> {
    const id = object instanceof ObjectRef ? object.id : object;
    return state.objects(await state.getState(await this.#stateClient(), "objects", id));
  }

  /** Counts by function (tasks), class (actors) or state (objects), each split by state. */
  async summary(kind: "tasks" | "actors" | "objects"): Promise<state.SummaryRow[]> {
    return state.summaryRows(await state.summary(await this.#stateClient(), kind));
  }

  /**
   * The lines of a task's, actor call's or actor's log, read from the node
   * that ran it; with `follow`, lines keep coming until the task or actor ends.
   */
  logLines(target: ObjectRef | ActorHandle | bigint, options: { follow?: boolean } = {}): AsyncGenerator<state.LogLine> {
    const id = target instanceof ObjectRef || target instanceof ActorHandle ? target.id : target;
    return state.readLogs(this.#state, id, options.follow ?? false);
  }

  /** Asks the node to stop (running tasks fail with `NODE_STOPPING`). */
  async stopNode(): Promise<void> {
    const conn = await this.#session();
    await new Promise<void>((resolve, reject) =>
      conn.client.Stop({}, this.#metadata(), (e) => (e ? reject(grpcError(e, "Stop")) : resolve())),
    );
  }

  /**
   * Ends the session (the node releases this driver's objects, fails its
   * unfinished tasks and kills its anonymous actors) and stops the local node
   * if `Cluster.local` started one.
   */
  async close(): Promise<void> {
    this.#closing = true;
    this.#streamer.close();
    await this.#reconnecting;
    await this.#conn.close();
    await this.node?.stop();
  }

  /** @internal Queues a call that has no reply; returns a ref to its result. */
  submitOp(make: (returnId: string) => Parameters<Connection["send"]>[0]): ObjectRef {
    const conn = this.#live();
    const id = conn.newObjectId();
    conn.send(make(String(id)));
    return new ObjectRef(id, conn);
  }

  /** @internal An argument for the wire. */
  toArg(v: unknown, where: string): ProtoArg {
    if (v instanceof ObjectRef) {
      const r = this.#checkRef(v, where);
      const lost = this.#reconnecting ? undefined : this.#lostIn(r, this.#conn);
      if (lost) throw lost;
      return { object: String(r.id) };
    }
    if (v instanceof Arg) return { inline: v.inline };
    if (isRaw(v)) return { inline: rawBytes(v) };
    return { inline: encodeValue(v, where) };
  }
}

function moduleHash(m: unknown, what: string): string {
  if (m instanceof Module) return m.hash;
  if (typeof m === "string" && m !== "") return m;
  throw new ArgumentError(`${what}: module must be a Module (from register) or a module hash, got ${describe(m)}`);
}

function optionsToProto(o: TaskOptions): ProtoCallOptions {
  const hasResources = o.numCpus !== undefined || (o.memory ?? 0) > 0 || Object.keys(o.resources ?? {}).length > 0;
  const exceptions = o.retryExceptions;
  return {
    ...(o.maxRetries === undefined ? {} : { max_retries: o.maxRetries }),
    ...(o.maxCalls === undefined ? {} : { max_calls: o.maxCalls }),
    retry_exceptions:
      exceptions === undefined || exceptions === false
        ? null
        : { all: exceptions === true, codes: exceptions === true ? [] : exceptions },
    resources: hasResources
      ? {
          num_cpus: o.numCpus,
          memory: String(o.memory ?? 0),
          custom: { ...(o.resources ?? {}) },
        }
      : null,
    memory_limit: String(o.memoryLimit ?? 0),
    cpu_time_ms: String(o.cpuTimeMs ?? 0),
  };
}

/** Validates and merges call options (a task's when `task`: with its retries). */
function mergeOptions(into: TaskOptions, o: unknown, what: string, task = false): void {
  const opts = checkOptions(o, what);
  for (const [k, v] of Object.entries(opts)) {
    if (task && k === "maxRetries") {
      into.maxRetries = checkCount(v, `${what}.maxRetries`);
      continue;
    }
    if (task && k === "maxCalls") {
      const n = checkCount(v, `${what}.maxCalls`);
      if (n > 0xffffffff) throw new ArgumentError(`${what}.maxCalls must fit in 32 bits, got ${n}`);
      into.maxCalls = n;
      continue;
    }
    if (task && k === "retryExceptions") {
      into.retryExceptions = checkRetryExceptions(v, `${what}.retryExceptions`);
      continue;
    }
    switch (k) {
      case "numCpus":
        into.numCpus = checkCount(v, `${what}.numCpus`, { integer: false });
        break;
      case "memory":
      case "memoryLimit":
      case "cpuTimeMs":
        into[k] = checkCount(v, `${what}.${k}`);
        break;
      case "resources": {
        const r = checkOptions(v, `${what}.resources`);
        into.resources = { ...(into.resources ?? {}) };
        for (const [name, amount] of Object.entries(r)) {
          into.resources[name] = checkCount(amount, `${what}.resources.${name}`, { integer: false });
        }
        break;
      }
      default:
        throw new ArgumentError(`${what}: unknown option ${JSON.stringify(k)}`);
    }
  }
}

/** A count of restarts or retries: an integer >= -1 (-1: without limit). */
function checkRestarts(v: unknown, what: string): number {
  if (typeof v === "number" && Number.isInteger(v) && v >= -1 && v <= 2 ** 31 - 1) return v;
  throw new ArgumentError(`${what} must be an integer >= -1 (-1: without limit), got ${describe(v)}`);
}

function checkRetryExceptions(v: unknown, what: string): boolean | NodeErrorCode[] {
  if (typeof v === "boolean") return v;
  const codes: readonly string[] = ERROR_CODES;
  if (Array.isArray(v) && v.every((c) => typeof c === "string" && codes.includes(c))) return [...v] as NodeErrorCode[];
  throw new ArgumentError(`${what} must be true, false or a list of error codes (ERROR_CODES), got ${describe(v)}`);
}

/** Builds a task call: `cluster.task(m, "add").arg(1).arg(2).submit()`. */
export class TaskBuilder {
  readonly #args: ProtoArg[] = [];
  readonly #options: TaskOptions = {};
  /** Refs used as arguments stay alive until the call is queued. */
  readonly #refs: ObjectRef[] = [];
  #submitted = false;

  /** @internal */
  constructor(
    private readonly cluster: Cluster,
    readonly module: string,
    readonly name: string,
  ) {}

  /** Adds an argument (an `ObjectRef`, raw bytes, an `Arg`, or a value to MessagePack-encode). */
  arg(v: ArgValue): this {
    const i = this.#args.length;
    this.#args.push(this.cluster.toArg(v, `task ${this.name}: argument ${i}`));
    if (v instanceof ObjectRef) this.#refs.push(v);
    return this;
  }

  /** Adds several arguments. */
  args(...vs: ArgValue[]): this {
    for (const v of vs) this.arg(v);
    return this;
  }

  /** Sets resources, limits and retries (merged with earlier settings). */
  options(o: TaskOptions): this {
    mergeOptions(this.#options, o, `task ${this.name}: options`, true);
    return this;
  }

  /** Retries after a failed attempt whose failure allows one (default 3; 0: never). */
  maxRetries(n: number): this {
    return this.options({ maxRetries: n });
  }

  /** Calls one wasm instance may serve (default 1: a fresh instance per task; 0: no limit). */
  maxCalls(n: number): this {
    return this.options({ maxCalls: n });
  }

  /** Guest failures retried too: `true` (every one) or a list of error codes. */
  retryExceptions(codes: boolean | NodeErrorCode[]): this {
    return this.options({ retryExceptions: codes });
  }

  numCpus(n: number): this {
    return this.options({ numCpus: n });
  }
  memoryLimit(bytes: number): this {
    return this.options({ memoryLimit: bytes });
  }
  cpuTimeMs(ms: number): this {
    return this.options({ cpuTimeMs: ms });
  }
  resource(name: string, amount: number): this {
    checkName(name, `task ${this.name}: resource name`);
    return this.options({ resources: { [name]: amount } });
  }

  /** Queues the task; returns at once with a reference to its (future) result. */
  submit(): ObjectRef {
    if (this.#submitted) throw new ArgumentError(`task ${this.name}: this builder was already submitted`);
    this.#submitted = true;
    const { module, name } = this;
    const args = this.#args;
    const options = optionsToProto(this.#options);
    const ref = this.cluster.submitOp((return_id) => ({
      submit: { return_id, module, function: name, args, options },
    }));
    // The argument refs were alive until the submission was queued (a release
    // of theirs can only be queued after it).
    this.#refs.length = 0;
    return ref;
  }
}

/** Builds an actor: `await cluster.actor(m, "Accumulator").arg(0).name("acc").create()`. */
export class ActorBuilder {
  readonly #args: ProtoArg[] = [];
  readonly #refs: ObjectRef[] = [];
  readonly #options: CallOptions = {};
  readonly #lifecycle = { max_restarts: 0, max_task_retries: 0, detached: false };
  #name = "";

  /** @internal */
  constructor(
    private readonly cluster: Cluster,
    readonly module: string,
    readonly className: string,
  ) {}

  /** Adds a constructor argument. */
  arg(v: ArgValue): this {
    const i = this.#args.length;
    this.#args.push(this.cluster.toArg(v, `actor ${this.className}: argument ${i}`));
    if (v instanceof ObjectRef) this.#refs.push(v);
    return this;
  }

  args(...vs: ArgValue[]): this {
    for (const v of vs) this.arg(v);
    return this;
  }

  /**
   * Names the actor: `cluster.getActor(name)` finds it. A name does not keep
   * it alive after this driver's session: see `lifetime`.
   */
  name(name: string): this {
    this.#name = checkName(name, `actor ${this.className}: name`);
    return this;
  }

  /** Sets resources, limits, restarts and lifetime (merged with earlier settings). */
  options(o: ActorOptions): this {
    const what = `actor ${this.className}: options`;
    const { maxRestarts, maxTaskRetries, lifetime, ...call } = checkOptions(o, what) as ActorOptions;
    if (maxRestarts !== undefined) this.#lifecycle.max_restarts = checkRestarts(maxRestarts, `${what}.maxRestarts`);
    if (maxTaskRetries !== undefined) {
      this.#lifecycle.max_task_retries = checkRestarts(maxTaskRetries, `${what}.maxTaskRetries`);
    }
    if (lifetime !== undefined) {
      if (lifetime !== "owned" && lifetime !== "detached") {
        throw new ArgumentError(`${what}.lifetime must be "owned" or "detached", got ${describe(lifetime)}`);
      }
      this.#lifecycle.detached = lifetime === "detached";
    }
    mergeOptions(this.#options, call, what);
    return this;
  }

  numCpus(n: number): this {
    return this.options({ numCpus: n });
  }
  memoryLimit(bytes: number): this {
    return this.options({ memoryLimit: bytes });
  }
  /** Restarts after its node died or its instance trapped (default 0; -1: without limit). */
  maxRestarts(n: number): this {
    return this.options({ maxRestarts: n });
  }
  /** Retries of a call running when the actor failed (default 0; -1: without limit). */
  maxTaskRetries(n: number): this {
    return this.options({ maxTaskRetries: n });
  }
  /** `"detached"`: outlives this driver; `"owned"` (default): ends with it. */
  lifetime(l: "owned" | "detached"): this {
    return this.options({ lifetime: l });
  }

  /** Creates the actor (its constructor has run when this resolves). */
  async create(): Promise<ActorHandle> {
    const { module, className } = this;
    const name = this.#name;
    const args = this.#args;
    const options = optionsToProto(this.#options);
    await this.cluster.waitConnected();
    const reply = await this.cluster.conn.request(
      "actor",
      (req_id) => ({
        create_actor: { req_id, module, class: className, args, name, options, lifecycle: { ...this.#lifecycle } },
      }),
      this.#refs,
    );
    return new ActorHandle(this.cluster, BigInt(reply.actor_id), name || undefined);
  }
}

/** A live actor. */
export class ActorHandle {
  /** @internal */
  constructor(
    private readonly cluster: Cluster,
    readonly id: bigint,
    /** The actor's name, if it has one. */
    readonly name?: string,
  ) {}

  /** Starts building a call of `method`: `acc.method("add").arg(10).submit()`. */
  method(method: string): ActorCall {
    return new ActorCall(this.cluster, this.id, checkName(method, "actor call: method"));
  }

  /** Queues a call of `method` with `args`; returns a ref to its result: `acc.call("add", 10)`. */
  call(method: string, ...args: ArgValue[]): ObjectRef {
    return this.method(method)
      .args(...args)
      .submit();
  }

  /** Kills the actor; later calls fail with `ACTOR_DEAD` or `UNKNOWN_ACTOR`. */
  async kill(): Promise<void> {
    const actor_id = String(this.id);
    await this.cluster.waitConnected();
    await this.cluster.conn.request("ok", (req_id) => ({ kill_actor: { req_id, actor_id } }));
  }

  toString(): string {
    return `ActorHandle(0x${this.id.toString(16)}${this.name ? ` "${this.name}"` : ""})`;
  }
}

/** Builds an actor method call. */
export class ActorCall {
  readonly #args: ProtoArg[] = [];
  readonly #refs: ObjectRef[] = [];
  #submitted = false;

  /** @internal */
  constructor(
    private readonly cluster: Cluster,
    readonly actorId: bigint,
    readonly method: string,
  ) {}

  arg(v: ArgValue): this {
    const i = this.#args.length;
    this.#args.push(this.cluster.toArg(v, `actor call ${this.method}: argument ${i}`));
    if (v instanceof ObjectRef) this.#refs.push(v);
    return this;
  }

  args(...vs: ArgValue[]): this {
    for (const v of vs) this.arg(v);
    return this;
  }

  /** Queues the call (calls run in submission order); returns a ref to its result. */
  submit(): ObjectRef {
    if (this.#submitted) throw new ArgumentError(`actor call ${this.method}: already submitted`);
    this.#submitted = true;
    const actor_id = String(this.actorId);
    const { method } = this;
    const args = this.#args;
    const ref = this.cluster.submitOp((return_id) => ({ call_actor: { actor_id, return_id, method, args } }));
    this.#refs.length = 0;
    return ref;
  }
}

/** The grants of register options, checked before anything is sent. */
function checkGrants(options: RegisterOptions, what: string): Grant[] {
  if (options === null || typeof options !== "object") {
    throw new ArgumentError(`${what}: expected options as an object, got ${describe(options)}`);
  }
  const grants = options.grants ?? [];
  if (!Array.isArray(grants)) {
    throw new ArgumentError(`${what}: grants must be an array, got ${describe(grants)}`);
  }
  for (const g of grants) {
    if (!(GRANTS as readonly unknown[]).includes(g)) {
      throw new ArgumentError(`${what}: unknown grant ${describe(g)} (grants are: ${GRANTS.join(", ")})`);
    }
  }
  return [...grants];
}
