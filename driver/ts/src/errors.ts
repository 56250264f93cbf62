// Errors the driver throws. Every error is a `ReefError` carrying `.code`: the
// node's `ErrorCode` name (proto/reef.proto), so callers can switch on it; the
// subclasses group the codes by what a caller usually does about them.

import type { Error__Output as ProtoError } from "./gen/reef/v1/Error.js";

import { ERROR_CODES } from "./gen/constants.js";

/** The node's error codes (`ErrorCode` in proto/reef.proto), generated from it. */
export { ERROR_CODES };

/**
 * A node error code, or `UNAVAILABLE` / `UNAUTHENTICATED` for transport
 * failures (the node cannot be reached, or refused the cluster token).
 */
export type ErrorCode = (typeof ERROR_CODES)[number] | "UNAVAILABLE" | "UNAUTHENTICATED";

/** Base class of every error the driver throws or rejects with. */
export class ReefError extends Error {
  /** The node's error code name, e.g. `"UNKNOWN_FUNCTION"`. */
  readonly code: ErrorCode;
  /** The guest's backtrace (wasm frames or the guest language's traceback), if any. */
  readonly backtrace: string;

  constructor(code: ErrorCode, message: string, backtrace = "") {
    super(backtrace ? `${code}: ${message}\nguest backtrace:\n${backtrace}` : `${code}: ${message}`);
    this.name = new.target.name;
    this.code = code;
    this.backtrace = backtrace;
  }

  /** The node's message without the code prefix and backtrace. */
  get detail(): string {
    const text = this.message.slice(this.code.length + 2);
    const cut = text.indexOf("\nguest backtrace:\n");
    return cut < 0 ? text : text.slice(0, cut);
  }
}

/**
 * A call got an argument of the wrong type or value. Thrown by the driver
 * itself, before anything is sent to the node.
 */
export class ArgumentError extends ReefError {
  constructor(message: string) {
    super("BAD_ARGUMENT", message);
  }
}

/** The module bytes were refused (`INVALID_MODULE`). */
export class InvalidModuleError extends ReefError {}

/**
 * The module imports interfaces of a capability its registration did not
 * grant (`NOT_GRANTED`); the message lists every such import. Register it
 * with `{ grants: [...] }` or build it without them.
 */
export class NotGrantedError extends InvalidModuleError {}

/**
 * Something named does not exist: `UNKNOWN_MODULE`, `UNKNOWN_FUNCTION` (task,
 * actor class or method), `UNKNOWN_OBJECT`, `UNKNOWN_ACTOR`, `UNKNOWN_NODE`,
 * `UNKNOWN_PLACEMENT_GROUP`.
 */
export class NotFoundError extends ReefError {}

/** The node or the guest refused an argument (`BAD_ARGUMENT` reported remotely). */
export class BadArgumentError extends ReefError {}

/**
 * The guest failed: `GUEST_ERROR` (it returned an error), `GUEST_PANIC`
 * (panic or exception, with its text and traceback), `GUEST_TRAP`, `VIEW_ERROR`.
 */
export class TaskError extends ReefError {}

/** A task argument was the result of a failed task (`DEPENDENCY_FAILED`). */
export class DependencyError extends TaskError {}

/**
 * A limit was hit: `MEMORY_LIMIT`, `CPU_TIME_LIMIT`, `STACK_OVERFLOW`,
 * `STORE_FULL`, or no node can ever run the call (`INFEASIBLE`).
 */
export class ResourceError extends ReefError {}

/**
 * Over one of the tenant's quotas (`QUOTA_EXCEEDED`); the message names the
 * quota, the request and what is in use. Raise it with `host tenant set`.
 */
export class QuotaExceededError extends ResourceError {}

/** The task was cancelled (`CANCELLED`). */
export class CancelledError extends ReefError {}

/** A get or wait ran out of time (`TIMEOUT`). */
export class TimeoutError extends ReefError {}

/** The actor is gone (`ACTOR_DEAD`). */
export class ActorDeadError extends ReefError {}

/**
 * The actor failed while running the call and is being restarted; the call
 * was not retried (`ACTOR_RESTARTING`, see `maxTaskRetries`).
 */
export class ActorRestartingError extends ReefError {}

/** An actor with that name exists already (`NAME_TAKEN`). */
export class NameTakenError extends ReefError {}

/**
 * The node cannot serve the call: it is stopping (`NODE_STOPPING`), the task's
 * owner went away (`OWNER_DIED`), an internal error (`INTERNAL`), or the
 * connection failed (`UNAVAILABLE`, `UNAUTHENTICATED`).
 */
export class NodeError extends ReefError {}

/** The connection to the node failed or was lost. */
export class ConnectionError extends NodeError {}

const CLASSES: Record<string, new (code: ErrorCode, message: string, backtrace?: string) => ReefError> = {
  INVALID_MODULE: InvalidModuleError,
  NOT_GRANTED: NotGrantedError,
  UNKNOWN_MODULE: NotFoundError,
  UNKNOWN_FUNCTION: NotFoundError,
  UNKNOWN_OBJECT: NotFoundError,
  UNKNOWN_ACTOR: NotFoundError,
  UNKNOWN_NODE: NotFoundError,
  UNKNOWN_PLACEMENT_GROUP: NotFoundError,
  BAD_ARGUMENT: BadArgumentError,
  GUEST_TRAP: TaskError,
  GUEST_PANIC: TaskError,
  GUEST_ERROR: TaskError,
  VIEW_ERROR: TaskError,
  DEPENDENCY_FAILED: DependencyError,
  MEMORY_LIMIT: ResourceError,
  CPU_TIME_LIMIT: ResourceError,
  STACK_OVERFLOW: ResourceError,
  STORE_FULL: ResourceError,
  INFEASIBLE: ResourceError,
  QUOTA_EXCEEDED: QuotaExceededError,
  CANCELLED: CancelledError,
  TIMEOUT: TimeoutError,
  ACTOR_DEAD: ActorDeadError,
  ACTOR_RESTARTING: ActorRestartingError,
  NAME_TAKEN: NameTakenError,
  NODE_STOPPING: NodeError,
  OWNER_DIED: NodeError,
  INTERNAL: NodeError,
  UNAVAILABLE: ConnectionError,
  UNAUTHENTICATED: ConnectionError,
};

/** The typed error for a code and message. */
export function errorFor(code: string, message: string, backtrace = ""): ReefError {
  const known = (ERROR_CODES as readonly string[]).includes(code) || code === "UNAVAILABLE" || code === "UNAUTHENTICATED";
  const c = (known ? code : "INTERNAL") as ErrorCode;
  const Class = CLASSES[c] ?? ReefError;
  return new Class(c, known ? message : `${message} (error code ${code})`, backtrace);
}

/** The typed error for a node's `Error` message. */
export function fromProto(e: ProtoError): ReefError {
  return errorFor(String(e.code), e.message, e.backtrace);
}
