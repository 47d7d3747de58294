"""``rca demo``: the command line of :func:`services.demo.session.run_demo`."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import psutil


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from services.stack import FAULTS, stack_names

    demo = sub.add_parser(
        "demo",
        help="run a demo stack, inject a real fault, open the incident, rank its root causes",
        description=(
            "Start the broker, bring a stack up (one process per service) under load, learn a "
            "healthy baseline, inject a fault at a service, let the SLO watcher open the "
            "incident, run the RCA, print the ranking next to the truth and write the report. "
            "Ctrl-C stops everything."
        ),
    )
    demo.add_argument(
        "--stack", choices=stack_names(), default="llm-serving", help="demo stack to run"
    )
    demo.add_argument(
        "--fault",
        choices=list(FAULTS),
        default=None,
        help="default: drawn from those the telemetry shows",
    )
    demo.add_argument("--target", default=None, help="service to inject at (default: drawn)")
    demo.add_argument("--method", default="run", help="RCA method (rca methods)")
    demo.add_argument("--seed", type=int, default=None, help="picks fault and target (printed)")
    demo.add_argument("--rate", type=float, default=None, help="requests/s (default: stack's)")
    demo.add_argument(
        "--profile",
        choices=["steady", "diurnal"],
        default="steady",
        help="load shape: constant, or a daily-like wave over --period",
    )
    demo.add_argument("--period", type=float, default=600.0, help="diurnal period, seconds")
    demo.add_argument("--baseline", type=float, default=60.0, help="healthy seconds first")
    demo.add_argument("--before", type=float, default=45.0, help="window seconds before onset")
    demo.add_argument("--after", type=float, default=20.0, help="window seconds after onset")
    demo.add_argument("--detect-timeout", type=float, default=45.0, help="seconds to wait for SLO")
    demo.add_argument("--out", type=Path, default=Path("out/demo"), help="incident folders")
    demo.add_argument("--json", type=Path, default=None, help="also write the outcome here")
    demo.add_argument(
        "--keep-running",
        action="store_true",
        help="also run rca serve, alert it, and leave everything up until Ctrl-C",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress lines")
    demo.set_defaults(func=cmd_demo)


# Teardown after Ctrl-C normally takes a few seconds; past this, or on a second Ctrl-C, the
# demo kills what it started and exits, wherever the interrupt landed.
TEARDOWN_LIMIT_SECONDS = 45.0
_interrupted = threading.Event()


def _force_exit() -> None:
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.kill()
    print("rca demo: teardown took too long; killed what it started", file=sys.stderr)
    os._exit(130)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    if _interrupted.is_set():
        _force_exit()
    _interrupted.set()
    watchdog = threading.Timer(TEARDOWN_LIMIT_SECONDS, _force_exit)
    watchdog.daemon = True
    watchdog.start()
    raise KeyboardInterrupt(f"signal {signum}")


def cmd_demo(args: argparse.Namespace) -> int:
    from services.demo.session import DemoOptions, run_demo

    options = DemoOptions(
        stack=args.stack,
        fault=args.fault,
        target=args.target,
        method=args.method,
        seed=args.seed,
        rate=args.rate,
        profile=args.profile,
        period_seconds=args.period,
        baseline_seconds=args.baseline,
        before_seconds=args.before,
        after_seconds=args.after,
        detect_timeout_seconds=args.detect_timeout,
        out=args.out,
        json_path=args.json,
        keep_running=args.keep_running,
        progress=not args.quiet,
    )
    # SIGTERM tears down like Ctrl-C (the session's finally blocks stop every process).
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        outcome = run_demo(options)
    except KeyboardInterrupt:
        print("rca demo: interrupted; everything it started is stopped", file=sys.stderr)
        return 0 if options.keep_running else 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"rca demo: done in {outcome.seconds:.0f} s; incident folder {outcome.folder}")
    return 0
