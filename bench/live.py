"""Live benchmark: real faults injected into running stacks, RCA on the telemetry they emit.

    .venv/bin/python bench/live.py                       # every stack and fault, N=1
    .venv/bin/python bench/live.py --stacks sockshop --faults cpu,mem -n 3
    .venv/bin/python bench/live.py --score-only out/live  # rescore recorded cases

For each stack: start the broker, ingest, the stack and its steady load (``services.demo.lab``);
record a clean baseline (``--history`` seconds: every case's fault-free history); then for each
fault type that applies, ``-n`` times: wait until ``--before`` seconds of clean telemetry
follow the previous fault, inject at a target (the stack's targets in turn, seeded), keep the
fault on for ``--fault-seconds``, record the window ``[injection - before, injection +
fault-seconds]`` and clear the fault. The onset given to the methods is the logged injection
time (rounded up to the step), as in RCAEval's protocol; the truth is the target.

Each case is written to ``--out/<stack>/<case>/`` (``window.csv``, ``case.json``) next to the
stack's ``history.csv``, so ``--score-only`` can rescore without the live part. Scoring runs
every ``--methods`` entry through :func:`rca.eval.bench.run_bench` (the same protocol and
tables as ``rca bench``) with the stack's call graph, and prints per-fault AC@1 / AC@3.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from rca.compute import configure_torch_threads
from rca.datasets.base import Case, Truth
from rca.eval.bench import CaseOutcome, format_table, run_bench
from rca.eval.scoring import accuracy_at
from rca.window import Window
from services.demo.lab import LiveLab
from services.stack import FAULTS, load_stack, stack_names

METHODS = "run,run-topology,baro,nsigma,random"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _write_frame(frame: Window, path: Path) -> None:
    out = frame.copy()
    out.index = out.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(path, index_label="time")


def _read_frame(path: Path) -> Window:
    frame = pd.read_csv(path, index_col="time")
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index, utc=True)).rename("time")
    return frame.astype(float)


def collect(
    stack_name: str,
    faults: list[str],
    repeats: int,
    out: Path,
    *,
    history_seconds: float,
    before_seconds: float,
    fault_seconds: float,
    recovery_seconds: float,
    seed: int,
) -> None:
    """Run one stack live and record its cases under ``out/<stack>``."""
    stack = load_stack(stack_name)
    folder = out / stack_name
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    plan = []
    for fault in faults:
        if fault not in stack.faults():
            continue
        targets = list(stack.targets(fault))
        rng.shuffle(targets)
        cycle = itertools.cycle(targets)
        plan += [(fault, next(cycle)) for _ in range(repeats)]
    if not plan:
        return
    log(f"{stack_name}: {len(plan)} injections: {', '.join(f'{f}@{t}' for f, t in plan)}")
    progress = lambda m: log(f"{stack_name}: {m}")  # noqa: E731
    with LiveLab(stack, folder / "run", seed=seed, progress=progress) as lab:
        lab.wait_for_telemetry(90)
        warm = lab.now()
        time.sleep(history_seconds)
        history_end = lab.now()
        history = lab.window(warm + pd.Timedelta(seconds=5), history_end)
        _write_frame(history, folder / "history.csv")
        clean_since = warm
        for number, (fault, target) in enumerate(plan):
            wait = (clean_since + pd.Timedelta(seconds=before_seconds) - lab.now()).total_seconds()
            if wait > 0:
                time.sleep(wait)
            lab.check_alive()
            injection = lab.inject(target, fault)
            injected = pd.Timestamp(injection.started_unix_ns, unit="ns", tz="UTC")
            log(f"{stack_name}: #{number} {fault} at {target} ({injection.params})")
            time.sleep(fault_seconds + 2.5)  # + the export interval and ingest lag
            onset = injected.ceil("1s")
            window = lab.window(
                onset - pd.Timedelta(seconds=before_seconds),
                onset + pd.Timedelta(seconds=fault_seconds - 1),
            )
            lab.clear(target)
            clean_since = lab.now() + pd.Timedelta(seconds=recovery_seconds)
            case_dir = folder / f"{number:03d}-{fault}-{target}"
            case_dir.mkdir(exist_ok=True)
            _write_frame(window, case_dir / "window.csv")
            (case_dir / "case.json").write_text(
                json.dumps(
                    {
                        **injection.to_json(),
                        "onset": onset.isoformat(),
                        "indicators": list(FAULTS[fault].indicators),
                    },
                    indent=2,
                )
            )


class LiveCases:
    """Recorded live cases of one stack as a dataset (``rca.datasets.base.Dataset``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.stack = load_stack(folder.name)
        self.name = f"live:{folder.name}"
        self._history = _read_frame(folder / "history.csv")

    def case_ids(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir() if (p / "case.json").exists())

    def load(self, case_id: str) -> Case:
        meta = json.loads((self.folder / case_id / "case.json").read_text())
        return Case(
            dataset=self.name,
            case_id=case_id,
            window=_read_frame(self.folder / case_id / "window.csv"),
            onset=pd.Timestamp(meta["onset"]),
            truth=Truth(meta["target"], meta["fault"], frozenset(meta["indicators"])),
            history=self._history,
            call_graph=self.stack.call_graph(),
        )


def fault_table(
    outcomes: list[CaseOutcome], methods: list[str], datasets: list[str]
) -> tuple[str, list[dict[str, object]]]:
    """Per dataset and fault: AC@1 / AC@3 of each method (text, and the same as rows)."""
    groups: dict[tuple[str, str, str], list[int | None]] = defaultdict(list)
    for o in outcomes:
        groups[(o.dataset, o.fault or "-", o.method)].append(o.service_rank)
    lines = [f"{'dataset':<18} {'fault':<13}  " + "  ".join(f"{m:>16}" for m in methods)]
    rows: list[dict[str, object]] = []
    for dataset in datasets:
        for fault in FAULTS:
            cells = []
            for method in methods:
                ranks = groups.get((dataset, fault, method))
                if not ranks:
                    cells.append("-")
                    continue
                ac1, ac3 = accuracy_at(ranks, 1), accuracy_at(ranks, 3)
                cells.append(f"{ac1:.2f} / {ac3:.2f} ({len(ranks)})")
                rows.append(
                    {"dataset": dataset, "fault": fault, "method": method, "n": len(ranks),
                     "ac1": ac1, "ac3": ac3}
                )  # fmt: skip
            if any(c != "-" for c in cells):
                row = "  ".join(f"{c:>16}" for c in cells)
                lines.append(f"{dataset:<18} {fault:<13}  {row}")
    lines.append("cells: AC@1 / AC@3 (cases), service level, ties counted pessimistically")
    return "\n".join(lines), rows


def outcome_rows(outcomes: list[CaseOutcome]) -> list[dict[str, object]]:
    return [
        {
            "dataset": o.dataset,
            "case": o.case_id,
            "method": o.method,
            "truth": o.truth,
            "fault": o.fault,
            "service_rank": o.service_rank,
            "top": list(o.top),
            "seconds": o.seconds,
            "error": o.error,
        }
        for o in outcomes
    ]


def score(out: Path, stacks: list[str], methods: list[str], seed: int) -> dict[str, object]:
    datasets = [LiveCases(out / s) for s in stacks if (out / s / "history.csv").exists()]
    rows, outcomes = run_bench(datasets, methods, seed=seed, progress=True)
    print(format_table(rows))
    print()
    text, per_fault = fault_table(outcomes, methods, [d.name for d in datasets])
    print(text)
    return {
        "results": [r.to_json() for r in rows],
        "per_fault": per_fault,
        "cases": outcome_rows(outcomes),
    }


def main() -> int:
    configure_torch_threads()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", default=",".join(stack_names()))
    parser.add_argument("--faults", default="all", help="comma-separated, or all")
    parser.add_argument("-n", type=int, default=1, help="injections per stack and fault type")
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--history", type=float, default=60.0, help="clean seconds first")
    parser.add_argument("--before", type=float, default=40.0, help="clean seconds per window")
    parser.add_argument("--fault-seconds", type=float, default=25.0)
    parser.add_argument("--recovery", type=float, default=5.0, help="seconds after a clear")
    parser.add_argument("--out", type=Path, default=Path("out/live"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--score-only", action="store_true", help="rescore what --out holds")
    args = parser.parse_args()
    stacks = [s.strip() for s in args.stacks.split(",") if s.strip()]
    faults = list(FAULTS) if args.faults == "all" else [f.strip() for f in args.faults.split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    started = time.monotonic()
    if not args.score_only:
        for stack in stacks:
            collect(
                stack,
                faults,
                args.n,
                args.out,
                history_seconds=args.history,
                before_seconds=args.before,
                fault_seconds=args.fault_seconds,
                recovery_seconds=args.recovery,
                seed=args.seed,
            )
        log(f"live part done in {time.monotonic() - started:.0f} s")
    payload = score(args.out, stacks, methods, args.seed)
    log(f"done in {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
