"""The engine beside a CPU hog: `run` per case quiet, then with busy loops on every core
(medians per case).

Compares the thread rule of rca.compute (what every entry point uses, for torch and NumPy's
BLAS) with the libraries' own default (a thread per core) in the same run. Goal (the first-hour
issue): busy <= 2x quiet.

    .venv/bin/python bench/contention.py [--cases 6] [--method run] [--json bench/contention.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
from pathlib import Path

from rca.compute import limit_threads, torch_threads, usable_cores
from rca.datasets import Synthetic, SyntheticConfig
from rca.methods import make_method


def _spin(stop: multiprocessing.synchronize.Event) -> None:
    while not stop.is_set():
        sum(range(10_000))


def _time_cases(method: str, cases: list, threads: int) -> list[float]:
    limit_threads(threads)
    seconds = []
    for case in cases:
        started = time.perf_counter()
        model = make_method(method).fit(case.history, call_graph=case.call_graph)
        model.rank(case.window, case.onset)
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--method", default="run")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    data = Synthetic(SyntheticConfig(n_cases=args.cases, seed=11))
    cases = [data.load(case_id) for case_id in data.case_ids()]
    rules = {"rca.compute": torch_threads(), "torch default": usable_cores()}
    rows = []
    for rule, threads in rules.items():
        quiet = _time_cases(args.method, cases, threads)
        stop = multiprocessing.Event()
        hogs = [
            multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
            for _ in range(usable_cores())
        ]
        for hog in hogs:
            hog.start()
        try:
            busy = _time_cases(args.method, cases, threads)
        finally:
            stop.set()
            for hog in hogs:
                hog.join(10)
        q, b = statistics.median(quiet), statistics.median(busy)
        rows.append({"rule": rule, "threads": threads, "quiet_s": q, "busy_s": b, "ratio": b / q})
    print(
        f"`{args.method}` on {len(cases)} synthetic cases, {usable_cores()} cores, "
        f"a busy loop on each core beside it"
    )
    print("| threads rule | threads | quiet s/case | busy s/case | busy / quiet |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['rule']} | {r['threads']} | {r['quiet_s']:.2f} | {r['busy_s']:.2f} | "
            f"{r['ratio']:.1f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
