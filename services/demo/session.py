"""The story ``rca demo`` tells, end to end, on real processes and real telemetry.

1. Start the tansu broker, an ingest consumer, the stack (one process per service) and its
   load (:class:`services.demo.lab.LiveLab`); wait until every service's metrics arrive.
2. Let ``baseline`` seconds of healthy traffic pass; the SLO watcher learns them.
3. Inject the fault (random fault and target unless given) through the target's admin
   endpoint; the injection's exact start time and target go to ``faults.jsonl``.
4. The SLO watcher opens the incident at the first sustained breach; its onset comes from the
   shared onset detector (:func:`rca.detect.slo.detected_onset`, the breach time as upper
   bound), printed beside the injection time; without a breach within ``detect_timeout`` the
   incident opens at the injection.
5. Once ``after`` seconds follow the onset, take the window and the history before it from the
   window store, stop the stack (unless ``keep_running``) and run the RCA method with the
   stack's call graph; print its ranking next to the truth, with the baselines' verdicts.
6. Write the incident folder: ``report.html`` (:func:`rca.report.render_report`),
   ``incident.json`` (ranking, truth, timings, call graph), ``window.csv`` (for ``rca
   analyze``), ``faults.jsonl`` (ground truth) and every process's log.

With ``keep_running``, ``rca serve`` runs beside the stack from the start, receives the
incident as a Grafana alert and analyses it too; everything stays up until Ctrl-C.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rca.datasets.base import Truth
from rca.detect.slo import Breach, SloWatcher, detected_onset
from rca.errors import RCAInputError
from rca.eval.scoring import rank_truth
from rca.methods import make_method
from rca.types import Alert, RCAResult
from rca.window import Window
from services.demo.lab import LiveLab
from services.demo.serve import ApiServer, grafana_notification
from services.slo import rules_for
from services.stack import FAULTS, Stack, load_stack

BASELINE_METHODS = ("baro", "nsigma")


@dataclass(frozen=True)
class DemoOptions:
    stack: str = "llm-serving"
    fault: str | None = None
    target: str | None = None
    method: str = "run"
    seed: int | None = None
    rate: float | None = None
    profile: str = "steady"
    period_seconds: float = 600.0
    warmup_seconds: float = 8.0
    baseline_seconds: float = 60.0
    before_seconds: float = 45.0
    after_seconds: float = 20.0
    detect_timeout_seconds: float = 45.0
    out: Path = Path("out/demo")
    json_path: Path | None = None
    keep_running: bool = False
    progress: bool = True


@dataclass
class DemoOutcome:
    stack: str
    fault: str
    target: str
    method: str
    truth_rank: int | None
    ranking: list[tuple[str, float]]
    seconds: float
    folder: Path
    onset: pd.Timestamp
    injected_at: pd.Timestamp
    breach: str | None
    onset_method: str = "injection time"
    onset_confidence: float = 0.0
    baselines: dict[str, int | None] = field(default_factory=dict)
    api_incident: dict[str, Any] | None = None
    miss: str | None = None  # why the injected service is not first (see rca.report.verdict)

    def to_json(self) -> dict[str, Any]:
        """The documented ``--json`` shape, plus where things are."""
        return {
            "stack": self.stack,
            "fault": self.fault,
            "target": self.target,
            "truth_rank": self.truth_rank,
            "ranking": [{"service": s, "score": float(v)} for s, v in self.ranking],
            "seconds": round(self.seconds, 1),
            "method": self.method,
            "onset": self.onset.isoformat(),
            "injected_at": self.injected_at.isoformat(),
            "onset_method": self.onset_method,
            "onset_confidence": round(self.onset_confidence, 3),
            "onset_minus_injection_seconds": round(
                (self.onset - self.injected_at).total_seconds(), 3
            ),
            "alert": self.breach,
            "baselines_truth_rank": self.baselines,
            "miss": self.miss,
            "report": str(self.folder / "report.html"),
        }


def observable(stack: Stack, fault: str, target: str) -> bool:
    """Whether the telemetry can show ``fault`` at ``target``: the service emits one of the
    fault's indicator metrics (what the engine is meant to find it by)."""
    return not set(FAULTS[fault].indicators).isdisjoint(stack.services[target].metrics)


