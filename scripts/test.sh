#!/usr/bin/env bash
# Install everything, then run every check: ruff, mypy, the import-layer contracts and the test suite.
# This is the command the README gives and the one CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"; ruff check .
echo "== mypy (strict on schemas/ and pipeline/)"; mypy schemas pipeline agents
echo "== import layers"; lint-imports
echo "== pytest"; python -m pytest "$@"
