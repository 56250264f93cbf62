#!/usr/bin/env bash
# Builds the JS/TS examples: build-examples.sh OUT_DIR
#   OUT_DIR/js_demo.wasm       guest-sdk/js/examples/demo      (JavaScript)
#   OUT_DIR/ts_demo.wasm       guest-sdk/js/examples/demo-ts   (TypeScript)
#   OUT_DIR/pipeline_js.wasm   examples/pipeline/js            (actor Totals)
# First runs the SDK's unit tests (MessagePack and dispatch, on Node with a fake host).
# A module is rebuilt only when its sources, the SDK, the lock file or wit/ changed.
set -euo pipefail
if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"

"$here/install.sh"
(cd "$here" && node --import ./test/register.mjs --test test/*.test.mjs 2>&1 | tail -8 | sed 's/^/js sdk unit tests: /'; exit "${PIPESTATUS[0]}")

build() { # SRC NAME
    local src=$1 name=$2 wasm="$out/$2.wasm" stamp="$out/.$2.js-sources"
    local sum
    sum=$( (cd "$repo" && find "$src" guest-sdk/js/src guest-sdk/js/tools guest-sdk/js/reef.d.ts \
        guest-sdk/js/globals.d.ts guest-sdk/js/package-lock.json wit -type f \
        \( -name '*.js' -o -name '*.mjs' -o -name '*.ts' -o -name '*.json' -o -name '*.wit' \) \
        -not -path '*/node_modules/*' | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -d' ' -f1)
    if [[ -f "$wasm" && -f "$stamp" && "$(cat "$stamp")" == "$sum" ]]; then
        echo "$name.wasm is up to date"
        return
    fi
    "$here/build.sh" "$repo/$src" "$wasm"
    echo "$sum" >"$stamp"
}

build guest-sdk/js/examples/demo js_demo
build guest-sdk/js/examples/demo-ts ts_demo
build examples/pipeline/js pipeline_js