@dataclass(frozen=True)
class Choice:
    """The injection and how it was chosen: ``drawn_from`` candidates (``None``: as given)."""

    fault: str
    target: str
    drawn_from: int | None
    observable: bool

    def line(self, seed: int) -> str:
        """What the demo says about its choice, e.g. ``injecting cpu at payment (drawn from 23
        injections this stack's telemetry can show; seed 1234)``."""
        if self.drawn_from is None:
            how = "as given"
        elif self.observable:
            how = f"drawn from {self.drawn_from} injections this stack's telemetry can show"
        else:
            how = f"drawn from {self.drawn_from} that apply; the telemetry can show none of them"
        return f"injecting {self.fault} at {self.target} ({how}; seed {seed})"

    @property
    def warning(self) -> str | None:
        if self.observable:
            return None
        indicators = ", ".join(FAULTS[self.fault].indicators)
        return (
            f"warning: the telemetry cannot show {self.fault} at {self.target}: it emits none of "
            f"{indicators}, the metrics the engine finds {self.fault} by"
        )


def choose(stack: Stack, fault: str | None, target: str | None, rng: np.random.Generator) -> Choice:
    """The fault and target to inject: as given, else drawn from the injections the stack's
    telemetry can show that match what is given (a fault first, then one of its targets)."""
    if fault is not None and fault not in FAULTS:
        raise RCAInputError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
    if target is not None and target not in stack.services:
        raise RCAInputError(
            f"{stack.name} has no service {target!r}; it has {', '.join(stack.services)}"
        )
    if fault is not None and not stack.targets(fault):
        raise RCAInputError(
            f"{fault} applies to no service of {stack.name}; try {', '.join(stack.faults())}"
        )
    if fault is not None and target is not None:
        if target not in stack.targets(fault):
            raise RCAInputError(
                f"{fault} does not apply to {target}; "
                f"it applies to {', '.join(stack.targets(fault))}"
            )
        return Choice(fault, target, None, observable(stack, fault, target))
    applies = [(f, t) for f in stack.faults() for t in stack.targets(f)]
    matching = [(f, t) for f, t in applies if fault in (None, f) and target in (None, t)]
    # Only where nothing the telemetry shows matches what is given: what applies, with a warning.
    pool = [(f, t) for f, t in matching if observable(stack, f, t)] or matching
    fault = fault or str(rng.choice(list(dict.fromkeys(f for f, _ in pool))))
    target = target or str(rng.choice([t for f, t in pool if f == fault]))
    return Choice(fault, target, len(pool), observable(stack, fault, target))


class _Clock:
    def __init__(self, enabled: bool) -> None:
        self.started = time.monotonic()
        self.enabled = enabled

    def __call__(self) -> float:
        return time.monotonic() - self.started

    def say(self, message: str) -> None:
        if self.enabled:
            print(f"[{self():5.1f}s] {message}", flush=True)


def _sleep(seconds: float, lab: LiveLab, clock: _Clock, what: str) -> None:
    """Sleep, checking the stack is alive and telling the time left every 15 s."""
    end = time.monotonic() + seconds
    next_note = time.monotonic() + 15.0
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 1.0))
        lab.check_alive()
        if time.monotonic() >= next_note and end - time.monotonic() > 3:
            clock.say(f"{what}: {end - time.monotonic():.0f} s to go")
            next_note += 15.0


