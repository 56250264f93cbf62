#!/usr/bin/env bash
# Builds and runs abi_layout_test.c with the build machine's C compiler.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
out=$(mktemp -d "${TMPDIR:-/tmp}/reef-c-abi.XXXXXX")
trap 'rm -rf "$out"' EXIT
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror -o "$out/abi_layout_test" "$here/abi_layout_test.c"
"$out/abi_layout_test" "$repo/tests/golden/abi-layouts.json"
