"""The learned graph at Train Ticket's scale: one background fit, then analyses that use it.

    .venv/bin/python bench/graph_speed.py [--services 225] [--repeats 5] [--json FILE]

One synthetic system of ``--services`` services x 4 metrics (900 series by default) with a day
of fault-free history at 60 s (1,440 rows) and an incident window of 240 rows. Measured in the
same run: the background fit (``LearnedGraph.fit`` on the day, what ``rca serve`` does every
``RCA_GRAPH_REFRESH_SECONDS``), then the analysis of the window by ``run`` with that graph
fitted (what each alert costs in the server), by ``run-topology`` (no learned graph) and by BARO,
median of ``--repeats``; with ``--per-incident``, also ``run`` learning its own graph (the cost
without background fitting; minutes at this size). Goals (issue #14): analysis with a fitted
graph <= 5 s median and a fit of 900 series x 1 day <= 10 minutes, on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import time
from pathlib import Path

from rca.causal.neural_granger import pick_device
from rca.compute import configure_torch_threads
from rca.datasets.synthetic import Synthetic, SyntheticConfig
from rca.methods import make_method
from rca.methods.run import RUNConfig
from rca.types import CausalGraph


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def analysis_seconds(case, method: str, learned: CausalGraph | None, repeats: int) -> list[float]:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        fitted = make_method(method).fit(
            case.history, call_graph=case.call_graph, learned_graph=learned
        )
        fitted.rank(case.window, case.onset)
        runs.append(time.perf_counter() - started)
    return runs


def main() -> None:
    threads = configure_torch_threads()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=225, help="services (4 series each)")
    parser.add_argument("--repeats", type=int, default=5, help="analyses per method")
    parser.add_argument(
        "--per-incident", action="store_true", help="also time run learning its own graph"
    )
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = SyntheticConfig(
        n_cases=1,
        min_services=args.services,
        max_services=args.services,
        n_steps=240,
        onset_step=180,
        history_steps=1440,
        step_seconds=60.0,
        seed=7,
    )
    case = Synthetic(config).load("0000")
    series, rows = case.window.shape[1], len(case.history.index)
    logging.info("fitting the graph: %d series x %d rows of history", series, rows)
    wall, cpu = time.perf_counter(), cpu_seconds()
    graph = RUNConfig().learned_graph().fit(case.history, case.call_graph)
    fit = {"wall": time.perf_counter() - wall, "cpu": cpu_seconds() - cpu}
    learned = int((graph.weights > 0).sum())
    logging.info(
        "fitted in %.0f s (%.0f CPU-s): %d learned edges", fit["wall"], fit["cpu"], learned
    )

    timed = {
        "run (fitted graph)": analysis_seconds(case, "run", graph, args.repeats),
        "run-topology": analysis_seconds(case, "run-topology", None, args.repeats),
        "baro": analysis_seconds(case, "baro", None, args.repeats),
    }
    if args.per_incident:
        timed["run (learns per incident)"] = analysis_seconds(case, "run", None, 1)
    baro = statistics.median(timed["baro"])
    out = {
        "device": str(pick_device(None)),
        "torch_threads": threads,
        "series": series,
        "history_rows": rows,
        "fit_seconds": fit["wall"],
        "fit_cpu_seconds": fit["cpu"],
        "learned_edges": learned,
        "analysis": {
            name: {
                "median": statistics.median(runs),
                "runs": runs,
                "x_baro": statistics.median(runs) / baro,
            }
            for name, runs in timed.items()
        },
    }
    print(f"device {out['device']}, {threads} torch thread(s), {series} series")
    print(
        f"fit on {rows} rows of history: {fit['wall']:.1f} s ({fit['cpu']:.0f} CPU-s), "
        f"{learned} learned edges"
    )
    print(f"{'analysis':<28} {'s (median)':>11} {'x BARO':>8} {'runs':>5}")
    for name, row in out["analysis"].items():
        print(f"{name:<28} {row['median']:>11.2f} {row['x_baro']:>8.1f} {len(row['runs']):>5}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
