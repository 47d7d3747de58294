"""Seeded synthetic incidents with propagation, and the true graph kept with each case.

One generator (:func:`simulate`) for two kinds of topology:

- ``synthetic`` / ``synthetic-hard``: a random call graph (a DAG under one ``frontend``)
  carries load from callers to callees; each service emits CPU, memory, request rate and p90
  latency. A fault at one service (CPU hog, memory leak or added latency) raises its own
  metrics, and its latency reaches its callers a few steps later, scaled by how often they
  call it. ``-hard`` keeps the cases whose root is not the loudest anomaly.
- a described stack, through a :class:`ServiceModel`: the graph and rates come from the
  description, and the model says how each service behaves and which series it emits. The demo
  stacks' model and their ``sim:<stack>`` datasets live beside the stacks (``services.sim``),
  found through the ``rca.datasets`` entry point (:func:`rca.datasets.open_dataset`).

Normal-period transients (short spikes) keep the pre-onset part from being clean. Every series
edge the generator uses is in ``true_graph`` (cause -> effect), so causal learners can be
scored against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import networkx as nx
import numpy as np
import pandas as pd

from rca.datasets.base import Case, Truth
from rca.datasets.wide_csv import CPU, MEMORY, REQUEST_DURATION
from rca.types import series_name, service_of

FAULTS = ("cpu", "mem", "delay")
_INDICATOR = {"cpu": CPU, "mem": MEMORY, "delay": REQUEST_DURATION}


@dataclass(frozen=True)
class SyntheticConfig:
    """Shape of generated incidents; ``hard`` keeps only cases whose root cause is not the
    service with the largest anomaly (the ones a pure anomaly ranker gets wrong)."""

    n_cases: int = 40
    min_services: int = 8
    max_services: int = 16
    n_steps: int = 240
    onset_step: int = 180
    # Fault-free steps simulated before the window and given as the case's history (the window
    # store's retention in production).
    history_steps: int = 720
    step_seconds: float = 5.0
    hard: bool = False
    seed: int = 0


def _names(service: str) -> dict[str, str]:
    return {
        "cpu": series_name(service, CPU),
        "mem": series_name(service, MEMORY),
        "rate": series_name(service, REQUEST_DURATION, "rate"),
        "lat": series_name(service, REQUEST_DURATION, "p90"),
    }


def random_call_graph(n_services: int, rng: np.random.Generator) -> nx.DiGraph:
    """A DAG rooted at ``frontend``: each service calls 1-3 services later in a random order."""
    services = ["frontend"] + [f"svc{i:02d}" for i in range(1, n_services)]
    graph = nx.DiGraph()
    graph.add_nodes_from(services)
    for i, callee in enumerate(services[1:], start=1):
        graph.add_edge(services[int(rng.integers(0, i))], callee)  # everyone is reachable
    for i, caller in enumerate(services[:-1]):
        extra = int(rng.integers(0, 3))
        for callee in rng.choice(
            services[i + 1 :], size=min(extra, n_services - i - 1), replace=False
        ):
            graph.add_edge(caller, str(callee))
    for caller, callee in graph.edges:
        graph.edges[caller, callee]["calls"] = float(rng.uniform(0.3, 1.0))
        graph.edges[caller, callee]["lag_steps"] = int(rng.integers(1, 4))
    return graph


def ar1(n: int, phi: float, scale: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` steps of an AR(1) process (``phi``) driven by normal noise of spread ``scale``."""
    noise = rng.normal(0.0, scale, n)
    out = np.empty(n)
    out[0] = noise[0]
    for t in range(1, n):
        out[t] = phi * out[t - 1] + noise[t]
    return out


class ServiceModel(Protocol):
    """How the services of a described stack behave in :func:`simulate`, and the series each
    emits (the demo stacks' model is ``services.sim.StackModel``)."""

    def entry(self, service: str) -> float:
        """Requests (or ticks) per second entering ``service`` from outside or its loop."""
        ...

    def incident(
        self,
        order: list[str],
        root: str,
        fault: str,
        rate: dict[str, np.ndarray],
        active: np.ndarray,
        onset: int,
        config: SyntheticConfig,
        rng: np.random.Generator,
    ) -> tuple[pd.DataFrame, nx.DiGraph]:
        """All rows (history and window) and the true series graph of ``fault`` at ``root``,
        active from the row ``onset`` on, given every service's requests per second
        (``order`` is topological); draws from ``rng`` only after :func:`simulate` has."""
        ...


