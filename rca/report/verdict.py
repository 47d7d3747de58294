"""The answer a report gives, as data: the likely root cause, what changed there, by how much,
when, how confident the method is, and the evidence for each top suspect.

:func:`verdict` is pure (a result, its window and onset in; a :class:`Verdict` out); the HTML
report renders it and :meth:`Verdict.to_json` gives the same content to the incident API.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rca.rank.walk_ranker import AnomalyWalkRanker
from rca.report.units import Unit, key_of, series_label, series_unit
from rca.types import Alert, RankedCause, RCAResult
from rca.window import Window

if TYPE_CHECKING:
    from rca.datasets.base import Truth

# Confidence bands (RCAResult.confidence, in [0, 1]): at or above HIGH the first place is well
# supported; below LOW read the ranking as a list of suspects.
HIGH_CONFIDENCE = 0.6
LOW_CONFIDENCE = 0.3
UNCLEAR = "low confidence: nothing clearly anomalous"
# A second suspect with at least this share of the first's walk share is "almost as likely".
CLOSE_SECOND = 0.5
# Robust z below which the walk ranker counts a series as healthy (its default; every method
# that reports a series' anomaly builds its ranker with it).
ANOMALY_OFFSET = AnomalyWalkRanker.anomaly_offset


@dataclass(frozen=True)
class Change:
    """A series before and after it changed: medians, raw values in the metric's own unit."""

    before: float | None
    after: float | None
    unit: Unit

    @property
    def direction(self) -> str:
        if self.before is not None and self.after is None:
            return "stopped reporting"  # a crashed or killed process (rca.detect.silence)
        if self.before is None or self.after is None or self.after == self.before:
            return "changed"
        return "rose" if self.after > self.before else "fell"

    def text(self) -> str:
        """``'1.2 % → 49 %'``; ``'50 ms → no data'`` for a series that stopped reporting."""
        after = "no data" if self.after is None else self.unit.format(self.after)
        return f"{self.unit.format(self.before)} → {after}"


@dataclass(frozen=True)
class CauseEvidence:
    """One suspect service: its place, real score, strongest series and what that did."""

    rank: int
    service: str
    score: float
    series: str | None
    anomaly: float | None  # robust z of the series' sustained change
    walk_share: float | None
    change: Change | None
    changed_seconds: float | None  # the series' change time minus the incident onset
    edges: tuple[tuple[str, str, float], ...]  # the series' cause -> effect edges
    injected: bool = False

    @property
    def when(self) -> str | None:
        """The change time in words; ``None`` where the method estimates no change at all."""
        if self.anomaly is None and self.changed_seconds is None:
            return None
        return when_text(self.changed_seconds)

    @property
    def walk_edges(self) -> tuple[tuple[str, str, float], ...]:
        """The edges that carried the walk: none when the walk gave the series no share."""
        return () if self.walk_share is not None and self.walk_share <= 0 else self.edges

    def to_json(self) -> dict[str, Any]:
        change = self.change
        return {
            "rank": self.rank,
            "service": self.service,
            "score": _finite(self.score),
            "series": self.series,
            "anomaly_z": _finite(self.anomaly),
            "walk_share": _finite(self.walk_share),
            "change": None
            if change is None
            else {
                "before": _finite(change.before),
                "after": _finite(change.after),
                "unit": change.unit.symbol,
                "scale": change.unit.scale,
                "direction": change.direction,
                "text": change.text(),
            },
            "changed_seconds_from_onset": self.changed_seconds,
            "when": self.when,
            "edges": [[c, e, _finite(w)] for c, e, w in self.walk_edges],
            "injected": self.injected,
        }


@dataclass(frozen=True)
class Moved:
    """A series' change: which series, the service it counts for, that service's rank, and its
    change time minus the onset."""

    series: str
    service: str
    rank: int
    seconds: float

    def text(self) -> str:
        owner = "" if key_of(self.series).service == self.service else f" for {self.service}"
        return f"{series_label(self.series)} (#{self.rank}{owner})"

    def to_json(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "service": self.service,
            "rank": self.rank,
            "changed_seconds_from_onset": self.seconds,
        }


