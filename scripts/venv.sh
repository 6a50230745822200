#!/usr/bin/env bash
# Creates (or refreshes) the Python venv with the real engines the tests read tables with.
# Reinstalls only when tests/python/requirements.txt changed.
set -euo pipefail
venv=${1:?usage: venv.sh VENV_DIR}
req="$(dirname "$0")/../tests/python/requirements.txt"
stamp="$venv/.zombi-requirements"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
cp "$req" "$stamp"
