#!/usr/bin/env bash
# Builds a Python Reef module: build.sh SRC_DIR OUT.wasm
#
# SRC_DIR holds `app.py` (the module that defines the @reef.task functions and
# @reef.actor classes) and any other modules it imports. The result is a Wasm
# component for the `module` world of wit/reef.wit, built with componentize-py.
# CPython imports wasi:filesystem and wasi:sockets whether or not the app uses
# them; `host build strip-imports` replaces those imports with stubs that trap
# if called, so the module registers without grants (see README.md, "WASI imports").
#
# Environment:
#   REEF_PY_APP=name     entry module in SRC_DIR (default: app)
#   REEF_PY_KEEP_WASI=1  keep the filesystem and socket imports (the module then
#                        needs the grants `filesystem` and `network`)
#   REEF_PY_UNSTRIPPED_OUT=path  also write the component before stripping there
#   REEF_PY_STUB_WASI=1  replace every WASI import with a trapping stub
#                        (componentize-py --stub-wasi: print and logs trap too)
#   COMPONENTIZE_PY=...  the componentize-py to use (default: the repo's tool venv)
#   REEF_HOST=...        the `host` binary that strips imports (default:
#                        target/release/host, built with cargo if missing)
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 SRC_DIR OUT.wasm" >&2
    exit 2
fi
SRC=$(cd "$1" && pwd)
OUT=$2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
APP=${REEF_PY_APP:-app}
CPY=${COMPONENTIZE_PY:-$REPO/target/toolchains/venv/bin/componentize-py}

if [ ! -x "$CPY" ] && ! command -v "$CPY" >/dev/null 2>&1; then
    echo "componentize-py not found at $CPY: run guest-sdk/python/install.sh" >&2
    exit 1
fi
if [ ! -f "$SRC/$APP.py" ] && [ ! -f "$SRC/$APP/__init__.py" ]; then
    echo "$SRC has no $APP.py (the module defining the tasks); set REEF_PY_APP to use another" >&2
    exit 1
fi
case "$APP" in
    reef|wit_world|reef_entry) echo "the entry module may not be called $APP" >&2; exit 1 ;;
esac

# The entry module: imports the app (registering its tasks and actors at build
# time, in componentize-py's pre-initialization) and exposes the `guest` export.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/reef-py-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cp -r "$HERE/reef" "$WORK/reef"
rm -rf "$WORK/reef/__pycache__"
STUB=()
PRINT=""
if [ "${REEF_PY_STUB_WASI:-0}" = 1 ]; then
    STUB=(--stub-wasi)
    PRINT="reef._print_to_log()"
fi
cat >"$WORK/reef_entry.py" <<PY
import reef
$PRINT
import $APP  # noqa: F401  (registers the tasks and actors)
from reef._guest import Guest  # noqa: F401  (the export componentize-py looks for)
PY

mkdir -p "$(dirname "$OUT")"
# No VIRTUAL_ENV: componentize-py would add that venv's site-packages to the path.
# Python path: the app, then the SDK and the entry module.
env -u VIRTUAL_ENV "$CPY" -d "$REPO/wit" -w module componentize reef_entry \
    -p "$SRC" -p "$WORK" "${STUB[@]}" -o "$OUT.tmp"
if [ -n "${REEF_PY_UNSTRIPPED_OUT:-}" ]; then
    cp "$OUT.tmp" "$REEF_PY_UNSTRIPPED_OUT"
fi
if [ "${REEF_PY_KEEP_WASI:-0}" = 1 ] || [ "${REEF_PY_STUB_WASI:-0}" = 1 ]; then
    mv "$OUT.tmp" "$OUT"
else
    HOST=${REEF_HOST:-$REPO/target/release/host}
    if ! "$HOST" build strip-imports --help >/dev/null 2>&1; then
        echo "building $HOST (it strips the filesystem and socket imports)" >&2
        # Into the repository's own target/ (scripts/build-guests.sh points
        # CARGO_TARGET_DIR at its guest build directory).
        (cd "$REPO" && CARGO_TARGET_DIR="$REPO/target" cargo build --release -p reef-host)
    fi
    "$HOST" build strip-imports "$OUT.tmp" "$OUT" --deny wasi:filesystem,wasi:sockets
    rm -f "$OUT.tmp"
fi
echo "built $OUT ($(du -h "$OUT" | cut -f1))"
