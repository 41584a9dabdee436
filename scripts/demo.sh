#!/usr/bin/env bash
# Install tailwatch, then run the demo on the embedded broker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/tailwatch demo "$@"
