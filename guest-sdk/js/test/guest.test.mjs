// Unit tests of the SDK's dispatch (describe, run-task, actors, argument types, errors)
// against a fake host: node --import ./test/register.mjs --test test/
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import * as host from "./fake-host.mjs";
import {
  actor,
  BadArgument,
  CODES,
  ReefError,
  createActor,
  encode,
  float,
  get,
  lookupActor,
  makeGuest,
  ObjectRef,
  put,
  raw,
  submit,
  task,
  typed,
} from "../src/reef.js";

const inline = (v) => ({ tag: "inline", val: encode(v) });
const objectArg = (ref) => ({ tag: "object", val: { id: ref.id, size: BigInt(ref.size) } });
const hex = (b) => Buffer.from(b).toString("hex");

/** The error `f` throws: "CODE: message" for an export's failure, else the thrown value. */
function error(f) {
  try {
    f();
  } catch (e) {
    if (e && typeof e === "object" && "payload" in e) {
      const { code, message } = e.payload;
      assert.ok(CODES.includes(code.toUpperCase().replaceAll("-", "_")), code);
      return `${code.toUpperCase().replaceAll("-", "_")}: ${message}`;
    }
    return e;
  }
  assert.fail("expected an error");
}

task(function registered(x) {
  return x * 2;
});

class Counter {
  static args = { constructor: ["u64?"], incr: ["u64?"] };
  constructor(n = 0) {
    this.n = n;
  }
  incr(by = 1) {
    return (this.n += by);
  }
  get() {
    return this.n;
  }
  _hidden() {}
}
actor(Counter);

const user = {
  tasks: {
    add: typed(["f64", "f64"], (a, b) => float(a + b)),
    echo: typed(["bytes"], (d) => d),
    sum: typed(["object"], (xs) => float(xs.f64s().reduce((a, b) => a + b, 0))),
    plain(a, b) {
      return [a, b];
    },
    fail() {
      throw new TypeError("nope");
    },
    coded() {
      throw new BadArgument("custom");
    },
    promise: async () => 1,
    oom() {
      throw "out of memory";
    },
  },
  actors: {},
};
const guest = makeGuest(user);

test("describe lists tasks, classes and methods", () => {
  const d = guest.describe();
  assert.equal(d.sdk, "reef-guest-js/0.1.0");
  assert.deepEqual(d.tasks.sort(), ["add", "coded", "echo", "fail", "oom", "plain", "promise", "registered", "sum"]);
  assert.deepEqual(d.actors, [{ name: "Counter", methods: ["incr", "get"] }]);
});

test("tasks: decoded arguments, float64 results, raw bytes", () => {
  const out = guest.runTask("add", [inline(1), inline(2.5)]);
  assert.equal(out.tag, "bytes");
  assert.equal(hex(out.val), "cb400c000000000000");
  assert.equal(hex(guest.runTask("echo", [{ tag: "inline", val: Uint8Array.from([0xc1, 0]) }]).val), "c100");
  assert.deepEqual(guest.runTask("registered", [inline(21)]).val, encode(42));
  // Inline bytes that are not MessagePack arrive as a Uint8Array.
  assert.deepEqual(guest.runTask("plain", [{ tag: "inline", val: Uint8Array.from([1, 2]) }, inline("x")]).val, encode([Uint8Array.from([1, 2]), "x"]));
});

test("object arguments: ObjectRef with BigInt ids above 2^53, typed views", () => {
  const ref = put(new Float64Array([1, 2, 3.5]));
  assert.ok(ref.id > 2n ** 53n);
  assert.equal(ref.size, 24);
  const out = guest.runTask("sum", [objectArg(ref)]);
  assert.equal(hex(out.val), hex(encode(float(6.5))));
  assert.deepEqual([...new ObjectRef(ref.id).f64s()], [1, 2, 3.5]);
});

test("f64 reductions pass BigInt ranges to the host", () => {
  const xs = put(new Float64Array([1, 2, 3, 4]));
  const ys = put(new Float64Array([2, 2, 2]));
  assert.equal(xs.f64Length(), 4);
  assert.equal(xs.sumF64(), 10);
  assert.equal(xs.sumF64(1, 3), 5);
  assert.deepEqual(host.calls.at(-1), ["f64-sum", xs.id, 1n, 3n]);
  assert.equal(xs.minF64(), 1);
  assert.equal(xs.maxF64(2n), 4);
  assert.equal(xs.minF64(2, 2), undefined);
  assert.equal(xs.dotF64(ys, 1), 18);
  assert.deepEqual(host.calls.at(-1), ["f64-dot", xs.id, 1n, ys.id, 0n, 3n]);
  const bad = (e) => e instanceof ReefError && e.code === "BAD_ARGUMENT";
  assert.throws(() => xs.sumF64(1, 9), bad);
  assert.throws(() => xs.sumF64(-1), (e) => bad(e) && /^start must be a non-negative integer/.test(e.message));
  assert.throws(() => put(new Uint8Array(3)).f64Length(), bad);
});

