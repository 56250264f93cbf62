// The state API and logs as typed calls: what runs where in the whole
// cluster (`host list|get|summary`), and the logs of any task or actor.

import * as grpc from "@grpc/grpc-js";

import { grpcError } from "./connection.js";
import type { ListReply__Output } from "./gen/reef/v1/ListReply.js";
import type { LogChunk__Output } from "./gen/reef/v1/LogChunk.js";
import type { NodeClient } from "./gen/reef/v1/Node.js";
import type { StateKind as ProtoStateKind } from "./gen/reef/v1/StateKind.js";
import type { SummaryReply__Output } from "./gen/reef/v1/SummaryReply.js";

/** Filters (`{ state: "failed" }`: rows whose field equals the value; ids as `0x...` or decimal) and a limit (default 100). */
export interface ListOptions {
  filters?: Record<string, string>;
  limit?: number;
}

/** Rows of a listing, how many matched before the limit, and the nodes that did not answer in time. */
export interface Listing<T> {
  rows: T[];
  total: number;
  missingNodes: string[];
}

export interface TaskInfo {
  taskId: bigint;
  module: string;
  function: string;
  /** waiting-for-args, waiting-for-resources, running, finishing, finished, failed, forwarded */
  state: string;
  nodeId: string;
  attempt: number;
  errorCode: string;
  errorMessage: string;
  startedAtMs: number;
  endedAtMs: number;
}

export interface ActorInfo {
  actorId: bigint;
  name: string;
  module: string;
  class: string;
  state: string;
  nodeId: string;
}

export interface ObjectInfo {
  objectId: bigint;
  size: number;
  /** pending, ready, failed, spilled, remote */
  state: string;
  refs: number;
  nodeId: string;
  ownerIndex: number;
}

export interface NodeInfo {
  nodeId: string;
  address: string;
  state: string;
  head: boolean;
  runningTasks: number;
  pendingTasks: number;
}

export interface BundleInfo {
  placementGroupId: bigint;
  bundleIndex: number;
  nodeId: string;
  resources: Record<string, number>;
}

export interface JobInfo {
  jobId: bigint;
  driverAddress: string;
  nodeId: string;
  state: string;
  startedAtMs: number;
  endedAtMs: number;
}

export interface ModuleRow {
  hash: string;
  sdk: string;
  tasks: string[];
  nodeIds: string[];
}

export interface SummaryRow {
  /** tasks: module and function; actors: module and class; objects: state */
  key: string;
  total: number;
  byState: Record<string, number>;
  bytes: number;
}

export interface LogLine {
  /** stdout, stderr, log or note */
  stream: string;
  text: string;
}

export type StateKind = "nodes" | "tasks" | "actors" | "objects" | "groups" | "jobs" | "modules";

const KINDS: Record<StateKind, ProtoStateKind> = {
  nodes: "STATE_KIND_NODES",
  tasks: "STATE_KIND_TASKS",
  actors: "STATE_KIND_ACTORS",
  objects: "STATE_KIND_OBJECTS",
  groups: "STATE_KIND_GROUPS",
  jobs: "STATE_KIND_JOBS",
  modules: "STATE_KIND_MODULES",
};

/** How a Cluster reaches its node's unary RPCs. */
export interface StateClient {
  client: NodeClient;
  metadata: () => grpc.Metadata;
}

function unary<R>(what: string, call: (done: (e: grpc.ServiceError | null, r?: R) => void) => void): Promise<R> {
  return new Promise<R>((resolve, reject) =>
    call((e, r) => (e || !r ? reject(grpcError(e ?? new Error("empty reply"), what)) : resolve(r))),
  );
}

export async function list(c: StateClient, kind: StateKind, options: ListOptions = {}): Promise<ListReply__Output> {
  const filters = Object.entries(options.filters ?? {}).map(([key, value]) => ({ key, value: String(value) }));
  return unary<ListReply__Output>("List", (done) =>
    c.client.List({ kind: KINDS[kind], filters, limit: options.limit ?? 0 }, c.metadata(), done),
  );
}