def _watch(
    lab: LiveLab, watcher: SloWatcher, since: pd.Timestamp, timeout_seconds: float
) -> list[Breach]:
    """Breaches after ``since``, polled once a second until one appears or the timeout."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        time.sleep(1.0)
        lab.check_alive()
        # The newest second may still miss some services' exports: leave it out.
        frame = lab.window(since - pd.Timedelta(seconds=30), lab.now() - pd.Timedelta(seconds=1.5))
        breaches = watcher.check(frame, since)
        if breaches:
            return breaches
    return []


def _write_window(window: Window, path: Path) -> None:
    frame = window.copy()
    frame.index = frame.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame.to_csv(path, index_label="time")


def format_ranking(result: RCAResult, truth: str, fault: str, top: int = 10) -> str:
    best = {}
    for cause in result.causes:
        best.setdefault(cause.service, cause)
    services = result.services()
    width = max([len(s) for s, _ in services[:top]] + [7])
    lines = [f"  {'rank':>4}  {'service':<{width}}  {'score':>9}  strongest series"]
    for position, (service, score) in enumerate(services[:top], start=1):
        series = best[service].series if service in best else ""
        mark = f"   <== injected: {fault}" if service == truth else ""
        lines.append(f"  {position:>4}  {service:<{width}}  {score:>9.4g}  {series[:90]}{mark}")
    return "\n".join(lines)


def run_demo(options: DemoOptions) -> DemoOutcome:
    """Run the demo; see the module docstring. Everything started is stopped on return or on
    any exception (Ctrl-C included), unless ``keep_running`` and it succeeded."""
    clock = _Clock(options.progress)
    stack = load_stack(options.stack)
    seed = (
        options.seed if options.seed is not None else int(np.random.SeedSequence().entropy % 10**6)
    )
    rng = np.random.default_rng(seed)
    choice = choose(stack, options.fault, options.target, rng)
    fault, target = choice.fault, choice.target
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = options.out / f"{stamp}-{stack.name}-{fault}-{target}"
    folder.mkdir(parents=True, exist_ok=True)
    modelled = " (modelled: no GPU here)" if FAULTS[fault].modelled else ""
    clock.say(
        f"rca demo: stack {stack.name}, fault {fault}{modelled} at {target}, "
        f"method {options.method}, seed {seed}; output in {folder}"
    )
    print(choice.line(seed), flush=True)
    if choice.warning:
        print(choice.warning, flush=True)
    lab = LiveLab(
        stack,
        folder / "run",
        rate=options.rate,
        profile=options.profile,
        period_seconds=options.period_seconds,
        seed=seed,
        progress=clock.say,
    )
    api: ApiServer | None = None
    try:
        lab.start()
        if options.keep_running:
            assert lab.bootstrap is not None
            api = ApiServer.start(
                lab.bootstrap,
                folder,
                before_seconds=options.before_seconds,
                after_seconds=options.after_seconds,
            )
            clock.say(f"api: rca serve on {api.url} (its own ingest consumer on the broker)")
        lab.wait_for_telemetry(90)
        clock.say(
            f"telemetry: all {len(stack.services)} services reporting, "
            f"{len(lab.store.series())} series"
        )
        _sleep(options.warmup_seconds, lab, clock, "warm-up")
        warm_end = lab.now()
        clock.say(f"baseline: {options.baseline_seconds:.0f} s of healthy traffic")
        _sleep(options.baseline_seconds, lab, clock, "baseline")
        armed_at = lab.now()
        watcher = SloWatcher(rules_for(stack))
        baseline = lab.window(warm_end, armed_at)
        watcher.learn(baseline)
        clock.say(f"SLO watcher: {len(watcher.normal)} rules learned from the baseline, armed")

        injection = lab.inject(target, fault)
        injected_at = pd.Timestamp(injection.started_unix_ns, unit="ns", tz="UTC")
        params = ", ".join(f"{k}={v:g}" for k, v in injection.params.items())
        clock.say(
            f"fault: {fault} ({params}) at {target} since {injected_at:%H:%M:%S.%f}"[:-3]
            + f"; ground truth in {lab.run_dir / 'faults.jsonl'}"
        )
        breaches = _watch(lab, watcher, armed_at, options.detect_timeout_seconds)
        if breaches:
            first = breaches[0]
            # Symptoms are what users feel; saturation alerts name a suspect, not a symptom.
            facing = [b for b in breaches if b.rule.user_facing]
            alert_text = first.describe()
            symptoms = tuple(dict.fromkeys(b.rule.service for b in facing))
            clock.say(f"incident: SLO watcher fired: {alert_text}")
            # As the watcher saw it: the newest second may still miss some exports.
            frame = lab.window(
                armed_at - pd.Timedelta(seconds=30), lab.now() - pd.Timedelta(seconds=1.5)
            )
            found = detected_onset(frame, breaches, armed_at, baseline)
            onset, onset_confidence = found.onset, found.confidence
            onset_method = (
                f"{found.method} (confidence {onset_confidence:.2f}) before the SLO watcher "
                f"fired: {alert_text}"
            )
            clock.say(
                f"onset: {onset:%H:%M:%S} by {found.method}, confidence {onset_confidence:.2f}; "
                f"injected at {injected_at:%H:%M:%S.%f}"[:-3]
                + f" ({(onset - injected_at).total_seconds():+.1f} s)"
            )
            for other in breaches[1:4]:
                clock.say(f"          also: {other.describe()}")
        else:
            onset = injected_at.ceil("1s")
            onset_confidence = 0.0
            onset_method = (
                f"no SLO breach within {options.detect_timeout_seconds:.0f} s: the injection"
            )
            alert_text = None
            symptoms = ()
            clock.say(
                f"incident: no SLO breach within {options.detect_timeout_seconds:.0f} s; "
                "opening it at the injection time instead"
            )
        until = onset + pd.Timedelta(seconds=options.after_seconds + 2.5)
        wait = (until - lab.now()).total_seconds()
        if wait > 0:
            clock.say(f"collecting {options.after_seconds:.0f} s after the onset ({wait:.0f} s)")
            _sleep(wait, lab, clock, "collecting")
        window = lab.window(
            onset - pd.Timedelta(seconds=options.before_seconds),
            onset + pd.Timedelta(seconds=options.after_seconds),
        )
        history_end = onset - pd.Timedelta(seconds=options.before_seconds + 1)
        history = (
            lab.window(warm_end, history_end)
            if history_end > warm_end + pd.Timedelta(seconds=10)
            else None
        )
        incident_id = None
        if api is not None:
            breached = breaches[0] if breaches else None
            notification = grafana_notification(
                alertname="SLOBreach" if breached else "IncidentOpened",
                service=symptoms[0] if symptoms else stack.slos[0].service,
                summary=alert_text or "no SLO breach: incident opened at the injection time",
                onset=onset,
                method=options.method,
                fingerprint=uuid.uuid4().hex[:16],
                value=breached.value if breached else 1.0,
            )
            incident_id = api.alert(notification)
            clock.say(f"api: Grafana alert posted, incident {incident_id} opened")
        if not options.keep_running:
            lab.stop()  # the window and the history are already in memory

        clock.say(
            f"rca: {options.method} on {window.shape[1]} series x {len(window)} steps, "
            "with the stack's call graph"
        )
        started = time.monotonic()
        method = make_method(options.method, seed=seed)
        method.fit(history, call_graph=stack.call_graph())
        alert = Alert(services=symptoms) if symptoms else None
        result = method.rank(window, onset, alert=alert)
        rca_seconds = time.monotonic() - started
        truth = Truth(target, fault, frozenset(FAULTS[fault].indicators))
        truth_rank = rank_truth(result, truth).service
        baselines: dict[str, int | None] = {}
        for name in BASELINE_METHODS:
            baseline = make_method(name, seed=seed)
            baselines[name] = rank_truth(baseline.rank(window, onset), truth).service
        ranking = result.services()

        print(f"\n== {options.method}: {len(ranking)} services ranked in {rca_seconds:.1f} s")
        print(format_ranking(result, target, fault))
        where = f"rank {truth_rank} of {len(ranking)}" if truth_rank else "not ranked"
        others = ", ".join(f"{n} {'#' + str(r) if r else '-'}" for n, r in baselines.items())
        print(f"   truth: {fault} at {target} -> {where}   (baselines: {others})\n")
        from rca.report.verdict import verdict  # matplotlib loads with rca.report

        miss = verdict(result, window, onset, alert=alert, truth=truth).miss
        if miss is not None:
            print(f"   {miss.text()}\n")

        _write_outputs(
            folder,
            stack,
            window,
            onset,
            result,
            options,
            fault,
            target,
            injection.to_json(),
            alert_text,
            truth_rank,
            baselines,
            alert,
            truth,
            onset_method,
        )
        clock.say(f"report: {folder / 'report.html'}")
        outcome = DemoOutcome(
            stack=stack.name,
            fault=fault,
            target=target,
            method=options.method,
            truth_rank=truth_rank,
            ranking=ranking,
            seconds=clock(),
            folder=folder,
            onset=onset,
            injected_at=injected_at,
            breach=alert_text,
            onset_method=onset_method,
            onset_confidence=onset_confidence,
            baselines=baselines,
            miss=None if miss is None else miss.text(),
        )
        if options.json_path is not None:
            options.json_path.parent.mkdir(parents=True, exist_ok=True)
            options.json_path.write_text(json.dumps(outcome.to_json(), indent=2) + "\n")
        if api is not None and incident_id is not None:
            row = api.wait_done(incident_id, timeout_seconds=180)
            outcome.api_incident = row
            top = ", ".join(f"{t['service']}" for t in (row.get("top") or [])[:3])
            clock.say(f"api: incident {incident_id} {row.get('status')}; top: {top or '-'}")
            _keep_running(api, lab, incident_id, clock)
        return outcome
    finally:
        lab.stop()
        if api is not None:
            api.stop()
        truth_log = folder / "run" / "faults.jsonl"
        if truth_log.exists():
            shutil.copy(truth_log, folder / "faults.jsonl")


def _write_outputs(
    folder: Path,
    stack: Stack,
    window: Window,
    onset: pd.Timestamp,
    result: RCAResult,
    options: DemoOptions,
    fault: str,
    target: str,
    injection: dict[str, Any],
    alert_text: str | None,
    truth_rank: int | None,
    baselines: dict[str, int | None],
    alert: Alert | None,
    truth: Truth,
    onset_method: str,
) -> None:
    from rca.report import render_report

    title = f"{stack.name}: {alert_text or 'no SLO breach (opened at the injection)'}"
    page = render_report(
        folder.name,
        title,
        result,
        window,
        onset,
        alert=alert,
        truth=truth,
        onset_method=onset_method,
    )
    (folder / "report.html").write_text(page)
    _write_window(window, folder / "window.csv")
    graph = stack.call_graph()
    (folder / "incident.json").write_text(
        json.dumps(
            {
                "stack": stack.name,
                "onset": onset.isoformat(),
                "alert": alert_text,
                "root_cause": {"service": target, "fault": fault},
                "injection": injection,
                "method": result.method,
                "truth_rank": truth_rank,
                "baselines_truth_rank": baselines,
                "ranking": [{"service": s, "score": float(v)} for s, v in result.services()],
                "timings_seconds": result.timings_seconds,
                "calls": [[a, b] for a, b in graph.edges],
                "options": {
                    "baseline_seconds": options.baseline_seconds,
                    "before_seconds": options.before_seconds,
                    "after_seconds": options.after_seconds,
                },
            },
            indent=2,
        )
        + "\n"
    )


def _keep_running(api: ApiServer, lab: LiveLab, incident_id: str, clock: _Clock) -> None:
    running = lab.running
    assert running is not None
    print(
        "\nEverything stays up until Ctrl-C:\n"
        f"  API        {api.url}  (bearer token in {api.log_path.parent / 'api.token'})\n"
        f"  incident   {api.url}/v1/incidents/{incident_id}  (/ranking, /graph, /report)\n"
        f"  services   " + ", ".join(f"{n} {u}" for n, u in running.urls.items()) + "\n"
        f"  inject     python -m services inject --run-dir {lab.run_dir} --target T --fault F\n"
        f"  Kafka      {lab.bootstrap} (topic otlp_metrics)\n",
        flush=True,
    )
    while True:
        time.sleep(1.0)
        lab.check_alive()
