"""Stack descriptions: the schema, the loader, the call graph, the metric and fault catalogs.

A stack description (``services/stacks/<name>.yaml``) is data, validated here (unknown keys
fail): the services, each with the routes it serves (the work one request costs and the calls
it makes, in order), optional background loops (a robot's control loop, a queue consumer),
optional modelled hardware (a GPU, an LLM engine's batch and KV cache, a robot's network link),
and the metrics it emits, by their OpenTelemetry semantic-convention name where one exists.

Everything that runs a stack (:mod:`services.app`, :mod:`services.load`) or simulates it
(:mod:`services.sim`) reads the same :class:`Stack`, and both read what each fault does from
the same table (each fault's :class:`Effect` in :data:`FAULTS`).

>>> stack = load_stack("sockshop")
>>> sorted(stack.call_graph().successors("orders"))
['carts', 'orders-db', 'payment', 'shipping', 'user']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import networkx as nx
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

STACKS_DIR = Path(__file__).resolve().parent / "stacks"


@dataclass(frozen=True)
class MetricSpec:
    """One metric a service may emit: instrument, unit, what the service needs to emit it."""

    instrument: Literal["histogram", "gauge", "counter"]
    unit: str
    needs: Literal[
        "process",
        "http",
        "genai",
        "llm",
        "prefill",
        "decode",
        "gpu",
        "loop",
        "control",
        "publish",
        "subscribe",
        "queue",
    ]
    description: str


# Names: OpenTelemetry semantic conventions (ecosystem.md §2) where one exists; vLLM's names for
# the engine metrics that have none (§2.6), with "." for vLLM's ":" because the OpenTelemetry
# SDK's instrument-name syntax has no ":" (a scraped real vLLM keeps "vllm:..."); the GPU
# collector's hw.gpu.clock.sm; ROS 2 topic statistics (message age and period, §2.8).
METRICS: dict[str, MetricSpec] = {
    "http.server.request.duration": MetricSpec(
        "histogram", "s", "http", "every request served (method, route, status code)"
    ),
    "http.server.active_requests": MetricSpec(
        "gauge", "{request}", "http", "requests being served (mean over the interval)"
    ),
    "process.cpu.utilization": MetricSpec(
        "gauge", "1", "process", "CPU time of the process over the interval / (elapsed x CPUs)"
    ),
    "process.memory.usage": MetricSpec("gauge", "By", "process", "resident set size"),
    "gen_ai.server.time_to_first_token": MetricSpec(
        "histogram", "s", "genai", "arrival at this hop to the first output token"
    ),
    "gen_ai.server.time_per_output_token": MetricSpec(
        "histogram", "s", "genai", "(duration - TTFT) / (output tokens - 1)"
    ),
    "vllm.num_requests_waiting": MetricSpec("gauge", "{request}", "llm", "queued for the engine"),
    "vllm.num_requests_running": MetricSpec("gauge", "{request}", "llm", "in the running batch"),
    "vllm.kv_cache_usage_perc": MetricSpec("gauge", "1", "llm", "KV-cache blocks in use (0-1)"),
    "vllm.num_preemptions": MetricSpec("counter", "{preemption}", "decode", "KV exhausted"),
    "vllm.nixl_xfer_time_seconds": MetricSpec(
        "histogram", "s", "prefill", "KV transfer to the decode worker"
    ),
    "hw.gpu.utilization": MetricSpec("gauge", "1", "gpu", "busy share of the interval"),
    "hw.gpu.memory.usage": MetricSpec("gauge", "By", "gpu", "weights + KV cache"),
    "hw.gpu.clock.sm": MetricSpec("gauge", "Hz", "gpu", "SM clock (no convention exists)"),
    "hw.power": MetricSpec("gauge", "W", "gpu", "board power"),
    "robot.control_loop.duration": MetricSpec(
        "histogram", "s", "control", "compute time of one control-loop tick"
    ),
    "robot.control_loop.deadline_misses": MetricSpec(
        "counter", "{tick}", "control", "ticks that overran the period or ran on a stale plan"
    ),
    "messaging.process.duration": MetricSpec(
        "histogram", "s", "loop", "processing of one consumed message"
    ),
    "messaging.client.operation.duration": MetricSpec(
        "histogram", "s", "publish", "publish -> reply round trip over the link"
    ),
    "ros2.message.age": MetricSpec(
        "histogram", "s", "subscribe", "receive time - header stamp of each received message"
    ),
    "ros2.message.period": MetricSpec(
        "histogram", "s", "subscribe", "time between successive messages of one publisher"
    ),
    "rabbitmq.message.current": MetricSpec("gauge", "{message}", "queue", "messages queued"),
}


def _si(param: str, value: float) -> float:
    """A fault parameter in SI units: parameters carry their unit in their name."""
    if param == "ms":
        return value / 1000.0
    if param == "mb_per_s":
        return value * 1e6
    return value


@dataclass(frozen=True)
class Effect:
    """One quantity a fault sets from one of its parameters, in SI units, held within
    ``low``..``high``: what the live service does (:mod:`services.faults`) and what the
    simulator models (:mod:`services.sim`) read from here. ``strength`` is how hard the fault
    hits (the simulator draws one per case; live it is 1): a harder hit scales the quantity up,
    or down for a quantity a fault ``lowers`` (a clock). ``neutral`` is its value without the
    fault; several active faults of one type combine to the hardest hit."""

    quantity: str
    param: str
    low: float = 0.0
    high: float = math.inf
    lowers: bool = False
    neutral: float = 0.0

    def value(self, params: Mapping[str, float], strength: float = 1.0) -> float:
        si = _si(self.param, params[self.param])
        hit = si / strength if self.lowers else si * strength
        return min(self.high, max(self.low, hit))

    def combine(self, values: Iterable[float]) -> float:
        """The hardest hit of several active faults' values (``neutral`` for none)."""
        return (min if self.lowers else max)(values, default=self.neutral)


