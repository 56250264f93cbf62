// The Reef guest SDK for JavaScript and TypeScript (module "reef").
//
// A guest module exports its tasks and actor classes:
//
//   import { float } from "reef";
//   export const tasks = { add(a, b) { return float(a + b); } };
//   export const actors = { Counter: class { constructor() { this.n = 0; } incr() { return ++this.n; } } };
//
// or registers them with `task(fn)` / `actor(Class)`. guest-sdk/js/build.sh bundles the
// module with this SDK (esbuild) and turns it into a component (componentize-js), whose
// `reef:runtime/guest@0.2.0` export is `makeGuest(userModule)` below.
//
// How values cross (see README.md): inline arguments are MessagePack, decoded to JS
// values; object arguments arrive as `ObjectRef`s; return values are MessagePack except
// Uint8Array (raw bytes) and ObjectRef (the object itself).

import * as host from "reef:runtime/host@0.2.0";
import { decode, describeValue, encode, Float, float, typedBytes } from "./msgpack.js";

export { decode, encode, Float, float };
export const msgpack = { encode, decode };

export const SDK = "reef-guest-js/0.1.0";

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/**
 * The error codes (the WIT enum `code` of reef:runtime, which is the driver API's
 * ErrorCode), in the order of their canonical-ABI discriminant.
 */
export const CODES = Object.freeze([
  "INVALID_MODULE", "UNKNOWN_MODULE", "UNKNOWN_FUNCTION", "BAD_ARGUMENT", "UNKNOWN_OBJECT",
  "GUEST_TRAP", "GUEST_PANIC", "GUEST_ERROR", "MEMORY_LIMIT", "CPU_TIME_LIMIT", "STACK_OVERFLOW",
  "CANCELLED", "TIMEOUT", "STORE_FULL", "INFEASIBLE", "DEPENDENCY_FAILED", "UNKNOWN_ACTOR",
  "ACTOR_DEAD", "NAME_TAKEN", "NODE_STOPPING", "OWNER_DIED", "VIEW_ERROR", "INTERNAL",
  "UNAUTHENTICATED", "NODE_DIED", "UNKNOWN_NODE", "UNKNOWN_PLACEMENT_GROUP", "OBJECT_LOST",
  "NOT_GRANTED", "PLACEMENT_GROUP_REMOVED",
]);

/** "BAD_ARGUMENT" -> "bad-argument" (the WIT name) and back. */
const witCode = (code) => code.toLowerCase().replaceAll("_", "-");
const driverCode = (wit) => String(wit).toUpperCase().replaceAll("-", "_");

/**
 * An error with an optional Reef error code (one of CODES). Thrown from a task, it fails
 * the task with that code and the message (no stack); without a code, with GUEST_ERROR.
 */
export class ReefError extends Error {
  constructor(message, code) {
    super(message);
    if (code && !CODES.includes(code)) throw new TypeError(`unknown Reef error code ${code}`);
    this.name = "ReefError";
    this.code = code || "";
  }
}

/** A wrong argument (the driver gets BAD_ARGUMENT). */
export class BadArgument extends ReefError {
  constructor(message) {
    super(message, "BAD_ARGUMENT");
    this.name = "BadArgument";
  }
}

/** An unknown task, class or method (the driver gets UNKNOWN_FUNCTION). */
export class UnknownFunction extends ReefError {
  constructor(message) {
    super(message, "UNKNOWN_FUNCTION");
    this.name = "UnknownFunction";
  }
}

/** A host call that failed with the host's `failure` ({ code: "unknown-object", message }). */
export class HostError extends ReefError {
  constructor(what, failure) {
    const code = driverCode(failure && failure.code);
    super(`${what}: ${failure && failure.message}`, CODES.includes(code) ? code : "INTERNAL");
    this.name = "HostError";
  }
}

/**
 * Calls a host import, turning its `result` error into a HostError. The engine running
 * out of memory while lifting a result (a large `get`: the guest holds the object
 * twice) becomes MEMORY_LIMIT; other engine errors pass through.
 */
