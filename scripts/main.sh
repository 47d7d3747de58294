#!/usr/bin/env bash
# The main job: set up, then find the root cause of the bundled sample incident and benchmark
# the registered methods on seeded synthetic incidents (and on RCD Sock Shop when the shared
# benchmark data is present).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
incident=examples/sample-incident
onset=$(.venv/bin/python -c "import json; print(json.load(open('$incident/incident.json'))['onset'])")
truth=$(.venv/bin/python -c "import json; print(json.load(open('$incident/incident.json'))['root_cause']['service'])")
echo "== rca analyze: sample incident (onset $onset)"
.venv/bin/rca analyze "$incident/incident.csv" --onset "$onset" --method baro --top 5 --truth "$truth"
echo
echo "== rca bench: synthetic incidents"
.venv/bin/rca bench --dataset synthetic --limit 20 --methods random,nsigma,baro,granger-pagerank
if .venv/bin/rca datasets | grep -q "^data root: /"; then
  echo
  echo "== rca bench: RCD Sock Shop (real faults)"
  .venv/bin/rca bench --dataset rcd-sockshop --methods random,nsigma,baro
fi
