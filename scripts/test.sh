#!/usr/bin/env bash
# Install everything, then run every check: ruff, mypy, the import-layer contracts and the test suite.
# This is the command the README gives and the one CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"

# The Apache Kafka tier: jars from Maven (cached). Without java or mvn those tests are skipped with a message;
# in CI (CI=true) a missing tool is a failure instead.
if [ "${CI:-}" = "true" ]; then export TAILWATCH_REQUIRE_KAFKA=1; fi
if command -v java >/dev/null && command -v mvn >/dev/null; then
  echo "== Apache Kafka jars"; PYTHON="$PWD/.venv/bin/python" bash deploy/kafka/kafka.sh fetch
fi

echo "== ruff"; ruff check .
echo "== mypy (strict on schemas/ and pipeline/)"; mypy schemas pipeline agents
echo "== import layers"; lint-imports
echo "== pytest"; python -m pytest "$@"
