// Turns a JS or TS guest (a directory or an entry file) into a Reef component.
//
//   node tools/build.mjs SRC OUT.wasm        (guest-sdk/js/build.sh calls this)
//
// 1. TypeScript entries are type-checked with tsc (--noEmit) against reef.d.ts.
// 2. esbuild bundles the entry, the SDK ("reef") and any npm imports into one ES
//    module whose `guest` export is `makeGuest(entryModule)`.
// 3. componentize-js (SpiderMonkey) compiles the bundle against wit/ (world `module`)
//    with every optional WASI feature disabled: the component imports only
//    reef:runtime/host. The JS bindings it generates are rewritten first
//    (tools/bindings.mjs: synchronous exports).
//
//   node tools/build.mjs --check SRC          type-check and bundle only (no OUT)
//
// Env: REEF_JS_KEEP=1 keeps the work directory (bundle and tsconfig) and prints it;
// REEF_JS_NO_TYPECHECK=1 skips tsc; REEF_JS_DEBUG_BUILD=1 builds on SpiderMonkey's
// debug build, which has function names (for profiling: `perf` with the node's
// REEF_PERFMAP=1 then names SpiderMonkey's functions).

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { fastBindings } from "./bindings.mjs";

const sdk = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const root = resolve(sdk, "../..");
const wit = join(root, "wit");

function fail(message) {
  console.error(`reef-js build: ${message}`);
  process.exit(1);
}

const argv = process.argv.slice(2);
const checkOnly = argv[0] === "--check";
if (checkOnly) argv.shift();
const [srcArg, outArg = checkOnly ? "check.wasm" : undefined] = argv;
if (!srcArg || !outArg) fail("usage: build.sh [--check] SRC_DIR_OR_FILE OUT.wasm");
const src = resolve(srcArg);
const out = resolve(outArg);
if (!existsSync(src)) fail(`${src} does not exist`);

const ENTRIES = ["index.ts", "index.js", "main.ts", "main.js", "src/index.ts", "src/index.js", "src/main.ts", "src/main.js"];
let entry = src;
if (statSync(src).isDirectory()) {
  const found = ENTRIES.map((e) => join(src, e)).find((p) => existsSync(p));
  if (!found) fail(`no entry in ${src} (looked for ${ENTRIES.join(", ")})`);
  entry = found;
}
const isTs = [".ts", ".mts"].includes(extname(entry));
const projectDir = statSync(src).isDirectory() ? src : dirname(src);
const name = basename(out, ".wasm");

let esbuild, componentize;
try {
  esbuild = await import("esbuild");
  ({ componentize } = await import("@bytecodealliance/componentize-js"));
  // The bindings are rewritten before they are compiled in (see tools/bindings.mjs).
  const { splicer } = await import(
    new URL("../lib/spidermonkey-embedding-splicer.js", import.meta.resolve("@bytecodealliance/componentize-js"))
  );
  const splice = splicer.spliceBindings;
  splicer.spliceBindings = (...args) => {
    const spliced = splice(...args);
    spliced.jsBindings = fastBindings(spliced.jsBindings);
    return spliced;
  };
} catch (e) {
  fail(`the JS toolchain is missing (${e.message}); run guest-sdk/js/install.sh`);
}

const work = mkdtempSync(join(tmpdir(), "reef-js-"));
const cleanup = () => {
  if (process.env.REEF_JS_KEEP) console.error(`reef-js build: work directory ${work}`);
  else rmSync(work, { recursive: true, force: true });
};

try {
  const t0 = Date.now();
  // 1. Type-check TypeScript.
  if (isTs && !process.env.REEF_JS_NO_TYPECHECK) {
    let project = join(projectDir, "tsconfig.json");
    if (!existsSync(project)) {
      project = join(work, "tsconfig.json");
      writeFileSync(project, JSON.stringify(defaultTsconfig(entry), null, 2));
    }
    const tsc = join(sdk, "node_modules", "typescript", "bin", "tsc");
    const r = spawnSync(process.execPath, [tsc, "--noEmit", "-p", project], { stdio: "inherit" });
    if (r.status !== 0) fail(`type errors in ${entry} (tsc -p ${project})`);
  }
  const t1 = Date.now();

  // 2. Bundle.
  const wrapper = join(work, "reef-entry.js");
  writeFileSync(
    wrapper,
    `import * as user from ${JSON.stringify(entry)};\n` +
      `import { makeGuest } from "reef";\n` +
      `export const guest = makeGuest(user);\n`,
  );
  const bundle = join(work, `${name}.js`);
  await esbuild.build({
    entryPoints: [wrapper],
    outfile: bundle,
    bundle: true,
    format: "esm",
    platform: "neutral",
    mainFields: ["module", "main"],
    target: "es2022",
    keepNames: true,
    external: ["reef:runtime/*"],
    alias: { reef: join(sdk, "src", "reef.js") },
    nodePaths: [join(projectDir, "node_modules")],
    logLevel: "warning",
  });
  const t2 = Date.now();
  if (checkOnly) {
    console.error(`reef-js build: ${entry} checks and bundles (typecheck ${t1 - t0} ms, bundle ${t2 - t1} ms)`);
    cleanup();
    process.exit(0);
  }

  // 3. Componentize.
  const { component } = await componentize({
    sourcePath: bundle,
    sourceName: `${name}.js`,
    witPath: wit,
    worldName: "module",
    disableFeatures: ["stdio", "random", "clocks", "http", "fetch-event"],
    debugBuild: !!process.env.REEF_JS_DEBUG_BUILD,
  });
  writeFileSync(out, component);
  const t3 = Date.now();
  console.error(
    `reef-js build: ${out} (${component.length} bytes; typecheck ${t1 - t0} ms, bundle ${t2 - t1} ms, componentize ${t3 - t2} ms)`,
  );
} catch (e) {
  cleanup();
  fail(e && e.stack ? e.stack : String(e));
}
cleanup();

function defaultTsconfig(entryFile) {
  return {
    compilerOptions: {
      target: "es2022",
      module: "es2022",
      moduleResolution: "bundler",
      lib: ["es2022"],
      types: [],
      strict: true,
      noEmit: true,
      skipLibCheck: false,
      allowImportingTsExtensions: true,
      paths: { reef: [join(sdk, "reef.d.ts")] },
    },
    files: [entryFile, join(sdk, "globals.d.ts")],
  };
}
