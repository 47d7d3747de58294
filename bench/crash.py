"""A service whose telemetry disappears: is it found? (silence as evidence, rca/detect/silence.py)

    .venv/bin/python bench/crash.py [--limit 60] [--json FILE]

No shared dataset holds a crash and no stack can kill a process yet, so this approximates one
on real and simulated incidents: every series of the root-cause service stops at the onset (a
pod killed with its exporter), the rest of the window is as recorded (its callers show the
recorded fault's effects, not a crash's errors: a weaker signal than a real crash gives).
Each case is ranked by ``run-topology`` with silence as evidence and with it switched off (the
series then count as "empty after the onset", as before), and by BARO and NSigma, which drop
empty series. Holdout split; AC@1 / Avg@5 / mean rank of the truth.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

import rca.detect.robust as robust
from rca.datasets import open_dataset
from rca.datasets.base import Case
from rca.errors import RCAInputError
from rca.eval.bench import candidate_count, pick_cases, split_cases
from rca.eval.scoring import accuracy_at, average_accuracy, mean_rank, rank_truth
from rca.methods import make_method
from rca.settings import get_settings
from rca.types import parse_series_name

DATASETS = ("rcd-sockshop", "nezha-ob", "petshop", "sim:sockshop", "sim:llm-serving", "sim:large")
METHODS = ("run-topology", "run-topology (silence off)", "baro", "nsigma")


def crashed(case: Case) -> Case:
    """``case`` with every series of its root-cause service missing from the onset on."""
    window = case.window.copy()
    mine = [c for c in window.columns if _service(str(c)) == case.truth.service]
    window.loc[window.index >= case.onset, mine] = np.nan
    return replace(case, window=window)


def _service(name: str) -> str | None:
    try:
        return parse_series_name(name).service
    except ValueError:
        return None


@contextlib.contextmanager
def silence_off() -> Iterator[None]:
    """The detect stage as it was: missing values stay missing."""
    kept = robust.fill_silence
    robust.fill_silence = lambda frame, max_gap_steps, since=None: (frame, [])
    try:
        yield
    finally:
        robust.fill_silence = kept


def rank_of(method: str, case: Case) -> int | None:
    """The truth's service rank; ``None`` (a miss, as ``rca bench`` counts it) where the
    method refuses the case (PetShop has one with a single row before its onset)."""
    name = method.split(" ")[0]
    model = make_method(name).fit(case.history, call_graph=case.call_graph)
    context = silence_off() if "silence off" in method else contextlib.nullcontext()
    try:
        with context:
            result = model.rank(case.window, case.onset)
    except RCAInputError:
        return None
    return rank_truth(result, case.truth).service


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=60, help="cases per dataset (default 60)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    print(f"{'dataset':<16} {'method':<28} {'cases':>5}  AC@1  Avg@5  mean rank")
    root = get_settings().resolved_data_root()
    for spec in DATASETS:
        if root is None and not spec.startswith("sim:"):
            print(f"{spec:<16} (no data root: set RCA_DATA_ROOT)")
            continue
        dataset = open_dataset(spec, root)
        ids = pick_cases(split_cases(dataset.case_ids(), "holdout"), args.limit)
        cases = [crashed(dataset.load(i)) for i in ids]
        for method in METHODS:
            ranks = [rank_of(method, case) for case in cases]
            mean = mean_rank(ranks, [candidate_count(case.window) for case in cases])
            row = {
                "dataset": spec,
                "method": method,
                "cases": len(cases),
                "ac1": accuracy_at(ranks, 1),
                "avg5": average_accuracy(ranks, 5),
                "mean_rank": mean,
            }
            rows.append(row)
            print(
                f"{spec:<16} {method:<28} {len(cases):>5}  {row['ac1']:.2f}  {row['avg5']:.2f}"
                f"  {mean:9.1f}",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