function hostCall(what, f) {
  try {
    return f();
  } catch (e) {
    if (e && typeof e === "object" && "payload" in e) throw new HostError(what, e.payload);
    if (isOutOfMemory(e)) {
      throw new ReefError(
        `${what}: out of memory (reading an object needs about twice its size in guest memory: raise the call's memory limit)`,
        "MEMORY_LIMIT",
      );
    }
    throw e;
  }
}


// ---------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------

/**
 * An object in the node's store: a task's object argument, the result of `put`, or the
 * (future) result of `submit` / an actor call.
 *
 * `view()` and `bytes()` COPY: the canonical ABI lifts `host.get`'s `list<u8>` into a
 * fresh JS buffer. JS engines built for components cannot place an ArrayBuffer over
 * pages the host maps, so there is no zero-copy read in JS guests (README.md has the
 * measured cost). `sumF64`, `minF64`, `maxF64` and `dotF64` copy nothing: the node
 * computes them over the stored object.
 */
export class ObjectRef {
  constructor(id, size) {
    /** The object id (u64, always a BigInt). */
    this.id = BigInt(id);
    this._size = size === undefined || size === null ? undefined : BigInt(size);
    this._bytes = undefined;
  }

  /** The size in bytes (asks the host, waiting for a pending result, if not known). */
  get size() {
    if (this._size === undefined) {
      this._size = hostCall(`object-size of object ${this.id}`, () => host.objectSize(this.id));
    }
    return Number(this._size);
  }

  /** The object's bytes, read once and kept (a copy; see the class comment). */
  view() {
    if (this._bytes === undefined) {
      this._bytes = u8(hostCall(`get of object ${this.id}`, () => host.get(this.id)));
      this._size = BigInt(this._bytes.length);
    }
    return this._bytes;
  }

  /** A fresh copy of the object's bytes. */
  bytes() {
    return this.view().slice();
  }

  /** The object as UTF-8 text. */
  text() {
    return new TextDecoder().decode(this.view());
  }

  /** The object decoded as MessagePack (e.g. the result of another task). */
  value() {
    try {
      return decode(this.view());
    } catch (e) {
      throw new BadArgument(`object ${this.id} is not MessagePack: ${e.message}`);
    }
  }

  /** The object as little-endian float64s (Float64Array over `view()`, no further copy). */
  f64s() {
    return typedView(this, Float64Array);
  }
  f32s() {
    return typedView(this, Float32Array);
  }
  i32s() {
    return typedView(this, Int32Array);
  }
  u32s() {
    return typedView(this, Uint32Array);
  }
  i64s() {
    return typedView(this, BigInt64Array);
  }
  u64s() {
    return typedView(this, BigUint64Array);
  }

  // Reductions over the object read as little-endian float64s, elements [start, end)
  // (end omitted: to the last one). The node computes them over the stored bytes in
  // place, at memory speed: nothing is copied into the guest, unlike `f64s()`.
  // BAD_ARGUMENT if the size is not a multiple of 8 or the range is outside the object.

  /** The number of float64s in the object. */
  f64Length() {
    const size = this.size;
    if (size % 8 !== 0) throw new BadArgument(`object ${this.id} has ${size} bytes, not a whole number of float64s`);
    return size / 8;
  }

