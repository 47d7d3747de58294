"""One service of a stack as its own process: a FastAPI app under uvicorn on loopback.

``python -m services.app --stack llm-serving --service gateway --port 8001 --peers peers.json``

The app serves the routes the stack description gives the service. One request does the
route's work (CPU burnt in this process, waiting, GPU time on the modelled GPU), then its calls
in order (a call group runs concurrently; a pool picks one callee; timeouts and retries as
described), then answers. Special handlers model an LLM engine's prefill and decode, a message
queue and a fog node's perception. A service with a loop also runs it in the background: a
robot's control loop that streams frames to its fog node over its link, or a queue consumer.

Every service emits the metrics its description lists through the OpenTelemetry SDK, exported
every ``--interval`` seconds to Kafka by :class:`collectors.kafka_exporter.KafkaMetricExporter`.

Admin endpoint (bearer token from ``--token-file``; without one the admin endpoint is off):
``POST /admin/faults {"fault": "cpu", "params": {...}}`` switches a fault on and answers with
its id and exact start time; ``GET /admin/faults`` lists; ``DELETE /admin/faults[/{id}]``
switches off. ``GET /health`` answers 200 once the app runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import hmac
import json
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry.sdk.metrics.export import MetricReader

from services.engine import DecodeEngine, GpuModel, Level, PrefillEngine
from services.faults import FaultState
from services.stack import FAULTS, Call, LoopCall, Route, Stack, Work, load_stack
from services.telemetry import ProcessReadings, Telemetry, kafka_reader

log = logging.getLogger(__name__)

# A dropped request is held this long, well past any caller's timeout, then abandoned.
DROP_HOLD_SECONDS = 10.0
QUEUE_LIMIT = 10_000
CONSUME_BATCH = 10


class CallFailed(Exception):
    """A call failed after its retries."""


def burn_cpu(seconds: float) -> None:
    """Spend ``seconds`` of this thread's CPU time. Measured in CPU time, not wall time, so
    that under contention (a CPU hog, a busy machine) the same work takes longer, as it does
    in a real service."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


