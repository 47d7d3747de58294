"""How fast the stack simulator makes incidents: a speed claim, so measured here and not
asserted in the tests (a busy machine would break it there).

    .venv/bin/python bench/sim_speed.py              # 60 incidents of each demo stack
    .venv/bin/python bench/sim_speed.py --cases 200 --stacks llm-serving

For each stack: incidents a minute of wall-clock time and of this process's CPU time (the
second holds on a busy machine too). The goal is thousands a minute, so that ``rca bench`` on
``sim:<stack>`` spends its time in the methods, not in the generator.
"""

from __future__ import annotations

import argparse
import time

from rca.datasets import open_dataset
from services.stack import stack_names


def incidents_a_minute(stack: str, cases: int) -> tuple[float, float]:
    """(per wall-clock minute, per CPU minute) for ``cases`` incidents of ``sim:<stack>``."""
    dataset = open_dataset(f"sim:{stack}", None)
    case_ids = dataset.case_ids()[:cases]
    wall, cpu = time.perf_counter(), time.process_time()
    for case_id in case_ids:
        dataset.load(case_id)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return 60 * len(case_ids) / wall, 60 * len(case_ids) / cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", default=",".join(stack_names()))
    parser.add_argument("--cases", type=int, default=60, help="incidents per stack")
    args = parser.parse_args()
    print("| stack | incidents / wall min | incidents / CPU min |\n|---|---|---|")
    for stack in (s.strip() for s in args.stacks.split(",") if s.strip()):
        wall, cpu = incidents_a_minute(stack, args.cases)
        print(f"| {stack} | {wall:,.0f} | {cpu:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
