"""Stacks generated for the simulator only (``sim:large``), never run live."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from services.stack import Stack


def large_stack() -> Stack:
    """A Train-Ticket-sized stack (45 services; fixed, whatever the bench seed), generated in
    tiers like Train Ticket's: a gateway calls 6 composite services (booking, planning...)
    with some probability each; they call 3-5 of 20 core services, which call 0-2 later core
    or 6 leaf services (auth, notification...); 12 core services keep a database. Calls go to
    later services only (a DAG), and every service is called by someone."""
    rng = np.random.default_rng(46)
    composite = [f"svc{i:02d}" for i in range(1, 7)]
    core = [f"svc{i:02d}" for i in range(7, 27)]
    leaf = [f"svc{i:02d}" for i in range(27, 33)]
    with_db = sorted(str(s) for s in rng.choice(core, size=12, replace=False))
    order = ["gateway", *composite, *core, *leaf]
    calls: dict[str, list[str]] = {name: [] for name in order}
    calls["gateway"] = list(composite)
    for name in composite:
        picked = rng.choice(core + leaf, size=int(rng.integers(3, 6)), replace=False)
        calls[name] = [str(c) for c in picked]
    for i, name in enumerate(core):
        later = core[i + 1 :] + leaf
        picked = rng.choice(later, size=int(rng.integers(0, 3)), replace=False)
        calls[name] = [str(c) for c in picked]
    called = {c for targets in calls.values() for c in targets}
    for i, name in enumerate(order):
        if name not in called and name != "gateway":  # a composite or core caller before it
            calls[order[int(rng.integers(1, i))]].append(name)
    metrics = [
        "http.server.request.duration",
        "http.server.active_requests",
        "process.cpu.utilization",
        "process.memory.usage",
    ]
    services: dict[str, dict[str, Any]] = {}
    for name in order:
        route_calls = [
            {
                "to": callee,
                "route": "/api",
                "probability": 1.0 if name != "gateway" else round(float(rng.uniform(0.2, 0.6)), 2),
            }
            for callee in calls[name]
        ]
        if name in with_db:
            route_calls.append({"to": f"{name}-mongo", "route": "/query"})
        work = {"cpu_ms": round(float(rng.uniform(0.5, 2.0)), 2), "io_ms": 0.5}
        services[name] = {
            "summary": "generated service",
            "routes": {"/api": {"work": work, "calls": route_calls}},
            "metrics": metrics,
        }
    for name in with_db:
        services[f"{name}-mongo"] = {
            "summary": "generated database",
            "routes": {"/query": {"work": {"cpu_ms": 0.3, "io_ms": 2.5}}},
            "metrics": metrics,
        }
    return Stack.model_validate(
        {
            "name": "large",
            "summary": "a generated Train-Ticket-sized stack (45 services)",
            "load": {"rate_per_second": 20, "requests": [{"service": "gateway", "route": "/api"}]},
            "fault_params": {"latency": {"ms": 40}},
            "slos": [{"service": "gateway", "metric": "http.server.request.duration"}],
            "services": services,
        }
    )


# ``sim:<name>`` stacks made here rather than described in services/stacks/ (they are simulated
# only, never run live).
GENERATED_STACKS: dict[str, Callable[[], Stack]] = {"large": large_stack}
