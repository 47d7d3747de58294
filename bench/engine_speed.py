"""RCA latency of the engine next to BARO's, in the same run, on the same cases.

    .venv/bin/python bench/engine_speed.py [--repeats 3] [--json FILE]

Cases: a synthetic Train-Ticket-scale incident (100 services x 4 metrics = 400 series, 1,200
steps, no separate history: the learner uses the 900 pre-onset steps), and, when the shared data
is present, the first five RCD Sock Shop cases. Prints the median seconds per case of each
method, the ratio to BARO, and the device. Goals (issue 3): run <= 60 s on the 400-series case,
<= 5 s median on RCD Sock Shop, on this 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from rca.causal.neural_granger import pick_device
from rca.compute import configure_torch_threads
from rca.datasets import open_dataset
from rca.datasets.base import Case
from rca.datasets.synthetic import Synthetic, SyntheticConfig
from rca.methods import make_method
from rca.settings import Settings

METHODS = ("baro", "run-nograph", "run-fast", "run")


def seconds(case: Case, method: str) -> float:
    started = time.perf_counter()
    make_method(method).fit(case.history, call_graph=case.call_graph).rank(case.window, case.onset)
    return time.perf_counter() - started


def cases() -> dict[str, list[Case]]:
    big = SyntheticConfig(
        n_cases=1,
        min_services=100,
        max_services=100,
        n_steps=1200,
        onset_step=900,
        history_steps=0,
        seed=1,
    )
    out = {"synthetic 400 x 1200": [Synthetic(big).load("0000")]}
    root = Settings().resolved_data_root()
    if root is not None and (root / "rcd-sockshop").is_dir():
        dataset = open_dataset("rcd-sockshop", root)
        out["rcd-sockshop (5 cases)"] = [dataset.load(i) for i in dataset.case_ids()[:5]]
    return out


def main() -> None:
    configure_torch_threads()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    for name, group in cases().items():
        medians = {}
        for method in METHODS:
            runs = [seconds(case, method) for case in group for _ in range(args.repeats)]
            medians[method] = statistics.median(runs)
        for method in METHODS:
            rows.append(
                {
                    "cases": name,
                    "method": method,
                    "seconds_median": medians[method],
                    "ratio_to_baro": medians[method] / medians["baro"],
                }
            )
    print(f"device: {pick_device(None)}")
    print(f"{'cases':<24} {'method':<12} {'s/case (median)':>16} {'x BARO':>10}")
    for row in rows:
        print(
            f"{row['cases']:<24} {row['method']:<12} {row['seconds_median']:>16.3f} "
            f"{row['ratio_to_baro']:>10.0f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"device": str(pick_device(None)), "rows": rows}))


if __name__ == "__main__":
    main()
