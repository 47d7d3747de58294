#!/usr/bin/env bash
# Set up (with what every test needs: scripts/setup.sh --test-deps names anything it could not
# install and the tests that will skip for it), then run the whole test suite: the command the
# README gives and CI runs. Arguments go to pytest, e.g. `scripts/test.sh -m "not slow"` to leave
# out the tests that start the broker, servers or stack processes. Deadlines in the tests are
# hang guards; RCA_TEST_TIMEOUT_SCALE=3 triples them on a very slow machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test-deps
exec .venv/bin/python -m pytest -q "$@"
