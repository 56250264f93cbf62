// MessagePack for Reef's JavaScript guests: a small, dependency-free encoder and
// decoder following docs/encoding.md (shortest forms; integers read as numbers when
// they are safe integers, as BigInt otherwise).
//
// JS -> MessagePack:
//   null, undefined        nil
//   boolean                bool
//   number                 int (shortest) if it is a safe integer, else float64
//   Float(x) (float())     float64 always (for results a reader expects as f64)
//   bigint                 int (shortest; u64/i64 range)
//   string                 str
//   Uint8Array, ArrayBuffer bin
//   other typed arrays     bin of their raw little-endian bytes
//   Array                  array
//   Map                    map (any keys)
//   plain object           map with string keys
//
// MessagePack -> JS: nil -> null, ints -> number (BigInt beyond 2^53), float32/64 ->
// number, str -> string, bin -> Uint8Array, array -> Array, map -> plain object when
// every key is a string, else Map. Extension types are an error.

/** A number that always encodes as float64 (MessagePack `0xcb`). */
export class Float {
  constructor(value) {
    this.value = Number(value);
  }
  valueOf() {
    return this.value;
  }
  toString() {
    return String(this.value);
  }
  toJSON() {
    return this.value;
  }
}

/** Marks `x` to be encoded as float64 even when it is a whole number. */
export function float(x) {
  return new Float(x);
}

const MAX_DEPTH = 512;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

