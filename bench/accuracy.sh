#!/usr/bin/env bash
# The command behind the accuracy tables in bench/RESULTS.md: every baseline, `run` and its
# ablations on each dataset, one process and one JSON file per dataset (per-case outcomes:
# rank of the truth, top-5 services, seconds), then the markdown tables. About 50 minutes on
# 2 cores, most of it PetShop's ~300 series x ~600 rows through granger-pagerank and run.
#   bench/accuracy.sh                        # every dataset
#   bench/accuracy.sh rcd-sockshop nezha-ob  # some of them
set -euo pipefail
cd "$(dirname "$0")/.."
methods=random,nsigma,baro,granger-pagerank,run-nograph,run-topology,run-noprior,run-randomgraph,run
datasets=("$@")
[ ${#datasets[@]} -gt 0 ] || datasets=(rcd-sockshop nezha-ob petshop synthetic synthetic-hard)
for d in "${datasets[@]}"; do
  m=$methods
  case $d in synthetic*) m=$methods,run-oracle ;; esac
  .venv/bin/rca bench --dataset "$d" --methods "$m" --by-fault --json "bench/accuracy/$d.json"
done
.venv/bin/python bench/tables.py bench/accuracy/*.json
