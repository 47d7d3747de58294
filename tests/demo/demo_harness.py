"""Helpers for the demo tests: services of a stack run in this process (the real
:class:`services.app.ServiceRuntime` and app, an in-memory metric reader, peers reached through
ASGI transports) and readings of their metrics. A module of its own, not a conftest, so test
modules import it by a name no other test folder shares."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import psutil
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from patience import patience

from services.app import ServiceRuntime, create_app
from services.stack import load_stack

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

Key = tuple[str, tuple[tuple[str, Any], ...]]


@dataclass
class InProcessService:
    name: str
    runtime: ServiceRuntime
    reader: InMemoryMetricReader
    client: httpx.AsyncClient  # talks to this service's app

    def readings(self) -> dict[Key, Any]:
        """Metric points now: histograms as ``(count, sum)``, the rest as their value. Reading
        runs the observable gauges' callbacks (means since the previous reading)."""
        data = self.reader.get_metrics_data()
        out: dict[Key, Any] = {}
        if data is None:
            return out
        for resource_metrics in data.resource_metrics:
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        key = (metric.name, tuple(sorted(point.attributes.items())))
                        if hasattr(point, "bucket_counts"):
                            out[key] = (point.count, point.sum)
                        else:
                            out[key] = point.value
        return out

    def value(self, metric: str, **attrs: str) -> float:
        """A gauge's or counter's value (the first point whose attributes include ``attrs``)."""
        for (name, point_attrs), value in self.readings().items():
            if name == metric and set(attrs.items()) <= set(point_attrs):
                return float(value)
        raise KeyError(metric)

    async def post(self, route: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return await self.client.post(route, json=body or {})

    async def inject(self, fault: str, **params: float) -> dict[str, Any]:
        reply = await self.client.post(
            "/admin/faults", json={"fault": fault, "params": params}, headers=AUTH
        )
        assert reply.status_code == 201, reply.text
        return dict(reply.json())

    async def clear(self) -> None:
        reply = await self.client.delete("/admin/faults", headers=AUTH)
        assert reply.status_code == 200, reply.text


def histogram_mean(
    before: dict[Key, Any], after: dict[Key, Any], metric: str, **attrs: str
) -> tuple[float, int]:
    """Mean and count of a histogram's values recorded between two readings (all matching
    attribute sets together)."""
    count = total = 0.0
    for (name, point_attrs), value in after.items():
        if name != metric or not set(attrs.items()) <= set(point_attrs):
            continue
        old_count, old_sum = before.get((name, point_attrs), (0, 0.0))
        count += value[0] - old_count
        total += value[1] - old_sum
    return (total / count if count else float("nan")), int(count)


@contextlib.asynccontextmanager
async def in_process(
    stack_name: str, names: Iterable[str]
) -> AsyncIterator[dict[str, InProcessService]]:
    """Run ``names`` of ``stack_name`` in this process; they call each other through ASGI
    transports (a call to a service not started fails like a refused connection)."""
    stack = load_stack(stack_name)
    peers = {name: f"http://{name}" for name in stack.services}
    mounts: dict[str, httpx.AsyncBaseTransport] = {}
    services: dict[str, InProcessService] = {}
    for index, name in enumerate(names):
        reader = InMemoryMetricReader()
        runtime = ServiceRuntime(stack, name, peers, TOKEN, reader, seed=index, mounts=mounts)
        transport = httpx.ASGITransport(app=create_app(runtime))
        mounts[f"http://{name}"] = transport
        client = httpx.AsyncClient(transport=transport, base_url=f"http://{name}", timeout=30.0)
        services[name] = InProcessService(name, runtime, reader, client)
    for service in services.values():
        await service.runtime.start()
    try:
        yield services
    finally:
        for service in services.values():
            await service.client.aclose()
            await service.runtime.stop()


def alive(pids: Iterable[int]) -> list[int]:
    """The pids that still run (zombies count as gone)."""
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            continue
    return out


def wait_gone(pids: Iterable[int]) -> list[int]:
    """Wait until none of ``pids`` runs; the ones still running at the (hang guard's) timeout."""
    pids = list(pids)
    deadline = time.monotonic() + patience()
    while (left := alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def kill_all(pids: Iterable[int]) -> None:
    """Last resort so a failing test leaves nothing behind."""
    for pid in alive(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