class Writer {
  constructor() {
    this.buf = new Uint8Array(64);
    this.view = new DataView(this.buf.buffer);
    this.len = 0;
  }
  reserve(n) {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(b) {
    this.reserve(1);
    this.buf[this.len++] = b;
  }
  u8u8(a, b) {
    this.reserve(2);
    this.buf[this.len++] = a;
    this.buf[this.len++] = b;
  }
  u8u16(a, b) {
    this.reserve(3);
    this.buf[this.len] = a;
    this.view.setUint16(this.len + 1, b);
    this.len += 3;
  }
  u8u32(a, b) {
    this.reserve(5);
    this.buf[this.len] = a;
    this.view.setUint32(this.len + 1, b);
    this.len += 5;
  }
  u8u64(a, b) {
    this.reserve(9);
    this.buf[this.len] = a;
    this.view.setBigUint64(this.len + 1, b);
    this.len += 9;
  }
  u8i64(a, b) {
    this.reserve(9);
    this.buf[this.len] = a;
    this.view.setBigInt64(this.len + 1, b);
    this.len += 9;
  }
  f64(x) {
    this.reserve(9);
    this.buf[this.len] = 0xcb;
    this.view.setFloat64(this.len + 1, x);
    this.len += 9;
  }
  bytes(b) {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  result() {
    return this.buf.slice(0, this.len);
  }
}

function writeInt(w, n) {
  // n is a safe integer (number) here.
  if (n >= 0) {
    if (n < 0x80) w.u8(n);
    else if (n < 0x100) w.u8u8(0xcc, n);
    else if (n < 0x10000) w.u8u16(0xcd, n);
    else if (n < 0x100000000) w.u8u32(0xce, n);
    else w.u8u64(0xcf, BigInt(n));
  } else {
    if (n >= -32) w.u8(n & 0xff);
    else if (n >= -0x80) w.u8u8(0xd0, n & 0xff);
    else if (n >= -0x8000) w.u8u16(0xd1, n & 0xffff);
    else if (n >= -0x80000000) w.u8u32(0xd2, n >>> 0);
    else w.u8i64(0xd3, BigInt(n));
  }
}

function writeBigInt(w, n) {
  if (n >= -(2n ** 63n) && n < 2n ** 64n) {
    if (n >= -0x80000000n && n < 0x100000000n) return writeInt(w, Number(n));
    if (n >= 0n) return w.u8u64(0xcf, n);
    return w.u8i64(0xd3, n);
  }
  throw new TypeError(`BigInt ${n} does not fit in 64 bits`);
}

function writeLen(w, n, fix, fixMax, c8, c16, c32) {
  if (fix !== null && n <= fixMax) w.u8(fix | n);
  else if (c8 !== null && n < 0x100) w.u8u8(c8, n);
  else if (n < 0x10000) w.u8u16(c16, n);
  else if (n <= 0xffffffff) w.u8u32(c32, n);
  else throw new RangeError(`${n} elements are too many for MessagePack`);
}

function writeValue(w, v, depth) {
  if (depth > MAX_DEPTH) throw new RangeError(`value nested deeper than ${MAX_DEPTH}`);
  switch (typeof v) {
    case "undefined":
      return w.u8(0xc0);
    case "boolean":
      return w.u8(v ? 0xc3 : 0xc2);
    case "number":
      if (Number.isSafeInteger(v) && !Object.is(v, -0)) return writeInt(w, v);
      return w.f64(v);
    case "bigint":
      return writeBigInt(w, v);
    case "string": {
      const b = textEncoder.encode(v);
      writeLen(w, b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      return w.bytes(b);
    }
    case "object":
      break;
    default:
      throw new TypeError(`cannot encode a ${typeof v} as MessagePack`);
  }
  if (v === null) return w.u8(0xc0);
  if (v instanceof Float) return w.f64(v.value);
  if (v instanceof Uint8Array) {
    writeLen(w, v.length, null, 0, 0xc4, 0xc5, 0xc6);
    return w.bytes(v);
  }
  if (ArrayBuffer.isView(v)) return writeValue(w, typedBytes(v), depth);
  if (v instanceof ArrayBuffer) return writeValue(w, new Uint8Array(v), depth);
  if (Array.isArray(v)) {
    writeLen(w, v.length, 0x90, 15, null, 0xdc, 0xdd);
    for (const x of v) writeValue(w, x, depth + 1);
    return;
  }
  if (v instanceof Map) {
    writeLen(w, v.size, 0x80, 15, null, 0xde, 0xdf);
    for (const [k, x] of v) {
      writeValue(w, k, depth + 1);
      writeValue(w, x, depth + 1);
    }
    return;
  }
  if (typeof v.toMsgpack === "function") return writeValue(w, v.toMsgpack(), depth + 1);
  const keys = Object.keys(v);
  writeLen(w, keys.length, 0x80, 15, null, 0xde, 0xdf);
  for (const k of keys) {
    writeValue(w, k, depth + 1);
    writeValue(w, v[k], depth + 1);
  }
}

/** The raw little-endian bytes of a typed array or DataView (no copy). */
export function typedBytes(v) {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Encodes a JS value as MessagePack. */
export function encode(value) {
  const w = new Writer();
  writeValue(w, value, 0);
  return w.result();
}

class Reader {
  constructor(bytes) {
    if (!(bytes instanceof Uint8Array)) {
      if (!ArrayBuffer.isView(bytes)) throw new TypeError("decode: expected bytes");
      bytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    this.b = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }
  need(n) {
    if (this.pos + n > this.b.length) {
      throw new RangeError(`truncated MessagePack: needs ${n} more bytes at offset ${this.pos}`);
    }
  }
  u8() {
    this.need(1);
    return this.b[this.pos++];
  }
  u16() {
    this.need(2);
    const x = this.view.getUint16(this.pos);
    this.pos += 2;
    return x;
  }
  u32() {
    this.need(4);
    const x = this.view.getUint32(this.pos);
    this.pos += 4;
    return x;
  }
  take(n) {
    this.need(n);
    const s = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}

function intResult(big) {
  return big >= -9007199254740991n && big <= 9007199254740991n ? Number(big) : big;
}

function readValue(r, depth) {
  if (depth > MAX_DEPTH) throw new RangeError(`MessagePack nested deeper than ${MAX_DEPTH}`);
  const c = r.u8();
  if (c < 0x80) return c;
  if (c >= 0xe0) return c - 0x100;
  if (c >= 0xa0 && c <= 0xbf) return readStr(r, c & 0x1f);
  if (c >= 0x90 && c <= 0x9f) return readArray(r, c & 0x0f, depth);
  if (c >= 0x80 && c <= 0x8f) return readMap(r, c & 0x0f, depth);
  switch (c) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
      return r.take(r.u8()).slice();
    case 0xc5:
      return r.take(r.u16()).slice();
    case 0xc6:
      return r.take(r.u32()).slice();
    case 0xca: {
      r.need(4);
      const x = r.view.getFloat32(r.pos);
      r.pos += 4;
      return x;
    }
    case 0xcb: {
      r.need(8);
      const x = r.view.getFloat64(r.pos);
      r.pos += 8;
      return x;
    }
    case 0xcc:
      return r.u8();
    case 0xcd:
      return r.u16();
    case 0xce:
      return r.u32();
    case 0xcf: {
      r.need(8);
      const x = r.view.getBigUint64(r.pos);
      r.pos += 8;
      return intResult(x);
    }
    case 0xd0:
      return (r.u8() << 24) >> 24;
    case 0xd1:
      return (r.u16() << 16) >> 16;
    case 0xd2:
      return r.u32() | 0;
    case 0xd3: {
      r.need(8);
      const x = r.view.getBigInt64(r.pos);
      r.pos += 8;
      return intResult(x);
    }
    case 0xd9:
      return readStr(r, r.u8());
    case 0xda:
      return readStr(r, r.u16());
    case 0xdb:
      return readStr(r, r.u32());
    case 0xdc:
      return readArray(r, r.u16(), depth);
    case 0xdd:
      return readArray(r, r.u32(), depth);
    case 0xde:
      return readMap(r, r.u16(), depth);
    case 0xdf:
      return readMap(r, r.u32(), depth);
    default:
      if ((c >= 0xd4 && c <= 0xd8) || (c >= 0xc7 && c <= 0xc9)) {
        throw new TypeError(`MessagePack extension type (0x${c.toString(16)}) is not supported`);
      }
      throw new TypeError(`invalid MessagePack byte 0x${c.toString(16)} at offset ${r.pos - 1}`);
  }
}

function readStr(r, n) {
  try {
    return textDecoder.decode(r.take(n));
  } catch (e) {
    if (e instanceof RangeError) throw e;
    throw new TypeError(`MessagePack string at offset ${r.pos - n} is not valid UTF-8`);
  }
}

function readArray(r, n, depth) {
  // Every element takes at least one byte: reject impossible lengths before allocating.
  r.need(n);
  const a = new Array(n);
  for (let i = 0; i < n; i++) a[i] = readValue(r, depth + 1);
  return a;
}

function readMap(r, n, depth) {
  r.need(2 * n);
  const keys = new Array(n);
  const vals = new Array(n);
  let allStrings = true;
  for (let i = 0; i < n; i++) {
    keys[i] = readValue(r, depth + 1);
    vals[i] = readValue(r, depth + 1);
    if (typeof keys[i] !== "string") allStrings = false;
  }
  if (!allStrings) return new Map(keys.map((k, i) => [k, vals[i]]));
  const o = {};
  for (let i = 0; i < n; i++) {
    // defineProperty: a key named "__proto__" is data, not the prototype.
    Object.defineProperty(o, keys[i], {
      value: vals[i],
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return o;
}

/** Decodes one MessagePack value that must span all of `bytes`. */
export function decode(bytes) {
  const r = new Reader(bytes);
  const v = readValue(r, 0);
  if (r.pos !== r.b.length) {
    throw new TypeError(`${r.b.length - r.pos} trailing bytes after the MessagePack value`);
  }
  return v;
}

/** Decodes one value from the start of `bytes`; returns `[value, bytesUsed]`. */
export function decodePrefix(bytes) {
  const r = new Reader(bytes);
  const v = readValue(r, 0);
  return [v, r.pos];
}

/** A short description of a decoded value, for error messages. */
export function describeValue(v) {
  if (v === null || v === undefined) return "nil";
  if (v instanceof Uint8Array) return `bin (${v.length} bytes)`;
  if (Array.isArray(v)) return `array (${v.length} elements)`;
  if (v instanceof Map) return `map (${v.size} entries)`;
  switch (typeof v) {
    case "string":
      return `str (${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "..." : v)})`;
    case "number":
      return Number.isInteger(v) ? `int (${v})` : `float (${v})`;
    case "bigint":
      return `int (${v})`;
    case "boolean":
      return `bool (${v})`;
    case "object":
      if (v && v.constructor && v.constructor.name === "ObjectRef") return "an object";
      return "map";
    default:
      return typeof v;
  }
}