@dataclass(frozen=True)
class FaultSpec:
    """A fault type: what it does, where it applies, its default parameters, its class, and the
    quantities it sets from its parameters (:class:`Effect`)."""

    summary: str
    needs: Literal["any", "http", "gpu", "kv", "link"]
    defaults: dict[str, float]
    family: Literal["resource", "latency", "request"]
    # The metrics that count as the right indicator for metric-level scoring.
    indicators: tuple[str, ...]
    effects: tuple[Effect, ...]
    modelled: bool = False

    def effects_of(self, params: Mapping[str, float], strength: float = 1.0) -> dict[str, float]:
        """Every quantity this fault sets, by name, from ``params`` (see :class:`Effect`)."""
        return {e.quantity: e.value(params, strength) for e in self.effects}


_LINK = ("messaging.client.operation.duration", "ros2.message.age", "ros2.message.period")
_HTTP = ("http.server.request.duration",)

# Caps: a share of requests or messages is at most all of them; a throttled clock keeps 5 % of
# nominal (GPU steps stay finite); a tenth of the KV cache stays free (an engine without one
# serves nothing, and the simulator's harder hits would take all of it).
FAULTS: dict[str, FaultSpec] = {
    "cpu": FaultSpec(
        "CPU hog: busy threads in the target process",
        "any",
        {"threads": 1},
        "resource",
        ("process.cpu.utilization",),
        (Effect("busy_threads", "threads", low=1.0),),
    ),
    "mem": FaultSpec(
        "memory leak: real allocations that grow until cleared (the collector then scans a "
        "growing heap)",
        "any",
        {"mb_per_s": 6.0, "objects_per_s": 40000.0},
        "resource",
        ("process.memory.usage",),
        (
            Effect("leak_bytes_per_s", "mb_per_s"),
            Effect("leak_objects_per_s", "objects_per_s"),
        ),
    ),
    "latency": FaultSpec(
        "added latency on every request served",
        "http",
        {"ms": 60.0},
        "latency",
        _HTTP,
        (Effect("delay_seconds", "ms"),),
    ),
    "errors": FaultSpec(
        "a share of requests answered with HTTP 500",
        "http",
        {"ratio": 0.4},
        "request",
        _HTTP,
        (Effect("error_ratio", "ratio", high=1.0),),
    ),
    "drop": FaultSpec(
        "a share of requests never answered (the caller times out)",
        "http",
        {"ratio": 0.3},
        "request",
        # A dropped request is never recorded in the duration histogram; the service holds it,
        # so it shows as in-flight (services.app: active includes held requests).
        ("http.server.active_requests",),
        (Effect("drop_ratio", "ratio", high=1.0),),
    ),
    "gpu-throttle": FaultSpec(
        "GPU SM clock capped (power/thermal throttling); modelled where no GPU exists",
        "gpu",
        {"clock_factor": 0.4},
        "resource",
        ("hw.gpu.clock.sm", "hw.power", "hw.gpu.utilization"),
        (Effect("clock_factor", "clock_factor", low=0.05, lowers=True, neutral=1.0),),
        modelled=True,
    ),
    "kv-pressure": FaultSpec(
        "KV cache taken by other work: admission waits, preemptions, recompute; modelled",
        "kv",
        {"fraction": 0.8},
        "resource",
        ("vllm.kv_cache_usage_perc", "vllm.num_requests_waiting", "vllm.num_preemptions"),
        (Effect("kv_taken", "fraction", high=0.9),),
        modelled=True,
    ),
    "link-delay": FaultSpec(
        "delay on the robot <-> fog link, both ways",
        "link",
        {"ms": 60.0},
        "latency",
        _LINK,
        (Effect("link_delay_seconds", "ms"),),
    ),
    "link-jitter": FaultSpec(
        "jitter on the robot <-> fog link (uniform 0..ms, both ways)",
        "link",
        {"ms": 120.0},
        "latency",
        _LINK,
        (Effect("link_jitter_seconds", "ms"),),
    ),
    "link-loss": FaultSpec(
        "loss on the robot <-> fog link (messages never arrive)",
        "link",
        {"ratio": 0.4},
        "latency",
        _LINK,
        (Effect("link_loss_ratio", "ratio", high=1.0),),
    ),
}
# Each quantity by its name (one fault type sets each).
EFFECTS: dict[str, Effect] = {e.quantity: e for spec in FAULTS.values() for e in spec.effects}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Work(_Model):
    """What one request (or tick) costs: real CPU burnt in the process, waiting that takes no
    CPU (I/O, a disk), and time on the GPU. ``jitter`` is the log-normal sigma of each."""

    cpu_ms: float = Field(0.0, ge=0)
    io_ms: float = Field(0.0, ge=0)
    # Time on the service's (modelled) GPU: slowed by throttling, counted as GPU busy time.
    gpu_ms: float = Field(0.0, ge=0)
    jitter: float = Field(0.25, ge=0, le=2)


