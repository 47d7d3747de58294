"""The stack descriptions: valid, consistent, and Sock Shop's call graph is the real one."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest
import yaml
from pydantic import ValidationError
from toys import SOCK_SHOP_CALLS

from services.stack import FAULTS, METRICS, STACKS_DIR, Stack, load_stack, stack_names

ROOT = Path(__file__).resolve().parents[2]


def test_the_three_stacks_are_described():
    assert stack_names() == ["llm-serving", "robotics", "sockshop"]


@pytest.mark.parametrize("name", ["llm-serving", "robotics", "sockshop"])
def test_each_stack_is_valid_and_every_service_is_reached(name):
    stack = load_stack(name)
    graph = stack.call_graph()
    assert nx.is_directed_acyclic_graph(graph)
    reached = set(stack.entry_services())
    for entry in list(reached):
        reached |= nx.descendants(graph, entry)
    assert reached == set(stack.services), "a service nobody calls and that runs no loop"
    for service in stack.services.values():
        assert service.metrics, "every service emits metrics"
        assert set(service.metrics) <= set(METRICS)
        assert "process.cpu.utilization" in service.metrics
    for fault in stack.faults():
        assert stack.targets(fault)


def test_sockshop_call_graph_is_the_real_one():
    stack = load_stack("sockshop")
    assert set(stack.call_graph().edges) == SOCK_SHOP_CALLS
    assert set(stack.services) == {s for edge in SOCK_SHOP_CALLS for s in edge}
    # Orders fetches the customer's data and the cart items concurrently, then pays, ships and
    # saves, in that order (OrdersController.java).
    calls = stack.services["orders"].routes["/orders"].calls
    assert [tuple(c.to) for c in calls] == [
        ("user",),
        ("carts",),
        ("payment",),
        ("shipping",),
        ("orders-db",),
    ]
    assert calls[0].group == calls[1].group is not None
    assert calls[2].group is None


def test_sockshop_matches_the_helm_chart():
    values = yaml.safe_load((ROOT / "helm" / "sockshop-demo" / "values.yaml").read_text())
    chart = {
        (caller, callee)
        for caller, spec in values["services"].items()
        for callee in spec.get("calls") or []
    }
    assert set(load_stack("sockshop").call_graph().edges) == chart


def test_llm_serving_is_disaggregated():
    stack = load_stack("llm-serving")
    graph = stack.call_graph()
    prefill = [n for n, s in stack.services.items() if s.llm and s.llm.phase == "prefill"]
    decode = [n for n, s in stack.services.items() if s.llm and s.llm.phase == "decode"]
    assert prefill and decode
    assert all(graph.has_edge("router", p) for p in prefill)
    assert all(graph.has_edge(p, d) for p in prefill for d in decode)  # KV transfer
    assert set(stack.targets("kv-pressure")) == set(decode)
    assert set(stack.targets("gpu-throttle")) == set(prefill) | set(decode)
    for name in prefill + decode:
        assert {"hw.gpu.utilization", "hw.gpu.clock.sm"} <= set(stack.services[name].metrics)


def test_robotics_links_join_robots_to_fog_nodes():
    stack = load_stack("robotics")
    graph = stack.call_graph()
    robots = stack.targets("link-delay")
    assert robots == ["robot-1", "robot-2", "robot-3", "robot-4"]
    for robot in robots:
        peer = stack.services[robot].link.peer
        assert peer.startswith("fog-") and graph.has_edge(robot, peer)
        assert graph.has_edge(peer, "cloud-planner")
    assert not stack.services["robot-1"].fault_applies("latency")  # a robot serves nothing


def _raw(name: str) -> dict:
    data = yaml.safe_load((STACKS_DIR / f"{name}.yaml").read_text())
    return {k: v for k, v in data.items() if not k.startswith("x-")}


def test_bad_descriptions_are_refused_with_the_reason():
    data = _raw("sockshop")
    data["services"]["orders"]["routes"]["/orders"]["calls"].append(
        {"to": "warehouse", "route": "/x"}
    )
    with pytest.raises(ValidationError, match="unknown service 'warehouse'"):
        Stack.model_validate(data)
    data = _raw("sockshop")
    data["services"]["carts"]["metrics"].append("carts.made.up")
    with pytest.raises(ValidationError, match="unknown metric"):
        Stack.model_validate(data)
    data = _raw("sockshop")
    data["services"]["carts"]["metrics"].append("hw.gpu.utilization")
    with pytest.raises(ValidationError, match="needs gpu"):
        Stack.model_validate(data)
    data = _raw("sockshop")
    data["services"]["carts"]["replicas"] = 3
    with pytest.raises(ValidationError, match="replicas"):
        Stack.model_validate(data)
    data = _raw("sockshop")
    data["services"]["carts-db"]["routes"]["/find"]["calls"] = [
        {"to": "carts", "route": "/carts/items"}
    ]
    with pytest.raises(ValidationError, match="cycle"):
        Stack.model_validate(data)


def test_fault_catalog():
    used = {fault for name in stack_names() for fault in load_stack(name).faults()}
    assert used == set(FAULTS)
    for spec in FAULTS.values():
        assert spec.indicators and set(spec.indicators) <= set(METRICS)
    assert load_stack("llm-serving").params("latency") == {"ms": 250.0}
    assert load_stack("llm-serving").params("latency", {"ms": 5}) == {"ms": 5}
