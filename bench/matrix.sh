#!/usr/bin/env bash
# The results matrix in bench/RESULTS.md: every dataset x every observability view and onset
# protocol x `run`, its ablations and the baselines, on the HOLDOUT split (rules and constants
# are chosen on `--split tune` and the simulators only), one `rca bench` process and JSON file
# per cell, then one markdown table per dataset (AC@1 / Avg@5 / mean rank of the truth; an
# unranked truth counts as the number of candidate services + 1).
#   bench/matrix.sh                                              # the whole matrix
#   DATASETS="nezha-ob sim:large" VIEWS="full latency-only" bench/matrix.sh
#   LIMIT=3 OUT=/tmp/matrix bench/matrix.sh                     # a few cases per cell
# Views (rca/eval/views.py): full (as recorded), no-call-graph, latency-only, one-latency,
# no-call-graph,one-latency (a deployment without tracing that exports one latency per service),
# coarse:60s (coarse:5s on the simulators, whose windows are 65 s at 1 s), call-graph-drop:0.5;
# onsets: shift:N (the exact onset moved N steps), detect:N (the onset detector, told of an
# alert N steps after the injection).
set -euo pipefail
cd "$(dirname "$0")/.."
methods=${METHODS:-run,run-topology,run-nograph,baro,nsigma,random}
read -r -a datasets <<< "${DATASETS:-rcd-sockshop nezha-ob petshop sim:sockshop sim:llm-serving sim:robotics sim:large}"
read -r -a views <<< "${VIEWS:-full no-call-graph latency-only one-latency no-call-graph,one-latency coarse:60s call-graph-drop:0.5 shift:-2 shift:2 detect:2 detect:5}"
out=${OUT:-bench/matrix}
mkdir -p "$out"
files=()
for d in "${datasets[@]}"; do
  for v in "${views[@]}"; do
    case $d in sim:*) v=${v/coarse:60s/coarse:5s} ;; esac
    case $v in
      full) args=() ;;
      shift:*) args=(--onset-shift "${v#shift:}") ;;
      detect:*) args=(--onset detect --alert-delay "${v#detect:}") ;;
      *) args=(--view "$v") ;;
    esac
    file="$out/$(echo "${d}__${v}" | tr ':/,+' '____').json"
    files+=("$file")
    started=$(date +%s)
    .venv/bin/rca bench --dataset "$d" --methods "$methods" --split holdout --quiet \
      ${LIMIT:+--limit "$LIMIT"} "${args[@]}" --json "$file" > /dev/null
    echo "$d $v: $(( $(date +%s) - started )) s" >&2
  done
done
.venv/bin/python bench/tables.py --matrix "${files[@]}"