def simulate(
    graph: nx.DiGraph,
    root: str,
    fault: str,
    config: SyntheticConfig,
    rng: np.random.Generator,
    model: ServiceModel | None = None,
) -> tuple[pd.DataFrame, nx.DiGraph]:
    """Simulate history and incident on ``graph``: all rows, and the true series graph.

    The one generator: load enters at the graph's entry services and flows to callees in
    proportion to the calls; every service has its own CPU, memory and processing time, one of
    them carries the fault from the onset on, and latency builds up from callees to callers a
    few steps later. Without ``model`` the services' parameters are drawn at random and each
    emits four series (CPU, memory, request rate, p90 latency); with a :class:`ServiceModel`
    (``graph`` its stack's call graph) the model makes the rest of the incident.
    """
    n, onset = config.history_steps + config.n_steps, config.history_steps + config.onset_step
    order = list(nx.topological_sort(graph))
    load = 100.0 * (1.0 + 0.1 * np.sin(np.arange(n) / 40.0)) + ar1(n, 0.8, 3.0, rng)
    rate: dict[str, np.ndarray] = {}
    for service in order:
        callers = list(graph.predecessors(service))
        if not callers:
            rate[service] = load.copy() if model is None else load / 100.0 * model.entry(service)
        else:
            rate[service] = sum(rate[c] * graph.edges[c, service]["calls"] for c in callers)
        if model is None:
            rate[service] = rate[service] + rng.normal(0, 1.0, n)
        else:  # counting noise: the spread of a Poisson count over one step
            mean = float(np.mean(rate[service]))
            noise = rng.normal(0, np.sqrt(max(mean, 1e-3) / config.step_seconds), n)
            rate[service] = np.clip(rate[service] + noise, 0.0, None)

    active = np.zeros(n)
    active[onset:] = 1.0
    if model is not None:
        return model.incident(order, root, fault, rate, active, onset, config, rng)
    cpu: dict[str, np.ndarray] = {}
    mem: dict[str, np.ndarray] = {}
    own: dict[str, np.ndarray] = {}
    for service in order:
        # Some services are much noisier than others (batch jobs next to steady gateways): a
        # fault at a noisy service can look smaller than its echo at a quiet caller.
        noisy = rng.lognormal(0.0, 1.0)
        base = rng.uniform(5, 20)
        cpu[service] = base + rate[service] * rng.uniform(0.05, 0.2) + ar1(n, 0.5, noisy, rng)
        mem[service] = rng.uniform(100, 400) + np.cumsum(rng.normal(0, 0.2 * noisy, n))
        own[service] = rng.uniform(5, 30) * (1 + ar1(n, 0.6, 0.03 * noisy, rng))
        if service == root:
            strength = rng.uniform(0.5, 6.0)
            if fault == "cpu":
                cpu[service] = cpu[service] + active * strength * 15.0
                own[service] = own[service] * (1 + active * strength * 0.5)
            elif fault == "mem":
                ramp = np.clip(np.arange(n) - onset, 0, None)
                mem[service] = mem[service] + ramp * strength * 2.0
                own[service] = own[service] * (1 + active * strength * 0.15)
            else:
                own[service] = own[service] + active * strength * 20.0
        add_transient(rng, [cpu, mem, own], service, config.history_steps, onset)

    latency = propagate(graph, order, own, rng)

    names = {service: _names(service) for service in order}
    columns: dict[str, np.ndarray] = {}
    true_graph = nx.DiGraph()
    for service in order:
        own_names = names[service]
        columns[own_names["cpu"]] = cpu[service]
        columns[own_names["mem"]] = mem[service]
        columns[own_names["rate"]] = rate[service]
        columns[own_names["lat"]] = latency[service]
        true_graph.add_edge(own_names["rate"], own_names["cpu"])
        true_graph.add_edge(own_names["cpu"], own_names["lat"])
        for callee in graph.successors(service):
            true_graph.add_edge(own_names["rate"], names[callee]["rate"])
            lag = graph.edges[service, callee]["lag_steps"]
            true_graph.add_edge(names[callee]["lat"], own_names["lat"], lag_steps=lag)
    if fault == "mem":
        true_graph.add_edge(names[root]["mem"], names[root]["lat"])
    return series_frame(columns, n, config.step_seconds), true_graph


