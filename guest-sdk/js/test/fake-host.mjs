// A stand-in for the node's `reef:runtime/host@0.2.0` imports, so the SDK's dispatch
// can be unit-tested on Node (test/hooks.mjs maps the import here).
export const calls = [];
export const objects = new Map();
let next = 1n << 60n; // ids above 2^53, as driver sessions make them

/** Throws as the bindings do for a host `failure` (`code` in WIT's kebab-case). */
function fail(code, message) {
  const e = new Error(message);
  e.payload = { code, message };
  throw e;
}

export function log(level, message) {
  calls.push(["log", level, message]);
}
export function reportPanic(message) {
  calls.push(["report-panic", message]);
}
export function put(data) {
  const id = next++;
  objects.set(id, Uint8Array.from(data));
  return { id, size: BigInt(data.length) };
}
export function objectSize(id) {
  if (!objects.has(id)) fail("unknown-object", `no object ${id}`);
  return BigInt(objects.get(id).length);
}
export function get(id) {
  if (id === 13n) throw new Error("out of memory");
  if (!objects.has(id)) fail("unknown-object", `no object ${id}`);
  return objects.get(id).slice();
}
function f64s(id) {
  if (!objects.has(id)) fail("unknown-object", `no object ${id}`);
  const b = objects.get(id);
  if (b.length % 8) fail("bad-argument", `object ${id} is not whole f64s`);
  return new Float64Array(b.slice().buffer);
}
function slice(id, start, end) {
  const xs = f64s(id);
  if (typeof start !== "bigint" || typeof end !== "bigint") throw new TypeError("u64 arguments must be BigInts");
  if (start > end || end > BigInt(xs.length)) fail("bad-argument", `range ${start}..${end} is outside`);
  return [...xs.subarray(Number(start), Number(end))];
}
export function f64Sum(id, start, end) {
  calls.push(["f64-sum", id, start, end]);
  return slice(id, start, end).reduce((a, b) => a + b, 0);
}
export function f64Min(id, start, end) {
  const xs = slice(id, start, end);
  return xs.length ? Math.min(...xs) : undefined;
}
export function f64Max(id, start, end) {
  const xs = slice(id, start, end);
  return xs.length ? Math.max(...xs) : undefined;
}
export function f64Dot(a, aStart, b, bStart, len) {
  calls.push(["f64-dot", a, aStart, b, bStart, len]);
  const xs = slice(a, aStart, aStart + len);
  const ys = slice(b, bStart, bStart + len);
  return xs.reduce((acc, x, i) => acc + x * ys[i], 0);
}
export function mapView() {
  fail("view-error", "not in tests");
}
export function releaseView() {}
export function submit(module, fn, args) {
  calls.push(["submit", module, fn, args]);
  return put(new Uint8Array([0xc0])).id;
}
export function actorCreate(module, cls, args, name) {
  calls.push(["actor-create", module, cls, args, name]);
  return 7n;
}
export function actorLookup(name) {
  if (name !== "known") fail("unknown-actor", `no actor named ${name}`);
  return 7n;
}
export function actorCall(actor, method, args) {
  calls.push(["actor-call", actor, method, args]);
  return put(new Uint8Array([0x2a])).id;
}
