// Rewrites the JS bindings componentize-js generates for the `reef:runtime`
// world (the glue between the component's canonical ABI and the guest's JS)
// before they are compiled into the component. Three changes, each measured
// on a `noop` task (2-core VM, sync round trips, alternated runs):
//
// 1. Exports run synchronously. The generated export functions are `async`
//    and `await` the guest's (synchronous) function, so every call made a
//    promise, an async generator and a captured async stack, then drove the
//    event loop through a microtask to lower the result: ~40 % of the
//    guest's CPU in a reused instance. The embedding wants a promise back, so
//    each export now lowers its result at once and returns one promise that
//    was resolved at start-up. Round trip, reused instance: 107-121 -> 84 µs;
//    fresh instance: 416-431 -> 319-343 µs.
// 2. `_debugLog` is a no-op: it read `globalThis.process.env.JCO_DEBUG`
//    (a miss on every step: StarlingMonkey has no `process`) several times
//    a call.
// 3. The task export is called once while the module is pre-initialized
//    (an unknown task: it must fail, and the build fails if it does not, or
//    if it throws), so its bytecode and
//    the engine's caches are in the snapshot every instance starts from,
//    not compiled again by each fresh instance: fresh round trip ~6 % less.
//
// Each rewrite must match what it expects exactly; if a componentize-js
// upgrade changes the generated code, the build fails here, naming the rewrite.

/** Returns `js` (the generated bindings) with the rewrites above applied. */
export function fastBindings(js) {
  const exportFn = /^async function (export_[\w$]+)\(([^)]*)\) \{$/gm;
  const exports = [...js.matchAll(exportFn)].map((m) => m[1]);
  expect(exports.length === 4, `4 async export functions (found ${exports.length}: ${exports.join(", ")})`);
  js = js.replace(
    exportFn,
    (_, f, args) =>
      `function ${f}(${args}) {\n  ${f}$sync(${args});\n  return REEF_DONE;\n}\n` +
      `function ${f}$sync(${args}) {`,
  );
  const awaits = js.match(/= await guest020\w+\(/g) || [];
  expect(awaits.length === 4, `4 awaits of the guest's functions (found ${awaits.length})`);
  js = js.replace(/= await (guest020\w+)\(/g, "= $1(");
  expect(!/\bawait\b/.test(js), "no other await in the bindings");
  // Every export ends with a bare `return;`: the result is written to memory.
  expect(!/^\s*return\s+[^;\s]/m.test(exportBodies(js, exports)), "exports that return nothing");

  const debugLog = "const _debugLog = (...args) => {\n  if (!globalThis?.process?.env?.JCO_DEBUG) { return; }\n  console.debug(...args);\n};";
  expect(js.includes(debugLog), "the _debugLog helper");
  js = js.replace(debugLog, "const _debugLog = () => {};\nconst REEF_DONE = Promise.resolve();");

  const bound = "    verifyInterfaceFn(guest020RunTask, 'reef:runtime/guest@0.2.0', 'runTask', 'guest');\n";
  expect(js.includes(bound), "bindExports' check of runTask");
  expect(exports.includes("export_guest_0_2_0$runTask"), "the runTask export");
  js = js.replace(
    bound,
    bound +
      "    // Reef: run the task export once (an unknown task, empty arguments) while\n" +
      "    // the module is pre-initialized, so its bytecode is in the snapshot.\n" +
      "    {\n" +
      "      const at = $realloc(0, 0, 8, 32);\n" +
      "      export_guest_0_2_0$runTask$sync(at, 0, at, 0, at);\n" +
      "      // The result's tag: 1 (err: unknown task). Anything else means the export changed.\n" +
      "      if (dataView($memory).getUint8(at) !== 1) throw new Error('reef: the task export did not fail an unknown task');\n" +
      "      $dealloc(at, 32, 8);\n" +
      "    }\n",
  );
  return js;
}

function exportBodies(js, names) {
  return names
    .map((f) => {
      const start = js.indexOf(`function ${f}$sync(`);
      const end = js.indexOf("\n}\n", start);
      return js.slice(start, end);
    })
    .join("\n");
}

function expect(ok, what) {
  if (!ok) {
    throw new Error(
      `reef-js build: the bindings componentize-js generated are not what tools/bindings.mjs expects (${what}); ` +
        "check the componentize-js version against package-lock.json",
    );
  }
}