  /**
   * The sum (0 for an empty range), with the partial sums of the Rust and C SDKs'
   * `f64s` helpers: it may differ from a sequential loop's in the last bits.
   */
  sumF64(start = 0, end = undefined) {
    const [s, e] = f64Range(this, start, end);
    return hostCall(`f64-sum of object ${this.id}`, () => host.f64Sum(this.id, s, e));
  }
  /** The smallest element (undefined for an empty range, NaN if any is NaN). */
  minF64(start = 0, end = undefined) {
    const [s, e] = f64Range(this, start, end);
    return hostCall(`f64-min of object ${this.id}`, () => host.f64Min(this.id, s, e)) ?? undefined;
  }
  /** The largest element (undefined for an empty range, NaN if any is NaN). */
  maxF64(start = 0, end = undefined) {
    const [s, e] = f64Range(this, start, end);
    return hostCall(`f64-max of object ${this.id}`, () => host.f64Max(this.id, s, e)) ?? undefined;
  }
  /** The dot product of elements [start, end) and `other`'s from `otherStart` on, as many. */
  dotF64(other, start = 0, end = undefined, otherStart = 0) {
    const [s, e] = f64Range(this, start, end);
    if (e < s) throw new BadArgument(`range ${s}..${e} is reversed`);
    const o = asRef(other);
    return hostCall(`f64-dot of objects ${this.id} and ${o.id}`, () =>
      host.f64Dot(this.id, s, o.id, BigInt(otherStart), e - s),
    );
  }

  toString() {
    return `ObjectRef(${this.id})`;
  }
}

/** [start, end) as u64 BigInts; `end` undefined is the object's length in float64s. */
function f64Range(ref, start, end) {
  const e = end === undefined || end === null ? ref.f64Length() : end;
  for (const [name, v] of [["start", start], ["end", e]]) {
    if (!(typeof v === "bigint" ? v >= 0n : Number.isSafeInteger(v) && v >= 0)) {
      throw new BadArgument(`${name} must be a non-negative integer, got ${describeValue(v)}`);
    }
  }
  return [BigInt(start), BigInt(e)];
}

function typedView(ref, Type) {
  const b = ref.view();
  const size = Type.BYTES_PER_ELEMENT;
  if (b.length % size !== 0) {
    throw new BadArgument(`object ${ref.id} has ${b.length} bytes, not a multiple of ${size}`);
  }
  // A lifted list<u8> starts its own ArrayBuffer; copy only if it ever does not.
  const aligned = b.byteOffset % size === 0 ? b : b.slice();
  return new Type(aligned.buffer, aligned.byteOffset, aligned.length / size);
}

/** Stores a value as a new object: Uint8Array / typed arrays raw, anything else MessagePack. */
export function put(value) {
  const data = toBytes(value);
  const r = hostCall("put", () => host.put(data));
  return new ObjectRef(r.id, r.size);
}

/** Reads an object (ObjectRef or id) decoded as MessagePack; waits for a pending result. */
export function get(ref) {
  return asRef(ref).value();
}

/** Reads an object's raw bytes (a copy); waits for a pending result. */
export function getBytes(ref) {
  return asRef(ref).view();
}

function asRef(ref) {
  if (ref instanceof ObjectRef) return ref;
  if (typeof ref === "bigint" || typeof ref === "number") return new ObjectRef(ref);
  throw new TypeError(`expected an ObjectRef or an object id, got ${describeValue(ref)}`);
}

/**
 * A Uint8Array of this realm over the same memory. Lists the component bindings lift
 * are typed arrays that fail `instanceof Uint8Array` here; normalize them on the way in.
 */
function u8(x) {
  return x instanceof Uint8Array ? x : new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
}

function toBytes(value) {
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return typedBytes(value);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return encode(value);
}

// ---------------------------------------------------------------------------
// Outgoing arguments, nested tasks and actors
// ---------------------------------------------------------------------------

/** Passes raw bytes as an argument (not MessagePack-wrapped). */
export class RawBytes {
  constructor(bytes) {
    this.bytes = toBytes(bytes);
  }
}
export function raw(bytes) {
  return new RawBytes(bytes);
}

function toArg(v) {
  if (v instanceof ObjectRef) return { tag: "object", val: { id: v.id, size: v._size ?? 0n } };
  if (v instanceof RawBytes) return { tag: "inline", val: v.bytes };
  return { tag: "inline", val: encode(v) };
}

