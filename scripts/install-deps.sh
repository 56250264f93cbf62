#!/usr/bin/env bash
# Installs what building Reef needs and is missing. Safe to run again.
#   - Debian's rustc/cargo with the wasm32 WASI standard library, for Rust guests
#     (the rustup toolchain here has no wasm32 target; see guest-sdk/rust/README.md).
#   - rustfmt and clippy for the rustup toolchain (make test checks both).
set -euo pipefail

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"

if ! { [[ -x /usr/bin/rustc ]] && { [[ -d /usr/lib/rustlib/wasm32-wasi ]] || [[ -d /usr/lib/rustlib/wasm32-wasip1 ]]; }; } \
   && ! (command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1); then
    echo "install-deps: installing Debian rustc, cargo and libstd-rust-dev-wasm32 for guests" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y --no-install-recommends rustc cargo libstd-rust-dev-wasm32 \
        || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends rustc cargo libstd-rust-dev-wasm32; }
fi

if command -v rustup >/dev/null; then
    for component in rustfmt clippy; do
        rustup component list --installed 2>/dev/null | grep -q "^$component" \
            || rustup component add "$component" || echo "install-deps: could not add $component" >&2
    done
fi
