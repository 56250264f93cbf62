#!/usr/bin/env bash
# Installs Ray and numpy (exact versions) into target/bench-ray/venv for `make bench-ray`,
# which runs the same workloads on Reef and on Ray side by side. Reuses the venv when it
# already has these versions. Prints the venv's python on stdout.
set -euo pipefail

RAY_VERSION=2.60.0
NUMPY_VERSION=2.4.6

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/target/bench-ray/venv"
python="$venv/bin/python"

installed() {
    [[ -x "$python" ]] && "$python" - "$RAY_VERSION" "$NUMPY_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if (version("ray"), version("numpy")) == (sys.argv[1], sys.argv[2]) else 1)
PY
}

if ! installed; then
    echo "install-ray: installing ray==$RAY_VERSION numpy==$NUMPY_VERSION into $venv" >&2
    [[ -x "$python" ]] || python3 -m venv "$venv"
    "$python" -m pip install -q --disable-pip-version-check "ray==$RAY_VERSION" "numpy==$NUMPY_VERSION" >&2
    installed || { echo "install-ray: the venv does not have ray $RAY_VERSION and numpy $NUMPY_VERSION" >&2; exit 1; }
fi
echo "$python"
