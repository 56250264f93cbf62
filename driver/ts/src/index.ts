// The TypeScript driver for Reef.
//
//   const cluster = await Cluster.connect("127.0.0.1:6390");
//   const m = await cluster.registerFile("target/guests/demo.wasm");
//   const sum = cluster.task(m, "add").arg(1).arg(2).submit();
//   console.log(await cluster.get<number>(sum)); // 3
//   await cluster.close();

export {
  Arg,
  ActorBuilder,
  ActorCall,
  ActorHandle,
  Cluster,
  DEFAULT_RECONNECT_TIMEOUT_MS,
  GRANTS,
  Module,
  TaskBuilder,
  type ArgValue,
  type Grant,
  type RegisterOptions,
  type ActorOptions,
  type CallOptions,
  type TaskOptions,
  type NodeErrorCode,
  type ConnectOptions,
  type GetOptions,
  type Logs,
  type Status,
  type WaitOptions,
  type WaitResult,
} from "./cluster.js";
export {
  ActorDeadError,
  ActorRestartingError,
  ArgumentError,
  BadArgumentError,
  CancelledError,
  ConnectionError,
  DependencyError,
  ERROR_CODES,
  InvalidModuleError,
  NameTakenError,
  NodeError,
  NotFoundError,
  NotGrantedError,
  QuotaExceededError,
  ReefError,
  ResourceError,
  TaskError,
  TimeoutError,
  type ErrorCode,
} from "./errors.js";
export { grpcError } from "./connection.js";
export type {
  ActorInfo,
  BundleInfo,
  JobInfo,
  Listing,
  ListOptions,
  LogLine,
  ModuleRow,
  NodeInfo,
  ObjectInfo,
  StateKind,
  SummaryRow,
  TaskInfo,
} from "./state.js";
export { COUNTER_BITS, SLOT_BITS } from "./gen/constants.js";
export { LocalNode, freePort, type LocalNodeOptions } from "./local.js";
export { ObjectRef } from "./object.js";
export { resolveToken, type TokenOptions } from "./token.js";
export { decodeValue, encodeValue, type DecodeOptions, type Value } from "./values.js";
