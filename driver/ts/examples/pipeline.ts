// The cross-language pipeline (examples/pipeline/README.md), driven from TypeScript:
//
//   text --split--> N chunks
//        --Python tokenize (per chunk)--> tokens objects (raw "word\nword...")
//        --C count_tokens (per tokens object, through a zero-copy view)--> {word: count}
//        --Go merge_counts (all the counts)--> {word: count}
//        --JavaScript actor Totals.add(merged); Totals.top(10)--> top words
//
// Every step is submitted before the first result is read: the node runs the
// DAG, and only the final top-10 comes back to this program.
//
// Usage (from driver/ts, after `npm run build`):
//   node dist-test/examples/pipeline.js [--address HOST:PORT] [--chunks N] [--top N]
//        [--text FILE] [--guests DIR] [--json]
// Without --address (or $REEF_ADDRESS) it starts a private node ($REEF_HOST, else
// ../../target/release/host). The token comes from $REEF_TOKEN / $REEF_TOKEN_FILE.

import { readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { Cluster } from "@reef/driver";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");

/** Splits `text` into at most `n` chunks of similar size, cutting only between words. */
export function splitText(text: string, n: number): string[] {
  const isLetter = (c: string | undefined) => c !== undefined && /[A-Za-z]/.test(c);
  const chunks: string[] = [];
  let start = 0;
  for (let i = 1; i <= n && start < text.length; i++) {
    let end = i === n ? text.length : Math.max(start, Math.floor((text.length * i) / n));
    // Never cut inside a word: move the cut to the next non-letter.
    while (end < text.length && isLetter(text[end - 1]) && isLetter(text[end])) end++;
    if (end > start) chunks.push(text.slice(start, end));
    start = end;
  }
  return chunks;
}

export interface PipelineResult {
  top: [string, number][];
  distinct: number;
  chunks: number;
  ms: { register: number; run: number };
}

export async function runPipeline(
  cluster: Cluster,
  options: { text: string; chunks: number; top: number; guests: string },
): Promise<PipelineResult> {
  const t0 = performance.now();
  const module = (lang: string) => cluster.registerFile(join(options.guests, `pipeline_${lang}.wasm`));
  const [py, c, go, js] = await Promise.all([module("python"), module("c"), module("go"), module("js")]);
  const t1 = performance.now();

  const chunks = splitText(options.text, options.chunks);
  const tokens = chunks.map((chunk) => cluster.task(py, "tokenize").arg(chunk).submit());
  const counts = tokens.map((t) => cluster.task(c, "count_tokens").arg(t).submit());
  const merged = cluster
    .task(go, "merge_counts")
    .args(...counts)
    .submit();
  const totals = await cluster.actor(js, "Totals").create();
  const distinct = await cluster.get<number>(totals.call("add", merged));
  const top = await cluster.get<[string, number][]>(totals.call("top", options.top));
  const t2 = performance.now();
  await totals.kill();
  return { top, distinct, chunks: chunks.length, ms: { register: t1 - t0, run: t2 - t1 } };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      address: { type: "string" },
      chunks: { type: "string", default: "4" },
      top: { type: "string", default: "10" },
      text: { type: "string", default: join(repo, "examples", "pipeline", "text.txt") },
      guests: { type: "string", default: join(repo, "target", "guests") },
      json: { type: "boolean", default: false },
    },
  });
  const chunks = Number(values.chunks);
  const top = Number(values.top);
  if (!Number.isInteger(chunks) || chunks < 1 || !Number.isInteger(top) || top < 1) {
    throw new Error("--chunks and --top must be positive whole numbers");
  }
  const text = await readFile(values.text!, "utf8");
  const address = values.address ?? process.env.REEF_ADDRESS;
  const hostBinary = process.env.REEF_HOST ?? join(repo, "target", "release", "host");
  const cluster = address
    ? await Cluster.connect(address)
    : await Cluster.local({ hostBinary: existsSync(hostBinary) ? hostBinary : "host" });
  try {
    const result = await runPipeline(cluster, { text, chunks, top, guests: values.guests! });
    if (values.json) {
      console.log(JSON.stringify(result));
    } else {
      console.log(`${result.chunks} chunks, ${result.distinct} distinct words; top ${top}:`);
      const width = Math.max(...result.top.map(([w]) => w.length));
      for (const [word, count] of result.top) console.log(`  ${word.padEnd(width)}  ${count}`);
      console.log(`(registration ${result.ms.register.toFixed(0)} ms, pipeline ${result.ms.run.toFixed(0)} ms)`);
    }
  } finally {
    await cluster.close();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
