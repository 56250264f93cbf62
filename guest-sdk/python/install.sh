#!/usr/bin/env bash
# Installs what building Python guests needs: componentize-py 0.25.1 in the
# repository's tool venv (target/toolchains/venv). Idempotent; a fast no-op
# when it is already there (scripts/install-deps.sh creates the venv first on
# a fresh machine).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
VENV=$REPO/target/toolchains/venv
VERSION=0.25.1

if [ -x "$VENV/bin/componentize-py" ] &&
    [ "$("$VENV/bin/componentize-py" --version 2>/dev/null)" = "componentize-py $VERSION" ]; then
    exit 0
fi

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "python install: installing python3 and python3-venv with apt" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq python3 python3-venv >/dev/null
fi
if [ ! -x "$VENV/bin/pip" ]; then
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet "componentize-py==$VERSION"
"$VENV/bin/componentize-py" --version
