"""What ``rca demo`` injects: a draw only among the injections the stack's telemetry can show
(the target emits one of the fault's indicator metrics), an explicit choice as given."""

from __future__ import annotations

import numpy as np
import pytest

from services.demo.session import choose, observable
from services.stack import FAULTS, Stack, load_stack, stack_names


def _without(stack: Stack, service: str, metric: str) -> Stack:
    """The stack with ``service`` no longer emitting ``metric`` (validated again)."""
    data = stack.model_dump()
    data["services"][service]["metrics"].remove(metric)
    return Stack.model_validate(data)


# A Sock Shop whose payment emits no CPU: a CPU hog there shows in none of its series.
BLIND = _without(load_stack("sockshop"), "payment", "process.cpu.utilization")


@pytest.mark.parametrize("name", stack_names())
def test_every_drawn_injection_is_one_the_telemetry_shows(name):
    stack = load_stack(name)
    rng = np.random.default_rng(0)
    drawn = {choose(stack, None, None, rng) for _ in range(300)}
    for choice in drawn:
        assert choice.observable and choice.warning is None
        emitted = stack.services[choice.target].metrics
        assert set(FAULTS[choice.fault].indicators) & set(emitted), choice
    # The draw reaches every fault type the stack can take.
    assert {c.fault for c in drawn} == set(stack.faults())


def test_an_injection_the_telemetry_cannot_show_is_never_drawn():
    assert not observable(BLIND, "cpu", "payment") and observable(BLIND, "mem", "payment")
    rng = np.random.default_rng(0)
    shown = sum(observable(BLIND, f, t) for f in BLIND.faults() for t in BLIND.targets(f))
    applies = sum(len(BLIND.targets(f)) for f in BLIND.faults())
    assert shown == applies - 1
    drawn = [choose(BLIND, None, None, rng) for _ in range(400)]
    assert ("cpu", "payment") not in {(c.fault, c.target) for c in drawn}
    assert "payment" in {c.target for c in drawn} and "cpu" in {c.fault for c in drawn}
    assert drawn[0].line(1234) == (
        f"injecting {drawn[0].fault} at {drawn[0].target} "
        f"(drawn from {shown} injections this stack's telemetry can show; seed 1234)"
    )
    # Half given: the other half is drawn among what the telemetry shows.
    assert {choose(BLIND, None, "payment", rng).fault for _ in range(100)} == {
        "mem",
        "latency",
        "errors",
        "drop",
    }
    cpu = {choose(BLIND, "cpu", None, rng) for _ in range(100)}
    assert "payment" not in {c.target for c in cpu}
    assert {c.line(1) for c in cpu} >= {
        f"injecting cpu at front-end (drawn from {len(BLIND.services) - 1} injections this "
        "stack's telemetry can show; seed 1)"
    }


def test_an_explicit_injection_is_honoured_with_a_warning_when_it_cannot_show():
    rng = np.random.default_rng(0)
    given = choose(BLIND, "cpu", "payment", rng)
    assert (given.fault, given.target, given.observable) == ("cpu", "payment", False)
    assert given.line(7) == "injecting cpu at payment (as given; seed 7)"
    assert given.warning == (
        "warning: the telemetry cannot show cpu at payment: it emits none of "
        "process.cpu.utilization, the metrics the engine finds cpu by"
    )
    shown = choose(load_stack("sockshop"), "cpu", "payment", rng)
    assert shown.observable and shown.warning is None
