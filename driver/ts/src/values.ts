// Values: MessagePack (docs/encoding.md), the encoding every guest SDK reads.
// Raw bytes (Uint8Array, Buffer, any typed array) are passed as they are.

import { Decoder, Encoder } from "@msgpack/msgpack";

import { ArgumentError, ReefError } from "./errors.js";

/**
 * A value the driver encodes as MessagePack: null/undefined (nil), booleans,
 * numbers (integers as ints, others as float64), bigints (int64/uint64),
 * strings, Dates (timestamp extension), Uint8Arrays (bin), arrays, Maps with
 * string keys and plain objects (maps) of those. Functions, symbols, class instances and
 * ObjectRefs nested in a value are refused at run time with an ArgumentError.
 * (The type is wide so that interface-typed objects are accepted.)
 */
export type Value =
  | null
  | undefined
  | boolean
  | number
  | bigint
  | string
  | Date
  | Uint8Array
  | readonly unknown[]
  | ReadonlyMap<unknown, unknown>
  | object;

const encoder = new Encoder({ useBigInt64: true, ignoreUndefined: false });
const decoder = new Decoder();
const bigintDecoder = new Decoder({ useBigInt64: true });

/** Checks that `v` is encodable; throws `ArgumentError` naming what is not. */
export function checkValue(v: unknown, where: string, seen: Set<object> = new Set()): void {
  switch (typeof v) {
    case "undefined":
    case "boolean":
    case "string":
    case "bigint":
      return;
    case "number":
      return;
    case "function":
      throw new ArgumentError(`${where}: a function cannot be sent to the cluster`);
    case "symbol":
      throw new ArgumentError(`${where}: a symbol cannot be sent to the cluster`);
    case "object":
      break;
    default:
      throw new ArgumentError(`${where}: unsupported type ${typeof v}`);
  }
  if (v === null || v instanceof Date || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
    return;
  }
  if (isObjectRefLike(v)) {
    throw new ArgumentError(
      `${where}: an ObjectRef can only be a whole argument, not part of a value (pass it as its own argument)`,
    );
  }
  if (seen.has(v)) {
    throw new ArgumentError(`${where}: the value contains a cycle`);
  }
  seen.add(v);
  if (Array.isArray(v)) {
    v.forEach((x, i) => checkValue(x, `${where}[${i}]`, seen));
  } else if (v instanceof Map) {
    for (const [k, x] of v) {
      // The encoder writes a map's keys as property names.
      if (typeof k !== "string") {
        throw new ArgumentError(
          `${where}: a Map key must be a string (got ${typeof k} ${String(k)}); use an array of pairs`,
        );
      }
      checkValue(k, `${where} (a map key)`, seen);
      checkValue(x, `${where}.get(${String(k)})`, seen);
    }
  } else {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      const name = (v as { constructor?: { name?: string } }).constructor?.name ?? "object";
      throw new ArgumentError(
        `${where}: a ${name} instance cannot be sent (use plain objects, arrays, Maps, strings, numbers, bigints, booleans, null, Dates or bytes)`,
      );
    }
    for (const [k, x] of Object.entries(v)) {
      checkValue(x, `${where}.${k}`, seen);
    }
  }
  seen.delete(v);
}

/** Set by object.ts: recognises ObjectRefs without an import cycle. */
let isObjectRefLike: (v: object) => boolean = () => false;
export function setObjectRefCheck(f: (v: object) => boolean): void {
  isObjectRefLike = f;
}

/**
 * A whole number outside the 32-bit ranges: with `useBigInt64` the encoder
 * would write it as a float64, where every guest SDK writes (and reads) an
 * int64/uint64.
 */
function isWideInteger(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && (v >= 2 ** 32 || v < -(2 ** 31));
}

/**
 * `v` as the encoder must see it: every wide integer as a bigint, and every
 * Map as a plain object (the encoder writes a Map as an empty map). Containers
 * with neither are returned as they are.
 */
function widenIntegers(v: unknown): unknown {
  if (isWideInteger(v)) return BigInt(v);
  if (v === null || typeof v !== "object" || ArrayBuffer.isView(v) || v instanceof Date) return v;
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    v.forEach((x, i) => {
      const w = widenIntegers(x);
      if (w !== x) (out ??= v.slice())[i] = w;
    });
    return out ?? v;
  }
  if (v instanceof Map) {
    // Keys are strings (checkValue).
    return Object.fromEntries([...v].map(([k, x]) => [k, widenIntegers(x)]));
  }
  let out: Record<string, unknown> | undefined;
  for (const [k, x] of Object.entries(v)) {
    const w = widenIntegers(x);
    if (w !== x) (out ??= { ...v })[k] = w;
  }
  return out ?? v;
}

/** MessagePack bytes of a checked value. */
export function encodeValue(v: unknown, where = "value"): Uint8Array {
  checkValue(v, where);
  try {
    return encoder.encode(widenIntegers(v));
  } catch (e) {
    throw new ArgumentError(`${where}: cannot encode as MessagePack: ${(e as Error).message}`);
  }
}

/** Raw bytes of a typed array, DataView or ArrayBuffer (no copy). */
export function rawBytes(v: ArrayBufferView | ArrayBuffer): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Whether `v` is sent as raw bytes rather than as a MessagePack value. */
export function isRaw(v: unknown): v is ArrayBufferView | ArrayBuffer {
  return ArrayBuffer.isView(v) || v instanceof ArrayBuffer;
}

export interface DecodeOptions {
  /**
   * Decode 64-bit integers (MessagePack uint64/int64) as `bigint`, so values
   * above 2^53 stay exact. Default: numbers.
   */
  bigint?: boolean;
}

/** Decodes MessagePack bytes; a malformed value gives a `ReefError` (`BAD_ARGUMENT`). */
export function decodeValue<T>(bytes: Uint8Array, options: DecodeOptions = {}): T {
  try {
    return (options.bigint ? bigintDecoder : decoder).decode(bytes) as T;
  } catch (e) {
    throw new ReefError(
      "BAD_ARGUMENT",
      `cannot decode the object as MessagePack (${bytes.length} bytes; use getBytes for raw bytes): ${(e as Error).message}`,
    );
  }
}