/**
 * Submits a task of this module (or `{ module: hash, fn: name }` of another); returns the
 * ObjectRef of its future result (`get(ref)` waits for it).
 */
export function submit(fn, ...args) {
  const [module, name] = typeof fn === "string" ? ["", fn] : [fn.module || "", fn.fn];
  const id = hostCall(`submit ${name}`, () => host.submit(module, name, args.map(toArg)));
  return new ObjectRef(id);
}

/** A handle to an actor. */
export class ActorHandle {
  constructor(id) {
    this.id = BigInt(id);
  }
  /** Calls a method; returns the ObjectRef of its future result. */
  call(method, ...args) {
    const id = hostCall(`actor-call ${method}`, () => host.actorCall(this.id, method, args.map(toArg)));
    return new ObjectRef(id);
  }
  /** Calls a method and waits for its MessagePack result. */
  callValue(method, ...args) {
    return get(this.call(method, ...args));
  }
}

/** Creates an actor of `className` (of this module unless `options.module`). */
export function createActor(className, args = [], options = {}) {
  const id = hostCall(`actor-create ${className}`, () =>
    host.actorCreate(options.module || "", className, args.map(toArg), options.name ?? undefined),
  );
  return new ActorHandle(id);
}

/** Finds a named actor. */
export function lookupActor(name) {
  return new ActorHandle(hostCall(`actor-lookup ${name}`, () => host.actorLookup(name)));
}

// ---------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------

const LEVELS = ["trace", "debug", "info", "warn", "error"];

function format(parts) {
  return parts
    .map((p) => (typeof p === "string" ? p : p instanceof Error ? p.stack || String(p) : safeString(p)))
    .join(" ");
}

function safeString(p) {
  try {
    if (typeof p === "bigint") return `${p}n`;
    return JSON.stringify(p, (_, v) => (typeof v === "bigint" ? `${v}` : v)) ?? String(p);
  } catch {
    return String(p);
  }
}

/** Writes a line to the task's log (drivers read it with `logs`). */
export function log(level, ...parts) {
  if (!LEVELS.includes(level)) throw new TypeError(`unknown log level ${level}`);
  host.log(level, format(parts));
}
for (const level of LEVELS) log[level] = (...parts) => host.log(level, format(parts));

// The component has no stdio (built with -d stdio): console.* goes to the task's log.
globalThis.console = {
  log: log.info,
  info: log.info,
  debug: log.debug,
  trace: log.trace,
  warn: log.warn,
  error: log.error,
};

// ---------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------

const registeredTasks = new Map();
const registeredActors = new Map();

/**
 * Registers a task under `name` (default: the function's name); `options.args` declares
 * argument types as in `typed`. Returns `fn`.
 */
export function task(fn, options = {}) {
  if (typeof options === "string") options = { name: options };
  if (options.args) typed(options.args, fn);
  const name = options.name || fn.name;
  if (!name) throw new TypeError("task(fn): an anonymous function needs a name");
  registeredTasks.set(name, fn);
  return fn;
}

/** Registers an actor class under `name` (default: the class's name). Returns the class. */
export function actor(cls, name) {
  name = name || cls.name;
  if (!name) throw new TypeError("actor(cls): an anonymous class needs a name");
  registeredActors.set(name, cls);
  return cls;
}

/** Declared argument types of an actor's methods: `static args = { add: ["f64"] }`. */
function methodArgs(cls) {
  const out = Object.create(null);
  if (cls.args && typeof cls.args === "object") {
    for (const [k, v] of Object.entries(cls.args)) if (k !== "constructor" && Array.isArray(v)) out[k] = v;
  }
  return out;
}

/** The methods of an actor class: its prototype chain's functions, minus the constructor. */
function methodsOf(cls) {
  if (Array.isArray(cls.methods)) return cls.methods.slice();
  const names = new Set();
  for (let p = cls.prototype; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const k of Object.getOwnPropertyNames(p)) {
      if (k === "constructor" || k.startsWith("_")) continue;
      const d = Object.getOwnPropertyDescriptor(p, k);
      if (d && typeof d.value === "function") names.add(k);
    }
  }
  return [...names];
}

