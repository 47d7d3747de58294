"""Onset detection error: detected minus true onset, in steps, per dataset and alert delay.

    .venv/bin/python bench/onset.py [--split holdout] [--json bench/onset.json]

For every case of the split, :func:`rca.detect.onset.detect_onset` gets the window, the case's
history (where the dataset has one) and, as ``not_after``, an alert time ``true onset + D``
steps for ``D`` in 0, 2, 5, or no alert time at all; never the true onset itself. The true row
is the first row at or after the labelled onset (what every method splits at). Reported per
(dataset, D): the median error, the 90th percentile of ``|error|``, the share within one step,
the share of fallbacks (nothing stood out) and the cases refused (no row can be the onset).
The detector's constants were chosen on the ``tune`` split (every fifth case) and the
synthetic sets; report the ``holdout``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rca.datasets import open_dataset
from rca.detect.onset import detect_onset
from rca.errors import RCAInputError
from rca.eval.bench import pick_cases, split_cases
from rca.settings import Settings

DATASETS = (
    "rcd-sockshop",
    "nezha-ob",
    "petshop",
    "synthetic",
    "synthetic-hard",
    "sim:llm-serving",
    "sim:robotics",
    "sim:sockshop",
)
DELAYS: tuple[int | None, ...] = (0, 2, 5, None)


def errors_of(spec: str, root: Path | None, split: str, limit: int | None) -> dict[str, list]:
    """Per delay label: ``(error in steps, fell back)`` for every case."""
    dataset = open_dataset(spec, root)
    out: dict[str, list] = {_label(d): [] for d in DELAYS}
    ids = split_cases(dataset.case_ids(), split)  # type: ignore[arg-type]
    for case_id in pick_cases(ids, limit):
        case = dataset.load(case_id)
        index = case.window.index
        step = index[1] - index[0]
        true_row = int(index.searchsorted(case.onset, side="left"))
        for delay in DELAYS:
            try:
                found = detect_onset(
                    case.window,
                    not_after=None if delay is None else case.onset + delay * step,
                    history=case.history,
                )
            except RCAInputError:  # e.g. an alert with fewer than 2 rows before it
                out[_label(delay)].append(None)
                continue
            row = int(index.get_loc(found.onset))
            out[_label(delay)].append((row - true_row, found.method.startswith("fallback")))
    return out


def _label(delay: int | None) -> str:
    return "no alert" if delay is None else f"alert +{delay}"


def summary(found: list) -> dict[str, float]:
    pairs = [p for p in found if p is not None]
    errors = np.array([e for e, _ in pairs], dtype=float)
    size = np.abs(errors)
    return {
        "cases": len(pairs),
        "refused": len(found) - len(pairs),
        "median": float(np.median(errors)),
        "p90_abs": float(np.percentile(size, 90)),
        "within_1": float(np.mean(size <= 1)),
        "fallback": float(np.mean([f for _, f in pairs])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["tune", "holdout", "all"], default="holdout")
    parser.add_argument("--dataset", action="append", default=None, help="default: all eight")
    parser.add_argument("--limit", type=int, default=None, help="at most N cases per dataset")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    root = Settings().resolved_data_root()
    rows = []
    print(f"onset error in steps (detected - true), {args.split} split")
    print(f"{'dataset':<16} {'alert':<9} {'cases':>5} {'median':>6} {'p90|e|':>6} "
          f"{'<=1':>5} {'fallback':>8} {'refused':>7}")  # fmt: skip
    started = time.perf_counter()
    for spec in args.dataset or DATASETS:
        if not spec.startswith(("synthetic", "sim:")) and (
            root is None or not (root / spec).is_dir()
        ):
            print(f"{spec:<16} (no data under {root})")
            continue
        for label, pairs in errors_of(spec, root, args.split, args.limit).items():
            row = {"dataset": spec, "alert": label, **summary(pairs)}
            rows.append(row)
            print(
                f"{spec:<16} {label:<9} {row['cases']:>5} {row['median']:>+6.1f} "
                f"{row['p90_abs']:>6.1f} {row['within_1']:>5.2f} {row['fallback']:>8.2f} "
                f"{row['refused']:>7}",
                flush=True,
            )
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