test("bad arguments and unknown names give coded errors", () => {
  assert.equal(error(() => guest.runTask("add", [inline(1)])), "BAD_ARGUMENT: task add expects 2 arguments, got 1");
  assert.match(error(() => guest.runTask("add", [inline("x"), inline(1)])), /^BAD_ARGUMENT: argument 0: expected f64, got str \("x"\)$/);
  assert.match(error(() => guest.runTask("sum", [inline(1)])), /^BAD_ARGUMENT: argument 0: expected an object/);
  assert.match(error(() => guest.runTask("nope", [])), /^UNKNOWN_FUNCTION: unknown task `nope`/);
  assert.equal(error(() => guest.runTask("coded", [])), "BAD_ARGUMENT: custom");
  assert.match(error(() => guest.runTask("promise", [])), /returned a Promise/);
  assert.match(error(() => guest.runTask("oom", [])), /^MEMORY_LIMIT: the guest ran out of memory/);
});

test("a thrown Error becomes its text and the JS stack", () => {
  const e = error(() => guest.runTask("fail", []));
  assert.match(e, /^GUEST_ERROR: TypeError: nope\n\nStack \(most recent call first\):\n/);
  assert.match(e, /fail/);
});

test("actors: init once, typed methods, unknown and private methods refused", () => {
  const g = makeGuest({});
  g.actorInit("Counter", [inline(5)]);
  assert.deepEqual(g.actorCall("incr", []).val, encode(6));
  assert.deepEqual(g.actorCall("incr", [inline(4)]).val, encode(10));
  assert.match(error(() => g.actorCall("incr", [inline(-1)])), /^BAD_ARGUMENT: argument 0: expected u64/);
  assert.match(error(() => g.actorCall("_hidden", [])), /^UNKNOWN_FUNCTION/);
  assert.match(error(() => g.actorInit("Counter", [])), /already holds an actor/);
  assert.match(error(() => makeGuest({}).actorInit("Nope", [])), /^UNKNOWN_FUNCTION: unknown actor class `Nope`/);
});

test("host calls: submit, actors, get; host errors keep their code", () => {
  const ref = put(encode({ a: 1 }));
  assert.deepEqual(get(ref), { a: 1 });
  const r = submit("add", 1, ref, raw(Uint8Array.from([9])));
  assert.ok(r instanceof ObjectRef);
  const [, module, fn, args] = host.calls.findLast((c) => c[0] === "submit");
  assert.equal(module, "");
  assert.equal(fn, "add");
  assert.deepEqual(args[0], inline(1));
  assert.equal(args[1].tag, "object");
  assert.deepEqual(args[2], { tag: "inline", val: Uint8Array.from([9]) });
  const a = createActor("Counter", [1], { name: "c" });
  assert.equal(a.callValue("get"), 42);
  assert.equal(lookupActor("known").id, 7n);
  const e = error(() => lookupActor("ghost"));
  assert.equal(e.code, "UNKNOWN_ACTOR");
  assert.equal(error(() => guest.runTask("sum", [{ tag: "object", val: { id: 5n, size: 8n } }])).split("\n")[0], "UNKNOWN_OBJECT: get of object 5: no object 5");
  assert.match(error(() => guest.runTask("sum", [{ tag: "object", val: { id: 13n, size: 8n } }])), /^MEMORY_LIMIT: get of object 13: out of memory/);
});

test("any code can be raised; unknown codes are refused", () => {
  const g = makeGuest({ tasks: { taken: () => { throw new ReefError("mine", "NAME_TAKEN"); } } });
  assert.equal(error(() => g.runTask("taken", [])), "NAME_TAKEN: mine");
  assert.throws(() => new ReefError("x", "NOT_A_CODE"), TypeError);
});

test("CODES match the golden layouts computed from wit/", () => {
  const path = new URL("../../../tests/golden/abi-layouts.json", import.meta.url);
  const golden = JSON.parse(readFileSync(path, "utf8"));
  assert.equal(golden.package, "reef:runtime@0.2.0");
  const wit = Object.entries(golden)
    .filter(([k]) => k.startsWith("case.code."))
    .sort((a, b) => a[1] - b[1]);
  assert.deepEqual(wit.map(([, v]) => v), [...CODES.keys()]);
  assert.deepEqual(wit.map(([k]) => k.slice("case.code.".length).toUpperCase().replaceAll("-", "_")), [...CODES]);
});
