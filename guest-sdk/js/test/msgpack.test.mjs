// Unit tests of the SDK's MessagePack codec (run on the build machine: node --test test/).
import assert from "node:assert/strict";
import { test } from "node:test";

import { decode, decodePrefix, encode, float } from "../src/msgpack.js";

const hex = (b) => Buffer.from(b).toString("hex");

test("integers use the shortest form", () => {
  assert.equal(hex(encode(0)), "00");
  assert.equal(hex(encode(127)), "7f");
  assert.equal(hex(encode(128)), "cc80");
  assert.equal(hex(encode(256)), "cd0100");
  assert.equal(hex(encode(65536)), "ce00010000");
  assert.equal(hex(encode(2 ** 32)), "cf0000000100000000");
  assert.equal(hex(encode(-1)), "ff");
  assert.equal(hex(encode(-32)), "e0");
  assert.equal(hex(encode(-33)), "d0df");
  assert.equal(hex(encode(-129)), "d1ff7f");
  assert.equal(hex(encode(-40000)), "d2ffff63c0");
  assert.equal(hex(encode(-(2 ** 40))), "d3ffffff0000000000");
  assert.equal(hex(encode(2n ** 64n - 1n)), "cfffffffffffffffff");
  assert.equal(hex(encode(-(2n ** 63n))), "d38000000000000000");
  assert.throws(() => encode(2n ** 64n), /64 bits/);
});

test("floats: fractions, float() and -0 are float64", () => {
  assert.equal(hex(encode(1.5)), "cb3ff8000000000000");
  assert.equal(hex(encode(float(10))), "cb4024000000000000");
  assert.equal(hex(encode(-0)), "cb8000000000000000");
  assert.equal(decode(Uint8Array.from([0xca, 0x3f, 0xc0, 0, 0])), 1.5);
});

test("big integers decode as BigInt, safe ones as numbers", () => {
  const id = (5_000_000n << 40n) | 7n;
  assert.equal(decode(encode(id)), id);
  assert.equal(decode(encode(2 ** 53 - 1)), 2 ** 53 - 1);
  assert.equal(decode(encode(-(2n ** 63n))), -(2n ** 63n));
});

test("strings, bytes, arrays and maps round-trip", () => {
  const v = { s: "héllo", b: new Uint8Array([1, 2, 3]), a: [1, null, true, false, 2.5], m: { x: [] } };
  assert.deepEqual(decode(encode(v)), v);
  const long = "x".repeat(70000);
  assert.equal(decode(encode(long)), long);
  const arr = Array.from({ length: 70000 }, (_, i) => i);
  assert.deepEqual(decode(encode(arr)), arr);
  const m = new Map([[1, "one"], ["two", 2]]);
  assert.deepEqual(decode(encode(m)), m);
  assert.equal(hex(encode(new Uint8Array([7]))), "c40107");
  assert.equal(hex(encode(new Float64Array([1]))), "c408000000000000f03f");
});

test("a __proto__ key is data", () => {
  const bytes = Uint8Array.from([0x81, 0xa9, ...Buffer.from("__proto__"), 0x01]);
  const o = decode(bytes);
  assert.equal(Object.getPrototypeOf(o), Object.prototype);
  assert.deepEqual(Object.keys(o), ["__proto__"]);
});

test("bad input is refused with a reason", () => {
  assert.throws(() => decode(Uint8Array.from([0xcb, 1, 2])), /truncated/);
  assert.throws(() => decode(Uint8Array.from([0x01, 0x02])), /trailing/);
  assert.throws(() => decode(Uint8Array.from([0xc1])), /invalid MessagePack byte 0xc1/);
  assert.throws(() => decode(Uint8Array.from([0xd4, 1, 1])), /extension/);
  assert.throws(() => decode(Uint8Array.from([0xa2, 0xff, 0xfe])), /UTF-8/);
  assert.throws(() => decode(Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff])), /truncated/);
  const deep = new Uint8Array(600).fill(0x91);
  assert.throws(() => decode(deep), /deeper/);
  assert.deepEqual(decodePrefix(Uint8Array.from([0x01, 0x02])), [1, 1]);
});

test("encoding refuses what MessagePack cannot hold", () => {
  assert.throws(() => encode(() => 1), /cannot encode a function/);
  assert.throws(() => encode(Symbol("s")), /cannot encode a symbol/);
});
