#!/usr/bin/env bash
# Builds a JavaScript or TypeScript guest into a registrable Reef component.
#
#   guest-sdk/js/build.sh SRC OUT.wasm
#   guest-sdk/js/build.sh --check SRC      type-check and bundle only (a few seconds)
#
# SRC is a directory (entry: index.ts, index.js, main.ts, main.js, or the same under
# src/) or an entry file. TypeScript is type-checked with tsc, then everything is
# bundled with esbuild and compiled by componentize-js (SpiderMonkey). Run
# guest-sdk/js/install.sh once first (it installs the npm toolchain from package-lock.json).
set -euo pipefail
sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ "${1:-}" == "--check" && $# -eq 2 ]]; then
    [[ -d "$sdk/node_modules/esbuild" ]] || { echo "build.sh: run $sdk/install.sh first" >&2; exit 1; }
    exec node "$sdk/tools/build.mjs" --check "$2"
fi
if [[ $# -ne 2 ]]; then
    echo "usage: $0 [--check] SRC_DIR_OR_FILE OUT.wasm" >&2
    exit 2
fi
if [[ ! -d "$sdk/node_modules/@bytecodealliance/componentize-js" ]]; then
    echo "build.sh: the JS toolchain is not installed; run $sdk/install.sh" >&2
    exit 1
fi
mkdir -p "$(dirname "$2")"
exec node "$sdk/tools/build.mjs" "$1" "$2"
