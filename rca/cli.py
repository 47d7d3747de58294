"""The ``rca`` command: bench, analyze, methods, datasets, broker, ingest, serve, grafana, demo."""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rca.compute import configure_torch_threads
from rca.errors import RCAInputError
from rca.settings import Settings, get_settings

if TYPE_CHECKING:
    import networkx as nx
    import pandas as pd

    from rca.types import CausalGraph


# Docstring markup as it reads in a terminal: ``x`` and :func:`x` (any role) become `x`.
_RST_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_RST_LITERAL = re.compile(r"``(.+?)``")


def plain_text(text: str) -> str:
    """``text`` without reStructuredText's inline markup (help shows docstrings)."""
    return _RST_LITERAL.sub(r"`\1`", _RST_ROLE.sub(r"`\1`", text))


class HelpFormatter(argparse.HelpFormatter):
    """Each flag's help ends with its default (where it has one that is not None or False);
    descriptions keep their paragraphs; docstring markup is made plain."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = plain_text(action.help or "")
        default = action.default
        # Identity, not ==: a default of 0 is shown, False (a store_true flag) is not.
        shown = default is not None and default is not False and default is not argparse.SUPPRESS
        if shown and action.option_strings and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text

    def _split_lines(self, text: str, width: int) -> list[str]:
        # Lines break at spaces only: flags and names (--call-graph, rca-ingest) stay whole.
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(
            "\n".join(indent + line for line in self._split_lines(part, width))
            for part in plain_text(text).split("\n\n")
        )


class _Parser(argparse.ArgumentParser):
    """``rca``'s parser; subcommand parsers are made of this class too, so every one of them
    (those registered outside this module included) formats its help with :class:`HelpFormatter`."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


_DATA_ROOT_HELP = "folder holding the datasets (default: $RCA_DATA_ROOT, else ../shared/data)"


def _data_root(flag: Path | None) -> Path | None:
    return flag if flag is not None else get_settings().resolved_data_root()