// ---------------------------------------------------------------------------
// Arguments and results
// ---------------------------------------------------------------------------

/**
 * The raw arguments of the running call (`callArgs()`), for tasks that want bytes as
 * they came (`bytes(i)`), not MessagePack-decoded.
 */
export class Args {
  constructor(raw) {
    this.raw = raw;
  }
  get length() {
    return this.raw.length;
  }
  /** Argument i's raw bytes: inline bytes as sent, or an object's bytes (a copy). */
  bytes(i) {
    const a = this.arg(i);
    return a.tag === "inline" ? u8(a.val) : new ObjectRef(a.val.id, a.val.size).view();
  }
  /** Argument i as an ObjectRef (BAD_ARGUMENT if it came inline). */
  object(i) {
    const a = this.arg(i);
    if (a.tag !== "object") throw new BadArgument(`argument ${i}: expected an object, got an inline value`);
    return new ObjectRef(a.val.id, a.val.size);
  }
  /** Argument i MessagePack-decoded (objects are read and decoded too). */
  value(i) {
    const a = this.arg(i);
    if (a.tag === "object") return new ObjectRef(a.val.id, a.val.size).value();
    try {
      return decode(a.val);
    } catch (e) {
      throw new BadArgument(`argument ${i}: ${e.message}`);
    }
  }
  arg(i) {
    if (i >= this.raw.length) {
      throw new BadArgument(`expected at least ${i + 1} arguments, got ${this.raw.length}`);
    }
    return this.raw[i];
  }
}

// The running call's raw arguments; its Args is made only when asked for, then
// kept for the rest of the call.
const NO_ARGS = Object.freeze([]);
let currentArgs = NO_ARGS;
let currentArgsObject = null;

/** The raw arguments of the task or method that is running. */
export function callArgs() {
  if (currentArgsObject === null || currentArgsObject.raw !== currentArgs) {
    currentArgsObject = new Args(currentArgs);
  }
  return currentArgsObject;
}

/**
 * Decodes the arguments for a JS call: inline MessagePack values become JS values,
 * objects become ObjectRefs. Inline bytes that are not one MessagePack value are passed
 * as a Uint8Array of the raw bytes.
 */
function decodeArgs(raw) {
  if (raw.length === 0) return NO_ARGS;
  return raw.map((a) => {
    if (a.tag === "object") return new ObjectRef(a.val.id, a.val.size);
    try {
      return decode(a.val);
    } catch {
      return u8(a.val);
    }
  });
}

// The outputs of `null` and `undefined` (MessagePack nil), made once: a task
// that returns nothing is common, and making them again each call is not free in
// an interpreter. The bindings only read them.
const NIL_OUTPUT = Object.freeze({ tag: "bytes", val: encode(null) });

/** A JS return value as a component `output`. */
function toOutput(v) {
  if (v === null || v === undefined) return NIL_OUTPUT;
  if (v instanceof ObjectRef) return { tag: "object", val: v.id };
  if (v instanceof RawBytes) return { tag: "bytes", val: v.bytes };
  // Uint8Array, other typed arrays and DataViews: their raw (little-endian) bytes.
  if (ArrayBuffer.isView(v)) return { tag: "bytes", val: typedBytes(v) };
  if (v instanceof ArrayBuffer) return { tag: "bytes", val: new Uint8Array(v) };
  if (v !== null && typeof v === "object" && typeof v.then === "function") {
    throw new ReefError("a task returned a Promise: tasks and methods are synchronous");
  }
  return { tag: "bytes", val: encode(v) };
}

/** SpiderMonkey reports a failed allocation by throwing the string "out of memory". */
function isOutOfMemory(e) {
  const text = typeof e === "string" ? e : e instanceof Error ? e.message : "";
  return /^out of memory/i.test(text);
}

