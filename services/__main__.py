"""``python -m services``: bring a demo stack up by hand, inject and clear faults.

    python -m services stacks
    python -m services up --stack sockshop --run-dir /tmp/shop      # Ctrl-C stops everything
    python -m services inject --run-dir /tmp/shop --target carts --fault cpu
    python -m services clear --run-dir /tmp/shop --target carts

``up`` starts the tansu broker on a free loopback port unless ``--bootstrap`` names a Kafka,
then the stack and its load; point ``rca ingest --bootstrap`` (printed) at it to collect.
``rca demo`` does all of this and the RCA in one command.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from services.stack import FAULTS, load_stack, stack_names


def _params(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--param takes key=value, not {item!r}")
        out[key] = float(value)
    return out


def cmd_stacks(args: argparse.Namespace) -> int:
    for name in stack_names():
        stack = load_stack(name)
        print(f"{name:<12} {len(stack.services):>2} services  {stack.summary}")
        print(f"{'':<12} faults: {', '.join(stack.faults())}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from rca.settings import get_settings
    from rca.transport.broker import start_broker
    from rca.transport.topics import telemetry_topics
    from services.runner import start_stack

    settings = get_settings()
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        topics = telemetry_topics(settings.metrics_topic, settings.dlq_topic, 1)
        broker = start_broker(topics=topics)
        bootstrap = broker.bootstrap
    running = None
    try:
        running = start_stack(
            args.stack, bootstrap, args.run_dir, topic=settings.metrics_topic, seed=args.seed
        )
        running.start_load(args.rate, args.profile, args.period, args.seed)
        print(json.dumps(running.manifest(), indent=2), flush=True)
        print(f"up: {args.stack} on Kafka {bootstrap}; Ctrl-C stops it", flush=True)
        while not stopping.wait(1.0):
            dead = [name for name, ok in running.alive().items() if not ok]
            if dead:
                print(
                    f"up: exited: {', '.join(dead)} (logs in {args.run_dir / 'logs'})",
                    file=sys.stderr,
                )
                return 1
    finally:
        if running is not None:
            running.stop()
        if broker is not None:
            broker.stop()
    return 0


def cmd_inject(args: argparse.Namespace) -> int:
    from services.inject import Injector

    injection = Injector(args.run_dir).inject(args.target, args.fault, _params(args.param))
    print(json.dumps(injection.to_json()))
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    from services.inject import Injector

    print(json.dumps(Injector(args.run_dir).clear(args.target)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("stacks", help="list the stacks and their faults").set_defaults(func=cmd_stacks)
    up = sub.add_parser("up", help="run a stack with load until Ctrl-C")
    up.add_argument("--stack", choices=stack_names(), default="llm-serving")
    up.add_argument("--run-dir", type=Path, required=True)
    up.add_argument("--bootstrap", default=None, help="Kafka host:port (default: start tansu)")
    up.add_argument("--rate", type=float, default=None)
    up.add_argument("--profile", choices=["steady", "diurnal"], default="steady")
    up.add_argument("--period", type=float, default=600.0)
    up.add_argument("--seed", type=int, default=0)
    up.set_defaults(func=cmd_up)
    inject = sub.add_parser("inject", help="switch a fault on (logged to faults.jsonl)")
    inject.add_argument("--run-dir", type=Path, required=True)
    inject.add_argument("--target", required=True)
    inject.add_argument("--fault", choices=list(FAULTS), required=True)
    inject.add_argument("--param", action="append", default=[], help="key=value (repeatable)")
    inject.set_defaults(func=cmd_inject)
    clear = sub.add_parser("clear", help="switch a target's faults off")
    clear.add_argument("--run-dir", type=Path, required=True)
    clear.add_argument("--target", required=True)
    clear.set_defaults(func=cmd_clear)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
