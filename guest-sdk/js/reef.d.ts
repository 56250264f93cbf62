// Type declarations for the Reef guest SDK (module "reef"), for TypeScript guests.
// The implementation is src/reef.js; guest-sdk/js/build.sh type-checks a .ts guest
// against this file, then bundles and componentizes it.

/** A MessagePack-encodable value (see README.md for the mapping). */
export type Value =
  | null
  | undefined
  | boolean
  | number
  | bigint
  | string
  | Float
  | Uint8Array
  | ArrayBufferView
  | ArrayBuffer
  | Value[]
  | Map<Value, Value>
  | { [key: string]: Value };

/** What a decoded inline argument or `get` can be. */
export type Decoded =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Decoded[]
  | Map<Decoded, Decoded>
  | { [key: string]: Decoded };

/** What a task or method may return. Uint8Array is returned raw, ObjectRef as the object. */
export type TaskResult = Value | ObjectRef | RawBytes | void;

/** A number that always encodes as float64. */
export class Float {
  constructor(value: number);
  readonly value: number;
  valueOf(): number;
}
/** Keeps `x` a float64 in MessagePack even when it is a whole number. */
export function float(x: number): Float;

export function encode(value: Value): Uint8Array;
export function decode(bytes: Uint8Array): Decoded;
export const msgpack: { encode: typeof encode; decode: typeof decode };

export const SDK: string;

/** A Reef error code: the WIT enum `code` (the driver API's ErrorCode). */
export type Code =
  | "INVALID_MODULE" | "UNKNOWN_MODULE" | "UNKNOWN_FUNCTION" | "BAD_ARGUMENT" | "UNKNOWN_OBJECT"
  | "GUEST_TRAP" | "GUEST_PANIC" | "GUEST_ERROR" | "MEMORY_LIMIT" | "CPU_TIME_LIMIT"
  | "STACK_OVERFLOW" | "CANCELLED" | "TIMEOUT" | "STORE_FULL" | "INFEASIBLE" | "DEPENDENCY_FAILED"
  | "UNKNOWN_ACTOR" | "ACTOR_DEAD" | "NAME_TAKEN" | "NODE_STOPPING" | "OWNER_DIED" | "VIEW_ERROR"
  | "INTERNAL" | "UNAUTHENTICATED" | "NODE_DIED" | "UNKNOWN_NODE" | "UNKNOWN_PLACEMENT_GROUP"
  | "OBJECT_LOST" | "NOT_GRANTED" | "PLACEMENT_GROUP_REMOVED";
/** Every Code, in the order of its canonical-ABI discriminant. */
export const CODES: readonly Code[];

/** Fails a call with `code` and the message (the driver gets both), or GUEST_ERROR without a code. */
export class ReefError extends Error {
  constructor(message: string, code?: Code);
  readonly code: Code | "";
}
/** BAD_ARGUMENT */
export class BadArgument extends ReefError {
  constructor(message: string);
}
/** UNKNOWN_FUNCTION */
export class UnknownFunction extends ReefError {
  constructor(message: string);
}
/** The WIT `failure` record as the bindings give it: `{ code: "unknown-object", message }`. */
export interface Failure {
  code: string;
  message: string;
}
/** A failed host call, with the host's code (e.g. UNKNOWN_OBJECT). */
export class HostError extends ReefError {
  constructor(what: string, failure: Failure);
}

/**
 * An object in the node's store. `view()`/`bytes()` COPY the object into the guest
 * (a JS engine built for components cannot view mapped pages): see README.md.
 */
export class ObjectRef {
  constructor(id: bigint | number, size?: bigint | number);
  /** The object id (u64). */
  readonly id: bigint;
  /** Size in bytes; waits for a pending result. */
  readonly size: number;
  /** The object's bytes, read once and kept. */
  view(): Uint8Array;
  /** A fresh copy of the bytes. */
  bytes(): Uint8Array;
  /** The bytes as UTF-8 text. */
  text(): string;
  /** The object MessagePack-decoded. */
  value(): Decoded;
  f64s(): Float64Array;
  f32s(): Float32Array;
  i32s(): Int32Array;
  u32s(): Uint32Array;
  i64s(): BigInt64Array;
  u64s(): BigUint64Array;
  /** The number of float64s (BAD_ARGUMENT unless the size is a multiple of 8). */
  f64Length(): number;
  /**
   * Reductions over the float64s [start, end) (end omitted: to the last), computed by the
   * node over the stored object: nothing is copied into the guest.
   */
  sumF64(start?: number | bigint, end?: number | bigint): number;
  /** undefined for an empty range; NaN if any element is NaN. */
  minF64(start?: number | bigint, end?: number | bigint): number | undefined;
  maxF64(start?: number | bigint, end?: number | bigint): number | undefined;
  /** The dot product of [start, end) and `other`'s elements from `otherStart` on. */
  dotF64(other: ObjectRef, start?: number | bigint, end?: number | bigint, otherStart?: number | bigint): number;
}