/**
 * The WIT `failure` for a thrown value: a ReefError's code and message, else GUEST_ERROR
 * with the error text and JS stack.
 */
export function failureOf(e) {
  if (e instanceof ReefError && e.code) return { code: witCode(e.code), message: e.message };
  if (isOutOfMemory(e)) {
    const message =
      "the guest ran out of memory (reading an object needs about twice its size: raise the call's memory limit)";
    return { code: "memory-limit", message };
  }
  return { code: "guest-error", message: errorText(e) };
}

function errorText(e) {
  if (e instanceof Error) {
    const head = `${e.name}: ${e.message}`;
    const stack = typeof e.stack === "string" ? e.stack.trimEnd() : "";
    return stack ? `${head}\n\nStack (most recent call first):\n${stack}` : head;
  }
  if (typeof e === "string") return e;
  return `uncaught ${describeValue(e)}: ${safeString(e)}`;
}

// ---------------------------------------------------------------------------
// Typed signatures: checked arguments with BAD_ARGUMENT errors
// ---------------------------------------------------------------------------

const TYPES = {
  any: (v) => v,
  f64: (v) => {
    if (typeof v === "number") return v;
    if (typeof v === "bigint") return Number(v);
    return undefined;
  },
  u64: (v) => intArg(v, true),
  i64: (v) => intArg(v, false),
  bigint: (v) => (typeof v === "bigint" ? v : Number.isSafeInteger(v) ? BigInt(v) : undefined),
  str: (v) => (typeof v === "string" ? v : undefined),
  bool: (v) => (typeof v === "boolean" ? v : undefined),
  array: (v) => (Array.isArray(v) ? v : undefined),
  map: (v) => (v instanceof Map || (v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof ObjectRef)) ? v : undefined),
};

function intArg(v, unsigned) {
  if (typeof v === "bigint") {
    if (v > 9007199254740991n || v < -9007199254740991n) return undefined;
    v = Number(v);
  }
  if (!Number.isSafeInteger(v) || (unsigned && v < 0)) return undefined;
  return v;
}

/** Converts raw argument i to the declared type `type` ("f64", "u64?", "bytes", ...). */
function convertArg(raw, i, type) {
  const optional = type.endsWith("?");
  const base = optional ? type.slice(0, -1) : type;
  const a = raw[i];
  if (a === undefined) {
    if (optional) return undefined;
    throw new BadArgument(`expected ${raw.length < i + 1 ? "at least " + (i + 1) : i + 1} arguments, got ${raw.length}`);
  }
  if (base === "object") {
    if (a.tag !== "object") throw new BadArgument(`argument ${i}: expected an object, got an inline value`);
    return new ObjectRef(a.val.id, a.val.size);
  }
  if (base === "bytes") return a.tag === "inline" ? u8(a.val) : new ObjectRef(a.val.id, a.val.size).view();
  if (base === "ref") return a.tag === "object" ? new ObjectRef(a.val.id, a.val.size) : decodeInline(a.val, i);
  const check = TYPES[base];
  if (!check) throw new TypeError(`unknown argument type "${type}"`);
  const v = a.tag === "object" ? new ObjectRef(a.val.id, a.val.size).value() : decodeInline(a.val, i);
  if (v === null && optional) return undefined;
  const out = check(v);
  if (out === undefined) {
    throw new BadArgument(`argument ${i}: expected ${base}, got ${describeValue(v)}`);
  }
  return out;
}

function decodeInline(bytes, i) {
  try {
    return decode(bytes);
  } catch (e) {
    throw new BadArgument(`argument ${i}: ${e.message}`);
  }
}

function convertArgs(raw, types, kind, a, b) {
  const required = types.filter((t) => !t.endsWith("?")).length;
  if (raw.length < required || raw.length > types.length) {
    const want = required === types.length ? `${required}` : `${required} to ${types.length}`;
    throw new BadArgument(`${callName(kind, a, b)} expects ${want} arguments, got ${raw.length}`);
  }
  return types.map((t, i) => convertArg(raw, i, t));
}

