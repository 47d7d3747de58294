#!/usr/bin/env bash
# Create .venv and install the package with its dev tools; fast when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# The stamp covers what the install builds: the project file and the compiled OTLP decoder.
stamp=.venv/.installed-$(cat pyproject.toml setup.py rca/ingest/_otlp_wire.c | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "installing into .venv (first run takes a few minutes)..." >&2
  .venv/bin/python -m pip install --quiet --upgrade pip 2>/dev/null || true
  # torch is pinned to the CPU build that lies on this machine's disk (see README).
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 \
    | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import rca, torch" # fail here, not later, if the install is incomplete
  rm -f .venv/.installed-*
  touch "$stamp"
fi
