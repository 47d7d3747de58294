"""The SLO watcher: learns what normal looks like, then opens an incident on a sustained breach.

Rules (each over one service's series, the highest over attribute sets where there are
several, e.g. one per route; a stack's rules come from its description, :mod:`services.slo`):

- the stack's SLOs (``slos`` in its description) and every service's p90
  ``http.server.request.duration`` (latency), and its error share (answers with a status >= 500
  over all answers): *user-facing* symptoms;
- saturation, the USE method's alerts: ``process.cpu.utilization`` and
  ``process.memory.usage`` well above normal, ``hw.gpu.clock.sm`` well below (throttling),
  ``vllm.kv_cache_usage_perc`` well above, robots' deadline misses.

A rule breaches when its value stays beyond its threshold for ``for_steps`` consecutive steps.
Thresholds come from the baseline: ``above`` is ``max(median * factor, median + sigmas *
spread)`` (``spread`` = the robust standard deviation, at least 5 % of the median), with the
rule's own absolute margin where it has one; the first breach's onset is walked back to the
step where the series left its normal band (``median + 2 spread``). The onset the incident
reports comes from the detector every path shares (:func:`detected_onset`), with the first
breach's firing time as its upper bound; the rule's walk-back is its fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from rca.detect.onset import OnsetEstimate, detect_onset
from rca.errors import RCAInputError
from rca.types import parse_series_name
from rca.window import Window


@dataclass(frozen=True)
class Rule:
    kind: str
    service: str
    metric: str
    stat: str | None
    direction: Literal["above", "below"] = "above"
    user_facing: bool = False
    factor: float = 1.3
    margin: float = 0.0  # an absolute distance from the median the value must also pass

    @property
    def name(self) -> str:
        stat = f":{self.stat}" if self.stat else ""
        return f"{self.kind} {self.service} {self.metric}{stat}"


@dataclass(frozen=True)
class Breach:
    rule: Rule
    onset: pd.Timestamp
    fired_at: pd.Timestamp
    value: float
    threshold: float

    def describe(self) -> str:
        return (
            f"{self.rule.name}: {self.value:.4g} {'>' if self.rule.direction == 'above' else '<'} "
            f"{self.threshold:.4g} since {self.onset:%H:%M:%S}"
        )


def rule_series(frame: Window, rule: Rule) -> pd.Series | None:
    """The one series a rule watches, from the window's columns (``None`` if it has none)."""
    matching: list[tuple[str, dict[str, str]]] = []
    for column in frame.columns:
        key = parse_series_name(str(column))
        if key.service != rule.service or key.metric != rule.metric:
            continue
        wanted_stat = "rate" if rule.stat == "error-share" else rule.stat
        if key.stat == wanted_stat:
            matching.append((str(column), dict(key.attrs)))
    if not matching:
        return None
    if rule.stat == "error-share":
        total = frame[[c for c, _ in matching]].fillna(0.0).sum(axis=1)
        failed = [c for c, a in matching if int(a.get("http.response.status_code", 200)) >= 500]
        errors = frame[failed].fillna(0.0).sum(axis=1) if failed else total * 0.0
        return (errors / total.where(total > 0)).fillna(0.0)
    return frame[[c for c, _ in matching]].max(axis=1)


@dataclass(frozen=True)
class _Normal:
    median: float
    spread: float
    threshold: float


class SloWatcher:
    """Learn with :meth:`learn` on a healthy window, then :meth:`check` newer windows."""

    def __init__(
        self,
        rules: list[Rule],
        *,
        for_steps: int = 3,
        sigmas: float = 4.0,
        error_share: float = 0.05,
    ) -> None:
        self.rules = rules
        self.for_steps = for_steps
        self.sigmas = sigmas
        self.error_share = error_share
        self.normal: dict[Rule, _Normal] = {}

    def learn(self, baseline: Window) -> None:
        self.normal = {}
        for rule in self.rules:
            series = rule_series(baseline, rule)
            if series is None or series.notna().sum() < 5:
                continue
            values = series.dropna().to_numpy(dtype=float)
            median = float(np.median(values))
            mad = 1.4826 * float(np.median(np.abs(values - median)))
            iqr = float(np.subtract(*np.percentile(values, [75, 25]))) / 1.349
            spread = max(mad, iqr, 0.05 * abs(median), 1e-12)
            if rule.stat == "error-share":
                threshold = max(self.error_share, median + self.sigmas * spread)
            elif rule.direction == "above":
                threshold = max(
                    median * rule.factor, median + self.sigmas * spread, median + rule.margin
                )
            else:
                threshold = min(median * rule.factor, median - self.sigmas * spread)
            self.normal[rule] = _Normal(median, spread, threshold)

    def check(self, frame: Window, since: pd.Timestamp) -> list[Breach]:
        """Breaches in ``frame``'s rows from ``since`` on, earliest onset first."""
        breaches = []
        for rule, normal in self.normal.items():
            series = rule_series(frame, rule)
            if series is None:
                continue
            series = series.loc[series.index >= since].dropna()
            if rule.direction == "above":
                beyond = series > normal.threshold
                out_of_band = series > normal.median + 2 * normal.spread
            else:
                beyond = series < normal.threshold
                out_of_band = series < normal.median - 2 * normal.spread
            streak = beyond.astype(int).rolling(self.for_steps).sum() >= self.for_steps
            if not streak.any():
                continue
            fired_at = streak.idxmax()
            first = beyond.index.get_loc(fired_at) - self.for_steps + 1
            start = first
            while start > 0 and out_of_band.iloc[start - 1]:
                start -= 1
            breaches.append(
                Breach(
                    rule,
                    onset=series.index[start],
                    fired_at=fired_at,
                    value=float(series.loc[fired_at]),
                    threshold=normal.threshold,
                )
            )
        return sorted(breaches, key=lambda b: (b.onset, b.fired_at))


def detected_onset(
    frame: Window, breaches: list[Breach], since: pd.Timestamp, baseline: Window | None = None
) -> OnsetEstimate:
    """The incident's onset by :func:`rca.detect.onset.detect_onset` over ``frame``: at or
    before the first breach fired, at or after ``since`` (when the watcher was armed), with the
    baseline as normal history. Where it finds no change, the first breach's own onset (the
    rule's walk-back to where its series left the normal band)."""
    first = min(breaches, key=lambda b: b.fired_at)
    walked = OnsetEstimate(
        min(b.onset for b in breaches), 0.0, "slo-rule walk-back", (first.rule.name,)
    )
    try:
        found = detect_onset(frame, not_after=first.fired_at, not_before=since, history=baseline)
    except RCAInputError:
        return walked
    return walked if found.method.startswith("fallback") else found