/**
 * Declares argument types for a task or method: the SDK checks and converts each
 * argument and fails the call with BAD_ARGUMENT otherwise. Types: "f64", "u64", "i64"
 * (safe-integer numbers), "bigint", "str", "bool", "array", "map", "any", "bytes" (raw
 * bytes, inline or an object's), "object" (an ObjectRef; inline values are refused),
 * "ref" (an ObjectRef for objects, the decoded value otherwise); "T?" is optional.
 */
export function typed(types, fn) {
  for (const t of types) {
    const base = t.endsWith("?") ? t.slice(0, -1) : t;
    if (!(base in TYPES) && !["object", "bytes", "ref"].includes(base)) {
      throw new TypeError(`typed(): unknown argument type "${t}"`);
    }
  }
  Object.defineProperty(fn, "reefArgs", { value: types.slice(), enumerable: false });
  return fn;
}

function callArgsFor(fn, types, raw, kind, a, b) {
  if (types) return convertArgs(raw, types, kind, a, b);
  // fn.length counts parameters before the first default or rest one: fewer arguments
  // than that is always a mistake; more is allowed only for rest parameters, which
  // cannot be seen, so only the lower bound is checked.
  if (raw.length < fn.length) {
    throw new BadArgument(`${callName(kind, a, b)} expects ${fn.length} arguments, got ${raw.length}`);
  }
  return decodeArgs(raw);
}

/**
 * What a call is, for its errors: `task NAME`, `CLASS.METHOD` or `CLASS constructor`.
 * Made only when an error names it, not on every call.
 */
function callName(kind, a, b) {
  return kind === "task" ? `task ${a}` : kind === "method" ? `${a}.${b}` : `${a} constructor`;
}

// ---------------------------------------------------------------------------
// The `guest` export
// ---------------------------------------------------------------------------

/** Builds the `reef:runtime/guest@0.2.0` export from the user's module namespace. */
export function makeGuest(user) {
  const tasks = new Map(registeredTasks);
  const actors = new Map(registeredActors);
  for (const [k, v] of Object.entries(user.tasks || {})) {
    if (typeof v !== "function") throw new TypeError(`tasks.${k} is not a function`);
    tasks.set(k, v);
  }
  for (const [k, v] of Object.entries(user.actors || {})) {
    if (typeof v !== "function") throw new TypeError(`actors.${k} is not a class`);
    actors.set(k, v);
  }
  const tasksObject = user.tasks || {};
  let state = null; // { name, cls, instance, methods } after actor-init

  // Each export catches what its call throws: the bindings take a thrown value's
  // `payload` as the result's `err`. (Written out in each, not as a wrapper taking a
  // closure: a closure made per call costs an interpreted noop.)
  const failed = (e) => ({ payload: failureOf(e) });

  const guest = {
    describe() {
      return {
        sdk: SDK,
        tasks: [...tasks.keys()],
        actors: [...actors].map(([name, cls]) => ({ name, methods: methodsOf(cls) })),
      };
    },

    runTask(name, args) {
      try {
        const fn = tasks.get(name);
        if (!fn) {
          throw new UnknownFunction(`unknown task \`${name}\` (this module has: ${[...tasks.keys()].join(", ")})`);
        }
        currentArgs = args;
        const thisArg = tasksObject[name] === fn ? tasksObject : undefined;
        return toOutput(fn.apply(thisArg, callArgsFor(fn, fn.reefArgs, args, "task", name)));
      } catch (e) {
        throw failed(e);
      } finally {
        currentArgs = NO_ARGS;
      }
    },

    actorInit(className, args) {
      try {
        if (state) throw new ReefError(`this instance already holds an actor (${state.name})`);
        const cls = actors.get(className);
        if (!cls) {
          throw new UnknownFunction(
            `unknown actor class \`${className}\` (this module has: ${[...actors.keys()].join(", ")})`,
          );
        }
        currentArgs = args;
        const types =
          cls.args && Object.prototype.hasOwnProperty.call(cls.args, "constructor") ? cls.args.constructor : cls.reefArgs;
        const argv = callArgsFor(cls, Array.isArray(types) ? types : undefined, args, "constructor", className);
        const instance = new cls(...argv);
        state = { name: className, instance, methods: new Set(methodsOf(cls)), args: methodArgs(cls) };
      } catch (e) {
        throw failed(e);
      } finally {
        currentArgs = NO_ARGS;
      }
    },

    actorCall(method, args) {
      try {
        if (!state) throw new ReefError("no actor was created in this instance");
        if (!state.methods.has(method)) {
          throw new UnknownFunction(
            `${state.name} has no method \`${method}\` (it has: ${[...state.methods].join(", ")})`,
          );
        }
        const fn = state.instance[method];
        currentArgs = args;
        const types = state.args[method] || fn.reefArgs;
        return toOutput(fn.apply(state.instance, callArgsFor(fn, types, args, "method", state.name, method)));
      } catch (e) {
        throw failed(e);
      } finally {
        currentArgs = NO_ARGS;
      }
    },
  };
  warmEngine(guest, [...tasks.values(), ...actors.values()]);
  return guest;
}

