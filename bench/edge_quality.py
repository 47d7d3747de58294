"""How right are the learned edges: precision and recall against the simulators' true graphs.

    .venv/bin/python bench/edge_quality.py [--limit 20] [--split tune] [--view VIEW] [--json FILE]

For every case (the ``holdout`` split by default, ``--limit`` spread over it; ``--view`` as in
``rca bench``, e.g. ``latency-only`` or ``call-graph-drop:0.5``) of the datasets that carry a
true series graph (``synthetic``, ``synthetic-hard``, the ``sim:`` stacks), ``run``'s learned
graph is fitted on the case's fault-free history, as ``rca serve`` fits it in the background,
with the call graph as the learner's prior. Its edges (kept by the held-out test at the
learner's false-discovery rate), and those at or above a weight (the learned part is scaled to
at most 1 per effect), are scored against the true cause -> effect edges between the same
series: precision, recall, the share of true edges found at their true lag where the generator
has lags, and the precision of a random guess (the true graph's density). For reference, the
same for the graph known without learning (series of one service joined both ways, callee ->
caller along every call), which ``run-topology`` walks. Goal (issue #14): precision >= 0.6 at
recall >= 0.5.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np

from rca.causal.topology import graph_matrix, topology_matrix
from rca.compute import configure_torch_threads
from rca.datasets import open_dataset
from rca.eval.bench import pick_cases, split_cases
from rca.eval.views import apply_views, parse_views
from rca.methods.run import RUNConfig

DATASETS = (
    "synthetic",
    "synthetic-hard",
    "sim:sockshop",
    "sim:llm-serving",
    "sim:robotics",
    "sim:large",
)
THRESHOLDS = (0.1, 0.3, 0.5)


def scores(found: np.ndarray, truth: np.ndarray) -> tuple[float | None, float | None]:
    """Precision and recall of ``found``'s edges against ``truth``'s (both boolean, no
    self-loops); ``None`` where undefined."""
    hits = float((found & truth).sum())
    precision = hits / found.sum() if found.any() else None
    recall = hits / truth.sum() if truth.any() else None
    return precision, recall


def true_lags(nodes: list[str], graph) -> np.ndarray:
    """``lags[i, j]``: the generator's lag of the true edge ``i -> j``, 0 where it has none."""
    index = {name: k for k, name in enumerate(nodes)}
    lags = np.zeros((len(nodes), len(nodes)), dtype=int)
    for cause, effect, lag in graph.edges(data="lag_steps", default=0):
        if cause in index and effect in index:
            lags[index[cause], index[effect]] = lag
    return lags


def case_scores(case, config: RUNConfig) -> dict[str, tuple[float | None, float | None]]:
    # Series that never move in the history have no edges to learn.
    history = case.history.loc[:, case.history.nunique() > 1]
    nodes = [str(c) for c in history.columns]
    off_diagonal = ~np.eye(len(nodes), dtype=bool)
    truth = (graph_matrix(nodes, case.true_graph) > 0) & off_diagonal
    fitted = config.learned_graph().fit(history, case.call_graph)
    learned = fitted.weights
    out = {"learned (test)": scores((learned > 0) & off_diagonal, truth)}
    out |= {f"learned >= {t:g}": scores((learned >= t) & off_diagonal, truth) for t in THRESHOLDS}
    lags = true_lags(nodes, case.true_graph)
    lagged_found = (learned > 0) & (lags > 0)
    if lagged_found.any() and fitted.lag_steps is not None:
        right = float((fitted.lag_steps[lagged_found] == lags[lagged_found]).mean())
        out["lag right (found, lagged)"] = (right, None)
    known = (topology_matrix(nodes, case.call_graph) > 0) & off_diagonal
    out["known (run-topology)"] = scores(known, truth)
    out["chance"] = (float(truth.sum() / off_diagonal.sum()), None)
    return out


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.fmean(kept) if kept else None


def main() -> None:
    configure_torch_threads()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=20, help="cases per dataset")
    parser.add_argument("--dataset", action="append", default=None, help="default: all six")
    parser.add_argument("--split", choices=("tune", "holdout", "all"), default="holdout")
    parser.add_argument("--view", action="append", default=[], help="as in rca bench; composes")
    parser.add_argument("--fdr", type=float, default=None, help="the learner's FDR level")
    parser.add_argument("--min-increase", type=float, default=None, help="its effect floor")
    parser.add_argument("--screen", type=float, default=None, help="its gate screen")
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    granger = RUNConfig().granger
    if args.fdr is not None:
        granger = replace(granger, fdr=args.fdr)
    if args.min_increase is not None:
        granger = replace(granger, min_error_increase=args.min_increase)
    if args.screen is not None:
        granger = replace(granger, screen_gate=args.screen)
    config = RUNConfig(granger=granger)
    views = parse_views(args.view)
    label = ",".join(args.view) or "full"
    rows = []
    for spec in args.dataset or DATASETS:
        dataset = open_dataset(spec, None)
        ids = pick_cases(split_cases(dataset.case_ids(), args.split), args.limit)
        per_case = []
        for k, case_id in enumerate(ids, start=1):
            case = apply_views(dataset.load(case_id), views, seed=0)
            per_case.append(case_scores(case, config))
            logging.info("%s: %d/%d cases", spec, k, len(ids))
        for graph in dict.fromkeys(g for c in per_case for g in c):
            rows.append(
                {
                    "dataset": spec,
                    "view": label,
                    "graph": graph,
                    "cases": len(per_case),
                    "precision": _mean([c[graph][0] for c in per_case if graph in c]),
                    "recall": _mean([c[graph][1] for c in per_case if graph in c]),
                }
            )
    header = f"{'dataset':<16} {'view':<20} {'graph':<26} {'cases':>5}"
    print(f"{header} {'precision':>10} {'recall':>7}")
    for row in rows:
        precision = "-" if row["precision"] is None else f"{row['precision']:.2f}"
        recall = "-" if row["recall"] is None else f"{row['recall']:.2f}"
        print(
            f"{row['dataset']:<16} {row['view']:<20} {row['graph']:<26} {row['cases']:>5} "
            f"{precision:>10} {recall:>7}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
