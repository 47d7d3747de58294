"""Soak: ``rca serve`` as a real process under a stream of valid and hostile webhooks.

``rca serve --no-ingest`` (uvicorn, SQLite, a token and an HMAC secret, the default queue
limit) gets, from ``--senders`` threads until ``--seconds`` have passed, a seeded mix of:

- valid Grafana and Alertmanager notifications: new episodes, re-deliveries, resolutions, and
  groups larger than the queue limit (answered 503 for what does not fit, then retried after
  ``Retry-After`` as Alertmanager does, until all are in);
- hostile ones: NUL and lone surrogates in labels and fingerprints, NaN and infinite numbers,
  ids of 2^70 and 2^31, ``rca_onset`` of 1e30, onsets ten years ahead, panel ids of 5,000
  digits, 5,000-character names, broken JSON, bodies over the limit, non-ASCII credentials
  and signatures, signature timestamps of ``nan``.

No window source is configured, so every analysis fails at once ("no window source"): the
queue drains and the soak measures the webhook path, not the engine. At the end every incident
a 202 answer named is read back. Pass: no 5xx but 503 (each with ``Retry-After``), no
accepted incident missing, the server alive.

    .venv/bin/python bench/soak_webhooks.py --json bench/soak_webhooks.json

Prints a summary and, with ``--json FILE``, writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from rca.transport.broker import free_port

TOKEN = "soak-token-0123456789abcdef"
SECRET = "soak-hmac-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}
FAR_FUTURE = "2036-01-01T00:00:00Z"


@dataclass
class Request:
    """One notification: where, the body, extra headers, what kind (for the counts), and
    whether it is valid (a retry loop follows 503s only for those)."""

    path: str
    body: bytes
    headers: dict[str, str]
    kind: str
    valid: bool = True


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)
    by_kind: dict[str, Counter] = field(default_factory=dict)
    accepted: set[str] = field(default_factory=set)
    server_errors: list[str] = field(default_factory=list)
    retries: int = 0
    gave_up: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, reply: httpx.Response) -> None:
        with self.lock:
            self.statuses[reply.status_code] += 1
            self.by_kind.setdefault(kind, Counter())[reply.status_code] += 1
            if reply.status_code >= 500 and not (
                reply.status_code == 503 and "retry-after" in reply.headers
            ):
                self.server_errors.append(f"{kind}: {reply.status_code} {reply.text[:200]}")
            if reply.status_code == 202:
                for outcome in reply.json()["data"]:
                    if outcome["status"] == "firing":
                        self.accepted.add(outcome["id"])


def _now_iso(rng: random.Random) -> str:
    """A start within the last hour (to the microsecond: one episode per draw)."""
    seconds = time.time() - rng.uniform(0, 3600)
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rng.randrange(10**6):06d}Z"
    )


def _alert(rng: random.Random, **change: object) -> dict:
    alert = {
        "status": "firing",
        "labels": {"alertname": "SoakLatency", "service": f"svc-{rng.randrange(20)}"},
        "annotations": {"summary": "p95 above SLO"},
        "startsAt": _now_iso(rng),
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": f"{rng.getrandbits(64):016x}",
    }
    alert.update(change)
    return alert


def _grafana(alerts: list[dict], **change: object) -> dict:
    return {
        "receiver": "rca",
        "status": "firing",
        "orgId": 1,
        "version": "1",
        "alerts": alerts,
        **change,
    }


def _alertmanager(alerts: list[dict]) -> dict:
    return {"receiver": "rca", "status": "firing", "version": "4", "alerts": alerts}


def _post(path: str, payload: object, kind: str, valid: bool = True, **headers: str) -> Request:
    body = json.dumps(payload).encode()  # NaN stays NaN; lone surrogates as \ud800 escapes
    return Request(path, body, {**AUTH, **JSON, **headers}, kind, valid)


class Stream:
    """The seeded mix of notifications of one sender thread."""

    def __init__(self, seed: int, queue_limit: int) -> None:
        self.rng = random.Random(seed)
        self.queue_limit = queue_limit
        self.sent: list[dict] = []  # valid firing alerts, for re-deliveries and resolutions

    def next(self) -> Request:
        makers: list[tuple[float, Callable[[], Request]]] = [
            (30, self.new_episode),
            (15, self.redelivery),
            (8, self.resolution),
            (2, self.big_group),
            (45, self.hostile),
        ]
        pick = self.rng.uniform(0, sum(w for w, _ in makers))
        for weight, make in makers:
            pick -= weight
            if pick <= 0:
                return make()
        return makers[0][1]()

    def new_episode(self) -> Request:
        alert = _alert(self.rng)
        self.sent.append(alert)
        if self.rng.random() < 0.5:
            return _post("/v1/alerts/grafana", _grafana([alert]), "new episode")
        return _post("/v1/alerts/alertmanager", _alertmanager([alert]), "new episode")

    def redelivery(self) -> Request:
        if not self.sent:
            return self.new_episode()
        alert = self.rng.choice(self.sent)
        return _post("/v1/alerts/grafana", _grafana([alert]), "re-delivery")

    def resolution(self) -> Request:
        if not self.sent:
            return self.new_episode()
        alert = {**self.rng.choice(self.sent), "status": "resolved"}
        alert["endsAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return _post("/v1/alerts/grafana", _grafana([alert], status="resolved"), "resolution")

    def big_group(self) -> Request:
        alerts = [_alert(self.rng) for _ in range(self.queue_limit + 36)]
        return _post("/v1/alerts/alertmanager", _alertmanager(alerts), "group over the limit")

    def hostile(self) -> Request:
        rng = self.rng
        grafana = "/v1/alerts/grafana"
        odd = rng.choice(["\x00", "\ud800", "\udfff", "\u202e", "a\x00b\ud83d"])
        cases: list[Callable[[], Request]] = [
            lambda: _post(
                grafana,
                _grafana([_alert(rng, labels={"alertname": odd, odd: odd})]),
                "NUL / surrogate label",
            ),
            lambda: _post(
                grafana,
                _grafana([_alert(rng, fingerprint=f"fp{odd}")]),
                "NUL / surrogate fingerprint",
            ),
            lambda: _post(
                grafana, _grafana([_alert(rng, startsAt=float("nan"))]), "NaN start", False
            ),
            lambda: _post(
                grafana, _grafana([_alert(rng, values={"A": float("inf")})]), "infinite value"
            ),
            lambda: _post(
                grafana,
                _grafana([_alert(rng)], orgId=rng.choice([2**70, -(2**70), 2**31])),
                "huge org id",
                False,
            ),
            lambda: _post(
                grafana, _grafana([_alert(rng, labels={"rca_onset": "1e30"})]), "onset 1e30", False
            ),
            lambda: _post(
                grafana, _grafana([_alert(rng, startsAt=FAR_FUTURE)]), "far-future start", False
            ),
            lambda: _post(
                grafana,
                _grafana(
                    [
                        _alert(
                            rng,
                            annotations={"__panelId__": "9" * 5000, "__dashboardUid__": "u" * 300},
                        )
                    ]
                ),
                "huge panel id / uid",
            ),
            lambda: _post(
                grafana, _grafana([_alert(rng, labels={"alertname": "n" * 5000})]), "long alertname"
            ),
            lambda: Request(
                grafana, b'{"version": "1", "alerts": [', {**AUTH, **JSON}, "broken JSON", False
            ),
            lambda: Request(
                grafana,
                b'{"x": "' + b"y" * 1_100_000 + b'"}',
                {**AUTH, **JSON},
                "body over the limit",
                False,
            ),
            lambda: Request(
                grafana,
                json.dumps(_grafana([_alert(rng)])).encode(),
                {**JSON, "Authorization": "Bearer jeton-\u00e9\u00ff"},
                "non-ASCII token",
                False,
            ),
            lambda: Request(
                grafana,
                json.dumps(_grafana([_alert(rng)])).encode(),
                {**JSON, "X-Grafana-Alerting-Signature": "\u00e9" * 64},
                "non-ASCII signature",
                False,
            ),
            lambda: Request(
                grafana,
                json.dumps(_grafana([_alert(rng)])).encode(),
                {
                    **JSON,
                    "X-Grafana-Alerting-Timestamp": "nan",
                    "X-Grafana-Alerting-Signature": "0" * 64,
                },
                "nan signature timestamp",
                False,
            ),
            lambda: _post(
                "/v1/rca", {"start": float("nan"), "end": float("inf")}, "NaN analysis", False
            ),
        ]
        return rng.choice(cases)()


def send(client: httpx.Client, request: Request, tally: Tally, deadline: float) -> None:
    """Post once; a 503 of a valid notification is retried after ``Retry-After`` (capped at
    2 s here to keep the soak short), as Alertmanager retries a whole notification."""
    while True:
        headers = [(k.encode(), v.encode("latin-1")) for k, v in request.headers.items()]
        reply = client.post(request.path, content=request.body, headers=headers)
        tally.add(request.kind, reply)
        if reply.status_code != 503 or not request.valid:
            return
        if time.monotonic() > deadline + 60:
            with tally.lock:
                tally.gave_up += 1
            return
        with tally.lock:
            tally.retries += 1
        time.sleep(min(2.0, float(reply.headers.get("retry-after", "1"))))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def soak(args: argparse.Namespace, url: str, pid: int) -> dict:
    tally = Tally()
    started = time.monotonic()
    deadline = started + args.seconds
    rss: list[float] = [rss_mb(pid)]

    def sender(k: int) -> None:
        stream = Stream(args.seed * 1000 + k, args.queue_limit)
        with httpx.Client(base_url=url, timeout=30) as client:
            while time.monotonic() < deadline:
                send(client, stream.next(), tally, deadline)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(args.senders)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        time.sleep(5)
        rss.append(rss_mb(pid))
    elapsed = time.monotonic() - started
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        missing = [
            i for i in sorted(tally.accepted) if client.get(f"/v1/incidents/{i}").status_code != 200
        ]
        stored = client.get("/v1/incidents", params={"limit": 1}).json()["count"]
    return {
        "seconds": round(elapsed, 1),
        "requests": sum(tally.statuses.values()),
        "requests_per_second": round(sum(tally.statuses.values()) / elapsed, 1),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "by_kind": {
            k: {str(s): n for s, n in sorted(c.items())} for k, c in sorted(tally.by_kind.items())
        },
        "server_errors": len(tally.server_errors),
        "server_error_examples": tally.server_errors[:5],
        "retries_after_503": tally.retries,
        "gave_up_after_503": tally.gave_up,
        "accepted_incidents": len(tally.accepted),
        "lost_incidents": len(missing),
        "incidents_stored": stored,
        "server_rss_mb": {
            "start": round(rss[0], 1),
            "peak": round(max(rss), 1),
            "end": round(rss[-1], 1),
        },
        "senders": args.senders,
        "queue_limit": args.queue_limit,
        "seed": args.seed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--senders", type=int, default=4, help="concurrent sender threads")
    parser.add_argument("--queue-limit", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the numbers to this file")
    args = parser.parse_args(argv)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="rca-soak-") as folder:
        env = {
            **os.environ,
            "RCA_DATABASE_URL": str(Path(folder) / "incidents.db"),
            "RCA_API_TOKEN": TOKEN,
            "RCA_WEBHOOK_HMAC_SECRET": SECRET,
            "RCA_QUEUE_LIMIT": str(args.queue_limit),
            "RCA_WORKERS": "1",
            "RCA_WORKER_PROCESSES": "false",  # analyses fail at once here (no window source)
        }
        env.pop("RCA_INGEST_URL", None)
        log_path = Path(folder) / "serve.log"
        with log_path.open("w") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "rca.cli", "serve", "--no-ingest", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_ready(url, server)
                numbers = soak(args, url, server.pid)
                numbers["server_alive"] = server.poll() is None
            finally:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
        numbers["tracebacks_in_log"] = log_path.read_text().count("Traceback")
    ok = (
        numbers["server_errors"] == 0 and numbers["lost_incidents"] == 0 and numbers["server_alive"]
    )
    numbers["passed"] = ok
    print(json.dumps(numbers, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=2) + "\n")
    return 0 if ok else 1


def wait_ready(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"rca serve did not become ready (exit {server.returncode})")
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
