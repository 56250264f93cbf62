#!/usr/bin/env bash
# Builds the Python examples: build-examples.sh OUT_DIR
#   OUT_DIR/python_demo.wasm      guest-sdk/python/examples/demo
#   OUT_DIR/python_nested.wasm    guest-sdk/python/examples/nested
#   OUT_DIR/pipeline_python.wasm  examples/pipeline/python
#   OUT_DIR/python_nested_wasi.wasm  the nested example before its filesystem and
#                                 socket imports are stripped (the grant tests use it)
# A module is rebuilt only when its sources (or the SDK, or wit/) changed.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)

build() { # SRC_DIR NAME [UNSTRIPPED_OUT]
    local src=$1 name=$2 out="$OUT/$2.wasm" stamp="$OUT/.$2.python-sources"
    local sum
    sum=$( (cd "$REPO" && find "$src" guest-sdk/python/reef guest-sdk/python/build.sh wit \
        -name '*.py' -o -name '*.sh' -o -name '*.wit' | LC_ALL=C sort | xargs sha256sum;
        "$REPO/target/toolchains/venv/bin/componentize-py" --version) | sha256sum | cut -d' ' -f1)
    if [ -f "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && { [ -z "${3:-}" ] || [ -f "$3" ]; }; then
        echo "$name.wasm is up to date"
        return
    fi
    REEF_PY_UNSTRIPPED_OUT=${3:-} "$HERE/build.sh" "$REPO/$src" "$out"
    echo "$sum" >"$stamp"
}

# The SDK's unit tests (MessagePack, argument decoding) run on the build machine.
if command -v python3 >/dev/null 2>&1; then
    python3 -m unittest discover -q -s "$HERE/tests" -t "$HERE/tests" 2>&1 | tail -1 | sed 's/^/python sdk unit tests: /'
    test "${PIPESTATUS[0]}" -eq 0
fi

build guest-sdk/python/examples/demo python_demo
build guest-sdk/python/examples/nested python_nested "$OUT/python_nested_wasi.wasm"
build examples/pipeline/python pipeline_python