class ServiceRuntime:
    """The state of one running service: faults, engines, telemetry, clients, loop."""

    def __init__(
        self,
        stack: Stack,
        name: str,
        peers: dict[str, str],
        token: str | None,
        reader: MetricReader,
        seed: int | None = None,
        mounts: dict[str, httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self.stack = stack
        self.mounts = mounts  # transports by URL prefix (tests run peers in-process)
        self.name = name
        self.spec = stack.services[name]
        self.peers = peers
        self.token = token
        self.faults = FaultState(seed)
        self.rng = np.random.default_rng(seed)
        self.gpu = GpuModel(self.spec.gpu, self.faults, name) if self.spec.gpu else None
        self.prefill: PrefillEngine | None = None
        self.decode: DecodeEngine | None = None
        if self.spec.llm is not None and self.gpu is not None:
            if self.spec.llm.phase == "prefill":
                self.prefill = PrefillEngine(self.spec.llm, self.gpu)
            else:
                self.decode = DecodeEngine(self.spec.llm, self.gpu, self.faults)
        self.queue: deque[float] = deque(maxlen=QUEUE_LIMIT)
        self.active = Level()  # requests being served, dropped ones (held) included
        self.inflight: dict[str, int] = {}
        self.round_robin: dict[int, int] = {}
        self.last_seen: dict[str, float] = {}  # publisher -> unix time of its last message
        self.last_plan_unix = time.time()
        self.client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self.process = ProcessReadings()
        self._gpu_cache: tuple[float, dict[str, float]] = (0.0, {})
        self.telemetry = Telemetry(name, stack.name, self.spec.metrics, reader, self._gauges())

    # -- readings for the observable gauges -------------------------------------------------

    def _gpu_reading(self, metric: str) -> list[tuple[float, dict[str, str]]]:
        assert self.gpu is not None
        at, values = self._gpu_cache
        if time.monotonic() - at > 0.2:  # one reading per collection for all four gauges
            values = self.gpu.readings()
            self._gpu_cache = (time.monotonic(), values)
        return [(values[metric], {"hw.id": self.gpu.hw_id})]

    def _gauges(self) -> dict[str, Any]:
        engine = self.prefill or self.decode
        gauges: dict[str, Any] = {
            "process.cpu.utilization": self.process.cpu,
            "process.memory.usage": self.process.memory,
            "rabbitmq.message.current": lambda: [(float(len(self.queue)), {})],
            "http.server.active_requests": lambda: [(self.active.mean(), {})],
        }
        if engine is not None:
            gauges["vllm.num_requests_waiting"] = lambda: [(engine.waiting.mean(), {})]
            gauges["vllm.num_requests_running"] = lambda: [(engine.running.mean(), {})]
            gauges["vllm.kv_cache_usage_perc"] = lambda: [(engine.kv_usage(), {})]
        if self.gpu is not None:
            for metric in (
                "hw.gpu.utilization",
                "hw.gpu.memory.usage",
                "hw.gpu.clock.sm",
                "hw.power",
            ):
                gauges[metric] = lambda m=metric: self._gpu_reading(m)
        return gauges

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            timeout=httpx.Timeout(5.0),
            mounts=self.mounts,
        )
        if self.spec.loop is not None:
            self._loop_task = asyncio.create_task(self._run_loop(), name=f"{self.name}-loop")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._loop_task
        for task in list(self._tasks):
            task.cancel()
        self.faults.close()
        if self.client is not None:
            await self.client.aclose()
        self.telemetry.shutdown()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- work and calls -------------------------------------------------------------------

    def _draw(self, value: float, jitter: float) -> float:
        return value * float(self.rng.lognormal(0.0, jitter)) if value and jitter else value

    async def work(self, work: Work) -> None:
        if work.cpu_ms:
            burn_cpu(self._draw(work.cpu_ms, work.jitter) / 1000)
        if work.gpu_ms:
            seconds = self._draw(work.gpu_ms, work.jitter) / 1000
            if self.gpu is not None:
                await self.gpu.compute(seconds)
            else:
                await asyncio.sleep(seconds)
        if work.io_ms:
            await asyncio.sleep(self._draw(work.io_ms, work.jitter) / 1000)

    def _pick(self, call: Call) -> str:
        if len(call.to) == 1:
            return call.to[0]
        if call.pick == "round_robin":
            key = id(call)
            self.round_robin[key] = self.round_robin.get(key, -1) + 1
            return call.to[self.round_robin[key] % len(call.to)]
        if call.pick == "least_loaded":
            loads = [self.inflight.get(t, 0) for t in call.to]
            best = min(loads)
            choices = [t for t, n in zip(call.to, loads, strict=True) if n == best]
            return choices[int(self.rng.integers(len(choices)))]
        return call.to[int(self.rng.integers(len(call.to)))]

    async def post(
        self, service: str, route: str, body: dict[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        """One HTTP call; raises ``CallFailed`` on a timeout, a refused connection or a 5xx."""
        assert self.client is not None
        self.inflight[service] = self.inflight.get(service, 0) + 1
        try:
            reply = await self.client.post(
                f"{self.peers[service]}{route}", json=body, timeout=timeout_s
            )
        except httpx.HTTPError as exc:
            raise CallFailed(f"{service}{route}: {type(exc).__name__}") from exc
        finally:
            self.inflight[service] -= 1
        if reply.status_code >= 400:
            raise CallFailed(f"{service}{route}: HTTP {reply.status_code}")
        return reply.json() if reply.content else {}

    async def call(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        """A described call with its retries (a retry may pick another callee of a pool)."""
        if call.probability < 1.0 and self.rng.random() >= call.probability:
            return {}
        failure: CallFailed | None = None
        for _ in range(call.retries + 1):
            try:
                return await self.post(self._pick(call), call.route, body, call.timeout_ms / 1000)
            except CallFailed as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def run_calls(self, calls: Sequence[Call], body: dict[str, Any]) -> dict[str, Any]:
        """Calls in order; consecutive calls of one group concurrently. Returns the merged
        replies (later ones win)."""
        merged: dict[str, Any] = {}
        i = 0
        while i < len(calls):
            group = calls[i].group
            j = i + 1
            while group is not None and j < len(calls) and calls[j].group == group:
                j += 1
            replies = await asyncio.gather(*(self.call(c, body) for c in calls[i:j]))
            for reply in replies:
                merged.update(reply)
            i = j
        return merged

    # -- serving --------------------------------------------------------------------------

    async def serve(
        self, route_name: str, route: Route, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]] | None:
        """Handle one request; ``None`` for a dropped one (never answered)."""
        self.active.add(1)
        try:
            return await self._serve(route_name, route, body)
        finally:
            self.active.add(-1)

    async def _serve(
        self, route_name: str, route: Route, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]] | None:
        started = time.perf_counter()
        arrival_unix = time.time()
        delay, error, drop = self.faults.request_fate()
        if drop:
            await asyncio.sleep(DROP_HOLD_SECONDS)
            return None
        await self.work(route.work)
        if delay:
            await asyncio.sleep(delay)
        status, payload = 200, {}
        if error:
            status, payload = 500, {"error": "injected"}
        else:
            try:
                payload = await self._handle(route, body, arrival_unix)
            except CallFailed as exc:
                status, payload = 502, {"error": str(exc)}
        attrs = {
            "http.request.method": "POST",
            "http.route": route_name,
            "http.response.status_code": str(status),
        }
        self.telemetry.record("http.server.request.duration", time.perf_counter() - started, attrs)
        return status, payload

    async def _handle(
        self, route: Route, body: dict[str, Any], arrival_unix: float
    ) -> dict[str, Any]:
        handler = route.handler
        if handler == "prefill":
            return await self._prefill(route, body, arrival_unix)
        if handler == "decode":
            return await self._decode(body, arrival_unix)
        if handler == "publish":
            self.queue.append(time.time())
            return {}
        if handler == "consume":
            taken = 0
            while self.queue and taken < CONSUME_BATCH:
                self.queue.popleft()
                taken += 1
            return {"items": taken}
        if handler == "perceive":
            self._received(str(body.get("robot", "unknown")), float(body.get("stamp", time.time())))
        reply = await self.run_calls(route.calls, body)
        if handler == "perceive":  # the plan carries the frame's stamp (its data's age)
            return {"frame_stamp": float(body.get("stamp", time.time())), "plan_stamp": time.time()}
        self._record_genai(reply, arrival_unix)
        return reply

    def _record_genai(self, reply: dict[str, Any], arrival_unix: float) -> None:
        first = reply.get("first_token_unix")
        if not first:
            return
        self.telemetry.record("gen_ai.server.time_to_first_token", max(0.0, first - arrival_unix))
        tokens = int(reply.get("output_tokens", 1))
        if tokens > 1:
            per_token = max(0.0, time.time() - first) / (tokens - 1)
            self.telemetry.record("gen_ai.server.time_per_output_token", per_token)

    async def _prefill(
        self, route: Route, body: dict[str, Any], arrival_unix: float
    ) -> dict[str, Any]:
        assert self.prefill is not None
        prompt = int(body.get("prompt_tokens", 512))
        await self.prefill.prefill(prompt)
        try:
            seconds = await self.prefill.transfer(prompt)
        finally:
            self.prefill.release(prompt)
        self.telemetry.record("vllm.nixl_xfer_time_seconds", seconds)
        reply = await self.run_calls(route.calls, body)
        self._record_genai(reply, arrival_unix)
        return reply

    async def _decode(self, body: dict[str, Any], arrival_unix: float) -> dict[str, Any]:
        assert self.decode is not None
        prompt = int(body.get("prompt_tokens", 512))
        tokens = max(1, int(body.get("max_tokens", 32)))
        first, preempted = await self.decode.generate(prompt, tokens)
        if preempted:
            self.telemetry.add("vllm.num_preemptions", preempted)
        reply = {"first_token_unix": first, "output_tokens": tokens}
        self._record_genai(reply, arrival_unix)
        return reply

    def _received(self, publisher: str, stamp: float) -> None:
        """ROS 2 topic statistics of a received message: age and period."""
        now = time.time()
        # service.peer.name: the series describes what this publisher (and its link) delivers.
        topic = {
            "messaging.destination.name": f"/{publisher}/camera",
            "service.peer.name": publisher,
        }
        self.telemetry.record("ros2.message.age", max(0.0, now - stamp), topic)
        previous = self.last_seen.get(publisher)
        if previous is not None:
            self.telemetry.record("ros2.message.period", now - previous, topic)
        self.last_seen[publisher] = now

    # -- background loop ------------------------------------------------------------------

    async def _run_loop(self) -> None:
        loop = self.spec.loop
        assert loop is not None
        period = loop.period_ms / 1000
        next_tick = time.monotonic()
        tick = 0
        while True:
            next_tick += period
            started = time.perf_counter()
            try:
                await self.work(loop.work)
                took = time.perf_counter() - started
                if loop.deadline_ms is not None:
                    self.telemetry.record("robot.control_loop.duration", took)
                    stale = time.time() - self.last_plan_unix > loop.deadline_ms / 1000
                    if took > period or stale:
                        self.telemetry.add("robot.control_loop.deadline_misses")
                for call in loop.calls:
                    if tick % call.every_ticks:
                        continue
                    if call.background:
                        self._spawn(self._publish(call))
                    else:
                        await self._consume(call)
            except Exception:  # a tick must never kill the loop
                log.exception("loop tick failed")
            tick += 1
            wait = next_tick - time.monotonic()
            if wait < 0:  # overran: skip the missed ticks instead of bursting
                next_tick = time.monotonic()
                wait = 0.0
            await asyncio.sleep(wait)

    async def _link(self) -> None:
        """One way over this service's link: its base latency plus the link faults."""
        base = self.spec.link.base_ms / 2000 if self.spec.link else 0.0
        await asyncio.sleep(base + self.faults.link_delay_seconds())

    async def _publish(self, call: LoopCall) -> None:
        """Send one sensor frame over the link and take the plan that comes back."""
        started = time.perf_counter()
        stamp = time.time()
        topic = {"messaging.destination.name": f"/{self.name}/camera"}
        timeout = call.timeout_ms / 1000
        lost = self.faults.link_lost()
        try:
            reply = await asyncio.wait_for(self._exchange(call, stamp, lost), timeout)
        except (TimeoutError, CallFailed):
            self.telemetry.record(
                "messaging.client.operation.duration",
                time.perf_counter() - started,
                {**topic, "error.type": "timeout"},
            )
            return
        now = time.time()
        self.telemetry.record(
            "messaging.client.operation.duration", time.perf_counter() - started, topic
        )
        plan_age = max(0.0, now - float(reply.get("plan_stamp", now)))
        self.telemetry.record(
            "ros2.message.age", plan_age, {"messaging.destination.name": f"/{self.name}/plan"}
        )
        # The plan is as old as the frame it was computed from: that is what the deadline guards.
        self.last_plan_unix = max(self.last_plan_unix, float(reply.get("frame_stamp", stamp)))

    async def _exchange(self, call: LoopCall, stamp: float, lost: bool) -> dict[str, Any]:
        await self._link()
        if lost:
            await asyncio.sleep(3600)  # never arrives: the timeout ends the wait
        body = {"robot": self.name, "stamp": stamp}
        reply = await self.post(call.to, call.route, body, call.timeout_ms / 1000)
        await self._link()
        return reply

    async def _consume(self, call: LoopCall) -> None:
        loop = self.spec.loop
        assert loop is not None
        try:
            reply = await self.post(call.to, call.route, {}, call.timeout_ms / 1000)
        except CallFailed:
            return
        for _ in range(int(reply.get("items", 0))):
            started = time.perf_counter()
            await self.work(loop.work_per_item)
            self.telemetry.record("messaging.process.duration", time.perf_counter() - started)

    # -- admin ----------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        if not self.token:
            return False
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.encode(), self.token.encode()
        )


def create_app(runtime: ServiceRuntime) -> FastAPI:
    """The service's HTTP app: its routes, ``/health`` and the admin endpoint."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=f"{runtime.stack.name}/{runtime.name}", lifespan=lifespan, openapi_url=None)

    def endpoint_for(route_name: str, route: Route) -> Any:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            body = json.loads(raw) if raw else {}
            outcome = await runtime.serve(route_name, route, body)
            if outcome is None:
                return Response(status_code=503)
            status, payload = outcome
            return JSONResponse(payload, status_code=status)

        return endpoint

    for route_name, route in runtime.spec.routes.items():
        app.add_api_route(
            route_name, endpoint_for(route_name, route), methods=["POST"], include_in_schema=False
        )

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"service": runtime.name, "stack": runtime.stack.name, "pid": os.getpid()}

    def denied() -> JSONResponse:
        return JSONResponse({"detail": "admin endpoint: bearer token required"}, status_code=401)

    @app.get("/admin/faults")
    async def list_faults(request: Request) -> Response:
        if not runtime.authorized(request):
            return denied()
        return JSONResponse(
            {"service": runtime.name, "active": [a.to_json() for a in runtime.faults.active()]}
        )

    @app.post("/admin/faults")
    async def inject(request: Request) -> Response:
        if not runtime.authorized(request):
            return denied()
        try:
            body = await request.json()
            fault = str(body["fault"])
            params = {str(k): float(v) for k, v in dict(body.get("params") or {}).items()}
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"detail": f"expected {{fault, params}}: {exc}"}, status_code=422)
        if fault in FAULTS and not runtime.spec.fault_applies(fault):
            return JSONResponse(
                {"detail": f"{fault} does not apply to {runtime.name}"}, status_code=422
            )
        try:
            active = await asyncio.to_thread(runtime.faults.inject, fault, params)
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return JSONResponse({"service": runtime.name, **active.to_json()}, status_code=201)

    @app.delete("/admin/faults")
    async def clear_all(request: Request) -> Response:
        if not runtime.authorized(request):
            return denied()
        gone = await asyncio.to_thread(runtime.faults.clear)
        return JSONResponse(
            {
                "service": runtime.name,
                "cleared": [a.to_json() for a in gone],
                "at_unix_ns": time.time_ns(),
            }
        )

    @app.delete("/admin/faults/{fault_id}")
    async def clear_one(fault_id: str, request: Request) -> Response:
        if not runtime.authorized(request):
            return denied()
        gone = await asyncio.to_thread(runtime.faults.clear, fault_id)
        if not gone:
            return JSONResponse({"detail": f"no active fault {fault_id}"}, status_code=404)
        return JSONResponse(
            {
                "service": runtime.name,
                "cleared": [a.to_json() for a in gone],
                "at_unix_ns": time.time_ns(),
            }
        )

    return app


def die_with_parent(parent_pid: int | None) -> None:
    """Ask Linux to SIGTERM this process when its parent dies (no orphan if the runner is
    killed); exit at once if the parent is already gone."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if parent_pid is not None and os.getppid() != parent_pid:
        raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m services.app", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--stack", required=True, help="stack name or YAML path")
    parser.add_argument("--service", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--peers", type=Path, required=True, help="JSON: service -> port")
    parser.add_argument("--bootstrap", required=True, help="Kafka host:port")
    parser.add_argument("--topic", default="otlp_metrics")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between exports")
    parser.add_argument("--token-file", type=Path, default=None, help="admin bearer token")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args(argv)
    die_with_parent(args.parent_pid)
    logging.basicConfig(
        level=logging.WARNING, format=f"%(asctime)s {args.service} %(levelname)s %(message)s"
    )
    stack = load_stack(args.stack)
    ports = json.loads(args.peers.read_text())
    peers = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    token = args.token_file.read_text().strip() if args.token_file else None
    runtime = ServiceRuntime(
        stack,
        args.service,
        peers,
        token,
        kafka_reader(args.bootstrap, args.topic, args.interval),
        seed=args.seed,
    )
    config = uvicorn.Config(
        create_app(runtime),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        lifespan="on",
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
