#!/usr/bin/env bash
# Re-measures the two JS routes compared in ../README.md (not part of `make test`).
# Builds one probe guest per route (tasks noop, sum, ids, loop, echo) in a scratch dir
# under target/, then times compile / instantiate / noop / a 1M-element loop with
# wasmtime-py (pip), which, unlike our host, accepts the QuickJS component's 3 memories.
# The figures on our own host come from:
#   REEF_JS_MEASURE=target/guests/js_demo.wasm,target/guests/demo.wasm \
#     cargo test --release -p reef-tests --test lang_js -- --ignored --nocapture measure
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
work="$repo/target/js-route-bench"
mkdir -p "$work"
cd "$work"
[[ -f package.json ]] || echo '{"name":"js-route-bench","private":true}' >package.json
[[ -d node_modules/componentize-qjs ]] || npm install --no-save --no-audit --no-fund componentize-qjs@0.4.5
[[ -x venv/bin/python ]] || { python3 -m venv venv && venv/bin/pip install -q wasmtime; }
wit="$repo/wit/reef.wit"
# One probe for both routes; componentize-qjs wants the host interface as a default import.
sed 's|^import \* as host from|import host from|' "$here/probe.js" >probe-qjs.js
npx componentize-qjs -w "$wit" -j probe-qjs.js -n module --stub-wasi --sync --opt-size -o qjs.wasm
npx componentize-qjs -w "$wit" -j probe-qjs.js -n module --stub-wasi --sync -o qjs-speed.wasm
time node "$repo/guest-sdk/js/node_modules/@bytecodealliance/componentize-js/src/cli.js" "$here/probe.js" \
    --wit "$wit" --world-name module -d stdio random clocks http fetch-event -o sm.wasm
venv/bin/python "$here/compare.py" qjs.wasm qjs-speed.wasm sm.wasm
