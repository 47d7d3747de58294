#!/usr/bin/env bash
# The command behind the baseline tables in bench/RESULTS.md (about 8 minutes on 2 cores;
# granger-pagerank on PetShop's ~300 series x ~600 rows takes most of it).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/rca bench \
  --dataset rcd-sockshop --dataset nezha-ob --dataset petshop \
  --dataset synthetic --dataset synthetic-hard \
  --methods random,nsigma,baro,granger-pagerank --by-fault --json bench/baselines.json "$@"
