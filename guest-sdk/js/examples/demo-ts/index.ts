// The seed demo in TypeScript, plus the rest of the SDK's surface: put/get, nested
// tasks, named actors and logs from inside a task.
//
//   guest-sdk/js/build.sh guest-sdk/js/examples/demo-ts target/guests/ts_demo.wasm
//
// build.sh type-checks this file with tsc against reef.d.ts, bundles it with esbuild
// and compiles it with componentize-js, like a JS guest.
import {
  BadArgument,
  createActor,
  float,
  get,
  lookupActor,
  put,
  submit,
  typed,
  type Float,
  type ObjectRef,
} from "reef";

export const tasks = {
  /** sum_slice(xs: object of f64, start: u64, end: u64) -> f64 */
  sum_slice: typed(["object", "u64", "u64"], (xs: ObjectRef, start: number, end: number): Float => {
    // Summed by the node over the stored object: nothing is copied into the guest.
    const n: number = xs.f64Length();
    if (start > end || end > n) {
      throw new BadArgument(`range ${start}..${end} is outside 0..${n}`);
    }
    return float(xs.sumF64(start, end));
  }),

  noop: (): null => null,

  /** echo(data) -> data (raw bytes) */
  echo: typed(["bytes"], (data: Uint8Array): Uint8Array => data),

  add: typed(["f64", "f64"], (a: number, b: number): Float => float(a + b)),

  /** fail(msg: str): throws a TypeError from a nested function. */
  fail: typed(["str"], function fail(msg: string): never {
    return explode(msg);
  }),

  /** stats(xs: object of f64) -> { n, min, max, mean } */
  stats: typed(["object"], (xs: ObjectRef) => {
    const v = xs.f64s();
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    for (const x of v) {
      if (x < min) min = x;
      if (x > max) max = x;
      sum += x;
    }
    return { n: v.length, min: float(min), max: float(max), mean: float(v.length ? sum / v.length : 0) };
  }),

  /** put_get(value) -> value: puts a value as an object and reads it back. */
  put_get: typed(["any"], (value) => {
    const ref = put(value);
    console.log(`put object ${ref.id} of ${ref.size} bytes`); // console.* goes to the task's log
    return get(ref) as never;
  }),

  /** nested_add(a: f64, b: f64) -> f64: submits `add` of this module and waits for it. */
  nested_add: typed(["f64", "f64"], (a: number, b: number) => float(get(submit("add", a, b)) as number)),

  /** nested_sum(xs: object, parts: u64) -> f64: sum_slice over `parts` slices, as nested tasks. */
  nested_sum: typed(["object", "u64"], (xs: ObjectRef, parts: number) => {
    const n = xs.size / 8;
    const refs: ObjectRef[] = [];
    for (let p = 0; p < parts; p++) {
      refs.push(submit("sum_slice", xs, Math.floor((p * n) / parts), Math.floor(((p + 1) * n) / parts)));
    }
    return float(refs.reduce((acc, r) => acc + (get(r) as number), 0));
  }),

  /** actor_roundtrip(name: str) -> [f64, f64]: creates a named Accumulator, finds it by name, calls it. */
  actor_roundtrip: typed(["str"], (name: string) => {
    const acc = createActor("Accumulator", [float(1)], { name });
    acc.call("add", 2);
    const again = lookupActor(name);
    return [again.callValue("add", 3), again.callValue("total")] as number[];
  }),
};

function explode(msg: string): never {
  throw new TypeError(msg);
}

/** Accumulator(initial: f64 = 0): add(x: f64) -> f64, total() -> f64. */
class Accumulator {
  static args = { constructor: ["f64?"], add: ["f64"], total: [] } as const;
  private sum: number;

  constructor(initial: number = 0) {
    this.sum = initial;
  }
  add(x: number): Float {
    this.sum += x;
    return float(this.sum);
  }
  total(): Float {
    return float(this.sum);
  }
}

export const actors = { Accumulator };