class Call(_Model):
    """A call to another service: ``to`` one service, or a pool picked per request."""

    to: list[str]
    route: str
    pick: Literal["one", "round_robin", "least_loaded"] = "one"
    probability: float = Field(1.0, gt=0, le=1)
    timeout_ms: float = Field(2000.0, gt=0)
    retries: int = Field(1, ge=0, le=3)
    # Calls of a request run in order; consecutive calls with the same group run concurrently.
    group: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_or_many(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("to"), str):
            data = {**data, "to": [data["to"]]}
        return data


class Route(_Model):
    work: Work = Work()
    calls: list[Call] = []
    # Special handling: an LLM engine phase, or a message queue's publish / consume.
    handler: Literal["plain", "prefill", "decode", "publish", "consume", "perceive"] = "plain"


class Gpu(_Model):
    """A GPU: read from NVML when present and ``source`` allows, else modelled from the work."""

    source: Literal["auto", "modelled"] = "auto"
    memory_bytes: float = 85.0e9
    weights_bytes: float = 16.0e9
    sm_clock_hz: float = 1.98e9
    tdp_watts: float = 700.0
    idle_watts: float = 90.0


class Llm(_Model):
    """A modelled LLM engine: a batch of at most ``max_batch`` requests on the GPU.

    Prefill costs ``prefill_ms_per_1k_tokens`` per 1,000 prompt tokens; decode costs
    ``tpot_ms`` per output token, growing by ``batch_slowdown`` per extra request in the batch;
    each token holds ``kv_bytes_per_token`` of KV cache out of ``kv_cache_tokens``.
    """

    phase: Literal["prefill", "decode"]
    max_batch: int = Field(8, ge=1)
    prefill_ms_per_1k_tokens: float = 30.0
    tpot_ms: float = 12.0
    batch_slowdown: float = 0.04
    kv_cache_tokens: int = 60000
    kv_bytes_per_token: float = 131072.0
    kv_link_gbytes_per_s: float = 25.0


