"""The SLO watcher on simulated incidents: quiet while healthy, fires at the change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rca.detect.slo import Breach, Rule, SloWatcher, detected_onset, rule_series
from services.sim import StackSim, StackSimConfig
from services.slo import rules_for
from services.stack import load_stack


def _case(stack: str, fault: str, seed: int = 2):
    stack_spec = load_stack(stack)
    dataset = StackSim(StackSimConfig(stack, n_cases=len(stack_spec.faults()), seed=seed))
    return dataset.load(f"{stack_spec.faults().index(fault):04d}")


@pytest.mark.parametrize(
    ("stack", "fault"),
    [("sockshop", "cpu"), ("llm-serving", "gpu-throttle"), ("llm-serving", "latency")],
)
def test_watcher_fires_at_the_onset_and_not_before(stack, fault):
    case = _case(stack, fault)
    watcher = SloWatcher(rules_for(load_stack(stack)))
    watcher.learn(case.history.iloc[:200])
    assert watcher.normal
    healthy = case.history.iloc[200:]
    assert watcher.check(healthy, healthy.index[0]) == []
    # (The simulator puts short transients in the window's normal part: an SLO watcher may
    # well fire on those, so watch from just before the onset, as the demo arms it.)
    breaches = watcher.check(case.window, case.onset - pd.Timedelta(seconds=2))
    assert breaches, "no breach"
    first = breaches[0]
    step = pd.Timedelta(seconds=1)
    assert case.onset - 2 * step <= first.onset <= case.onset + 3 * step
    assert first.fired_at >= first.onset + 2 * step  # 3 steps in a row
    assert case.truth.service in {b.rule.service for b in breaches}
    assert first.describe().startswith(first.rule.kind)


def test_error_share_and_direction_rules():
    index = pd.date_range("2026-01-01", periods=40, freq="1s", tz="UTC")
    ok = "api:http.server.request.duration:rate{http.response.status_code=200}"
    failed = "api:http.server.request.duration:rate{http.response.status_code=500}"
    clock = "gpu:hw.gpu.clock.sm"
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            ok: 10 + rng.normal(0, 0.5, 40),
            failed: [np.nan] * 30 + [4.0] * 10,
            clock: np.r_[1.9e9 + rng.normal(0, 1e6, 30), [0.8e9] * 10],
        },
        index=index,
    )
    errors = Rule("errors", "api", "http.server.request.duration", "error-share")
    share = rule_series(frame, errors)
    assert share.iloc[:30].eq(0).all() and share.iloc[-1] == pytest.approx(4 / 14, rel=0.1)
    throttled = Rule("throttling", "gpu", "hw.gpu.clock.sm", None, "below", factor=0.85)
    watcher = SloWatcher([errors, throttled])
    watcher.learn(frame.iloc[:30])
    found = {b.rule.kind: b for b in watcher.check(frame, index[25])}
    assert set(found) == {"errors", "throttling"}
    assert found["throttling"].onset == index[30] and found["errors"].onset == index[30]


@pytest.mark.parametrize(("stack", "fault"), [("sockshop", "cpu"), ("llm-serving", "latency")])
def test_the_incident_onset_comes_from_the_shared_detector(stack, fault):
    case = _case(stack, fault)
    watcher = SloWatcher(rules_for(load_stack(stack)))
    baseline = case.history.iloc[:200]
    watcher.learn(baseline)
    since = case.onset - pd.Timedelta(seconds=2)
    # What the demo hands it: the rows up to the first breach, not the whole window.
    fired = watcher.check(case.window, since)[0].fired_at
    seen = case.window.loc[: fired + pd.Timedelta(seconds=1)]
    breaches = watcher.check(seen, since)
    found = detected_onset(seen, breaches, since, baseline)
    assert found.method == "change-point" and found.confidence > 0
    assert abs(found.onset - case.onset.ceil("1s")) <= pd.Timedelta(seconds=1)


def test_without_a_change_the_rule_walk_back_is_the_onset():
    index = pd.date_range("2026-01-01", periods=40, freq="1s", tz="UTC")
    frame = pd.DataFrame({"api:process.cpu.utilization": np.full(40, 0.2)}, index=index)
    rule = Rule("saturation", "api", "process.cpu.utilization", None)
    breach = Breach(rule, onset=index[30], fired_at=index[32], value=0.9, threshold=0.5)
    found = detected_onset(frame, [breach], index[20])
    assert (found.onset, found.method) == (index[30], "slo-rule walk-back")
