#!/usr/bin/env bash
# Builds the C SDK's examples and the C piece of the pipeline:
#   OUT_DIR/c_demo.wasm, OUT_DIR/c_bad.wasm, OUT_DIR/c_cxx.wasm, OUT_DIR/pipeline_c.wasm
#
#   guest-sdk/c/build-examples.sh OUT_DIR      (scripts/build-guests.sh passes target/guests)
set -euo pipefail

out="${1:?usage: $0 OUT_DIR}"
sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$sdk/../.." && pwd)"
mkdir -p "$out"

build() {
    local src="$1" wasm="$out/$2.wasm"
    "$sdk/build.sh" "$src" "$wasm"
    echo "guest-sdk/c: $wasm ($(wc -c <"$wasm") bytes)" >&2
}

for example in "$sdk"/examples/*/; do
    name="$(basename "$example")"
    build "$example" "c_$name"
done
build "$root/examples/pipeline/c" pipeline_c