class Link(_Model):
    """The network link from this service (a robot) to its peer (a fog node)."""

    peer: str
    base_ms: float = 1.0


class LoopCall(_Model):
    to: str
    route: str
    every_ticks: int = Field(1, ge=1)
    timeout_ms: float = 250.0
    background: bool = True


class Loop(_Model):
    """A background loop in the service: a robot's control loop (``deadline_ms`` set: ticks
    that run on a plan older than it count as deadline misses) or a queue consumer."""

    period_ms: float = Field(gt=0)
    work: Work = Work()
    calls: list[LoopCall] = []
    deadline_ms: float | None = None
    work_per_item: Work = Work()


class Service(_Model):
    summary: str
    routes: dict[str, Route] = {}
    loop: Loop | None = None
    gpu: Gpu | None = None
    llm: Llm | None = None
    link: Link | None = None
    queue: str | None = None
    metrics: list[str]

    def has(self, need: str) -> bool:
        """Whether this service can emit a metric that ``needs`` it (see :data:`METRICS`);
        ``genai`` (serving LLM requests, here or downstream) is the stack's to tell."""
        handlers = {route.handler for route in self.routes.values()}
        control = self.loop is not None and self.loop.deadline_ms is not None
        return {
            "process": True,
            "http": bool(self.routes),
            "genai": self.llm is not None,
            "llm": self.llm is not None,
            "prefill": self.llm is not None and self.llm.phase == "prefill",
            "decode": self.llm is not None and self.llm.phase == "decode",
            "gpu": self.gpu is not None,
            "loop": self.loop is not None,
            "control": control,
            "publish": self.loop is not None and self.link is not None,
            "subscribe": "perceive" in handlers or control,
            "queue": self.queue is not None,
        }[need]

    def fault_applies(self, fault: str) -> bool:
        need = FAULTS[fault].needs
        return {
            "any": True,
            "http": bool(self.routes),
            "gpu": self.gpu is not None,
            "kv": self.llm is not None and self.llm.phase == "decode",
            "link": self.link is not None,
        }[need]


class LoadRequest(_Model):
    service: str
    route: str
    weight: float = Field(1.0, gt=0)


class Load(_Model):
    rate_per_second: float = Field(gt=0)
    requests: list[LoadRequest]
    # Request body parameters drawn per request (LLM prompts): name -> [low, high].
    body: dict[str, list[float]] = {}


class Slo(_Model):
    """A series the SLO watcher guards: the service's ``metric`` statistic (highest over the
    attribute sets), breached when above its learned normal for ``for_steps`` steps."""

    service: str
    metric: str
    stat: str | None = "p90"


