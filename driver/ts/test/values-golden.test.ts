// The shared golden MessagePack vectors (tests/golden/msgpack.json): the driver's
// values codec must encode and decode as every guest SDK does. No node is needed.
// What the driver's values cannot say is skipped on encoding only: float32, a whole
// float64 (a whole number encodes as an int, as documented in values.ts) and a map
// key that is not a string.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { decodeValue, encodeValue } from "@reef/driver";

import { repo } from "./helpers.js";

interface Vector {
  name: string;
  value: Desc;
  hex: string[];
  encode?: boolean;
}
type Desc = { [tag: string]: unknown; repeat?: number };

const golden = JSON.parse(readFileSync(join(repo, "tests/golden/msgpack.json"), "utf8")) as {
  vectors: Vector[];
  invalid: { name: string; hex: string[] }[];
};

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

function goldenBytes(parts: string[]): Uint8Array {
  const chunks = parts.map((part) => {
    const [byte, times] = part.split("*");
    return Buffer.from(byte.repeat(times === undefined ? 1 : Number(times)), "hex");
  });
  return Uint8Array.from(Buffer.concat(chunks));
}

function float64(s: string): number {
  return s === "Infinity" ? Infinity : s === "-Infinity" ? -Infinity : Number(s);
}

/** A number when it is a safe integer, else a bigint. */
function integer(big: bigint): number | bigint {
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(big)
    : big;
}

/** Decoded values with every bigint that is a safe integer as a number. */
function normalize(v: unknown): unknown {
  if (typeof v === "bigint") return integer(v);
  if (Array.isArray(v)) return v.map(normalize);
  if (v instanceof Uint8Array) return v;
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)]));
  }
  return v;
}

interface Js {
  enc: unknown;
  dec: unknown;
  /** Whether encoding `enc` says what the description says. */
  ok: boolean;
}

function value(desc: Desc): Js {
  const [[tag, v]] = Object.entries(desc).filter(([k]) => k !== "repeat");
  const times = desc.repeat ?? 1;
  switch (tag) {
    case "nil":
      return { enc: null, dec: null, ok: true };
    case "bool":
      return { enc: v, dec: v, ok: true };
    case "int": {
      const n = integer(BigInt(v as string));
      return { enc: n, dec: n, ok: true };
    }
    case "f64": {
      const x = float64(v as string);
      return { enc: x, dec: x, ok: !Number.isInteger(x) };
    }
    case "f32":
      return { enc: undefined, dec: float64(v as string), ok: false };
    case "str":
      return { enc: (v as string).repeat(times), dec: (v as string).repeat(times), ok: true };
    case "bin": {
      const b = Uint8Array.from(Buffer.from((v as string).repeat(times), "hex"));
      return { enc: b, dec: b, ok: true };
    }
    case "array": {
      const items = Array<Js[]>(times)
        .fill((v as Desc[]).map(value))
        .flat();
      return { enc: items.map((x) => x.enc), dec: items.map((x) => x.dec), ok: items.every((x) => x.ok) };
    }
    case "map": {
      const pairs = (v as [Desc, Desc][]).map(([k, x]) => [value(k), value(x)] as const);
      return {
        enc: new Map(pairs.map(([k, x]) => [k.enc, x.enc])),
        // Keys become an object's property names.
        dec: Object.fromEntries(pairs.map(([k, x]) => [String(k.dec), x.dec])),
        // Map keys are strings (an object's property names).
        ok: pairs.every(([k, x]) => typeof k.dec === "string" && k.ok && x.ok),
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
    assert.equal(hex(encodeValue(enc)), hex(goldenBytes(v.hex)), v.name);
    checked++;
  }
  assert.ok(checked > 50, `${checked} vectors`);
});

test("golden vectors decode to their values", () => {
  for (const v of golden.vectors) {
    const got = normalize(decodeValue(goldenBytes(v.hex), { bigint: true }));
    assert.deepStrictEqual(got, value(v.value).dec, v.name);
  }
});

test("golden invalid inputs are refused", () => {
  for (const v of golden.invalid) {
    assert.throws(() => decodeValue(goldenBytes(v.hex)), Error, v.name);
  }
});
