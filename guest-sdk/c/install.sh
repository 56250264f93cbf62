#!/usr/bin/env bash
# Installs what building C and C++ guests needs, if missing (Debian 12): clang 14, its
# WebAssembly linker, wasi-libc, the wasm32 compiler-rt builtins, and libc++/libc++abi
# for wasm32-wasi (C++ guests). Fast no-op when everything is there. Safe to run again.
set -euo pipefail

packages=(clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32 libc++-14-dev-wasm32 libc++abi-14-dev-wasm32)

have() {
    [[ -x /usr/bin/clang-14 && -x /usr/lib/llvm-14/bin/wasm-ld \
        && -f /usr/lib/wasm32-wasi/libc.a && -f /usr/lib/wasm32-wasi/crt1-reactor.o \
        && -f /usr/lib/wasm32-wasi/libc++.a && -f /usr/lib/wasm32-wasi/libc++abi.a ]] \
        && compgen -G "/usr/lib/llvm-14/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a" >/dev/null
}

if have; then
    exit 0
fi

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
echo "guest-sdk/c: installing ${packages[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y --no-install-recommends "${packages[@]}" \
    || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends "${packages[@]}"; }
have || { echo "guest-sdk/c: the toolchain is still incomplete after installing" >&2; exit 1; }
