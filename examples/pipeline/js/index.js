// The JavaScript piece of the cross-language pipeline: an actor that keeps running word
// totals. Python tokenizes, C counts tokens over a zero-copy view, Go merges counts,
// and this actor adds each merged map to its totals.
//
//   guest-sdk/js/build.sh examples/pipeline/js target/guests/pipeline_js.wasm
//
// Totals():
//   add(counts: map {str: u64}) -> u64     number of distinct words so far
//   top(n: u64) -> [[word: str, count: u64], ...]   by count desc, then word asc
import { BadArgument } from "reef";

export class Totals {
  static args = { constructor: [], add: ["ref"], top: ["u64"] };

  constructor() {
    /** word -> count */
    this.counts = new Map();
  }

  /** Adds a map of counts (inline, or an object such as merge_counts' result). */
  add(counts) {
    const map = typeof counts?.value === "function" ? counts.value() : counts;
    for (const [word, n] of entries(map)) {
      if (typeof word !== "string") throw new BadArgument(`counts: a key is not a string (${typeof word})`);
      if (!(typeof n === "bigint" || Number.isSafeInteger(n)) || n < 0) {
        throw new BadArgument(`counts: the count of ${JSON.stringify(word)} is not a u64`);
      }
      this.counts.set(word, (this.counts.get(word) ?? 0) + Number(n));
    }
    return this.counts.size;
  }

  /** The n most frequent words. */
  top(n) {
    return [...this.counts]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, n);
  }
}

function entries(map) {
  if (map instanceof Map) return map.entries();
  if (map !== null && typeof map === "object" && !Array.isArray(map) && !(map instanceof Uint8Array)) {
    return Object.entries(map);
  }
  throw new BadArgument("counts: expected a map {str: u64}");
}

export const actors = { Totals };

