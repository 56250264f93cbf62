// The driver's end of the node's `Session` stream: operations queued in one
// turn of the event loop go out as one `ClientBatch`; replies are routed to
// their waiting requests by `req_id`.

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

import { ConnectionError, fromProto, NodeError, ReefError } from "./errors.js";
import type { Error__Output as ProtoError } from "./gen/reef/v1/Error.js";
import { COUNTER_BITS } from "./gen/constants.js";
import type { ProtoGrpcType } from "./gen/reef.js";
import type { ClientBatch } from "./gen/reef/v1/ClientBatch.js";
import type { ClientOp } from "./gen/reef/v1/ClientOp.js";
import type { Hello__Output } from "./gen/reef/v1/Hello.js";
import type { NodeClient } from "./gen/reef/v1/Node.js";
import type { ServerBatch__Output } from "./gen/reef/v1/ServerBatch.js";
import type { ServerReply__Output } from "./gen/reef/v1/ServerReply.js";

/** Operations packed into one message at most. */
const MAX_BATCH = 4096;

/** Where the .proto is: copied beside the package by `npm run build`. */
function protoPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, "..", "proto", "reef.proto"), join(here, "..", "..", "..", "proto", "reef.proto")]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new NodeError("INTERNAL", `reef.proto not found beside ${here} (run npm run build)`);
}

let nodeConstructor: ProtoGrpcType["reef"]["v1"]["Node"] | undefined;

