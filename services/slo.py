"""The SLO watcher's rules (:mod:`rca.detect.slo`) for a stack description: its SLOs, and the
symptoms and saturation every service's metrics let the watcher see."""

from __future__ import annotations

from rca.detect.slo import Rule
from services.stack import Stack

DURATION = "http.server.request.duration"


def slo_rules(stack: Stack) -> list[Rule]:
    """One user-facing rule per SLO of ``stack``."""
    return [Rule("slo", s.service, s.metric, s.stat, user_facing=True) for s in stack.slos]


def rules_for(stack: Stack) -> list[Rule]:
    """The watcher's rules for every service of ``stack``: its SLOs first."""
    rules = slo_rules(stack)
    for name, service in stack.services.items():
        metrics = set(service.metrics)
        if DURATION in metrics:
            rules.append(Rule("latency", name, DURATION, "p90", user_facing=True))
            rules.append(Rule("errors", name, DURATION, "error-share", user_facing=True))
        if "process.cpu.utilization" in metrics:
            rules.append(Rule("saturation", name, "process.cpu.utilization", None, margin=0.15))
        if "process.memory.usage" in metrics:
            rules.append(Rule("saturation", name, "process.memory.usage", None, factor=1.2))
        if "hw.gpu.clock.sm" in metrics:
            rules.append(Rule("throttling", name, "hw.gpu.clock.sm", None, "below", factor=0.85))
        if "vllm.kv_cache_usage_perc" in metrics:
            rules.append(Rule("saturation", name, "vllm.kv_cache_usage_perc", None, margin=0.3))
        if "robot.control_loop.deadline_misses" in metrics:
            rules.append(
                Rule(
                    "deadline",
                    name,
                    "robot.control_loop.deadline_misses",
                    "rate",
                    user_facing=True,
                    margin=0.5,
                )
            )
    return rules
