"""How right are the learned edges: precision and recall against the simulators' true graphs.

    .venv/bin/python bench/edge_quality.py [--limit 20] [--json FILE]

For every case (the ``holdout`` split, ``--limit`` spread over it) of the datasets that carry a
true series graph (``synthetic``, ``synthetic-hard``, the ``sim:`` stacks), ``run``'s learned
graph is fitted on the case's fault-free history, as ``rca serve`` fits it in the background,
with the call graph as the learner's prior. Its edges at or above a weight (the learned part is
scaled to at most 1 per effect) are scored against the true cause -> effect edges between the
same series: precision, recall, and the precision of a random guess (the true graph's
density). For reference, the same for the graph known without learning (series of one service
joined both ways, callee -> caller along every call), which ``run-topology`` walks. Goal (issue
#14): precision >= 0.6 at recall >= 0.5.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
from pathlib import Path

import numpy as np

from rca.causal.topology import graph_matrix, topology_matrix
from rca.compute import configure_torch_threads
from rca.datasets import open_dataset
from rca.eval.bench import pick_cases, split_cases
from rca.methods.run import RUNConfig

DATASETS = (
    "synthetic",
    "synthetic-hard",
    "sim:sockshop",
    "sim:llm-serving",
    "sim:robotics",
    "sim:large",
)
THRESHOLDS = (0.0, 0.1, 0.3, 0.5)


def scores(found: np.ndarray, truth: np.ndarray) -> tuple[float | None, float | None]:
    """Precision and recall of ``found``'s edges against ``truth``'s (both boolean, no
    self-loops); ``None`` where undefined."""
    hits = float((found & truth).sum())
    precision = hits / found.sum() if found.any() else None
    recall = hits / truth.sum() if truth.any() else None
    return precision, recall


def case_scores(case, config: RUNConfig) -> dict[str, tuple[float | None, float | None]]:
    # Series that never move in the history have no edges to learn.
    history = case.history.loc[:, case.history.nunique() > 1]
    nodes = [str(c) for c in history.columns]
    off_diagonal = ~np.eye(len(nodes), dtype=bool)
    truth = (graph_matrix(nodes, case.true_graph) > 0) & off_diagonal
    learned = config.learned_graph().fit(history, case.call_graph).weights
    out = {f"learned >= {t:g}": scores((learned > t) & off_diagonal, truth) for t in THRESHOLDS}
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
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = RUNConfig()
    rows = []
    for spec in args.dataset or DATASETS:
        dataset = open_dataset(spec, None)
        ids = pick_cases(split_cases(dataset.case_ids(), "holdout"), args.limit)
        per_case = []
        for k, case_id in enumerate(ids, start=1):
            per_case.append(case_scores(dataset.load(case_id), config))
            logging.info("%s: %d/%d cases", spec, k, len(ids))
        for graph in per_case[0]:
            rows.append(
                {
                    "dataset": spec,
                    "graph": graph,
                    "cases": len(per_case),
                    "precision": _mean([c[graph][0] for c in per_case]),
                    "recall": _mean([c[graph][1] for c in per_case]),
                }
            )
    print(f"{'dataset':<16} {'graph':<22} {'cases':>5} {'precision':>10} {'recall':>7}")
    for row in rows:
        precision = "-" if row["precision"] is None else f"{row['precision']:.2f}"
        recall = "-" if row["recall"] is None else f"{row['recall']:.2f}"
        print(
            f"{row['dataset']:<16} {row['graph']:<22} {row['cases']:>5} {precision:>10} {recall:>7}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
