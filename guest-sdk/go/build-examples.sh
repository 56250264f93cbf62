#!/usr/bin/env bash
# Builds the Go SDK's examples and the Go piece of the pipeline:
#   OUT_DIR/go_demo.wasm, OUT_DIR/go_nested.wasm, OUT_DIR/pipeline_go.wasm, and
#   OUT_DIR/go_unpatched.wasm (the demo without cabi_realloc_adapter, which the host refuses)
# (called by scripts/build-guests.sh with target/guests).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/target/guests}"
mkdir -p "$out"

build() {
    "$here/build.sh" "$1" "$out/$2.wasm"
    echo "go build-examples: $out/$2.wasm ($(wc -c <"$out/$2.wasm") bytes)" >&2
}

build "$here/examples/demo" go_demo
build "$here/examples/nested" go_nested
build "$root/examples/pipeline/go" pipeline_go
REEF_GO_SKIP_ADAPTER_PATCH=1 build "$here/examples/demo" go_unpatched