def add_transient(
    rng: np.random.Generator,
    signals: list[dict[str, np.ndarray]],
    service: str,
    history_steps: int,
    onset: int,
) -> None:
    """Normal-period transients: a short spike in one random signal of some services, inside
    the window's pre-onset part (so the normal period is never clean)."""
    if rng.random() < 0.4:
        at = int(rng.integers(history_steps + 10, onset - 10))
        target = signals[int(rng.integers(0, len(signals)))][service]
        target[at : at + int(rng.integers(2, 6))] *= rng.uniform(1.5, 3.0)


def propagate(
    graph: nx.DiGraph,
    order: list[str],
    own: dict[str, np.ndarray],
    rng: np.random.Generator,
    penalty: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Latency from callees to callers: a caller waits for its own work plus, for the share of
    its requests that call a callee, the callee's latency ``lag_steps`` earlier (and the
    callee's ``penalty``: time lost to its failures, retries and timeouts)."""
    latency: dict[str, np.ndarray] = {}
    n = len(next(iter(own.values())))
    for service in reversed(order):
        total = own[service].copy()
        for callee in graph.successors(service):
            edge = graph.edges[service, callee]
            lag = edge["lag_steps"]
            waited = latency[callee] if penalty is None else latency[callee] + penalty[callee]
            if lag:
                waited = np.concatenate([np.full(lag, waited[0]), waited[:-lag]])
            total = total + edge["calls"] * waited
        latency[service] = total * (1 + rng.normal(0, 0.02, n))
    return latency


def series_frame(columns: dict[str, np.ndarray], n: int, step_seconds: float) -> pd.DataFrame:
    """The generated columns as rows ``step_seconds`` apart, from a fixed start."""
    start = pd.Timestamp("2026-01-01T00:00:00Z")
    index = pd.date_range(start, periods=n, freq=pd.Timedelta(seconds=step_seconds))
    return pd.DataFrame(columns, index=index.rename("time"))


def _root_is_loudest(window: pd.DataFrame, onset_step: int, root: str) -> bool:
    before, after = window.iloc[:onset_step], window.iloc[onset_step:]
    med = before.median()
    iqr = (before.quantile(0.75) - before.quantile(0.25)).clip(lower=1e-9)
    scores = ((after - med).abs() / iqr).max()
    return service_of(str(scores.idxmax())) == root


class Synthetic:
    """Generated incidents (``synthetic``) or only the hard ones (``synthetic-hard``)."""

    def __init__(self, config: SyntheticConfig | None = None) -> None:
        self.config = config or SyntheticConfig()
        self.name = "synthetic-hard" if self.config.hard else "synthetic"

    def case_ids(self) -> list[str]:
        return [f"{i:04d}" for i in range(self.config.n_cases)]

    def load(self, case_id: str) -> Case:
        index = int(case_id)
        for attempt in range(1000):
            # One independent stream per (case, attempt): cases do not depend on each other.
            rng = np.random.default_rng([self.config.seed, index, attempt])
            n_services = int(rng.integers(self.config.min_services, self.config.max_services + 1))
            graph = random_call_graph(n_services, rng)
            root = str(rng.choice(list(graph.nodes)))
            fault = str(rng.choice(FAULTS))
            frame, true_graph = simulate(graph, root, fault, self.config, rng)
            history = frame.iloc[: self.config.history_steps]
            window = frame.iloc[self.config.history_steps :]
            if not self.config.hard or not _root_is_loudest(window, self.config.onset_step, root):
                break
        else:  # pragma: no cover - the generator makes hard cases often
            raise RuntimeError("could not generate a hard case in 1000 attempts")
        return Case(
            dataset=self.name,
            case_id=case_id,
            window=window,
            onset=window.index[self.config.onset_step],
            truth=Truth(root, fault, frozenset({_INDICATOR[fault]})),
            history=history if len(history) else None,
            call_graph=graph,
            true_graph=true_graph,
        )
