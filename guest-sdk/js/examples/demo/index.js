// The seed demo in JavaScript: the same tasks and actor as examples/guests/demo (Rust).
//
//   guest-sdk/js/build.sh guest-sdk/js/examples/demo target/guests/js_demo.wasm
//
// Arguments come MessagePack-decoded; `typed([...], fn)` declares their types so a
// wrong argument fails with BAD_ARGUMENT. Results are MessagePack; `float(x)` keeps a
// whole number a float64, as the f64 results of the Rust demo are.
import { BadArgument, float, log, typed } from "reef";

export const tasks = {
  /** sum_slice(xs: object of f64, start: u64, end: u64) -> f64 */
  sum_slice: typed(["object", "u64", "u64"], (xs, start, end) => {
    // Summed by the node over the stored object: nothing is copied in (xs.f64s()
    // would copy it into a Float64Array, then a JS loop reads it at a few hundred MB/s).
    const n = xs.f64Length();
    if (start > end || end > n) {
      throw new BadArgument(`range ${start}..${end} is outside 0..${n}`);
    }
    return float(xs.sumF64(start, end));
  }),

  /** noop() -> nil */
  noop() {
    return null;
  },

  /** echo(data) -> data: the raw bytes of argument 0 (inline or object), unchanged. */
  echo: typed(["bytes"], (data) => data),

  /** add(a: f64, b: f64) -> f64 */
  add: typed(["f64", "f64"], (a, b) => float(a + b)),

  /** fail(msg: str): throws an Error; the driver gets its text and the JS stack. */
  fail: typed(["str"], function fail(msg) {
    log.warn(`about to fail with ${msg}`);
    throw new Error(msg);
  }),
};

/** Accumulator(initial: f64 = 0): add(x: f64) -> f64 (the running total), total() -> f64. */
class Accumulator {
  static args = { constructor: ["f64?"], add: ["f64"], total: [] };

  constructor(initial = 0) {
    this.sum = initial;
  }
  add(x) {
    this.sum += x;
    return float(this.sum);
  }
  total() {
    return float(this.sum);
  }
}

export const actors = { Accumulator };
