"""Load on ``rca serve``: 200 concurrent ``POST /v1/rca`` and 1,000 webhook deliveries at once.

What it sets up (all on loopback): a window store holding a seeded synthetic incident behind
the ingest status endpoint (``GET /window``, what API-only replicas read), and ``rca serve
--no-ingest`` as its own process (uvicorn, worker processes, SQLite). Then, concurrently:

- 200 ``POST /v1/rca`` at once;
- 1,000 Grafana webhook deliveries: ``--episodes`` distinct alert episodes, each delivered
  ``1000 / episodes`` times (senders re-deliver), 100 in flight;
- ``GET /healthz`` every 20 ms from start to the end of the drain (its latency is the point:
  the server must stay responsive while analyses run).

It counts what was accepted (202: distinct incident ids), rejected (429/503, each must carry
``Retry-After``), then waits until every accepted incident finished and counts the ones that
did not (``lost``: missing, or still queued/running after ``--drain-timeout``).

    .venv/bin/python bench/api_load.py --json bench/api_load.json

Prints a summary and, with ``--json FILE``, writes ``{"healthz_p99_ms", "accepted",
"completed", "rejected", "lost", ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from multiprocessing import Event, Process, Queue
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from rca.datasets.synthetic import Synthetic, SyntheticConfig
from rca.ingest.status_http import serve_status
from rca.store.window_store import WindowStore
from rca.transport.broker import free_port
from rca.types import parse_series_name

TOKEN = "bench-token-0123456789"  # rca serve wants at least 16 characters


def synthetic_frame(seed: int) -> tuple[pd.DataFrame, pd.Timestamp, pd.Timestamp]:
    """History + incident of one seeded synthetic case, shifted to end now: (frame, window
    start, onset)."""
    case = Synthetic(SyntheticConfig(n_cases=1, seed=seed)).load("0000")
    frame = pd.concat([case.history, case.window])
    shift = pd.Timestamp.now(tz="UTC").floor("5s") - frame.index[-1]
    frame.index = (frame.index + shift).as_unit("ns")
    return frame, case.window.index[0] + shift, case.onset + shift


def window_store(frame: pd.DataFrame) -> WindowStore:
    store = WindowStore(step_seconds=5.0, retention_seconds=7200.0)
    times = list(frame.index.as_unit("ns").asi8)
    for column in frame.columns:
        key = parse_series_name(column)
        store.write(
            [(key.service, key.metric, key.stat, key.attrs)] * len(times),
            times,
            frame[column].to_list(),
        )
    return store


def grafana_payload(fingerprint: str, starts_at: pd.Timestamp) -> dict:
    return {
        "receiver": "rca",
        "status": "firing",
        "orgId": 1,
        "version": "1",
        "groupKey": f'{{}}:{{alertname="Load{fingerprint}"}}',
        "truncatedAlerts": 0,
        "groupLabels": {"alertname": f"Load{fingerprint}"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://grafana.invalid/",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": f"Load{fingerprint}", "service_name": "frontend"},
                "annotations": {},
                "startsAt": starts_at.isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": fingerprint,
            }
        ],
    }


class Counts:
    def __init__(self) -> None:
        self.accepted: set[str] = set()
        self.rejected = 0
        self.retry_after_missing = 0
        self.duplicates = 0
        self.errors: dict[str, int] = {}

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def post_rca(client: httpx.AsyncClient, body: dict, counts: Counts) -> None:
    try:
        reply = await client.post("/v1/rca", json=body)
    except httpx.HTTPError as exc:
        counts.error(type(exc).__name__)
        return
    if reply.status_code == 202:
        counts.accepted.add(reply.json()["id"])
    elif reply.status_code in (429, 503):
        counts.rejected += 1
        counts.retry_after_missing += "retry-after" not in reply.headers
    else:
        counts.error(f"rca HTTP {reply.status_code}")


async def deliver(
    client: httpx.AsyncClient, payload: dict, counts: Counts, gate: asyncio.Semaphore
) -> None:
    async with gate:
        try:
            reply = await client.post("/v1/alerts/grafana", json=payload)
        except httpx.HTTPError as exc:
            counts.error(type(exc).__name__)
            return
    if reply.status_code == 202:
        for outcome in reply.json()["data"]:
            counts.accepted.add(outcome["id"])
            counts.duplicates += outcome["action"] == "duplicate"
    elif reply.status_code in (429, 503):
        counts.rejected += 1
        counts.retry_after_missing += "retry-after" not in reply.headers
    else:
        counts.error(f"webhook HTTP {reply.status_code}")


def probe_health(host: str, port: int, stop: Event, out: Queue) -> None:
    """``GET /healthz`` every 20 ms on one keep-alive connection, in its own process so the
    numbers are the server's, not the load generator's event loop."""
    latencies: list[float] = []
    connection = http.client.HTTPConnection(host, port, timeout=10)
    while not stop.is_set():
        started = time.perf_counter()
        try:
            connection.request("GET", "/healthz")
            reply = connection.getresponse()
            reply.read()
            ok = reply.status == 200
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=10)
            ok = False
        latencies.append((time.perf_counter() - started) * 1000 if ok else float("inf"))
        time.sleep(0.02)
    connection.close()
    out.put(latencies)


async def drain(client: httpx.AsyncClient, ids: set[str], timeout: float) -> dict[str, int]:
    """Wait until no accepted incident is queued or running; statuses of the accepted ones."""
    deadline = time.monotonic() + timeout
    while True:
        statuses: dict[str, str] = {}
        offset = 0
        while True:
            page = (
                await client.get("/v1/incidents", params={"limit": 1000, "offset": offset})
            ).json()
            statuses.update({row["id"]: row["status"] for row in page["data"]})
            offset += len(page["data"])
            if not page["data"] or offset >= page["count"]:
                break
        mine = [statuses.get(i, "missing") for i in ids]
        pending = sum(s in ("queued", "running") for s in mine)
        if pending == 0 or time.monotonic() > deadline:
            return {s: mine.count(s) for s in set(mine)}
        await asyncio.sleep(0.5)


async def load(
    args: argparse.Namespace, url: str, start: pd.Timestamp, onset: pd.Timestamp, end: pd.Timestamp
) -> dict:
    counts = Counts()
    stop, results = Event(), Queue()
    port = int(url.rsplit(":", 1)[1])
    prober = Process(target=probe_health, args=("127.0.0.1", port, stop, results), daemon=True)
    prober.start()
    limits = httpx.Limits(max_connections=args.posts + 100)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=60, limits=limits
    ) as client:
        await asyncio.sleep(1.0)  # a baseline of idle health checks
        body = {"start": start.isoformat(), "end": end.isoformat(), "onset": onset.isoformat()}
        gate = asyncio.Semaphore(100)
        per_episode = args.deliveries // args.episodes
        deliveries = [
            grafana_payload(f"{k:016x}", onset)
            for _ in range(per_episode)
            for k in range(args.episodes)
        ]
        started = time.monotonic()
        await asyncio.gather(
            *(post_rca(client, body, counts) for _ in range(args.posts)),
            *(deliver(client, payload, counts, gate) for payload in deliveries),
        )
        load_seconds = time.monotonic() - started
        statuses = await drain(client, counts.accepted, args.drain_timeout)
        total_seconds = time.monotonic() - started
        stop.set()
        latencies: list[float] = results.get(timeout=30)
        prober.join(10)
    finite = np.array([x for x in latencies if np.isfinite(x)])
    done = statuses.get("done", 0)
    failed = statuses.get("failed", 0)
    return {
        "healthz_p99_ms": round(float(np.percentile(finite, 99)), 2),
        "accepted": len(counts.accepted),
        "completed": done,
        "rejected": counts.rejected,
        "lost": len(counts.accepted) - done - failed,
        "failed": failed,
        "healthz_p50_ms": round(float(np.percentile(finite, 50)), 2),
        "healthz_max_ms": round(float(finite.max()), 2),
        "healthz_checks": len(latencies),
        "healthz_errors": int(len(latencies) - len(finite)),
        "retry_after_missing": counts.retry_after_missing,
        "duplicate_deliveries": counts.duplicates,
        "request_errors": counts.errors,
        "posts": args.posts,
        "deliveries": len(deliveries),
        "episodes": args.episodes,
        "load_seconds": round(load_seconds, 2),
        "drain_seconds": round(total_seconds - load_seconds, 2),
        "method": args.method,
        "workers": args.workers,
        "queue_limit": args.queue_limit,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--episodes", type=int, default=250, help="distinct alert episodes")
    parser.add_argument("--method", default="baro")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--queue-limit", type=int, default=64)
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the numbers to this file")
    args = parser.parse_args(argv)

    frame, start, onset = synthetic_frame(args.seed)
    status = serve_status("127.0.0.1", 0, window_store(frame), lambda: {"status": "ok"})
    ingest_url = "http://{}:{}".format(*status.server_address[:2])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="rca-load-") as folder:
        env = {
            **os.environ,
            "RCA_DATABASE_URL": str(Path(folder) / "incidents.db"),
            "RCA_API_TOKEN": TOKEN,
            "RCA_INGEST_URL": ingest_url,
            "RCA_METHOD": args.method,
            "RCA_WORKERS": str(args.workers),
            "RCA_QUEUE_LIMIT": str(args.queue_limit),
        }
        log = (Path(folder) / "serve.log").open("w")
        server = subprocess.Popen(
            [sys.executable, "-m", "rca.cli", "serve", "--no-ingest", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"rca serve did not become ready: {server.returncode}")
                time.sleep(0.2)
            numbers = asyncio.run(load(args, url, start, onset, frame.index[-1]))
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
            status.shutdown()
            status.server_close()
    print(json.dumps(numbers, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=2) + "\n")
    ok = numbers["lost"] == 0 and numbers["retry_after_missing"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
