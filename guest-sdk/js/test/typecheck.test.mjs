// build.sh --check: TypeScript guests are type-checked against reef.d.ts (typed()
// infers parameter types from the type list), and JS guests bundle with the SDK.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const build = join(dirname(fileURLToPath(import.meta.url)), "..", "tools", "build.mjs");

function check(file, source) {
  const dir = mkdtempSync(join(tmpdir(), "reef-js-check-"));
  try {
    writeFileSync(join(dir, file), source);
    return spawnSync(process.execPath, [build, "--check", dir], { encoding: "utf8" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const good = `
import { float, typed, put, type ObjectRef, type Float } from "reef";
export const tasks = {
  sum: typed(["object", "u64?"], (xs: ObjectRef, n: number | undefined): Float => float(xs.f64s()[n ?? 0])),
  keep: typed(["bytes"], (b: Uint8Array) => put(b)),
  hello: (name: string) => { console.log(name); return \`hi \${name}\`; },
};
`;

test("a well-typed TypeScript guest passes", () => {
  const r = check("index.ts", good);
  assert.equal(r.status, 0, r.stderr + r.stdout);
});

test("a parameter that contradicts its declared type fails the build", () => {
  const r = check("index.ts", `import { typed } from "reef";\nexport const tasks = { f: typed(["u64"], (x: string) => x) };\n`);
  assert.notEqual(r.status, 0);
  assert.match(r.stdout + r.stderr, /error TS\d+/);
  assert.match(r.stderr, /type errors in/);
});

test("a JS guest bundles without a type check", () => {
  const r = check("index.js", `import { float } from "reef";\nexport const tasks = { one: () => float(1) };\n`);
  assert.equal(r.status, 0, r.stderr);
});