/**
 * Runs while componentize-js pre-initializes the module: Wizer snapshots the heap after
 * the top level ran, and every instance starts from that snapshot. SpiderMonkey creates
 * a standard class (Promise, Uint8Array, DataView...), compiles a self-hosted function
 * and resolves a function's `length` the first time a realm uses them, so without this
 * every task in a fresh instance did all of that again. The export bindings that
 * componentize-js generates run in a realm of their own and wrapped every call in an
 * `async` function (the build now makes them synchronous: tools/bindings.mjs, which also
 * runs the task export once here): creating Promise there was ~20 % of a fresh instance's noop, and
 * Uint8Array's prototype another ~7 %. The host imports are functions of that realm, so
 * its `Function` runs the same statements there. Nothing here calls the host, and
 * nothing is kept but what the engine caches.
 */
function warmEngine(guest, functions) {
  const touch = `
    const bytes = new Uint8Array(new ArrayBuffer(16).slice(0, 16), 0, 16);
    const view = new DataView(bytes.buffer);
    view.setBigInt64(0, BigInt.asUintN(64, BigInt(1)), true);
    view.setInt8(8, view.getUint8(0), true);
    view.setUint32(12, view.getUint32(8, true), true);
    view.getBigInt64(0, true);
    new Float64Array(bytes.buffer, 8, 1);
    Number.isInteger(1);
    Object.prototype.hasOwnProperty.call({}, "payload");
    [].push(1);
    new TextDecoder().decode(new TextEncoder().encode("reef"));
    (async () => { await null; })();
    Promise.resolve().then(() => {});
  `;
  new Function("TextDecoder", "TextEncoder", touch)(TextDecoder, TextEncoder);
  const BindingsFunction = typeof host.log === "function" ? host.log.constructor : Function;
  if (BindingsFunction !== Function) {
    BindingsFunction("TextDecoder", "TextEncoder", touch)(TextDecoder, TextEncoder);
  }
  // What a dispatch reads of the user's functions, MessagePack both ways, and a
  // dispatch's error path.
  for (const fn of functions) {
    void fn.length, fn.reefArgs;
  }
  toOutput(null);
  toOutput(1);
  decodeArgs([{ tag: "inline", val: encode(1) }]);
  decode(encode({ s: "x", n: 1, big: 2 ** 40, f: float(0.5), b: true, z: null, a: [1, 2], u: new Uint8Array(2), m: new Map([[1, 2]]) }));
  try {
    guest.runTask("", []);
  } catch (_) {
    // An unknown task: the error is the point.
  }
}
