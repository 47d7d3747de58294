"""Seeded synthetic incidents with propagation, and the true graph kept with each case.

One generator (:func:`simulate`) for two kinds of topology:

- ``synthetic`` / ``synthetic-hard``: a random call graph (a DAG under one ``frontend``)
  carries load from callers to callees; each service emits CPU, memory, request rate and p90
  latency. A fault at one service (CPU hog, memory leak or added latency) raises its own
  metrics, and its latency reaches its callers a few steps later, scaled by how often they
  call it. ``-hard`` keeps the cases whose root is not the loudest anomaly.
- ``sim:<stack>``: a demo stack's description (``services/stacks/<stack>.yaml``) gives the
  graph, the rates, the work per request and the metrics; :class:`StackModel` makes every
  service emit the series its live process emits, under the same names, and carries the
  stack's faults (CPU, memory, latency, errors, drops, GPU throttling, KV-cache pressure,
  link delay/jitter/loss) as they act live. Thousands of labelled incidents a minute.
  ``sim:large`` is a generated stack at Train Ticket's scale (:func:`large_stack`: 45 services
  behind one gateway, with their databases). Each case's alert names the SLOs the incident broke,
  as the demo's SLO watcher judges them (learned on the case's history).

Normal-period transients (short spikes) keep the pre-onset part from being clean. Every series
edge the generator uses is in ``true_graph`` (cause -> effect), so causal learners can be
scored against it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
import pandas as pd

from rca.datasets.base import Case, Truth
from rca.datasets.wide_csv import CPU, MEMORY, REQUEST_DURATION
from rca.types import Alert, parse_series_name, series_name, service_of

if TYPE_CHECKING:
    from services.stack import Stack

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


def _ar1(n: int, phi: float, scale: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(0.0, scale, n)
    out = np.empty(n)
    out[0] = noise[0]
    for t in range(1, n):
        out[t] = phi * out[t - 1] + noise[t]
    return out


def simulate(
    graph: nx.DiGraph,
    root: str,
    fault: str,
    config: SyntheticConfig,
    rng: np.random.Generator,
    model: StackModel | None = None,
) -> tuple[pd.DataFrame, nx.DiGraph]:
    """Simulate history and incident on ``graph``: all rows, and the true series graph.

    The one generator: load enters at the graph's entry services and flows to callees in
    proportion to the calls; every service has its own CPU, memory and processing time, one of
    them carries the fault from the onset on, and latency builds up from callees to callers a
    few steps later. Without ``model`` the services' parameters are drawn at random and each
    emits four series (CPU, memory, request rate, p90 latency); with a :class:`StackModel` they
    come from a stack description and each service emits the series it emits live.
    """
    n, onset = config.history_steps + config.n_steps, config.history_steps + config.onset_step
    order = list(nx.topological_sort(graph))
    load = 100.0 * (1.0 + 0.1 * np.sin(np.arange(n) / 40.0)) + _ar1(n, 0.8, 3.0, rng)
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
        state = model.services(order, root, fault, rate, active, onset, config, rng)
        latency = _propagate(graph, order, state.own, rng, state.penalty)
        return model.series(order, root, fault, rate, latency, state, config, rng)
    cpu: dict[str, np.ndarray] = {}
    mem: dict[str, np.ndarray] = {}
    own: dict[str, np.ndarray] = {}
    for service in order:
        # Some services are much noisier than others (batch jobs next to steady gateways): a
        # fault at a noisy service can look smaller than its echo at a quiet caller.
        noisy = rng.lognormal(0.0, 1.0)
        base = rng.uniform(5, 20)
        cpu[service] = base + rate[service] * rng.uniform(0.05, 0.2) + _ar1(n, 0.5, noisy, rng)
        mem[service] = rng.uniform(100, 400) + np.cumsum(rng.normal(0, 0.2 * noisy, n))
        own[service] = rng.uniform(5, 30) * (1 + _ar1(n, 0.6, 0.03 * noisy, rng))
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
        _transient(rng, [cpu, mem, own], service, config.history_steps, onset)

    latency = _propagate(graph, order, own, rng)

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
            true_graph.add_edge(names[callee]["lat"], own_names["lat"])
    if fault == "mem":
        true_graph.add_edge(names[root]["mem"], names[root]["lat"])
    return _frame(columns, n, config.step_seconds), true_graph


def _transient(
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


def _propagate(
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


def _frame(columns: dict[str, np.ndarray], n: int, step_seconds: float) -> pd.DataFrame:
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


# ---- the demo stacks (``sim:<stack>``) -----------------------------------------------------

DURATION = REQUEST_DURATION
_TIMEOUT_HOLD_SECONDS = 10.0  # how long a service holds a dropped request (services.app)
# Per request and service: the HTTP framework and client's own time (measured on the live
# stacks: a hop adds about 3 ms in these Python services).
_HOP_MS = 3.0
# A fog node sees a frame this much after its stamp besides the link (the HTTP exchange).
_FRAME_OVERHEAD_SECONDS = 0.010


@dataclass
class ServiceState:
    """What :meth:`StackModel.services` hands on to the latency and series steps."""

    own: dict[str, np.ndarray]
    cpu: dict[str, np.ndarray]
    mem: dict[str, np.ndarray]
    penalty: dict[str, np.ndarray]
    strength: float
    effects: dict[str, np.ndarray]


class StackModel:
    """How the services of a stack description (:mod:`services.stack`) behave in
    :func:`simulate`, and the series each emits, named exactly as its live process names them.

    Rates follow the description: the load's request mix at the entry routes, each route's
    calls (probability, share of a pool), loops' ticks. A request costs its route's work (CPU,
    waiting, GPU) plus, for LLM engines, prefill per prompt token and decode per output token.
    Faults act as they do live (:mod:`services.faults`): ``cpu`` takes a core and slows the
    service, ``mem`` grows resident memory and (through the collector) its latency, ``latency``
    adds the stack's fault delay, ``errors`` and ``drop`` fail a share of requests (callers
    retry, or wait for their timeout), ``gpu-throttle`` lowers the SM clock and stretches GPU
    time, ``kv-pressure`` makes decode wait and preempt, link faults delay, jitter or lose a
    robot's frames. The simulator emits one route per service (the first).
    """

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.graph = stack.call_graph()
        self.route_rates = self._route_rates()
        for caller, callee in self.graph.edges:
            flow = self._edge_flow(caller, callee)
            served = max(sum(self.route_rates[caller].values()), 1e-9)
            self.graph.edges[caller, callee]["calls"] = flow / served
            self.graph.edges[caller, callee]["lag_steps"] = 1
            self.graph.edges[caller, callee]["timeout_s"] = self._timeout(caller, callee)
        self.own_ms = {name: self._own_ms(name) for name in stack.services}

    # -- rates ----------------------------------------------------------------------------

    def _route_rates(self) -> dict[str, dict[str, float]]:
        """Requests per second of every (service, route) under the description's load."""
        stack = self.stack
        rates: dict[str, dict[str, float]] = {n: {} for n in stack.services}
        total = sum(r.weight for r in stack.load.requests)
        for request in stack.load.requests:
            share = stack.load.rate_per_second * request.weight / total
            routes = rates[request.service]
            routes[request.route] = routes.get(request.route, 0.0) + share
        for name, service in stack.services.items():
            if service.loop is not None:
                ticks = 1000.0 / service.loop.period_ms
                rates[name]["(loop)"] = ticks
        for name in nx.topological_sort(self.graph):
            service = stack.services[name]
            for route_name, rate in list(rates[name].items()):
                if route_name == "(loop)" and service.loop is not None:
                    calls = [(c.to, c.route, 1.0 / c.every_ticks) for c in service.loop.calls]
                else:
                    calls = [
                        (callee, c.route, c.probability / len(c.to))
                        for c in service.routes[route_name].calls
                        for callee in c.to
                    ]
                for callee, route, share in calls:
                    routes = rates[callee]
                    routes[route] = routes.get(route, 0.0) + rate * share
        return rates

    def _edge_flow(self, caller: str, callee: str) -> float:
        service = self.stack.services[caller]
        flow = 0.0
        for route_name, rate in self.route_rates[caller].items():
            if route_name == "(loop)" and service.loop is not None:
                flow += sum(rate / c.every_ticks for c in service.loop.calls if c.to == callee)
            elif route_name in service.routes:
                for call in service.routes[route_name].calls:
                    if callee in call.to:
                        flow += rate * call.probability / len(call.to)
        return flow

    def _timeout(self, caller: str, callee: str) -> float:
        service = self.stack.services[caller]
        timeouts = [
            c.timeout_ms / 1000 for r in service.routes.values() for c in r.calls if callee in c.to
        ]
        if service.loop is not None:
            timeouts += [c.timeout_ms / 1000 for c in service.loop.calls if c.to == callee]
        return max(timeouts, default=1.0)

    def entry(self, service: str) -> float:
        """Requests (or ticks) per second entering ``service`` from outside or its loop."""
        return sum(self.route_rates[service].values())

    def _own_ms(self, name: str) -> float:
        """Mean time one request spends in ``name`` itself, callees excluded."""
        service = self.stack.services[name]
        rates = self.route_rates[name]
        served = {r: v for r, v in rates.items() if r in service.routes}
        weights = np.array(list(served.values()) or [1.0])
        works = [service.routes[r].work for r in served] or (
            [service.loop.work] if service.loop is not None else []
        )
        own = float(
            np.average([w.cpu_ms + w.io_ms + w.gpu_ms for w in works], weights=weights)
            if works
            else 0.5
        )
        llm = service.llm
        if llm is not None:
            if llm.phase == "prefill":
                own += self._prompt_tokens() / 1000 * llm.prefill_ms_per_1k_tokens
                own += (
                    self._prompt_tokens()
                    * llm.kv_bytes_per_token
                    / (llm.kv_link_gbytes_per_s * 1e6)
                )
            else:
                own += self._output_tokens() * self._tpot_ms(name)
        if service.link is not None:
            return max(service.link.base_ms, 0.05)
        if service.routes:
            own += _HOP_MS
        return max(own, 0.05)

    def _prompt_tokens(self) -> float:
        low, high = self.stack.load.body.get("prompt_tokens", [512, 512])
        return (low + high) / 2

    def _output_tokens(self) -> float:
        low, high = self.stack.load.body.get("max_tokens", [32, 32])
        return (low + high) / 2

    def _tpot_ms(self, name: str) -> float:
        llm = self.stack.services[name].llm
        if llm is None:
            return 0.0
        running = max(1.0, self.entry(name) * self._output_tokens() * llm.tpot_ms / 1000)
        return llm.tpot_ms * (1 + llm.batch_slowdown * (running - 1))

    def _gpu_share(self, name: str) -> float:
        """The share of a request's own time spent on the GPU."""
        service = self.stack.services[name]
        if service.gpu is None:
            return 0.0
        if service.llm is not None:
            return 0.9
        gpu = np.mean([r.work.gpu_ms for r in service.routes.values()] or [0.0])
        return float(gpu / max(self.own_ms[name], 1e-9))

    # -- the services over time -----------------------------------------------------------

    def services(
        self,
        order: list[str],
        root: str,
        fault: str,
        rate: dict[str, np.ndarray],
        active: np.ndarray,
        onset: int,
        config: SyntheticConfig,
        rng: np.random.Generator,
    ) -> ServiceState:
        n = len(active)
        cpus = 2.0  # the machine the live stacks run on
        ramp = np.clip(np.arange(n) - onset, 0, None) * config.step_seconds
        strength = float(rng.uniform(0.5, 1.5))  # how hard this fault hits, around the live one
        params = self.stack.params(fault)
        own: dict[str, np.ndarray] = {}
        cpu: dict[str, np.ndarray] = {}
        mem: dict[str, np.ndarray] = {}
        penalty = {s: np.zeros(n) for s in order}
        effects: dict[str, np.ndarray] = {}
        for service in order:
            spec = self.stack.services[service]
            noisy = rng.lognormal(0.0, 0.5)
            cpu_ms = float(
                np.mean(
                    [r.work.cpu_ms for r in spec.routes.values()]
                    or [spec.loop.work.cpu_ms if spec.loop else 0.2]
                )
            )
            cpu[service] = (
                0.004
                + rate[service] * (cpu_ms + 1.2) / 1000 / cpus  # + the framework's own cost
                + np.abs(_ar1(n, 0.5, 0.002 * noisy, rng))
            )
            mem[service] = rng.uniform(1.05e8, 1.15e8) + np.cumsum(rng.normal(0, 2e3 * noisy, n))
            own[service] = self.own_ms[service] / 1000 * (1 + _ar1(n, 0.6, 0.05 * noisy, rng))
            if service == root:
                self._fault(
                    fault,
                    service,
                    params,
                    strength,
                    active,
                    ramp,
                    rate,
                    own,
                    cpu,
                    mem,
                    penalty,
                    effects,
                    cpus,
                )
            _transient(rng, [cpu, own], service, config.history_steps, onset)
        return ServiceState(own, cpu, mem, penalty, strength, effects)

    def _fault(
        self,
        fault: str,
        service: str,
        params: dict[str, float],
        strength: float,
        active: np.ndarray,
        ramp: np.ndarray,
        rate: dict[str, np.ndarray],
        own: dict[str, np.ndarray],
        cpu: dict[str, np.ndarray],
        mem: dict[str, np.ndarray],
        penalty: dict[str, np.ndarray],
        effects: dict[str, np.ndarray],
        cpus: float,
    ) -> None:
        """The fault's effect on the root (and on its callers' waits, through ``penalty``)."""
        if fault == "cpu":
            cpu[service] = cpu[service] + active * params["threads"] / cpus * 0.95
            own[service] = own[service] * (1 + active * strength * 1.5)
        elif fault == "mem":
            grow = ramp * params["mb_per_s"] * 1e6 * strength
            mem[service] = mem[service] + grow * 1.6  # buffers + small objects
            cpu[service] = cpu[service] + active * 0.04 * strength
            own[service] = own[service] * (1 + grow / 1e9 * strength)  # longer collector passes
        elif fault == "latency":
            own[service] = own[service] + active * params["ms"] / 1000 * strength
        elif fault == "errors":
            ratio = min(0.95, params["ratio"] * strength)
            effects["errors"] = active * ratio
            own[service] = own[service] * (1 - 0.3 * active * ratio)
            penalty[service] = active * ratio * own[service]  # callers retry once
            rate[service] = rate[service] * (1 + active * ratio)
        elif fault == "drop":
            ratio = min(0.95, params["ratio"] * strength)
            effects["drop"] = active * ratio
            timeout = max(
                (
                    self.graph.edges[c, service]["timeout_s"]
                    for c in self.graph.predecessors(service)
                ),
                default=1.0,
            )
            penalty[service] = active * ratio * timeout
        elif fault == "gpu-throttle":
            factor = max(0.1, params["clock_factor"] / strength)
            effects["clock"] = 1 - active * (1 - factor)
            share = self._gpu_share(service)
            own[service] = own[service] * (1 - share + share / effects["clock"])
        elif fault == "kv-pressure":
            taken = min(0.9, params["fraction"] * strength)
            effects["kv_taken"] = active * taken
            own[service] = own[service] * (1 + active * taken * 1.5)
        elif fault.startswith("link-"):
            if fault == "link-delay":
                effects["link_delay"] = active * params["ms"] / 1000 * strength
            elif fault == "link-jitter":
                effects["link_jitter"] = active * params["ms"] / 1000 * strength
            else:
                effects["link_loss"] = active * min(0.9, params["ratio"] * strength)

    # -- the series -----------------------------------------------------------------------

    def series(
        self,
        order: list[str],
        root: str,
        fault: str,
        rate: dict[str, np.ndarray],
        latency: dict[str, np.ndarray],
        state: ServiceState,
        config: SyntheticConfig,
        rng: np.random.Generator,
    ) -> tuple[pd.DataFrame, nx.DiGraph]:
        """Every service's series as its live process names them, and the true graph: within
        a service load -> resources -> times; a callee's times -> its callers' times; a
        caller's load -> its callees' load."""
        out = _Emitter(rng, len(rate[order[0]]))
        run = _Run(root, rate, latency, state)
        for service in order:
            spec = self.stack.services[service]
            self._http_series(out, run, service, spec)
            if spec.llm is not None or "gen_ai.server.time_to_first_token" in spec.metrics:
                self._llm_series(out, run, service, spec)
            if spec.gpu is not None:
                self._gpu_series(out, run, service, spec)
            if spec.loop is not None:
                self._loop_series(out, run, service, spec)
            if "ros2.message.age" in spec.metrics and spec.loop is None:
                self._fog_series(out, run, service)
            if "rabbitmq.message.current" in spec.metrics:
                depth = np.abs(_ar1(out.n, 0.7, 0.5, rng))
                out.emit(
                    service, "resource", series_name(service, "rabbitmq.message.current"), depth
                )
        return _frame(out.columns, out.n, config.step_seconds), out.true_graph(self.graph)

    def _http_series(self, out: _Emitter, run: _Run, service: str, spec: Any) -> None:
        metrics = set(spec.metrics)
        effects = run.effects(service)
        lat = run.latency[service]
        served = run.rate[service] * (1 - effects.get("drop", 0.0))
        if DURATION in metrics and spec.routes:
            route = next(iter(spec.routes))
            ok = {
                "http.request.method": "POST",
                "http.route": route,
                "http.response.status_code": "200",
            }
            errors = effects.get("errors")
            out.histogram(
                service, DURATION, lat, served * (1 - (0.0 if errors is None else errors)), ok
            )
            if errors is not None:  # a 500 series that exists only once the errors start
                failed = {**ok, "http.response.status_code": "500"}
                bad = np.where(errors > 0, served * errors, np.nan)
                fast = np.where(errors > 0, run.state.own[service], np.nan)
                out.histogram(service, DURATION, fast, bad, failed)
        if "http.server.active_requests" in metrics:
            held = served * lat
            if "drop" in effects:
                held = held + run.rate[service] * effects["drop"] * _TIMEOUT_HOLD_SECONDS
            name = series_name(service, "http.server.active_requests")
            out.emit(service, "resource", name, held * out.noise(0.1))
        if "process.cpu.utilization" in metrics:
            cpu = np.clip(run.state.cpu[service], 0, 1)
            out.emit(service, "resource", series_name(service, "process.cpu.utilization"), cpu)
        if "process.memory.usage" in metrics:
            mem = run.state.mem[service]
            out.emit(service, "resource", series_name(service, "process.memory.usage"), mem)

    def _llm_series(self, out: _Emitter, run: _Run, service: str, spec: Any) -> None:
        stack = self.stack.services
        decoders = [d for d, s in stack.items() if s.llm is not None and s.llm.phase == "decode"]
        # Time per output token: the decode step, stretched as much as the decoder's own time.
        tpot = {
            d: self._tpot_ms(d) / 1000 * run.state.own[d] / (self.own_ms[d] / 1000)
            for d in decoders
        }
        mine = tpot.get(service, np.mean([tpot[d] for d in decoders], axis=0))
        tokens_out = self._output_tokens()
        metrics = set(spec.metrics)
        if "gen_ai.server.time_to_first_token" in metrics:
            ttft = np.clip(run.latency[service] - tokens_out * mine, mine, None)
            out.histogram(service, "gen_ai.server.time_to_first_token", ttft, run.rate[service])
        if "gen_ai.server.time_per_output_token" in metrics:
            out.histogram(
                service, "gen_ai.server.time_per_output_token", mine, run.rate[service], spread=0.3
            )
        llm = spec.llm
        if llm is None:
            return
        busy = run.rate[service] * run.state.own[service]  # Little's law: requests in the engine
        taken = run.effects(service).get("kv_taken", np.zeros(out.n))
        waiting = np.abs(0.02 * busy * out.noise(0.5) - 0.02) + taken * busy * 2.0
        held = self._prompt_tokens() + (tokens_out / 2 if llm.phase == "decode" else 0.0)
        kv = np.clip(busy * held / llm.kv_cache_tokens + taken, 0, 1)
        levels = {
            "vllm.num_requests_running": busy * out.noise(0.1),
            "vllm.num_requests_waiting": waiting,
            "vllm.kv_cache_usage_perc": kv * out.noise(0.05),
        }
        for metric, values in levels.items():
            if metric in metrics:
                out.emit(
                    service, "resource", series_name(service, metric), np.clip(values, 0, None)
                )
        if "vllm.num_preemptions" in metrics:
            preempted = np.clip(taken * run.rate[service] * 0.8 * out.noise(0.3), 0, None)
            name = series_name(service, "vllm.num_preemptions", "rate")
            out.emit(service, "resource", name, preempted)
        if "vllm.nixl_xfer_time_seconds" in metrics:
            nbytes = self._prompt_tokens() * llm.kv_bytes_per_token
            xfer = np.full(out.n, nbytes / (llm.kv_link_gbytes_per_s * 1e9)) * out.noise(0.15)
            out.histogram(
                service, "vllm.nixl_xfer_time_seconds", xfer, run.rate[service], spread=0.5
            )

    def _gpu_series(self, out: _Emitter, run: _Run, service: str, spec: Any) -> None:
        gpu = spec.gpu
        clock = run.effects(service).get("clock", np.ones(out.n))
        busy = self._gpu_share(service) * run.state.own[service] * run.rate[service]
        if spec.llm is not None and spec.llm.phase == "decode":
            busy = 1 - np.exp(-busy)  # any request in the batch keeps the GPU busy
        util = np.clip(busy * out.noise(0.08), 0, 1)
        kv = 0.0
        if spec.llm is not None:
            inside = run.rate[service] * run.state.own[service]
            kv = inside * self._prompt_tokens() * spec.llm.kv_bytes_per_token
        values = {
            "hw.gpu.utilization": util,
            "hw.gpu.memory.usage": gpu.weights_bytes + kv * out.noise(0.1),
            "hw.gpu.clock.sm": gpu.sm_clock_hz * clock * out.noise(0.003),
            "hw.power": gpu.idle_watts + (gpu.tdp_watts - gpu.idle_watts) * util * clock,
        }
        hw = {"hw.id": f"modelled-{service}"}
        for metric, series in values.items():
            if metric in spec.metrics:
                out.emit(service, "resource", series_name(service, metric, None, hw), series)

    def _link(self, out: _Emitter, run: _Run, robot: str) -> tuple[np.ndarray, np.ndarray]:
        """One-way extra delay of a robot's link per step, and its loss share."""
        effects = run.effects(robot)
        delay = effects.get("link_delay", np.zeros(out.n))
        jitter = effects.get("link_jitter", np.zeros(out.n))
        return delay + jitter * out.rng.uniform(0.3, 0.7, out.n), effects.get(
            "link_loss", np.zeros(out.n)
        )

    def _loop_series(self, out: _Emitter, run: _Run, service: str, spec: Any) -> None:
        metrics = set(spec.metrics)
        loop = spec.loop
        ticks = 1000.0 / loop.period_ms
        slowed = run.state.own[service] / (self.own_ms[service] / 1000)  # cpu, mem faults
        if spec.link is None:
            if "messaging.process.duration" in metrics:
                item = loop.work_per_item
                seconds = (item.cpu_ms + item.io_ms) / 1000 * slowed * out.noise(0.05)
                consumed = np.abs(_ar1(out.n, 0.5, 0.3, out.rng)) + 1.0
                out.histogram(service, "messaging.process.duration", seconds, consumed)
            return
        tick = loop.work.cpu_ms / 1000 * out.noise(0.05)
        if not run.effects(service):
            tick = tick * slowed
        if "robot.control_loop.duration" in metrics:
            per_s = np.full(out.n, ticks) * out.noise(0.01)
            out.histogram(service, "robot.control_loop.duration", tick, per_s)
        peer = spec.link.peer
        delay, loss = self._link(out, run, service)
        rtt = spec.link.base_ms / 1000 + 2 * delay + run.latency[peer]
        sent = run.rate[service] * self._frames_per_tick(service)
        topic = {"messaging.destination.name": f"/{service}/camera"}
        if "messaging.client.operation.duration" in metrics:
            metric = "messaging.client.operation.duration"
            out.histogram(service, metric, rtt, sent * (1 - loss), topic)
            if loss.any():
                lost = {**topic, "error.type": "timeout"}
                out.emit(service, "load", series_name(service, metric, "rate", lost), sent * loss)
        if "ros2.message.age" in metrics:
            plan = {"messaging.destination.name": f"/{service}/plan"}
            age = spec.link.base_ms / 2000 + delay + run.latency[peer] * 0.1
            out.histogram(service, "ros2.message.age", age, sent * (1 - loss), plan)
        if "robot.control_loop.deadline_misses" in metrics:
            deadline = loop.deadline_ms / 1000
            gap = 1 / np.clip(sent * (1 - loss), 0.5, None)  # seconds between plans
            stale = np.clip((rtt + gap - deadline) / deadline, 0, 1)
            name = series_name(service, "robot.control_loop.deadline_misses", "rate")
            out.emit(service, "resource", name, stale * ticks)

    def _frames_per_tick(self, robot: str) -> float:
        loop = self.stack.services[robot].loop
        return sum(1.0 / c.every_ticks for c in loop.calls) if loop is not None else 0.0

    def _fog_series(self, out: _Emitter, run: _Run, service: str) -> None:
        for robot, spec in self.stack.services.items():
            if spec.link is None or spec.link.peer != service:
                continue
            delay, loss = self._link(out, run, robot)
            topic = {"messaging.destination.name": f"/{robot}/camera", "service.peer.name": robot}
            sent = run.rate[robot] * self._frames_per_tick(robot)
            received = sent * (1 - loss) * out.noise(0.02)
            age = (spec.link.base_ms / 2000 + _FRAME_OVERHEAD_SECONDS) * out.noise(0.08) + delay
            out.histogram(service, "ros2.message.age", age, received, topic)
            jitter = run.effects(robot).get("link_jitter", np.zeros(out.n))
            gaps = 1 / np.clip(sent * (1 - loss), 0.5, None)
            out.histogram(
                service,
                "ros2.message.period",
                gaps * out.noise(0.01),
                received,
                topic,
                spread=0.1 + 10 * jitter,
            )


