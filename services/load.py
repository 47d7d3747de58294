"""Load generator: open-loop Poisson arrivals at the stack's entry routes.

``steady``: a constant mean rate. ``diurnal``: the rate follows a day compressed into
``--period`` seconds, ``rate * (1 + amplitude * sin(2 pi t / period))`` (amplitude 0.5 by
default), so the normal period itself has slow trends, as production traffic does.

Requests are drawn from the description's ``load.requests`` by weight; LLM bodies draw
``prompt_tokens`` and ``max_tokens`` uniformly from ``load.body``. Arrivals do not wait for
answers (open loop: a slow stack gets more concurrent requests, not fewer arrivals); at most
``--max-inflight`` are outstanding, beyond that arrivals are counted as shed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from services.stack import Stack, load_stack


@dataclass(frozen=True)
class Profile:
    kind: str = "steady"
    period_seconds: float = 600.0
    amplitude: float = 0.5

    def rate(self, base: float, elapsed_seconds: float) -> float:
        """Mean arrivals per second at ``elapsed_seconds`` after the start.

        >>> Profile("diurnal", 100.0).rate(10.0, 25.0)
        15.0
        """
        if self.kind == "steady":
            return base
        phase = 2 * math.pi * elapsed_seconds / self.period_seconds
        return max(0.0, base * (1.0 + self.amplitude * math.sin(phase)))


@dataclass
class LoadStats:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    shed: int = 0


async def generate(
    stack: Stack,
    urls: dict[str, str],
    rate: float,
    profile: Profile,
    stop: asyncio.Event,
    seed: int = 0,
    max_inflight: int = 256,
    timeout_seconds: float = 30.0,
) -> LoadStats:
    """Send requests until ``stop`` is set; returns the counts."""
    rng = np.random.default_rng(seed)
    requests = stack.load.requests
    weights = np.array([r.weight for r in requests], dtype=float)
    weights /= weights.sum()
    stats = LoadStats()
    inflight: set[asyncio.Task[None]] = set()
    started = time.monotonic()

    async def one(client: httpx.AsyncClient, url: str, body: dict[str, int]) -> None:
        try:
            reply = await client.post(url, json=body, timeout=timeout_seconds)
            if reply.status_code < 400:
                stats.ok += 1
            else:
                stats.failed += 1
        except httpx.HTTPError:
            stats.failed += 1

    limits = httpx.Limits(max_connections=max_inflight, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits) as client:
        while not stop.is_set():
            mean = profile.rate(rate, time.monotonic() - started)
            gap = rng.exponential(1.0 / mean) if mean > 0 else 0.5
            try:
                await asyncio.wait_for(stop.wait(), timeout=gap)
                break
            except TimeoutError:
                pass
            if mean <= 0:
                continue
            request = requests[int(rng.choice(len(requests), p=weights))]
            body = {
                name: int(rng.integers(int(low), int(high) + 1))
                for name, (low, high) in stack.load.body.items()
            }
            if len(inflight) >= max_inflight:
                stats.shed += 1
                continue
            stats.sent += 1
            task = asyncio.create_task(one(client, urls[request.service] + request.route, body))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        for task in list(inflight):
            task.cancel()
        await asyncio.gather(*inflight, return_exceptions=True)
    return stats


def main(argv: Sequence[str] | None = None) -> int:
    from services.app import die_with_parent

    parser = argparse.ArgumentParser(
        prog="python -m services.load", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--stack", required=True)
    parser.add_argument("--peers", type=Path, required=True, help="JSON: service -> port")
    parser.add_argument(
        "--rate", type=float, default=None, help="requests/s (default: the stack's)"
    )
    parser.add_argument("--profile", choices=["steady", "diurnal"], default="steady")
    parser.add_argument("--period", type=float, default=600.0, help="diurnal period, seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args(argv)
    die_with_parent(args.parent_pid)
    stack = load_stack(args.stack)
    ports = json.loads(args.peers.read_text())
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    rate = args.rate or stack.load.rate_per_second

    async def run() -> LoadStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        return await generate(
            stack, urls, rate, Profile(args.profile, args.period), stop, args.seed
        )

    stats = asyncio.run(run())
    print(
        f"load: sent {stats.sent}, ok {stats.ok}, failed {stats.failed}, shed {stats.shed}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