function nodeClientClass(): ProtoGrpcType["reef"]["v1"]["Node"] {
  if (!nodeConstructor) {
    const definition = protoLoader.loadSync(protoPath(), {
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
    nodeConstructor = loaded.reef.v1.Node;
  }
  return nodeConstructor;
}

/**
 * A gRPC client of the node at `target` (`host:port`, `http://host:port`,
 * `https://host:port` or `unix:/path`); with `tlsCa` (PEM bytes) over TLS,
 * verifying the node's certificate against that CA.
 */
export function newClient(target: string, tlsCa?: Buffer): NodeClient {
  const Node = nodeClientClass();
  const address = target.replace(/^https?:\/\//, "");
  const credentials = tlsCa ? grpc.credentials.createSsl(tlsCa) : grpc.credentials.createInsecure();
  return new Node(address, credentials, {
    "grpc.max_receive_message_length": -1,
    "grpc.max_send_message_length": -1,
    // HTTP/2 windows: the default 64 KiB stalls large objects on round trips.
    "grpc-node.flow_control_window": 64 << 20,
    // The node is one hop away; no need to probe.
    "grpc.enable_retries": 0,
  });
}

let errorType: protobuf.Type | undefined;

/**
 * The Reef error a failed call's status carries: the node and the control
 * plane put the encoded `reef.v1.Error` in the status details
 * (`grpc-status-details-bin`). Undefined when there is none.
 */
export function statusError(metadata: grpc.Metadata | undefined): ProtoError | undefined {
  const details = metadata?.get("grpc-status-details-bin")[0];
  if (!(details instanceof Buffer) || details.length === 0) return undefined;
  errorType ??= protobuf.loadSync(protoPath()).lookupType("reef.v1.Error");
  try {
    return errorType.toObject(errorType.decode(details), { enums: String, defaults: true }) as ProtoError;
  } catch {
    return undefined; // details of another kind: fall back to the gRPC code
  }
}

/**
 * The typed error of a failed call to a Reef gRPC service (a unary call or a
 * stream): the Reef error the status carries, else one from the gRPC code.
 */
export function grpcError(e: grpc.ServiceError | Error, what: string): ReefError {
  const carried = statusError((e as grpc.ServiceError).metadata);
  if (carried) return fromProto(carried);
  const code = (e as grpc.ServiceError).code;
  const details = (e as grpc.ServiceError).details ?? e.message;
  if (code === grpc.status.UNAUTHENTICATED || code === grpc.status.PERMISSION_DENIED) {
    return new ConnectionError(
      "UNAUTHENTICATED",
      `${what}: the node refused the cluster token (${details}); pass {token} or {tokenFile}, or set REEF_TOKEN / REEF_TOKEN_FILE`,
    );
  }
  if (code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED) {
    return new ConnectionError("UNAVAILABLE", `${what}: the node is unreachable (${details})`);
  }
  return new ConnectionError("INTERNAL", `${what} failed: ${details}`);
}

type Body = NonNullable<ServerReply__Output["body"]>;

/** A reply's body, narrowed by its `body` discriminator. */
export type ReplyOf<K extends Body> = NonNullable<ServerReply__Output[K]>;

interface Pending {
  resolve: (reply: ServerReply__Output) => void;
  reject: (e: ReefError) => void;
  /** Objects that must stay alive (not released) until the reply comes. */
  keep?: unknown;
}

export class Connection {
  readonly hello: Hello__Output;
  readonly idPrefix: bigint;
  readonly inlineThreshold: number;
  /** Operations handed to the stream (for tests and diagnostics). */
  opsSent = 0;
  /** ClientBatch messages written. */
  batchesSent = 0;

  private queue: ClientOp[] = [];
  private flushScheduled = false;
  private pending = new Map<number, Pending>();
  private nextReq = 1;
  private nextObject = 1n;
  private closedError: ReefError | undefined;
  private closedByDriver = false;
  private resolveEnded!: (e: ReefError) => void;
  /** Resolves with why the session ended, once it has. */
  readonly ended: Promise<ReefError> = new Promise((resolve) => (this.resolveEnded = resolve));
  /**
   * Called once when the session ends for a reason other than `close()`:
   * the cluster reconnects from there.
   */
  onLost: ((e: ReefError) => void) | undefined;
  /** The node's address as the driver was given it (named in errors; default `target`). */
  node: string | undefined;

  private constructor(
    /** Where the session runs: `host:port` or `unix:/path`. */
    readonly target: string,
    readonly client: NodeClient,
    readonly metadata: () => grpc.Metadata,
    private readonly call: grpc.ClientDuplexStream<ClientBatch, ServerBatch__Output>,
    hello: Hello__Output,
  ) {
    this.hello = hello;
    this.idPrefix = BigInt(hello.id_prefix);
    this.inlineThreshold = Number(hello.inline_threshold);
    call.on("data", (batch: ServerBatch__Output) => this.onBatch(batch));
    call.on("error", (e: grpc.ServiceError) => this.fail(this.lostWith(grpcError(e, "the session"))));
    call.on("end", () => this.fail(this.lostWith(new ConnectionError("UNAVAILABLE", "the node closed it"))));
  }

  /** Opens a session and waits for the node's Hello. */
  static async open(
    target: string,
    client: NodeClient,
    metadata: () => grpc.Metadata,
    timeoutMs = 10_000,
  ): Promise<Connection> {
    const deadline = new Date(Date.now() + timeoutMs);
    await new Promise<void>((resolve, reject) =>
      client.waitForReady(deadline, (e) =>
        e ? reject(new ConnectionError("UNAVAILABLE", `cannot connect to the node: ${e.message}`)) : resolve(),
      ),
    );
    const call = client.Session(metadata());
    const hello = await new Promise<Hello__Output>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        call.cancel();
        reject(new ConnectionError("UNAVAILABLE", `the node did not say hello within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        call.off("data", onData);
        call.off("error", onError);
        call.off("end", onEnd);
      };
      const onData = (batch: ServerBatch__Output) => {
        cleanup();
        const first = batch.replies[0];
        if (first?.body === "hello" && first.hello) {
          // Replies after the hello in the same batch cannot exist (nothing was sent yet).
          resolve(first.hello);
        } else {
          call.cancel();
          reject(new NodeError("INTERNAL", "the node did not say hello"));
        }
      };
      const onError = (e: grpc.ServiceError) => {
        cleanup();
        reject(grpcError(e, "opening a session"));
      };
      const onEnd = () => {
        cleanup();
        reject(new ConnectionError("UNAVAILABLE", "the node closed the session before saying hello"));
      };
      call.on("data", onData);
      call.on("error", onError);
      call.on("end", onEnd);
    });
    return new Connection(target, client, metadata, call, hello);
  }

  /** The error the session's calls fail with once it ended for `e`. */
  private lostWith(e: ReefError): ReefError {
    const node = this.node === undefined || this.node === this.target ? this.target : `${this.node} (${this.target})`;
    return sessionLost(node, e);
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Why the session ended, once it has. */
  get closedWith(): ReefError | undefined {
    return this.closedError;
  }

  /** Throws when the session is gone. */
  checkOpen(): void {
    if (this.closedError) throw this.closedError;
  }

  /** A fresh object id in this session's range: `prefix << COUNTER_BITS | counter`. */
  newObjectId(): bigint {
    return (this.idPrefix << COUNTER_BITS) | this.nextObject++;
  }

  /** Queues an operation that has no reply. */
  send(op: ClientOp): void {
    this.checkOpen();
    this.queue.push(op);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Queues an operation built around a fresh request id and waits for its reply. */
  request<K extends Body>(expect: K, make: (reqId: string) => ClientOp, keep?: unknown): Promise<ReplyOf<K>> {
    this.checkOpen();
    const reqId = this.nextReq++;
    return new Promise<ReplyOf<K>>((resolve, reject) => {
      this.pending.set(reqId, {
        resolve: (reply) => {
          if (reply.body === "error" && reply.error) {
            reject(fromProto(reply.error));
          } else if (reply.body === expect && reply[expect]) {
            resolve(reply[expect] as ReplyOf<K>);
          } else {
            reject(new NodeError("INTERNAL", `unexpected reply from the node: ${reply.body ?? "empty"}, wanted ${expect}`));
          }
        },
        reject,
        keep,
      });
      this.send(make(String(reqId)));
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closedError) {
      this.queue = [];
      return;
    }
    while (this.queue.length > 0) {
      const ops = this.queue.splice(0, MAX_BATCH);
      this.opsSent += ops.length;
      this.batchesSent += 1;
      this.call.write({ ops });
    }
  }

  private onBatch(batch: ServerBatch__Output): void {
    for (const reply of batch.replies) {
      const id = Number(reply.req_id);
      const p = this.pending.get(id);
      if (p) {
        this.pending.delete(id);
        p.resolve(reply);
      }
    }
  }

  private fail(e: ReefError): void {
    if (this.closedError) return;
    this.closedError = e;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(e);
    this.resolveEnded(e);
    if (!this.closedByDriver) this.onLost?.(e);
  }

  /** Ends the session (the node then releases this driver's objects and anonymous actors). */
  async close(): Promise<void> {
    if (!this.closedError) {
      this.flush();
      this.closedByDriver = true;
      this.fail(new ConnectionError("UNAVAILABLE", "the cluster connection was closed"));
      const call = this.call;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          call.cancel();
          resolve();
        }, 2000);
        timer.unref();
        call.on("status", () => {
          clearTimeout(timer);
          resolve();
        });
        call.end();
      });
    }
    this.client.close();
  }
}

/** A refused credential: reconnecting with it would be refused again. */
export function isRefusal(e: unknown): boolean {
  const code = (e as ReefError | undefined)?.code;
  return code === "UNAUTHENTICATED" || code === "PERMISSION_DENIED";
}

/**
 * Why a session's calls fail once it ended: a refused credential as the node
 * said it; else `UNAVAILABLE` naming the node (calls in flight then are not
 * retried: a submission or a put may or may not have been applied).
 */
function sessionLost(target: string, e: ReefError): ReefError {
  if (isRefusal(e)) return e;
  return new ConnectionError(
    "UNAVAILABLE",
    `the session with node ${target} ended (${e.detail}); calls in flight on it failed and were not retried`,
  );
}
