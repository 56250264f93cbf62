#!/usr/bin/env bash
# Builds a C/C++ guest: every *.c, *.cc, *.cpp and *.cxx under SRC_DIR plus the SDK,
# into a core wasm32-wasi reactor module that a Reef node registers (it turns the module
# into a component itself).
#
#   guest-sdk/c/build.sh SRC_DIR OUT.wasm
#
# Toolchain: Debian's clang 14 + wasm-ld + wasi-libc (+ libc++ for C++), installed by
# guest-sdk/c/install.sh. Environment:
#   REEF_CC / REEF_CXX   the compilers (default clang-14 / clang++-14, else clang / clang++)
#   CFLAGS / CXXFLAGS    extra compile flags (default optimisation: -O2)
#   LDFLAGS              extra link flags
#   REEF_STACK_SIZE      the stack size in bytes (default 1048576)
#   REEF_SANITIZE        the -fsanitize checks (default null,bounds; "" to turn them off)
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 SRC_DIR OUT.wasm" >&2
    exit 2
fi
src="$1"
out="$2"
sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[[ -d "$src" ]] || { echo "build.sh: $src is not a directory" >&2; exit 2; }
src="$(cd "$src" && pwd)"

pick() {
    for c in "$@"; do
        if command -v "$c" >/dev/null; then
            echo "$c"
            return
        fi
    done
}
cc="${REEF_CC:-$(pick clang-14 clang)}"
cxx="${REEF_CXX:-$(pick clang++-14 clang++)}"
if [[ -z "$cc" ]] || [[ ! -f /usr/lib/wasm32-wasi/libc.a && -z "${REEF_CC:-}" ]]; then
    echo "build.sh: no clang with wasi-libc found; run guest-sdk/c/install.sh" >&2
    echo "  (apt-get install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32 libc++-14-dev-wasm32 libc++abi-14-dev-wasm32)" >&2
    exit 1
fi

sanitize="${REEF_SANITIZE-null,bounds}"
target=(--target=wasm32-wasi)
# Wasm SIMD: every Reef node runs it, and the SDK's array helpers (reef_f64_sum, ...) use it.
common=("${target[@]}" -msimd128 -I"$sdk/include" -Wall -Wextra -Wno-unused-parameter)
[[ -n "$sanitize" ]] && common+=("-fsanitize=$sanitize")
read -r -a cflags <<<"${CFLAGS:--O2}"
read -r -a cxxflags <<<"${CXXFLAGS:--O2}"
read -r -a ldflags <<<"${LDFLAGS:-}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

mapfile -t user < <(find "$src" -type f \( -name '*.c' -o -name '*.cc' -o -name '*.cpp' -o -name '*.cxx' \) | sort)
if [[ ${#user[@]} -eq 0 ]]; then
    echo "build.sh: no C or C++ sources under $src" >&2
    exit 1
fi

objects=()
has_cxx=0
n=0
# Each file is compiled from its own root with a relative name (clang 14 writes that
# name into sanitizer reports, which -ffile-prefix-map does not rewrite).
for f in "$sdk"/src/*.c "${user[@]}"; do
    n=$((n + 1))
    obj="$tmp/$n-$(basename "$f").o"
    if [[ "$f" == "$src"/* ]]; then dir="$src"; else dir="$sdk"; fi
    rel="${f#"$dir"/}"
    case "$f" in
        *.c) (cd "$dir" && "$cc" "${common[@]}" -std=c11 "${cflags[@]}" -c "$rel" -o "$obj") ;;
        *) has_cxx=1
           (cd "$dir" && "$cxx" "${common[@]}" -std=c++17 -fno-exceptions "${cxxflags[@]}" -c "$rel" -o "$obj") ;;
    esac
    objects+=("$obj")
done

# --stack-first: the stack sits below the data, so an overflow runs off address 0 and
# traps instead of overwriting static data; its far end (address 0) is the NULL guard.
link=("${target[@]}" -mexec-model=reactor -Wl,--stack-first -Wl,--strip-debug "-Wl,-z,stack-size=${REEF_STACK_SIZE:-1048576}")
if [[ $has_cxx -eq 1 ]]; then
    "$cxx" "${link[@]}" "${objects[@]}" "${ldflags[@]}" -o "$out"
else
    "$cc" "${link[@]}" "${objects[@]}" "${ldflags[@]}" -o "$out"
fi
