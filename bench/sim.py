"""Simulator benchmark: simulated incidents of each demo stack (``sim:<stack>``), every method.

    .venv/bin/python bench/sim.py                              # 500 incidents per stack
    .venv/bin/python bench/sim.py --slow run --slow-limit 100  # run on 100 of them, spread

The incidents come from the one generator (:mod:`rca.datasets.synthetic`, driven by the stack
descriptions in ``services/stacks/`` through :mod:`services.sim`): every fault type that applies
to a stack in equal shares, at seeded random targets, 40 s before and 25 s after the onset at
1 s, 5 min of history, exactly the series names the live services emit. Scoring is
:func:`rca.eval.bench.run_bench` (the protocol and table of ``rca bench``), with the per-fault
AC@1 / AC@3 table of ``bench/live.py``. Methods named in ``--slow`` run on ``--slow-limit``
cases spread evenly over the faults (all when not given), the others on every case.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live import fault_table, outcome_rows

from rca.compute import configure_torch_threads
from rca.eval.bench import format_table, run_bench
from services.sim import StackSim, StackSimConfig
from services.stack import stack_names


def main() -> int:
    configure_torch_threads()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", default=",".join(stack_names()))
    parser.add_argument("--cases", type=int, default=500, help="incidents per stack")
    parser.add_argument("--methods", default="run,run-topology,baro,nsigma,random")
    parser.add_argument("--slow", default="", help="comma-separated methods to run on fewer")
    parser.add_argument("--slow-limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    stacks = [s.strip() for s in args.stacks.split(",") if s.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    slow = [m for m in (s.strip() for s in args.slow.split(",")) if m in methods]
    fast = [m for m in methods if m not in slow]
    started = time.monotonic()
    datasets = [StackSim(StackSimConfig(s, n_cases=args.cases, seed=args.seed)) for s in stacks]
    rows, outcomes = run_bench(datasets, fast, seed=args.seed) if fast else ([], [])
    if slow:
        slow_rows, slow_outcomes = run_bench(datasets, slow, seed=args.seed, limit=args.slow_limit)
        rows += slow_rows
        outcomes += slow_outcomes
    order = {m: i for i, m in enumerate(methods)}
    rows.sort(key=lambda r: (stacks.index(r.dataset.removeprefix("sim:")), order[r.method]))
    print(format_table(rows))
    print()
    text, per_fault = fault_table(outcomes, methods, [d.name for d in datasets])
    print(text)
    print(f"\n{time.monotonic() - started:.0f} s", file=sys.stderr)
    if args.json:
        payload = {
            "cases_per_stack": args.cases,
            "slow_limit": args.slow_limit if slow else None,
            "results": [r.to_json() for r in rows],
            "per_fault": per_fault,
            "cases": outcome_rows(outcomes),
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