def cmd_bench(args: argparse.Namespace) -> int:
    from rca.datasets import open_dataset
    from rca.eval.bench import (
        BenchProtocol,
        format_faults,
        format_graphs,
        format_table,
        holdout_rows,
        run_bench,
    )
    from rca.eval.views import parse_views
    from rca.methods import method_entry

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for name in methods:
        method_entry(name)  # unknown names fail before any work
    if args.alert_delay is not None and args.onset != "detect":
        raise RCAInputError("--alert-delay is the alert of --onset detect")
    protocol = BenchProtocol(
        views=parse_views(args.view or []),
        onset=args.onset,
        alert_delay_steps=args.alert_delay,
        onset_shift_steps=args.onset_shift,
        symptoms=args.symptoms,
    )
    root = _data_root(args.data_root)
    datasets = [open_dataset(spec, root, seed=args.seed) for spec in args.dataset]
    rows, outcomes = run_bench(
        datasets,
        methods,
        seed=args.seed,
        limit=args.limit,
        split=args.split,
        progress=not args.quiet,
        protocol=protocol,
    )
    print(f"protocol: {protocol.label}")
    print(format_table(rows))
    held = holdout_rows(datasets, methods, outcomes, protocol.label)
    if args.split == "all" and any(h.cases < r.cases for h, r in zip(held, rows, strict=False)):
        print("\nholdout (every case but the tuning fifth):")
        print(format_table(held))
    graphs = format_graphs(rows)
    if graphs:
        print()
        print(graphs)
    if args.by_fault:
        print()
        print(format_faults(rows))
    failed = [o for o in outcomes if o.error]
    for outcome in failed[:5]:
        print(
            f"error: {outcome.method} on {outcome.dataset}/{outcome.case_id}: "
            f"{outcome.error.splitlines()[0]}",
            file=sys.stderr,
        )
    if args.json:
        payload = {
            "protocol": {
                "label": protocol.label,
                "views": [v.spec for v in protocol.views],
                "onset": protocol.onset,
                "alert_delay_steps": protocol.alert_delay_steps,
                "onset_shift_steps": protocol.onset_shift_steps,
                "symptoms": protocol.symptoms,
                "split": args.split,
                "seed": args.seed,
            },
            "results": [row.to_json() for row in rows],
            "holdout": [row.to_json() for row in held],
            "cases": [
                {
                    "dataset": o.dataset,
                    "method": o.method,
                    "case": o.case_id,
                    "truth": o.truth,
                    "fault": o.fault,
                    "service_rank": o.service_rank,
                    "metric_rank": o.metric_rank,
                    "candidates": o.candidates,
                    "truth_observed": o.truth_observed,
                    "onset_error_steps": o.onset_error_steps,
                    "onset_how": o.onset_how,
                    "seconds": o.seconds,
                    "top": list(o.top),
                    "error": o.error,
                }
                for o in outcomes
            ],
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from rca.detect.onset import MIN_AFTER, MIN_BEFORE, detect_onset
    from rca.methods import make_method
    from rca.window import to_timestamp

    if args.top < 1:
        raise RCAInputError(f"--top must be a positive number of rows, got {args.top}")
    json_path = _writable_json(args.json) if args.json else None
    learned = _fitted_graph(args.graph) if args.graph else None
    window, history = _analyze_inputs(args)
    calls, incident_onset = _call_graph_and_onset(args.call_graph)
    if args.onset is not None or incident_onset is not None:
        onset = to_timestamp(args.onset if args.onset is not None else incident_onset)
        how = "given" if args.onset is not None else f"from {args.call_graph}"
        confidence = None
    else:
        alert = to_timestamp(args.alert_time) if args.alert_time is not None else None
        found = detect_onset(window, not_after=alert, history=history)
        onset, how, confidence = found.onset, f"detected, {found.method}", found.confidence
    first, last = window.index[0], window.index[-1]
    if not first < onset <= last:
        raise RCAInputError(
            f"the onset {onset.isoformat()} is outside the window "
            f"({first.isoformat()} .. {last.isoformat()})"
        )
    before = int((window.index < onset).sum())
    if before < MIN_BEFORE or len(window) - before < MIN_AFTER:
        raise RCAInputError(
            f"the onset {onset.isoformat()} leaves {before} row(s) before it and "
            f"{len(window) - before} from it on: the analysis needs at least {MIN_BEFORE} and "
            f"{MIN_AFTER} ({first.isoformat()} .. {last.isoformat()})"
        )
    method = make_method(args.method, seed=args.seed)
    shared = _check_graph_use(args.method, method, learned, window) if learned else 0
    method = method.fit(history, call_graph=calls, learned_graph=learned)
    result = method.rank(window, onset)
    services = result.services()
    if not services:
        raise RCAInputError(
            f"nothing to rank: all {len(window.columns)} series are empty, non-numeric or "
            "constant on one side of the onset"
        )
    best_series = {}
    for cause in result.causes:
        best_series.setdefault(cause.service, cause)
    sure = f", confidence {confidence:.2f}" if confidence is not None else ""
    print(f"onset: {onset.isoformat()} ({how}{sure})")
    if learned is not None:
        print(f"graph: {args.graph} ({shared} of its {len(learned.nodes)} series in the window)")
    print(
        f"{args.method}: {len(window.columns)} series x {len(window)} rows, "
        f"{len(result.dropped)} dropped (flat), {result.timings_seconds['total']:.3f} s"
    )
    print(f"{'rank':>4}  {'service':<24} {'score':>10}  strongest series")
    for position, (service, score) in enumerate(services[: args.top], start=1):
        # A service whose every series was dropped keeps its place in the ranking, last.
        cause = best_series.get(service)
        shown = cause.series if cause is not None else "(every series dropped as flat)"
        print(f"{position:>4}  {service:<24} {score:>10.3g}  {shown}")
    if args.truth:
        names = [service for service, _ in services]
        where = f"#{names.index(args.truth) + 1}" if args.truth in names else "not ranked"
        print(f"truth {args.truth}: {where} of {len(names)} services")
    if json_path is not None:
        json_path.write_text(
            json.dumps(
                {
                    "method": result.method,
                    "onset": onset.isoformat(),
                    "onset_method": how,
                    "onset_confidence": confidence,
                    "ranking": [{"service": s, "score": v} for s, v in services],
                    "series": [{"series": c.series, "score": c.score} for c in result.causes],
                    "dropped": list(result.dropped),
                    "seconds": result.timings_seconds,
                },
                indent=2,
            )
        )
    return 0


def _writable_json(text: str) -> Path:
    """The ``--json`` path, its folder created now: a bad path fails before the analysis."""
    path = Path(text)
    if path.is_dir():
        raise RCAInputError(f"--json {path} is a folder; name a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RCAInputError(f"--json {path}: cannot create its folder ({exc.strerror})") from None
    return path


def _analyze_inputs(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The window and the normal history (``--history FILE`` or the CSV's first
    ``--history-span``)."""
    import pandas as pd

    from rca.datasets.wide_csv import read_wide_csv

    window = read_wide_csv(Path(args.csv))
    if not window.notna().to_numpy().any():
        raise RCAInputError(f"{args.csv}: no series has a numeric value")
    if args.history is not None:
        history = read_wide_csv(Path(args.history))
        if not set(history.columns) & set(window.columns):
            raise RCAInputError(f"{args.history} shares no series with {args.csv}")
        return window, history
    if args.history_span is not None:
        cut = window.index[0] + pd.Timedelta(seconds=args.history_span)
        history, window = window.loc[window.index < cut], window.loc[window.index >= cut]
        if len(history) < 2 or len(window) < 2:
            raise RCAInputError(
                f"--history-span {args.history_span:g}s leaves {len(history)} history row(s) "
                f"and {len(window)} window row(s) of {args.csv}: both need at least 2"
            )
        return window, history
    return window, None


def _call_graph_and_onset(path_text: str | None) -> tuple[nx.DiGraph | None, str | None]:
    """The ``--call-graph`` and, from an incident JSON (``rca demo``'s ``incident.json``), the
    onset it records."""
    from rca.causal.call_graph import from_dependency_csv, from_description

    if path_text is None:
        return None, None
    path = Path(path_text)
    if not path.is_file():
        raise RCAInputError(f"--call-graph {path}: no such file")
    try:
        if path.suffix.lower() != ".json":
            return from_dependency_csv(path), None
        description = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise RCAInputError(f"--call-graph {path} is not a call graph: {exc}") from None
    if not isinstance(description, dict):
        raise RCAInputError(f"--call-graph {path}: expected a JSON object with 'calls'")
    onset = description.get("onset")
    return from_description(description), str(onset) if onset is not None else None


def _fitted_graph(path_text: str) -> CausalGraph:
    """The graph ``rca graph`` wrote."""
    from rca.types import CausalGraph

    path = Path(path_text)
    if not path.is_file():
        raise RCAInputError(f"--graph {path}: no such file")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RCAInputError(f"--graph {path} is not JSON: {exc}") from None
    try:
        return CausalGraph.from_json(data)
    except ValueError as exc:
        raise RCAInputError(f"--graph {path} is not a fitted graph: {exc}") from None


def _check_graph_use(name: str, method: object, graph: CausalGraph, window: pd.DataFrame) -> int:
    """``--graph`` only with a method that reads a learned graph, over the window's series;
    how many of its series the window holds."""
    from rca.causal.sources import LearnedGraph

    if not isinstance(getattr(method, "graph_source", None), LearnedGraph):
        raise RCAInputError(f"--graph: {name} does not use a learned graph (run, run-fast do)")
    shared = len(set(graph.nodes) & set(map(str, window.columns)))
    if not shared:
        raise RCAInputError(
            f"--graph: none of its {len(graph.nodes)} series is in the window: fitted on "
            "another system's history?"
        )
    return shared


def cmd_graph(args: argparse.Namespace) -> int:
    import time

    from rca.datasets.wide_csv import read_wide_csv
    from rca.incidents.graph_refresh import MIN_HISTORY_ROWS, fit_graph

    out = _writable_json(args.out)
    history = read_wide_csv(Path(args.history))
    if len(history) < MIN_HISTORY_ROWS:
        raise RCAInputError(
            f"{args.history}: {len(history)} rows of history; learning how series follow "
            f"each other needs at least {MIN_HISTORY_ROWS}"
        )
    calls, _ = _call_graph_and_onset(args.call_graph)
    started = time.perf_counter()
    fitted = fit_graph(history, calls, seed=args.seed)
    out.write_text(json.dumps(fitted))
    edges = len(fitted["edges"])  # type: ignore[arg-type]
    print(
        f"graph: {len(history.columns)} series x {len(history)} rows -> {edges} edges in "
        f"{time.perf_counter() - started:.1f} s, written to {out} (rca analyze --graph {out})"
    )
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from rca.methods import BENCH_METHODS, METHODS

    for title, registry in (
        ("live (API, serve, analyze, demo)", METHODS),
        ("bench only", BENCH_METHODS),
    ):
        print(f"{title}:")
        for entry in registry:
            print(f"  {entry.name:<20} {entry.summary}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from rca.datasets import DATASETS, SIM_PREFIX, sim_stacks

    root = _data_root(args.data_root)
    print(f"data root: {root or '(none: pass --data-root or set RCA_DATA_ROOT)'}")
    for entry in DATASETS:
        print(f"{entry.name:<16} {entry.summary}")
    for stack in sim_stacks():
        print(f"{SIM_PREFIX + stack:<16} simulated incidents of the {stack} stack (seeded)")
    print(f"{'<folder>':<16} any folder in RCAEval's layout (<service>_<fault>/<rep>/data.csv)")
    return 0


_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _duration_seconds(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``1h``, ``2d`` -> seconds."""
    unit = _DURATION_UNITS.get(text[-1:].lower())
    try:
        return float(text[:-1]) * unit if unit else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 15m, 1h)") from None


def cmd_broker(args: argparse.Namespace) -> int:
    from rca.transport.broker import serve_broker
    from rca.transport.topics import telemetry_topics

    settings = get_settings()
    topics = telemetry_topics(settings.metrics_topic, settings.dlq_topic, args.partitions)
    return serve_broker(args.host, args.port, topics)


def cmd_ingest(args: argparse.Namespace) -> int:
    from rca.ingest.kafka_source import IngestConfig
    from rca.ingest.service import run_ingest

    settings = get_settings()
    config = IngestConfig(
        bootstrap=args.bootstrap or settings.kafka_bootstrap,
        topic=settings.metrics_topic,
        dlq_topic=settings.dlq_topic,
        group=args.group or settings.ingest_group,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
    )
    host, _, port = args.http.rpartition(":")
    return run_ingest(
        config,
        step_seconds=args.step or settings.step_seconds,
        retention_seconds=args.retention or settings.retention_seconds,
        http_host=host or "127.0.0.1",
        http_port=int(port),
        max_series=args.max_series or settings.max_series,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from rca.api.server import serve

    return serve(args.host, args.port, get_settings(), not args.no_ingest, args.bootstrap)


def cmd_grafana_provision(args: argparse.Namespace) -> int:
    from rca.grafana.provision import ProvisionConfig, provision
    from rca.grafana.writeback import connect

    settings = get_settings()
    url = args.grafana_url or settings.grafana_url
    token = settings.grafana_token.get_secret_value() if settings.grafana_token else None
    if not url or not token:
        raise RCAInputError("set RCA_GRAFANA_URL and RCA_GRAFANA_TOKEN (a service-account token)")
    api_url = args.api_url or settings.public_url
    if not api_url:
        raise RCAInputError("pass --api-url (how Grafana reaches this API) or set RCA_PUBLIC_URL")
    secret = settings.webhook_hmac_secret
    config = ProvisionConfig(
        api_url=api_url,
        api_token=settings.resolved_api_token(),
        hmac_secret=secret.get_secret_value() if secret else None,
        folder_uid=args.folder_uid,
        dashboard_uid=args.dashboard_uid,
    )
    done = provision(connect(url, token, settings.grafana_org_id), config)
    for what, outcome in done.items():
        print(f"{what:<14} {outcome}")
    return 0


def _bootstrap_help(settings: Settings) -> str:
    return f"Kafka host:port (default: $RCA_KAFKA_BOOTSTRAP, here {settings.kafka_bootstrap})"


def build_parser() -> argparse.ArgumentParser:
    settings = get_settings()  # the effective defaults of flags that fall back to RCA_* settings
    parser = _Parser(prog="rca", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    bench = sub.add_parser("bench", help="accuracy and speed of methods on labelled datasets")
    bench.add_argument(
        "--dataset",
        action="append",
        required=True,
        help="registered dataset name or RCAEval-layout folder (repeatable)",
    )
    bench.add_argument(
        "--methods",
        default="random,nsigma,baro,granger-pagerank",
        help="comma-separated registered methods (rca methods)",
    )
    bench.add_argument("--data-root", type=Path, default=None, help=_DATA_ROOT_HELP)
    bench.add_argument("--limit", type=int, default=None, help="at most N cases per dataset")
    bench.add_argument("--json", default=None, help="also write the results to this file")
    bench.add_argument(
        "--seed", type=int, default=0, help="seed of the methods and of generated datasets"
    )
    bench.add_argument(
        "--split",
        choices=["all", "tune", "holdout"],
        default="all",
        help="tune: every fifth case (what methods may be tuned on); holdout: the rest",
    )
    bench.add_argument(
        "--view",
        action="append",
        default=None,
        help="observability view applied to every case, in order (repeatable or comma-separated):"
        " no-call-graph, latency-only, one-latency, coarse:<step> (e.g. coarse:60s),"
        " call-graph-drop:<share> (e.g. call-graph-drop:0.5)",
    )
    bench.add_argument(
        "--onset",
        choices=["exact", "detect"],
        default="exact",
        help="exact: the injection time; detect: the onset detector's estimate (every method"
        " gets the same)",
    )
    bench.add_argument(
        "--alert-delay",
        type=float,
        default=None,
        metavar="STEPS",
        help="with --onset detect: an alert fires this many of the dataset's steps after the"
        " injection and bounds the detector's search (2 steps: 2 s at 1 s, 2 min at 60 s);"
        " default: no alert",
    )
    bench.add_argument(
        "--onset-shift",
        type=int,
        default=0,
        metavar="STEPS",
        help="move the onset handed to the methods by this many steps (negative: earlier)",
    )
    bench.add_argument(
        "--symptoms",
        action="store_true",
        help="hand each case's alert (the services whose SLO broke, where the dataset knows"
        " them) to the methods",
    )
    bench.add_argument("--by-fault", action="store_true", help="also print per-fault results")
    bench.add_argument(
        "--quiet", action="store_true", help="no progress (a bar on a terminal, else log lines)"
    )
    bench.set_defaults(func=cmd_bench)

    analyze = sub.add_parser("analyze", help="rank the causes of one incident in a wide CSV")
    analyze.add_argument("csv", help="CSV with a time column and one column per series")
    analyze.add_argument(
        "--onset",
        default=None,
        help="incident start: unix seconds or ISO time (default: the --call-graph JSON's "
        "onset, else detected from the series)",
    )
    analyze.add_argument(
        "--alert-time",
        default=None,
        help="when the alert fired: the detected onset is at or before it (default: none)",
    )
    analyze.add_argument("--method", default="run", help="a registered method (rca methods)")
    analyze.add_argument(
        "--call-graph",
        default=None,
        help="caller -> callee graph: a dependency CSV (Source,Target...) or a JSON with "
        "'calls' (an incident.json from rca demo also gives the onset)",
    )
    normal = analyze.add_mutually_exclusive_group()
    normal.add_argument(
        "--history",
        default=None,
        help="CSV of normal behaviour with the same columns (default: none)",
    )
    normal.add_argument(
        "--history-span",
        type=_duration_seconds,
        default=None,
        metavar="DURATION",
        help="take the CSV's first DURATION (e.g. 30m) as normal history, the rest as window",
    )
    analyze.add_argument("--top", type=int, default=10, help="rows to print")
    analyze.add_argument("--seed", type=int, default=0, help="method seed")
    analyze.add_argument(
        "--truth", default=None, help="known root-cause service: show its rank (default: none)"
    )
    analyze.add_argument("--json", default=None, help="also write the ranking to this file")
    analyze.add_argument(
        "--graph",
        default=None,
        help="a causal graph rca graph fitted once from normal history, instead of learning "
        "one for this incident (default: none)",
    )
    analyze.set_defaults(func=cmd_analyze)

    graph = sub.add_parser(
        "graph",
        help="learn the causal graph from normal history once, for rca analyze --graph",
    )
    graph.add_argument("history", help="CSV of normal behaviour, one column per series")
    graph.add_argument("--out", required=True, help="where to write the graph (JSON)")
    graph.add_argument(
        "--call-graph",
        default=None,
        help="caller -> callee graph (as for rca analyze) that makes its edges cheaper "
        "(default: none)",
    )
    graph.add_argument("--seed", type=int, default=0, help="training seed")
    graph.set_defaults(func=cmd_graph)

    methods = sub.add_parser("methods", help="list the registered RCA methods")
    methods.set_defaults(func=cmd_methods)

    datasets = sub.add_parser("datasets", help="list the registered datasets")
    datasets.add_argument("--data-root", type=Path, default=None, help=_DATA_ROOT_HELP)
    datasets.set_defaults(func=cmd_datasets)

    broker = sub.add_parser(
        "broker", help="run the tansu Kafka-compatible broker on loopback (one machine, tests)"
    )
    broker.add_argument("--host", default="127.0.0.1", help="address to listen on")
    broker.add_argument(
        "--port", type=int, default=None, help="port to listen on (default: a free port)"
    )
    broker.add_argument(
        "--partitions",
        type=int,
        default=settings.metrics_partitions,
        help="partitions of the metrics topic",
    )
    broker.set_defaults(func=cmd_broker)

    ingest = sub.add_parser(
        "ingest", help="consume OTLP metrics from Kafka into the window store (consumer group)"
    )
    ingest.add_argument("--bootstrap", default=None, help=_bootstrap_help(settings))
    ingest.add_argument(
        "--group",
        default=None,
        help=f"consumer group (default: $RCA_INGEST_GROUP, here {settings.ingest_group})",
    )
    ingest.add_argument(
        "--retention",
        type=_duration_seconds,
        default=None,
        metavar="DURATION",
        help="window kept and rebuilt on start, e.g. 1h (default: $RCA_RETENTION_SECONDS, "
        f"here {settings.retention_seconds:g} s)",
    )
    ingest.add_argument(
        "--step",
        type=_duration_seconds,
        default=None,
        metavar="DURATION",
        help=f"grid step, e.g. 15s (default: $RCA_STEP_SECONDS, here {settings.step_seconds:g} s)",
    )
    ingest.add_argument(
        "--http", default="127.0.0.1:8465", help="status endpoint host:port (port 0: any free)"
    )
    ingest.add_argument(
        "--max-series",
        type=int,
        default=None,
        help="series kept; more are counted in /health and dropped "
        f"(default: $RCA_MAX_SERIES, here {settings.max_series})",
    )
    ingest.set_defaults(func=cmd_ingest)

    serve = sub.add_parser(
        "serve", help="the REST API and alert webhooks, with the ingest consumer by default"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on; non-loopback needs RCA_API_TOKEN"
    )
    serve.add_argument("--port", type=int, default=8080, help="port to listen on")
    serve.add_argument(
        "--no-ingest",
        action="store_true",
        help="API only: windows from the ingest workers (RCA_INGEST_URL)",
    )
    serve.add_argument("--bootstrap", default=None, help=_bootstrap_help(settings))
    serve.set_defaults(func=cmd_serve)

    grafana = sub.add_parser("grafana", help="Grafana integration")
    grafana_sub = grafana.add_subparsers(dest="grafana_command", required=True)
    provision = grafana_sub.add_parser(
        "provision",
        help="create the RCA folder, dashboard, Infinity data source and webhook contact point",
    )
    provision.add_argument("--grafana-url", default=None, help="default: RCA_GRAFANA_URL")
    provision.add_argument(
        "--api-url", default=None, help="how Grafana reaches this API (default: RCA_PUBLIC_URL)"
    )
    provision.add_argument("--folder-uid", default="rca", help="uid of the RCA folder")
    provision.add_argument(
        "--dashboard-uid", default="rca-incidents", help="uid of the incidents dashboard"
    )
    provision.set_defaults(func=cmd_grafana_provision)

    # Installed plugins' subcommands: `rca demo` comes with the demo stacks (services.demo).
    from importlib.metadata import entry_points

    for command in sorted(entry_points(group="rca.commands"), key=lambda e: e.name):
        command.load()(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_torch_threads()
    try:
        return args.func(args)
    except (RCAInputError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"rca: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader left (`rca datasets | head`): stop quietly, as other command-line tools do,
        # and keep Python from failing again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