class Stack(_Model):
    name: str
    summary: str
    services: dict[str, Service]
    load: Load
    slos: list[Slo]
    # Fault parameters sized for this stack (a 60 ms delay is an incident in a shop, noise in
    # LLM serving); the rest come from FAULTS' defaults.
    fault_params: dict[str, dict[str, float]] = {}
    sources: list[str] = []

    @model_validator(mode="after")
    def _consistent(self) -> Stack:
        problems: list[str] = []
        for name, service in self.services.items():
            for route_name, route in service.routes.items():
                for call in route.calls:
                    for callee in call.to:
                        problems += self._route_problems(f"{name} {route_name}", callee, call.route)
            if service.loop is not None:
                for call in service.loop.calls:
                    problems += self._route_problems(f"{name} loop", call.to, call.route)
        if problems:  # the checks below need every call to name a real service
            raise ValueError("; ".join(problems))
        graph = self.call_graph()
        for name, service in self.services.items():
            serves_llm = any(
                self.services[s].llm is not None for s in nx.descendants(graph, name) | {name}
            )
            for metric in service.metrics:
                spec = METRICS.get(metric)
                if spec is None:
                    problems.append(f"{name}: unknown metric {metric!r}")
                elif spec.needs == "genai" and not serves_llm:
                    problems.append(f"{name}: {metric} needs an LLM engine on its call path")
                elif spec.needs != "genai" and not service.has(spec.needs):
                    problems.append(f"{name}: {metric} needs {spec.needs}, which it lacks")
            if service.link is not None and service.link.peer not in self.services:
                problems.append(f"{name}: link to unknown service {service.link.peer!r}")
            if service.llm is not None and service.gpu is None:
                problems.append(f"{name}: an LLM engine needs a gpu")
            if service.queue is not None and not {"publish", "consume"} <= {
                r.handler for r in service.routes.values()
            }:
                problems.append(f"{name}: a queue needs publish and consume routes")
        if problems:
            raise ValueError("; ".join(problems))
        if not nx.is_directed_acyclic_graph(self.call_graph()):
            raise ValueError("the call graph has a cycle")
        for fault, params in self.fault_params.items():
            if fault not in FAULTS:
                problems.append(f"fault_params: unknown fault {fault!r}")
            elif set(params) - set(FAULTS[fault].defaults):
                problems.append(f"fault_params: {fault} takes {sorted(FAULTS[fault].defaults)}")
        for request in self.load.requests:
            problems += self._route_problems("load", request.service, request.route)
        for slo in self.slos:
            if slo.service not in self.services:
                problems.append(f"slo: unknown service {slo.service!r}")
            elif slo.metric not in self.services[slo.service].metrics:
                problems.append(f"slo: {slo.service} does not emit {slo.metric}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _route_problems(self, where: str, callee: str, route: str) -> list[str]:
        if callee not in self.services:
            return [f"{where}: calls unknown service {callee!r}"]
        if route not in self.services[callee].routes:
            return [f"{where}: {callee} has no route {route!r}"]
        return []

    def call_graph(self) -> nx.DiGraph:
        """Caller -> callee between services (every callee a pool may pick), with ``calls``
        (the share of the caller's requests that reach the callee)."""
        graph = nx.DiGraph()
        graph.add_nodes_from(self.services)
        for name, service in self.services.items():
            for route in service.routes.values():
                for call in route.calls:
                    share = call.probability / len(call.to)
                    for callee in call.to:
                        old = (
                            graph.edges[name, callee]["calls"]
                            if graph.has_edge(name, callee)
                            else 0
                        )
                        graph.add_edge(name, callee, calls=min(1.0, old + share))
            if service.loop is not None:
                for call in service.loop.calls:
                    graph.add_edge(name, call.to, calls=1.0 / call.every_ticks)
        return graph

    def entry_services(self) -> list[str]:
        """Where outside load enters, and services that run loops (robots, consumers)."""
        entries = {r.service for r in self.load.requests}
        entries |= {n for n, s in self.services.items() if s.loop is not None}
        return [n for n in self.services if n in entries]

    def targets(self, fault: str) -> list[str]:
        """Services where ``fault`` can be injected."""
        if fault not in FAULTS:
            raise KeyError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        return [n for n, s in self.services.items() if s.fault_applies(fault)]

    def params(self, fault: str, overrides: dict[str, float] | None = None) -> dict[str, float]:
        """The parameters of ``fault`` in this stack: defaults, the stack's, then ``overrides``."""
        return {**FAULTS[fault].defaults, **self.fault_params.get(fault, {}), **(overrides or {})}

    def faults(self) -> list[str]:
        """Fault types that apply to at least one service of this stack."""
        return [f for f in FAULTS if self.targets(f)]


def stack_names() -> list[str]:
    return sorted(p.stem for p in STACKS_DIR.glob("*.yaml"))


@cache
def load_stack(name_or_path: str) -> Stack:
    """A stack by name (``services/stacks/<name>.yaml``) or from a YAML file path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") or not path.exists():
        path = STACKS_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise KeyError(f"unknown stack {name_or_path!r}; known: {', '.join(stack_names())}")
    data = yaml.safe_load(path.read_text())
    # Top-level ``x-`` keys hold YAML anchors for reuse (as in Compose files), not schema.
    return Stack.model_validate({k: v for k, v in data.items() if not k.startswith("x-")})
