#!/usr/bin/env bash
# Builds a Go guest: a package main that imports reef.dev/guest (this SDK) into a core
# wasm module the Reef host componentizes at registration.
#
#   guest-sdk/go/build.sh SRC_DIR OUT.wasm
#
# SRC_DIR holds a go.mod that requires reef.dev/guest and points at this SDK with a
# replace directive (see guest-sdk/go/README.md). Nothing is fetched: GOPROXY=off.
# Go: $GO, else target/toolchains/venv/bin/go (guest-sdk/go/install.sh), else go on PATH.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 SRC_DIR OUT.wasm" >&2
    exit 2
fi
src="$1"
out="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

go="${GO:-}"
if [[ -z "$go" ]]; then
    if [[ -x "$root/target/toolchains/venv/bin/go" ]]; then
        go="$root/target/toolchains/venv/bin/go"
    elif command -v go >/dev/null; then
        go="$(command -v go)"
    else
        echo "build.sh: no Go toolchain: run guest-sdk/go/install.sh" >&2
        exit 1
    fi
fi
[[ -f "$src/go.mod" ]] || { echo "build.sh: $src/go.mod is missing" >&2; exit 1; }

wasm_tools="${WASM_TOOLS:-}"
if [[ -z "$wasm_tools" ]]; then
    if [[ -x "$root/target/toolchains/venv/bin/wasm-tools" ]]; then
        wasm_tools="$root/target/toolchains/venv/bin/wasm-tools"
    elif command -v wasm-tools >/dev/null; then
        wasm_tools="$(command -v wasm-tools)"
    else
        echo "build.sh: no wasm-tools: run guest-sdk/go/install.sh" >&2
        exit 1
    fi
fi
python="$(command -v python3 || true)"
[[ -n "$python" ]] || { echo "build.sh: python3 is missing: run guest-sdk/go/install.sh" >&2; exit 1; }

# Build caches under target/ unless the caller chose others (works without $HOME too).
export GOCACHE="${GOCACHE:-$root/target/go/cache}"
export GOPATH="${GOPATH:-$root/target/go/path}"

mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# A WASI reactor (c-shared: _initialize, no main). -s -w drop the symbol tables.
(cd "$src" && env GOOS=wasip1 GOARCH=wasm GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod \
    GOWORK=off "$go" build -buildmode=c-shared -trimpath -ldflags="-s -w" -o "$tmp/core.wasm" .)
# Give the WASI adapter memory of its own (see adapter.go), then validate.
# (REEF_GO_SKIP_ADAPTER_PATCH=1 skips it: only for the test of the host's refusal.)
if [[ "${REEF_GO_SKIP_ADAPTER_PATCH:-}" == 1 ]]; then
    cp "$tmp/core.wasm" "$tmp/patched.wasm"
else
    "$python" "$here/patch_adapter_realloc.py" "$wasm_tools" "$tmp/core.wasm" "$tmp/patched.wasm"
fi
"$wasm_tools" validate "$tmp/patched.wasm"
mv "$tmp/patched.wasm" "$out"
