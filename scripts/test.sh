#!/usr/bin/env bash
# The test command (README, .ci/run): whole suite, slow end-to-end tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
.venv/bin/dg check defs
exec .venv/bin/python -m pytest -q -ra "$@"
