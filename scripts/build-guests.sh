#!/usr/bin/env bash
# Builds the Rust guests under examples/guests/ to target/guests/<name>.wasm: core
# wasm32-wasi(p1) modules; the host turns them into components at registration.
#
#   scripts/build-guests.sh            # every guest, then every SDK's examples
#   scripts/build-guests.sh demo bad   # some Rust guests only
#
# Guest SDKs for other languages build their examples with
# guest-sdk/<language>/build-examples.sh, into target/guests/<language>_<example>.wasm.
#
# Toolchain, first that works:
#   1. Debian's rustc/cargo with a wasm32 WASI std
#      (apt-get install rustc cargo libstd-rust-dev-wasm32; rustc 1.63 ships wasm32-wasi)
#   2. rustup's cargo with the wasm32-wasip1 target (rustup target add wasm32-wasip1)
# Guests have path dependencies only, so the build runs --offline.
# Env: GUEST_BUILD_JOBS (default 2), GUEST_TARGET_DIR (default target/guest-build),
# RUSTFLAGS (extra flags; +simd128 is always added).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/target/guests"
# One target dir for all guests, so the SDK compiles once per toolchain.
export CARGO_TARGET_DIR="${GUEST_TARGET_DIR:-$root/target/guest-build}"
jobs="${GUEST_BUILD_JOBS:-2}"

if [[ -x /usr/bin/rustc && -x /usr/bin/cargo && -d /usr/lib/rustlib/wasm32-wasi ]]; then
    cargo=(env RUSTC=/usr/bin/rustc /usr/bin/cargo)
    target=wasm32-wasi
elif [[ -x /usr/bin/rustc && -x /usr/bin/cargo && -d /usr/lib/rustlib/wasm32-wasip1 ]]; then
    cargo=(env RUSTC=/usr/bin/rustc /usr/bin/cargo)
    target=wasm32-wasip1
elif command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
    cargo=(cargo)
    target=wasm32-wasip1
else
    echo "build-guests: no Rust toolchain with a wasm32 WASI target found." >&2
    echo "  Debian: apt-get install rustc cargo libstd-rust-dev-wasm32" >&2
    echo "  rustup: rustup target add wasm32-wasip1" >&2
    exit 1
fi

if [[ $# -gt 0 ]]; then
    names=("$@")
else
    names=()
    for manifest in "$root"/examples/guests/*/Cargo.toml; do
        names+=("$(basename "$(dirname "$manifest")")")
    done
fi

# Wasm SIMD (simd128): every Reef node runs it, and loops over views vectorize with it.
export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+simd128"

mkdir -p "$out"
echo "build-guests: $("${cargo[@]}" --version) for $target" >&2
for name in "${names[@]}"; do
    manifest="$root/examples/guests/$name/Cargo.toml"
    [[ -f "$manifest" ]] || { echo "build-guests: no guest $name ($manifest)" >&2; exit 1; }
    "${cargo[@]}" build --release --offline --jobs "$jobs" --target "$target" --manifest-path "$manifest"
    crate="$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -1)"
    cp "$CARGO_TARGET_DIR/$target/release/${crate//-/_}.wasm" "$out/$name.wasm"
    echo "build-guests: $out/$name.wasm ($(wc -c <"$out/$name.wasm") bytes)" >&2
done

# Without arguments, every other language's examples too.
if [[ $# -eq 0 ]]; then
    for builder in "$root"/guest-sdk/*/build-examples.sh; do
        [[ -x "$builder" ]] || continue
        echo "build-guests: $builder" >&2
        "$builder" "$out"
    done
fi
