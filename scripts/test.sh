#!/usr/bin/env bash
# Set up, then run the whole test suite (the command the README gives and CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