@dataclass(frozen=True)
class Miss:
    """Why the injected service is not first, from the evidence the result holds: the earliest
    clear change among the services ranked above it (``first``), the injected service's own
    earliest one, and its strongest series against the anomaly offset."""

    injected: CauseEvidence | None
    service: str
    first: Moved | None
    injected_first: Moved | None
    services: int

    @property
    def lead_seconds(self) -> float | None:
        """How long before the injected service's first change the first mover moved."""
        if self.first is None or self.injected_first is None:
            return None
        return self.injected_first.seconds - self.first.seconds

    def text(self) -> str:
        return f"Why not first: {self._moved()}. {self._own()}."

    def _moved(self) -> str:
        # A change time: where the detector dates a lasting change (past the offset).
        past = f"a dated lasting change past robust z {ANOMALY_OFFSET:g}"
        first, mine, lead = self.first, self.injected_first, self.lead_seconds
        if first is None and mine is None:
            return f"neither {self.service} nor what ranked above it shows {past}"
        if first is None:
            assert mine is not None
            return (
                f"nothing ranked above {self.service} shows {past}; "
                f"{self.service} did: {mine.text()}, {when_text(mine.seconds)}"
            )
        moved = f"{first.text()} moved {when_text(first.seconds)}"
        if mine is None or lead is None:
            return f"{moved}; {self.service} shows no {past.removeprefix('a ')}"
        if lead == 0:
            return f"{moved}, at the same step as {self.service}'s first change, {mine.text()}"
        if lead > 0:
            return f"{moved}, first: {seconds_text(lead)} before {self.service}'s {mine.text()}"
        return (
            f"{self.service} moved first: {mine.text()}, {when_text(mine.seconds)}, "
            f"{seconds_text(-lead)} before {first.text()}, the first change ranked above it"
        )

    def _own(self) -> str:
        row = self.injected
        if row is None or row.series is None:
            return f"{self.service} has no series in the window: not ranked"
        own = f"{self.service}'s strongest series {series_label(row.series)}"
        place = f"ranked #{row.rank} of {self.services}"
        if row.anomaly is None:
            return f"{own} is {place}"
        side = "above" if row.anomaly > ANOMALY_OFFSET else "below"
        share = "" if row.walk_share is None else f"; the walk left it {row.walk_share:.2g}"
        return (
            f"{own} is {row.anomaly:.3g} robust sigmas off normal, {side} the ranker's anomaly "
            f"offset {ANOMALY_OFFSET:g}{share}; {place}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text(),
            "first_moved": None if self.first is None else self.first.to_json(),
            "injected_first_moved": None
            if self.injected_first is None
            else self.injected_first.to_json(),
            "lead_seconds": self.lead_seconds,
            "injected_anomaly_z": None if self.injected is None else _finite(self.injected.anomaly),
            "anomaly_offset": ANOMALY_OFFSET,
            "injected_rank": None if self.injected is None else self.injected.rank,
        }


@dataclass(frozen=True)
class Verdict:
    """What a report says first: ``title``, the one-line ``headline``, the confidence in
    words, the onset and how it was found, the evidence per suspect, the truth when known."""

    title: str
    headline: str
    confidence: float | None
    confidence_text: str
    onset: pd.Timestamp
    onset_method: str | None
    causes: tuple[CauseEvidence, ...]
    symptom: str | None  # the alerting series shown beside the top cause
    truth: str | None
    miss: Miss | None = None  # the truth is known and not first

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "headline": self.headline,
            "confidence": _finite(self.confidence),
            "confidence_text": self.confidence_text,
            "onset": self.onset.isoformat(),
            "onset_method": self.onset_method,
            "causes": [cause.to_json() for cause in self.causes],
            "symptom": self.symptom,
            "truth": self.truth,
            "miss": None if self.miss is None else self.miss.to_json(),
        }


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def seconds_text(seconds: float) -> str:
    """A duration as a person says it: ``'5 s'``, ``'2.5 min'``.

    >>> seconds_text(5.0), seconds_text(150.0)
    ('5 s', '2.5 min')
    """
    return f"{seconds / 60:.3g} min" if abs(seconds) >= 120 else f"{seconds:.3g} s"


