"""Simulated incidents of a demo stack (``sim:<stack>``): labelled cases from
:class:`services.sim.model.StackModel`, each with the alert the SLO watcher would raise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rca.datasets.base import Case, Truth
from rca.datasets.synthetic import SyntheticConfig, simulate
from rca.detect.slo import SloWatcher
from rca.types import Alert, parse_series_name
from services.sim.large import GENERATED_STACKS
from services.sim.model import StackModel
from services.slo import slo_rules
from services.stack import FAULTS, Stack, load_stack


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


def slo_alert(
    stack: Stack, window: pd.DataFrame, history: pd.DataFrame, onset: pd.Timestamp
) -> Alert | None:
    """The stack's SLOs that break from ``onset`` on, judged by the SLO watcher the demo opens
    incidents with (:mod:`rca.detect.slo`) learned on ``history``, as an alert (``None`` when
    none breaks)."""
    rules = slo_rules(stack)
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
            truth=Truth(root, fault, frozenset(FAULTS[fault].indicators)),
            history=history if len(history) else None,
            call_graph=self.stack.call_graph(),
            true_graph=true_graph,
            alert=slo_alert(self.stack, window, history, onset) if len(history) else None,
        )