@dataclass
class _Run:
    """One simulated incident's signals, as the series steps read them."""

    root: str
    rate: dict[str, np.ndarray]
    latency: dict[str, np.ndarray]
    state: ServiceState

    def effects(self, service: str) -> dict[str, np.ndarray]:
        """The fault's own signals (error share, clock, ...) at the root; none elsewhere."""
        return self.state.effects if service == self.root else {}


class _Emitter:
    """Collects columns and which service-level role each plays (load, resource, time)."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.rng = rng
        self.n = n
        self.columns: dict[str, np.ndarray] = {}
        self.roles: dict[str, dict[str, list[str]]] = {"load": {}, "resource": {}, "time": {}}

    def noise(self, scale: float) -> np.ndarray:
        return 1 + self.rng.normal(0, scale, self.n)

    def emit(self, service: str, role: str, name: str, values: np.ndarray) -> None:
        self.columns[name] = values
        self.roles[role].setdefault(service, []).append(name)

    def histogram(
        self,
        service: str,
        metric: str,
        seconds: np.ndarray,
        per_second: np.ndarray,
        attrs: dict[str, str] | None = None,
        spread: float | np.ndarray = 1.0,
    ) -> None:
        """The five statistics ingest makes of a histogram: quantiles, mean and rate."""
        for stat, factor in (
            ("p50", 0.85),
            ("p90", 1.0 + 0.3 * spread),
            ("p99", 1.0 + 0.6 * spread),
        ):
            values = np.clip(seconds * factor * self.noise(0.04), 0, None)
            self.emit(service, "time", series_name(service, metric, stat, attrs), values)
        mean = np.clip(seconds * self.noise(0.03), 0, None)
        self.emit(service, "time", series_name(service, metric, "mean", attrs), mean)
        rate = np.clip(per_second, 0, None)
        self.emit(service, "load", series_name(service, metric, "rate", attrs), rate)

    def true_graph(self, calls: nx.DiGraph) -> nx.DiGraph:
        load, resource, time_ = (self.roles[r] for r in ("load", "resource", "time"))
        graph = nx.DiGraph()
        for service in calls.nodes:
            graph.add_edges_from(
                (c, e) for c in load.get(service, []) for e in resource.get(service, [])
            )
            graph.add_edges_from(
                (c, e) for c in resource.get(service, []) for e in time_.get(service, [])
            )
            for callee in calls.successors(service):
                graph.add_edges_from(
                    (c, e) for c in time_.get(callee, []) for e in time_.get(service, [])
                )
                graph.add_edges_from(
                    (c, e) for c in load.get(service, []) for e in load.get(callee, [])
                )
        return graph


@dataclass(frozen=True)
class StackSimConfig:
    """Shape of simulated incidents of a demo stack, sized like the live benchmark's windows
    (``bench/live.py``): 40 s before the onset, 25 s after, at 1 s, after 5 min of history."""

    stack: str
    n_cases: int = 500
    n_steps: int = 65
    onset_step: int = 40
    history_steps: int = 300
    step_seconds: float = 1.0
    seed: int = 0


def large_stack() -> Stack:
    """A Train-Ticket-sized stack (45 services; fixed, whatever the bench seed), generated in
    tiers like Train Ticket's: a gateway calls 6 composite services (booking, planning...)
    with some probability each; they call 3-5 of 20 core services, which call 0-2 later core
    or 6 leaf services (auth, notification...); 12 core services keep a database. Calls go to
    later services only (a DAG), and every service is called by someone."""
    from services.stack import Stack

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


def slo_alert(
    stack: Stack, window: pd.DataFrame, history: pd.DataFrame, onset: pd.Timestamp
) -> Alert | None:
    """The stack's SLOs that break from ``onset`` on, judged by the demo's SLO watcher learned
    on ``history``, as an alert (``None`` when none breaks)."""
    from rca.demo.watcher import Rule, SloWatcher

    rules = [Rule("slo", s.service, s.metric, s.stat, user_facing=True) for s in stack.slos]
    watcher = SloWatcher(rules)
    watcher.learn(history)
    broken = {b.rule for b in watcher.check(window, since=onset)}
    if not broken:
        return None
    series = tuple(
        str(c)
        for c in window.columns
        for k in [parse_series_name(str(c))]
        if any((k.service, k.metric, k.stat) == (r.service, r.metric, r.stat) for r in broken)
    )
    return Alert(tuple(dict.fromkeys(r.service for r in rules if r in broken)), series)


class StackSim:
    """Simulated incidents of a demo stack (``sim:<stack>``): the faults that apply to the
    stack in turn, each at a seeded random target it applies to."""

    def __init__(self, config: StackSimConfig) -> None:
        from services.stack import load_stack

        self.config = config
        generated = GENERATED_STACKS.get(config.stack)
        self.stack = generated() if generated else load_stack(config.stack)
        self.model = StackModel(self.stack)
        self.name = f"sim:{self.stack.name}"
        self._shape = SyntheticConfig(
            n_cases=config.n_cases,
            n_steps=config.n_steps,
            onset_step=config.onset_step,
            history_steps=config.history_steps,
            step_seconds=config.step_seconds,
            seed=config.seed,
        )

    def case_ids(self) -> list[str]:
        return [f"{i:04d}" for i in range(self.config.n_cases)]

    def load(self, case_id: str) -> Case:
        from services.stack import FAULTS as STACK_FAULTS

        index = int(case_id)
        rng = np.random.default_rng([self.config.seed, index])
        faults = self.stack.faults()
        # Faults in equal blocks of consecutive ids, so a spread-out --limit covers them all.
        fault = faults[index * len(faults) // self.config.n_cases]
        root = str(rng.choice(self.stack.targets(fault)))
        frame, true_graph = simulate(self.model.graph, root, fault, self._shape, rng, self.model)
        history = frame.iloc[: self.config.history_steps]
        window = frame.iloc[self.config.history_steps :]
        onset = window.index[self.config.onset_step]
        return Case(
            dataset=self.name,
            case_id=case_id,
            window=window,
            onset=onset,
            truth=Truth(root, fault, frozenset(STACK_FAULTS[fault].indicators)),
            history=history if len(history) else None,
            call_graph=self.stack.call_graph(),
            true_graph=true_graph,
            alert=slo_alert(self.stack, window, history, onset) if len(history) else None,
        )
