"""Seeded toy windows shared by the tests (a module, not conftest, so imports are unambiguous)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent

# The real Sock Shop call graph, client -> server (connections), from the upstream application
# (microservices-demo 9dff06f: front-end api/endpoints.js, orders OrdersController.java, shipping
# RabbitMqConfiguration.java) as summarised in ../shared/reference/ecosystem.md §6. front-end ->
# session-db is the front-end's Redis session store; queue-master consumes from RabbitMQ.
SOCK_SHOP_CALLS = {
    ("front-end", "catalogue"),
    ("front-end", "carts"),
    ("front-end", "orders"),
    ("front-end", "user"),
    ("front-end", "session-db"),
    ("orders", "user"),
    ("orders", "carts"),
    ("orders", "payment"),
    ("orders", "shipping"),
    ("orders", "orders-db"),
    ("shipping", "rabbitmq"),
    ("queue-master", "rabbitmq"),
    ("carts", "carts-db"),
    ("catalogue", "catalogue-db"),
    ("user", "user-db"),
}


def toy_window(
    rng: np.random.Generator,
    services: tuple[str, ...] = ("front", "cart", "db"),
    rows: int = 120,
    onset_row: int = 80,
    shifted: str | None = "cart",
    shift: float = 8.0,
) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Noisy CPU and latency per service; ``shifted``'s CPU jumps by ``shift`` sigma at onset."""
    index = pd.date_range("2026-03-01", periods=rows, freq="10s", tz="UTC", name="time")
    columns = {}
    for service in services:
        columns[f"{service}:container.cpu.utilization"] = 20 + rng.normal(0, 1, rows)
        columns[f"{service}:http.server.request.duration:p90"] = 0.1 + rng.normal(0, 0.01, rows)
    window = pd.DataFrame(columns, index=index)
    if shifted:
        window.iloc[onset_row:, window.columns.get_loc(f"{shifted}:container.cpu.utilization")] += (
            shift
        )
    return window, index[onset_row]


def lagged_driver(
    rng: np.random.Generator,
    steps: int,
    *,
    lag: int,
    own: float,
    gain: float,
    noise: float,
    link: Callable[[float], float] = float,
) -> tuple[np.ndarray, np.ndarray]:
    """White noise ``x`` and ``y[t] = own y[t-1] + gain link(x[t-lag]) + noise N(0, 1)``: a
    planted Granger edge ``x -> y`` at ``lag`` steps."""
    x = rng.normal(size=steps)
    y = np.zeros(steps)
    for t in range(lag, steps):
        y[t] = own * y[t - 1] + gain * link(x[t - lag]) + noise * rng.normal()
    return x, y


def chain_incident(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.Timestamp, nx.DiGraph]:
    """frontend -> mid -> root calls; root's CPU steps up, latency propagates up the chain and
    is loudest (relative to its noise) at the frontend."""
    rows, onset_row = 300, 240
    index = pd.date_range("2026-01-01", periods=rows, freq="5s", tz="UTC")
    step = (np.arange(rows) >= onset_row).astype(float)
    root_cpu = 30 + rng.normal(0, 5, rows) + 40 * step
    root_lat = 10 + rng.normal(0, 4, rows) + 16 * step
    # The callers add the root's extra latency to their own, much steadier, latency.
    mid_lat = 14 + 16 * step + rng.normal(0, 0.2, rows)
    front_lat = 12 + 16 * step + rng.normal(0, 0.2, rows)
    window = pd.DataFrame(
        {
            "root:container.cpu.utilization": root_cpu,
            "root:http.server.request.duration:p90": root_lat,
            "mid:http.server.request.duration:p90": mid_lat,
            "mid:container.cpu.utilization": 20 + rng.normal(0, 1, rows),
            "frontend:http.server.request.duration:p90": front_lat,
            "frontend:container.cpu.utilization": 40 + rng.normal(0, 1, rows),
        },
        index=index,
    )
    calls = nx.DiGraph([("frontend", "mid"), ("mid", "root")])
    return window, index[onset_row], calls
