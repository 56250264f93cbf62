// The shared golden MessagePack vectors (tests/golden/msgpack.json at the repository
// root): every vector's value encodes to its bytes (shortest forms), its bytes decode
// to its value, and every invalid input is refused. JavaScript has no float32: such
// vectors are checked on decoding only. Run: node --test test/ (no network, no packages).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { decode, encode, float } from "../src/msgpack.js";

const golden = JSON.parse(
  readFileSync(new URL("../../../tests/golden/msgpack.json", import.meta.url), "utf8"),
);

const hex = (b) => Buffer.from(b).toString("hex");

function goldenBytes(parts) {
  const out = [];
  for (const part of parts) {
    const [byte, times] = part.split("*");
    const b = Buffer.from(byte, "hex");
    for (let i = 0; i < (times === undefined ? 1 : Number(times)); i++) out.push(...b);
  }
  return Uint8Array.from(out);
}

function float64(s) {
  return s === "Infinity" ? Infinity : s === "-Infinity" ? -Infinity : Number(s);
}

function integer(s) {
  const big = BigInt(s);
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(big)
    : big;
}

function bytesOf(hexText, times) {
  const one = Buffer.from(hexText, "hex");
  return Uint8Array.from(Buffer.concat(Array(times).fill(one)));
}

/**
 * What to encode for a description (`null` when JS cannot express it: float32), and
 * what decoding the bytes must give.
 */
function value(desc) {
  const [[tag, v]] = Object.entries(desc).filter(([k]) => k !== "repeat");
  const times = desc.repeat ?? 1;
  switch (tag) {
    case "nil":
      return { enc: null, dec: null, ok: true };
    case "bool":
      return { enc: v, dec: v, ok: true };
    case "int":
      return { enc: integer(v), dec: integer(v), ok: true };
    case "f64":
      return { enc: float(float64(v)), dec: float64(v), ok: true };
    case "f32":
      return { enc: undefined, dec: float64(v), ok: false };
    case "str":
      return { enc: v.repeat(times), dec: v.repeat(times), ok: true };
    case "bin":
      return { enc: bytesOf(v, times), dec: bytesOf(v, times), ok: true };
    case "array": {
      const items = Array(times).fill(v.map(value)).flat();
      return { enc: items.map((x) => x.enc), dec: items.map((x) => x.dec), ok: items.every((x) => x.ok) };
    }
    case "map": {
      const pairs = v.map(([k, x]) => [value(k), value(x)]);
      const allStrings = pairs.every(([k]) => typeof k.dec === "string");
      return {
        enc: new Map(pairs.map(([k, x]) => [k.enc, x.enc])),
        dec: allStrings
          ? Object.fromEntries(pairs.map(([k, x]) => [k.dec, x.dec]))
          : new Map(pairs.map(([k, x]) => [k.dec, x.dec])),
        ok: pairs.every(([k, x]) => k.ok && x.ok),
      };
    }
    default:
      throw new Error(`unknown value tag ${tag}`);
  }
}

test("golden vectors encode to their bytes", () => {
  let checked = 0;
  for (const v of golden.vectors) {
    const { enc, ok } = value(v.value);
    if (v.encode === false || !ok) continue;
    assert.equal(hex(encode(enc)), hex(goldenBytes(v.hex)), v.name);
    checked++;
  }
  assert.ok(checked > 50, `${checked} vectors`);
});

test("golden vectors decode to their values", () => {
  for (const v of golden.vectors) {
    assert.deepStrictEqual(decode(goldenBytes(v.hex)), value(v.value).dec, v.name);
  }
});

test("golden invalid inputs are refused", () => {
  for (const v of golden.invalid) {
    assert.throws(() => decode(goldenBytes(v.hex)), undefined, v.name);
  }
});
