#!/usr/bin/env bash
# The main job: set up, then `rca demo` (the LLM-serving stack as real processes, a real fault
# at a random service, the incident, its RCA next to the truth, the report; about 2 minutes),
# and benchmark the registered methods on seeded synthetic incidents (and on RCD Sock Shop when
# the shared benchmark data is present).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== rca demo"
.venv/bin/rca demo --json out/demo/last.json
echo
echo "== rca bench: synthetic incidents"
.venv/bin/rca bench --dataset synthetic --limit 20 --methods random,nsigma,baro,granger-pagerank,run
# Read the whole listing first: `grep -q` quits at its first match, and under pipefail the
# listing's broken pipe would fail the test (and skip the benchmark) now and then.
datasets=$(.venv/bin/rca datasets)
if grep -q "^data root: /" <<< "$datasets"; then
  echo
  echo "== rca bench: RCD Sock Shop (real faults)"
  .venv/bin/rca bench --dataset rcd-sockshop --methods random,nsigma,baro,run
fi
