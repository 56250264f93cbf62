// Module resolution hook: `reef:runtime/host@0.2.0` -> test/fake-host.mjs.
export async function resolve(specifier, context, nextResolve) {
  if (specifier === "reef:runtime/host@0.2.0") {
    return { url: new URL("./fake-host.mjs", import.meta.url).href, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
