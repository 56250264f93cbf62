#!/usr/bin/env bash
# Installs the JS guest toolchain (componentize-js, esbuild, typescript) into
# guest-sdk/js/node_modules from the committed package-lock.json (`npm ci`).
# Needs Node >= 18 and npm (installed with apt if missing). A no-op when the installed
# tree matches the lock file.
set -euo pipefail
sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "js install: installing nodejs and npm with apt" >&2
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y --no-install-recommends nodejs npm \
        || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends nodejs npm; }
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if (( major < 18 )); then
    echo "js install: Node $(node --version) is too old (componentize-js needs >= 18)" >&2
    exit 1
fi

stamp="$sdk/node_modules/.reef-lock.sha256"
want="$(sha256sum "$sdk/package-lock.json" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -d "$sdk/node_modules/@bytecodealliance/componentize-js" ]]; then
    exit 0
fi
echo "js install: npm ci in $sdk" >&2
(cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" >"$stamp"