/** Stores a value as a new object: bytes and typed arrays raw, anything else MessagePack. */
export function put(value: Value): ObjectRef;
/** Reads an object MessagePack-decoded (waits for a pending result). */
export function get(ref: ObjectRef | bigint | number): Decoded;
/** Reads an object's raw bytes (waits for a pending result). */
export function getBytes(ref: ObjectRef | bigint | number): Uint8Array;

/** Raw bytes passed as an argument or result as they are (not MessagePack). */
export class RawBytes {
  constructor(bytes: Uint8Array | ArrayBufferView | ArrayBuffer);
  readonly bytes: Uint8Array;
}
export function raw(bytes: Uint8Array | ArrayBufferView | ArrayBuffer): RawBytes;

/** An outgoing argument: an ObjectRef (passed as the object), RawBytes, or a value (MessagePack). */
export type OutArg = Value | ObjectRef | RawBytes;

/** Submits a task of this module (or of `{ module: hash, fn }`); returns its future result. */
export function submit(fn: string | { module?: string; fn: string }, ...args: OutArg[]): ObjectRef;

export class ActorHandle {
  constructor(id: bigint | number);
  readonly id: bigint;
  /** Calls a method; returns its future result. */
  call(method: string, ...args: OutArg[]): ObjectRef;
  /** Calls a method and waits for its decoded result. */
  callValue(method: string, ...args: OutArg[]): Decoded;
}
/** Creates an actor (of this module unless `options.module`), optionally named. */
export function createActor(
  className: string,
  args?: OutArg[],
  options?: { name?: string; module?: string },
): ActorHandle;
/** Finds a named actor. */
export function lookupActor(name: string): ActorHandle;

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error";
export interface Log {
  (level: LogLevel, ...parts: unknown[]): void;
  trace(...parts: unknown[]): void;
  debug(...parts: unknown[]): void;
  info(...parts: unknown[]): void;
  warn(...parts: unknown[]): void;
  error(...parts: unknown[]): void;
}
/** Writes to the task's log (console.* does too). */
export const log: Log;

/** Argument types for `typed`, `task(fn, { args })` and actors' `static args`. */
export type ArgType =
  | "f64"
  | "u64"
  | "i64"
  | "bigint"
  | "str"
  | "bool"
  | "array"
  | "map"
  | "any"
  | "bytes"
  | "object"
  | "ref"
  | "f64?"
  | "u64?"
  | "i64?"
  | "bigint?"
  | "str?"
  | "bool?"
  | "array?"
  | "map?"
  | "any?"
  | "bytes?"
  | "object?"
  | "ref?";

/** The JS type an ArgType converts to. */
export type ArgValue<T extends ArgType> = T extends `${infer B extends ArgType}?`
  ? ArgValue<B> | undefined
  : T extends "f64" | "u64" | "i64"
    ? number
    : T extends "bigint"
      ? bigint
      : T extends "str"
        ? string
        : T extends "bool"
          ? boolean
          : T extends "array"
            ? Decoded[]
            : T extends "map"
              ? { [key: string]: Decoded } | Map<Decoded, Decoded>
              : T extends "bytes"
                ? Uint8Array
                : T extends "object"
                  ? ObjectRef
                  : T extends "ref"
                    ? ObjectRef | Decoded
                    : Decoded;

export type ArgValues<T extends readonly ArgType[]> = { -readonly [K in keyof T]: T[K] extends ArgType ? ArgValue<T[K]> : never };

/**
 * Declares argument types: each argument is checked and converted, and a wrong one
 * fails the call with BAD_ARGUMENT. `typed(["object", "u64"] as const, (xs, n) => ...)`.
 */
export function typed<const T extends readonly ArgType[], R extends TaskResult>(
  types: T,
  fn: (...args: ArgValues<T>) => R,
): (...args: ArgValues<T>) => R;

/** Registers a task (name: the function's, unless given). */
export function task<F extends (...args: any[]) => TaskResult>(
  fn: F,
  options?: string | { name?: string; args?: readonly ArgType[] },
): F;
/** Registers an actor class (name: the class's, unless given). */
export function actor<C extends new (...args: any[]) => object>(cls: C, name?: string): C;

/** The raw arguments of the running call. */
export class Args {
  readonly length: number;
  /** Raw bytes of argument i (inline as sent, or the object's bytes). */
  bytes(i: number): Uint8Array;
  /** Argument i as an ObjectRef (BAD_ARGUMENT if inline). */
  object(i: number): ObjectRef;
  /** Argument i MessagePack-decoded. */
  value(i: number): Decoded;
}
export function callArgs(): Args;

/** The `failure` the host receives for a thrown value. */
export function failureOf(e: unknown): Failure;