export async function getState(c: StateClient, kind: StateKind, id: bigint): Promise<ListReply__Output> {
  return unary<ListReply__Output>("GetState", (done) =>
    c.client.GetState({ kind: KINDS[kind], id: String(id) }, c.metadata(), done),
  );
}

export async function summary(c: StateClient, kind: "tasks" | "actors" | "objects"): Promise<SummaryReply__Output> {
  return unary<SummaryReply__Output>("Summary", (done) => c.client.Summary({ kind: KINDS[kind] }, c.metadata(), done));
}

/** The lines of a log, chunk by chunk (`follow`: until the task or actor ends). */
export async function* readLogs(c: StateClient, id: bigint, follow: boolean): AsyncGenerator<LogLine> {
  const call = c.client.ReadLogs({ id: String(id), follow }, c.metadata());
  try {
    for await (const chunk of call as AsyncIterable<LogChunk__Output>) {
      for (const l of chunk.lines) yield { stream: l.stream, text: l.text };
      if (chunk.eof) return;
    }
  } catch (e) {
    throw grpcError(e as grpc.ServiceError, "ReadLogs");
  } finally {
    call.cancel();
  }
}

export function listing<T>(reply: ListReply__Output, rows: T[]): Listing<T> {
  return { rows, total: Number(reply.total), missingNodes: [...reply.missing_nodes] };
}

export function tasks(r: ListReply__Output): TaskInfo[] {
  return r.tasks.map((t) => ({
    taskId: BigInt(t.task_id),
    module: t.module,
    function: t.function,
    state: t.state,
    nodeId: t.node_id,
    attempt: Math.max(t.attempt, 1),
    errorCode: t.error_code,
    errorMessage: t.error_message,
    startedAtMs: Number(t.started_at_ms),
    endedAtMs: Number(t.ended_at_ms),
  }));
}

export function actors(r: ListReply__Output): ActorInfo[] {
  return r.actors.map((a) => ({
    actorId: BigInt(a.actor_id),
    name: a.name,
    module: a.module,
    class: a.class,
    state: a.state,
    nodeId: a.node_id,
  }));
}

export function objects(r: ListReply__Output): ObjectInfo[] {
  return r.objects.map((o) => ({
    objectId: BigInt(o.object_id),
    size: Number(o.size),
    state: o.state,
    refs: o.refs,
    nodeId: o.node_id,
    ownerIndex: o.owner_index,
  }));
}

export function nodes(r: ListReply__Output): NodeInfo[] {
  return r.nodes.map((n) => ({
    nodeId: n.node_id,
    address: n.address,
    state: n.state,
    head: n.head,
    runningTasks: Number(n.running_tasks),
    pendingTasks: Number(n.pending_tasks),
  }));
}

export function groups(r: ListReply__Output): BundleInfo[] {
  return r.groups.map((g) => ({
    placementGroupId: BigInt(g.placement_group_id),
    bundleIndex: g.bundle_index,
    nodeId: g.node_id,
    resources: Object.fromEntries(g.resources.map((u) => [u.name, u.total])),
  }));
}

export function jobs(r: ListReply__Output): JobInfo[] {
  return r.jobs.map((j) => ({
    jobId: BigInt(j.job_id),
    driverAddress: j.driver_address,
    nodeId: j.node_id,
    state: j.state,
    startedAtMs: Number(j.started_at_ms),
    endedAtMs: Number(j.ended_at_ms),
  }));
}

export function modules(r: ListReply__Output): ModuleRow[] {
  return r.modules.map((m) => ({
    hash: m.module?.hash ?? "",
    sdk: m.module?.sdk ?? "",
    tasks: [...(m.module?.tasks ?? [])],
    nodeIds: [...m.node_ids],
  }));
}

export function summaryRows(r: SummaryReply__Output): SummaryRow[] {
  return r.rows.map((row) => ({
    key: row.key,
    total: Number(row.total),
    byState: Object.fromEntries(Object.entries(row.by_state).map(([k, v]) => [k, Number(v)])),
    bytes: Number(row.bytes),
  }));
}
