#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU (CI machines have none): the NVML collector
# writes the GPU's readings to a real broker, the engine's torch tests pass on the GPU, and the
# learned graph's fit and analyses are timed there (bench/graph_speed.py).
#   bench/gpu_check.sh                  # with the project's .venv
#   PY=python3 OUT=/tmp/gpu bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PY:-.venv/bin/python}
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
"$py" -c "from rca.causal.neural_granger import pick_device; print('engine device:', pick_device(None))" \
  | tee -a "$out/gpu.txt"
"$py" -m pytest -q -p no:cacheprovider -o addopts= -rs tests/telemetry/test_collectors.py -k gpu \
  2>&1 | tee "$out/pytest_gpu_collector.log" | tail -4
"$py" -m pytest -q -p no:cacheprovider -o addopts= tests/test_fitted_graph.py tests/test_run.py \
  tests/test_layers.py tests/test_pagerank_granger.py tests/test_methods.py tests/test_compute.py \
  2>&1 | tee "$out/pytest_engine.log" | tail -4
"$py" bench/graph_speed.py --repeats 3 --per-incident --json "$out/graph_speed_cuda.json" \
  2>&1 | tee "$out/graph_speed.log" | tail -8
