import * as host from "reef:runtime/host@0.2.0";

function argBytes(a) {
  if (a.tag === "inline") return a.val;
  return host.get(a.val.id);
}

export const guest = {
  describe() {
    return { sdk: "probe", tasks: ["noop", "sum", "ids", "echo"], actors: [] };
  },
  runTask(name, args) {
    if (name === "loop") {
      const n = 1 << 20;
      const xs = new Float64Array(n);
      for (let i = 0; i < n; i++) xs[i] = i;
      let s = 0;
      for (let i = 0; i < n; i++) s += xs[i];
      const out = new Uint8Array(9);
      out[0] = 0xcb;
      new DataView(out.buffer).setFloat64(1, s);
      return { tag: "bytes", val: out };
    }
    if (name === "noop") return { tag: "bytes", val: new Uint8Array([0xc0]) };
    if (name === "echo") return { tag: "bytes", val: argBytes(args[0]) };
    if (name === "ids") {
      const a = args[0];
      const s = a.tag === "object" ? `${typeof a.val.id} ${a.val.id} ${a.val.size}` : "inline";
      return { tag: "bytes", val: Uint8Array.from(Array.from(s, (c) => c.charCodeAt(0))) };
    }
    if (name === "sum") {
      const b = argBytes(args[0]);
      const xs = new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8);
      let s = 0;
      for (let i = 0; i < xs.length; i++) s += xs[i];
      const out = new Uint8Array(9);
      out[0] = 0xcb;
      new DataView(out.buffer).setFloat64(1, s);
      return { tag: "bytes", val: out };
    }
    throw `UNKNOWN_FUNCTION: ${name}`;
  },
  actorInit(cls, args) { throw "UNKNOWN_FUNCTION: no actors"; },
  actorCall(m, args) { throw "UNKNOWN_FUNCTION: no actors"; },
};
