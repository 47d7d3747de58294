#!/usr/bin/env python3
"""A CPU hog: one busy loop per usable core (``stress --cpu N`` style), to run the suite or a
benchmark on a busy machine.

    bench/cpu_hog.py -- scripts/test.sh               # the whole suite beside the hog
    bench/cpu_hog.py -- scripts/test.sh tests/demo    # some of it
    bench/cpu_hog.py --minutes 5                      # just the hog (Ctrl-C stops it)

With a command after ``--`` the hog runs while the command runs and this script exits with the
command's status. Bounded whatever happens: the loops stop themselves after ``--minutes``
(default 30), on SIGTERM or Ctrl-C, and when this script dies (even by SIGKILL).
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1


def _busy(deadline: float) -> None:
    """Spin until ``deadline`` (monotonic seconds); killed with the parent on Linux."""
    if sys.platform == "linux":
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    for signum in (signal.SIGINT, signal.SIGTERM):  # not the parent's handlers
        signal.signal(signum, signal.SIG_DFL)
    while time.monotonic() < deadline:
        for _ in range(100_000):
            pass


def start(workers: int, minutes: float) -> list[multiprocessing.Process]:
    """``workers`` busy loops that end by themselves after ``minutes``."""
    deadline = time.monotonic() + minutes * 60
    context = multiprocessing.get_context("fork")
    loops = [
        context.Process(target=_busy, args=(deadline,), name=f"cpu-hog-{i}", daemon=True)
        for i in range(workers)
    ]
    for loop in loops:
        loop.start()
    return loops


def stop(loops: list[multiprocessing.Process]) -> None:
    for loop in loops:
        loop.terminate()
    for loop in loops:
        loop.join()


def main() -> int:
    argv = sys.argv[1:]
    command = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="busy loops (default: one per core this process may use)",
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="stop after (default 30)")
    args = parser.parse_args(own)
    # SIGTERM ends this script like Ctrl-C, so the finally below stops the loops.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    loops = start(args.workers, args.minutes)
    print(f"cpu_hog: {args.workers} busy loops for at most {args.minutes:g} min", file=sys.stderr)
    try:
        if command:
            return subprocess.run(command).returncode
        for loop in loops:
            loop.join()
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        stop(loops)


if __name__ == "__main__":
    raise SystemExit(main())
