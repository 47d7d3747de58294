"""How the services of a demo stack behave in the one incident generator
(:func:`rca.datasets.synthetic.simulate`), and the series each emits under its live name.

A fault acts here as it does live: what it sets from its parameters (a delay, a share of
requests, a clock factor, the KV share taken, a link's delay, jitter or loss, busy threads, a
leak rate) comes from the same table the live services read (:data:`services.stack.FAULTS`),
scaled by how hard the case's fault hits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from rca.datasets.synthetic import (
    SyntheticConfig,
    add_transient,
    ar1,
    propagate,
    series_frame,
)
from rca.datasets.wide_csv import REQUEST_DURATION
from rca.types import series_name
from services.stack import FAULTS, Stack

DURATION = REQUEST_DURATION
_TIMEOUT_HOLD_SECONDS = 10.0  # how long a service holds a dropped request (services.app)
# Per request and service: the HTTP framework and client's own time (measured on the live
# stacks: a hop adds about 3 ms in these Python services).
_HOP_MS = 3.0
# A fog node sees a frame this much after its stamp besides the link (the HTTP exchange).
_FRAME_OVERHEAD_SECONDS = 0.010


@dataclass
class ServiceState:
    """What :meth:`StackModel.services` hands on to the latency and series steps: per service,
    its own time per request, CPU, memory and the time its failures cost callers; the root's
    fault signals by quantity (``error_ratio``, ``clock_factor``...)."""

    own: dict[str, np.ndarray]
    cpu: dict[str, np.ndarray]
    mem: dict[str, np.ndarray]
    penalty: dict[str, np.ndarray]
    effects: dict[str, np.ndarray]


class StackModel:
    """How the services of a stack description (:mod:`services.stack`) behave in
    :func:`~rca.datasets.synthetic.simulate` (a :class:`~rca.datasets.synthetic.ServiceModel`),
    and the series each emits, named exactly as its live process names them.

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
        """The services over time, their latency from callees to callers, then every series."""
        state = self.services(order, root, fault, rate, active, onset, config, rng)
        latency = propagate(self.graph, order, state.own, rng, state.penalty)
        return self.series(order, root, fault, rate, latency, state, config, rng)

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
                + np.abs(ar1(n, 0.5, 0.002 * noisy, rng))
            )
            mem[service] = rng.uniform(1.05e8, 1.15e8) + np.cumsum(rng.normal(0, 2e3 * noisy, n))
            own[service] = self.own_ms[service] / 1000 * (1 + ar1(n, 0.6, 0.05 * noisy, rng))
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
            add_transient(rng, [cpu, own], service, config.history_steps, onset)
        return ServiceState(own, cpu, mem, penalty, effects)

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
        """The fault's effect on the root (and on its callers' waits, through ``penalty``):
        the quantities the live fault sets (:data:`services.stack.FAULTS`), as hard as this
        case's ``strength``, and what they do to the service. ``effects`` keeps the root's
        signals from the onset on, by quantity, for the series."""
        spec = FAULTS[fault]
        hit = spec.effects_of(params, strength)
        if fault == "cpu":
            # Whole threads, as live; a harder hit slows the service more.
            threads = spec.effects_of(params)["busy_threads"]
            cpu[service] = cpu[service] + active * threads / cpus * 0.95
            own[service] = own[service] * (1 + active * strength * 1.5)
        elif fault == "mem":
            grow = ramp * spec.effects_of(params)["leak_bytes_per_s"] * strength
            mem[service] = mem[service] + grow * 1.6  # buffers + small objects
            cpu[service] = cpu[service] + active * 0.04 * strength
            own[service] = own[service] * (1 + grow / 1e9 * strength)  # longer collector passes
        elif fault == "latency":
            own[service] = own[service] + active * hit["delay_seconds"]
        elif fault == "errors":
            ratio = hit["error_ratio"]
            effects["error_ratio"] = active * ratio
            own[service] = own[service] * (1 - 0.3 * active * ratio)
            penalty[service] = active * ratio * own[service]  # callers retry once
            rate[service] = rate[service] * (1 + active * ratio)
        elif fault == "drop":
            ratio = hit["drop_ratio"]
            effects["drop_ratio"] = active * ratio
            timeout = max(
                (
                    self.graph.edges[c, service]["timeout_s"]
                    for c in self.graph.predecessors(service)
                ),
                default=1.0,
            )
            penalty[service] = active * ratio * timeout
        elif fault == "gpu-throttle":
            effects["clock_factor"] = 1 - active * (1 - hit["clock_factor"])
            share = self._gpu_share(service)
            own[service] = own[service] * (1 - share + share / effects["clock_factor"])
        elif fault == "kv-pressure":
            taken = hit["kv_taken"]
            effects["kv_taken"] = active * taken
            own[service] = own[service] * (1 + active * taken * 1.5)
        else:  # the link faults act on the robot's frames (the series steps read them)
            effects.update({quantity: active * value for quantity, value in hit.items()})

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
                depth = np.abs(ar1(out.n, 0.7, 0.5, rng))
                out.emit(
                    service, "resource", series_name(service, "rabbitmq.message.current"), depth
                )
        return series_frame(out.columns, out.n, config.step_seconds), out.true_graph(self.graph)

    def _http_series(self, out: _Emitter, run: _Run, service: str, spec: Any) -> None:
        metrics = set(spec.metrics)
        effects = run.effects(service)
        lat = run.latency[service]
        served = run.rate[service] * (1 - effects.get("drop_ratio", 0.0))
        if DURATION in metrics and spec.routes:
            route = next(iter(spec.routes))
            ok = {
                "http.request.method": "POST",
                "http.route": route,
                "http.response.status_code": "200",
            }
            errors = effects.get("error_ratio")
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
            if "drop_ratio" in effects:
                held = held + run.rate[service] * effects["drop_ratio"] * _TIMEOUT_HOLD_SECONDS
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
        clock = run.effects(service).get("clock_factor", np.ones(out.n))
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
        delay = effects.get("link_delay_seconds", np.zeros(out.n))
        jitter = effects.get("link_jitter_seconds", np.zeros(out.n))
        return delay + jitter * out.rng.uniform(0.3, 0.7, out.n), effects.get(
            "link_loss_ratio", np.zeros(out.n)
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
                consumed = np.abs(ar1(out.n, 0.5, 0.3, out.rng)) + 1.0
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
            jitter = run.effects(robot).get("link_jitter_seconds", np.zeros(out.n))
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
