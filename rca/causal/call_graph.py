"""Call graphs (caller -> callee between services) from the sources a deployment has.

* OpenTelemetry service-graph metrics: the Collector's ``servicegraph`` connector emits
  ``traces_service_graph_request_total{client, server}`` (and ``..._client_seconds`` /
  ``..._server_seconds``); any window column with those attributes names an edge.
* A dependency CSV: two columns naming the caller and the callee (``Source,Target`` as in
  Nezha, ``caller,callee``, ``client,server`` or ``parent,child``), optional further columns.
* A stack description: a mapping with ``calls`` as ``[[caller, callee], ...]`` or
  ``[{"from": caller, "to": callee}, ...]`` (our demo stacks, an incident's JSON).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import networkx as nx

from rca.errors import RCAInputError
from rca.types import parse_series_name

SERVICE_GRAPH_PREFIX = "traces_service_graph_request"
_CSV_PAIRS = (("source", "target"), ("caller", "callee"), ("client", "server"), ("parent", "child"))


def from_service_graph_series(names: Iterable[str]) -> nx.DiGraph:
    """Edges named by service-graph metric columns (``client`` and ``server`` attributes)."""
    graph = nx.DiGraph()
    for name in names:
        try:
            key = parse_series_name(name)
        except ValueError:
            continue
        if not key.metric.startswith(SERVICE_GRAPH_PREFIX):
            continue
        attrs = dict(key.attrs)
        client, server = attrs.get("client"), attrs.get("server")
        if client and server and client != server:
            graph.add_edge(client, server)
    return graph


def from_pairs(pairs: Iterable[Iterable[str]]) -> nx.DiGraph:
    graph = nx.DiGraph()
    for pair in pairs:
        caller, callee = (str(x) for x in pair)
        if caller != callee:
            graph.add_edge(caller, callee)
    return graph


def from_dependency_csv(path: Path) -> nx.DiGraph:
    """A CSV with a caller and a callee column (see the module docstring for the names)."""
    try:
        with Path(path).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise RCAInputError(f"no such file: {path}") from None
    if not rows:
        raise RCAInputError(f"{path}: no call edges")
    columns = {name.lower(): name for name in rows[0]}
    for caller, callee in _CSV_PAIRS:
        if caller in columns and callee in columns:
            return from_pairs((row[columns[caller]], row[columns[callee]]) for row in rows)
    raise RCAInputError(
        f"{path}: expected caller and callee columns, one of "
        + ", ".join(f"{a},{b}" for a, b in _CSV_PAIRS)
        + f"; found {', '.join(rows[0])}"
    )


def from_description(description: Mapping[str, object]) -> nx.DiGraph:
    """The ``calls`` of a stack description or an incident file."""
    calls = description.get("calls")
    if not isinstance(calls, list):
        raise RCAInputError("a stack description needs a 'calls' list")
    pairs = []
    for call in calls:
        if isinstance(call, Mapping) and "from" in call and "to" in call:
            pairs.append((call["from"], call["to"]))
        elif isinstance(call, list | tuple) and len(call) == 2:
            pairs.append(tuple(call))
        else:
            raise RCAInputError(f"a call is [caller, callee] or {{from, to}}, got {call!r}")
    return from_pairs(pairs)


def read_call_graph(path: Path) -> nx.DiGraph:
    """A call graph from a dependency CSV or a JSON stack description, by file suffix."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            return from_description(json.loads(path.read_text()))
        except FileNotFoundError:
            raise RCAInputError(f"no such file: {path}") from None
        except json.JSONDecodeError as exc:
            raise RCAInputError(f"{path} is not JSON: {exc}") from None
    return from_dependency_csv(path)
