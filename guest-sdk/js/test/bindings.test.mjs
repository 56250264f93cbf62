// The rewrite of componentize-js's generated bindings (tools/bindings.mjs), applied to the
// bindings the installed componentize-js generates for wit/. This checks the rewrite's
// text; what the rewritten bindings do in a guest is tested with real nodes by
// tests/tests/lang_js.rs and conformance.rs (every JS build runs the warm-up call).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { fastBindings } from "../tools/bindings.mjs";

const sdk = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const lib = join(sdk, "node_modules/@bytecodealliance/componentize-js/lib");

async function generated() {
  const { splicer } = await import(join(lib, "spidermonkey-embedding-splicer.js"));
  const engine = readFileSync(join(lib, "starlingmonkey_embedding.wasm"));
  return splicer.spliceBindings(engine, [], null, join(sdk, "../../wit"), "module", false).jsBindings;
}

test("the exports become synchronous and the task export runs at pre-initialization", async () => {
  const before = await generated();
  assert.match(before, /^async function export_guest_0_2_0\$runTask\(/m);
  const after = fastBindings(before);
  assert.doesNotMatch(after, /\bawait\b/);
  assert.doesNotMatch(after, /^async function/m);
  for (const name of ["describe", "runTask", "actorInit", "actorCall"]) {
    assert.match(after, new RegExp(`^function export_guest_0_2_0\\$${name}\\(`, "m"));
    assert.match(after, new RegExp(`^function export_guest_0_2_0\\$${name}\\$sync\\(`, "m"));
  }
  assert.match(after, /^const REEF_DONE = Promise\.resolve\(\);$/m);
  assert.match(after, /^const _debugLog = \(\) => \{\};$/m);
  assert.match(after, /export_guest_0_2_0\$runTask\$sync\(at, 0, at, 0, at\);/);
  // The result is a script the engine can compile.
  assert.doesNotThrow(() => new Function(after.replace(/^export .*$/gm, "")));
});

test("bindings of another shape fail the build, naming what differs", async () => {
  const before = await generated();
  assert.throws(() => fastBindings(before.replace(/^async function /gm, "function ")), /4 async export functions/);
  assert.throws(() => fastBindings(before.replace("const _debugLog = (...args) => {", "const _debugLog = (...a) => {")), /_debugLog/);
});