def when_text(changed_seconds: float | None) -> str:
    """A change time relative to the onset, in words.

    >>> when_text(-5.0), when_text(0.0), when_text(None)
    ('5 s before the onset', 'at the onset', 'no lasting change found')
    """
    if changed_seconds is None:
        return "no lasting change found"
    if changed_seconds == 0:
        return "at the onset"
    side = "before" if changed_seconds < 0 else "after"
    return f"{seconds_text(abs(changed_seconds))} {side} the onset"


def change_of(window: Window, series: str, onset: pd.Timestamp, since: pd.Timestamp) -> Change:
    """The series' median before ``onset`` and from ``since`` (its change time) on."""
    values = window[series].to_numpy(dtype=float)
    index = window.index
    before = values[index < onset]
    after = values[index >= since]
    return Change(_median(before), _median(after), series_unit(series))


def _median(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


def best_causes(result: RCAResult) -> dict[str, RankedCause]:
    """Each service's first (strongest) ranked series."""
    best: dict[str, RankedCause] = {}
    for cause in result.causes:
        best.setdefault(cause.service, cause)
    return best


def evidence(
    rank: int,
    service: str,
    score: float,
    cause: RankedCause | None,
    window: Window,
    onset: pd.Timestamp,
    injected: bool,
) -> CauseEvidence:
    """The evidence row of one service from its strongest series (``cause``)."""
    if cause is None or cause.series not in window.columns:
        return CauseEvidence(rank, service, score, None, None, None, None, None, (), injected)
    found = cause.evidence
    changed_at = found.onset if found.onset is not None and pd.notna(found.onset) else None
    change = change_of(window, cause.series, onset, onset if changed_at is None else changed_at)
    changed_seconds = None if changed_at is None else (changed_at - onset).total_seconds()
    return CauseEvidence(
        rank,
        service,
        score,
        cause.series,
        found.anomaly,
        found.walk_share,
        change,
        changed_seconds,
        found.edges,
        injected,
    )


def confidence_text(result: RCAResult) -> str:
    """The method's confidence in words, with the reason when it is low."""
    services = result.services()
    value = result.confidence
    if value is None:
        return f"{result.method} gives no confidence"
    if not services or services[0][1] <= 0 or value <= 0:
        return UNCLEAR
    if value >= HIGH_CONFIDENCE:
        return f"high confidence ({value:.2f})"
    if value >= LOW_CONFIDENCE:
        return f"moderate confidence ({value:.2f}): read it as the first suspect"
    first = services[0][1]
    if len(services) > 1 and services[1][1] >= CLOSE_SECOND * first:
        return f"low confidence ({value:.2f}): {services[1][0]} is almost as likely"
    return f"low confidence ({value:.2f}): the anomaly is weak"


def symptom_series(result: RCAResult, window: Window, alert: Alert | None) -> str | None:
    """The alerting series: the first the alert names that the window has; else the alerted
    services' strongest latency series (any series of theirs when none is a latency)."""
    if alert is None:
        return None
    for name in alert.series:
        if name in window.columns:
            return name
    alerted = [
        cause.series
        for cause in result.causes
        if key_of(cause.series).service in alert.services and cause.series in window.columns
    ]
    latencies = [name for name in alerted if series_unit(name).symbol == "ms"]
    return (latencies or alerted or [None])[0]


def truth_text(result: RCAResult, truth: Truth) -> str:
    """``'injected: cpu at payment, ranked #1 of 14'``, with the place RCAEval's convention
    gives when it differs (a database counts as its service: the demo's and the benchmarks'
    truth rank)."""
    # Imported here: rca.eval pulls in every dataset loader, which an API worker never needs.
    from rca.eval.scoring import rank_truth

    services = [service for service, _ in result.services()]
    place = services.index(truth.service) + 1 if truth.service in services else None
    text = f"injected: {truth.fault or 'a fault'} at {truth.service}, " + (
        f"ranked #{place} of {len(services)}" if place else "not ranked"
    )
    scored = rank_truth(result, truth).service
    if scored != place:
        text += f" (#{scored} by RCAEval's convention, a database counting as its service)"
    return text


def verdict(
    result: RCAResult,
    window: Window,
    onset: pd.Timestamp,
    *,
    alert: Alert | None = None,
    truth: Truth | None = None,
    onset_method: str | None = None,
    top: int = 5,
) -> Verdict:
    """The report's answer for ``result`` on ``window``: see :class:`Verdict`. The evidence
    covers the first ``top`` services, and the injected one (``truth``) wherever it ranked."""
    onset = pd.Timestamp(onset)
    best = best_causes(result)
    services = result.services()
    rows = [
        evidence(rank, service, score, best.get(service), window, onset, _is(truth, service))
        for rank, (service, score) in enumerate(services, start=1)
        if rank <= top or _is(truth, service)
    ]
    confidence = confidence_text(result)
    title, headline = _answer(rows[0] if rows else None, len(result.dropped), confidence != UNCLEAR)
    return Verdict(
        title=title,
        headline=f"{headline}; {confidence}." if rows else headline,
        confidence=result.confidence,
        confidence_text=confidence,
        onset=onset,
        onset_method=onset_method,
        causes=tuple(rows),
        symptom=symptom_series(result, window, alert),
        truth=truth_text(result, truth) if truth is not None else None,
        miss=None if truth is None else explain_miss(result, rows, truth.service, onset, top),
    )


def explain_miss(
    result: RCAResult,
    rows: list[CauseEvidence],
    injected: str,
    onset: pd.Timestamp,
    top: int,
) -> Miss | None:
    """Why ``injected`` is not first (``None`` when it is): the first clear change among the
    services ranked above it (at most ``top``), its own first one and its evidence ``rows``."""
    ranks = {service: k for k, (service, _) in enumerate(result.services(), start=1)}
    place = ranks.get(injected)
    if place == 1:
        return None
    above = min(place or len(ranks) + 1, top + 1)
    return Miss(
        injected=next((row for row in rows if row.injected), None),
        service=injected,
        first=first_change(result, {s: k for s, k in ranks.items() if k < above}, onset),
        injected_first=first_change(result, {injected: place or 0}, onset),
        services=len(ranks),
    )


def first_change(result: RCAResult, ranks: dict[str, int], onset: pd.Timestamp) -> Moved | None:
    """The earliest clear change among the series counting for the services in ``ranks``
    (service -> rank), the better rank first on a tie: a series with a change time and, where
    the method gives one, a robust z past the anomaly offset (weaker ones are noise to it)."""
    moved = [
        Moved(cause.series, cause.service, ranks[cause.service], _seconds(cause, onset))
        for cause in result.causes
        if cause.service in ranks and _clear(cause)
    ]
    return min(moved, key=lambda m: (m.seconds, m.rank), default=None)


def _clear(cause: RankedCause) -> bool:
    found = cause.evidence
    changed = found.onset is not None and pd.notna(found.onset)
    return changed and (found.anomaly is None or found.anomaly > ANOMALY_OFFSET)


def _seconds(cause: RankedCause, onset: pd.Timestamp) -> float:
    return (pd.Timestamp(cause.evidence.onset) - onset).total_seconds()


def _is(truth: Truth | None, service: str) -> bool:
    return truth is not None and truth.service == service


def _answer(first: CauseEvidence | None, dropped: int, clear: bool) -> tuple[str, str]:
    """The title and the headline's first clause; ``clear``: something was clearly anomalous
    (else the first service is named a suspect, not a cause)."""
    if first is None:
        return "No root cause found", f"No cause found: every series ({dropped}) was flat or empty"
    what = "Likely root cause" if clear else "First suspect"
    role = "is the likely root cause" if clear else "is only the first suspect"
    if first.series is None or first.change is None:
        return (
            f"{what}: {first.service}",
            f"{first.service} {role} (no series of it in the window)",
        )
    metric = series_label(first.series, service=False)
    moved = f"{first.change.direction} {first.change.text()}"
    z = f" (robust z {first.anomaly:.3g})" if first.anomaly is not None else ""
    short = series_label(first.series, service=False, attrs=False)
    return (
        f"{what}: {first.service} ({short} {first.change.direction})",
        f"{first.service} {role}: {metric} {moved}{z}" + (f", {first.when}" if first.when else ""),
    )
