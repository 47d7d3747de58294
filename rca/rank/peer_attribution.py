"""Which service a series' evidence points at, when the series is measured per peer.

A receiver often reports one series per peer: a fog node's age of the frames each robot sends,
a sidecar's latency towards each upstream (OpenTelemetry ``service.peer.name``). When only one
peer's series turns anomalous while the receiver's same measurement of its other peers stays
normal, the receiver itself is fine: the cause is that peer or the link to it, so the series
counts for the peer. When several peers' series change together, the receiver is the common
factor and keeps them. A series measured about a single peer says nothing either way and stays
with the service that reports it.

:func:`service_shares` then adds the walk's share of the series up per service they count for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import pandas as pd

from rca.types import parse_series_name

# OpenTelemetry attributes naming the service on the other side of a connection
# (``peer.service`` is the deprecated spelling of ``service.peer.name``).
PEER_KEYS = ("service.peer.name", "peer.service")


def attributed_services(names: Sequence[str], anomaly: np.ndarray) -> list[str]:
    """The service each series counts for: its own, or the peer its anomaly is confined to.

    ``anomaly`` is each series' anomaly in ``[0, 1)`` (0: healthy).

    >>> names = ["fog:age{service.peer.name=r1}", "fog:age{service.peer.name=r2}", "r1:cpu",
    ...          "r2:cpu"]
    >>> attributed_services(names, np.array([0.9, 0.0, 0.1, 0.0]))
    ['r1', 'fog', 'r1', 'r2']
    >>> attributed_services(names, np.array([0.9, 0.8, 0.0, 0.0]))
    ['fog', 'fog', 'r1', 'r2']
    """
    keys = [parse_series_name(n) for n in names]
    owners = [k.service for k in keys]
    services = set(owners)
    # (receiver, metric) -> peer -> series indices. Other attributes are left out of the key:
    # they often name the peer again (a topic per publisher, a route per upstream).
    groups: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, key in enumerate(keys):
        attrs = dict(key.attrs)
        peer = next((attrs[k] for k in PEER_KEYS if k in attrs), None)
        if peer is None or peer == key.service or peer not in services:
            continue
        groups[(key.service, key.metric)][peer].append(i)
    for by_peer in groups.values():
        if len(by_peer) < 2:
            continue
        anomalous = [p for p, idx in by_peer.items() if anomaly[idx].max() > 0]
        if len(anomalous) == 1:
            for i in by_peer[anomalous[0]]:
                owners[i] = anomalous[0]
    return owners


# Statistics of one distribution (a histogram's quantiles and mean): views of one signal.
DISTRIBUTION_STATS = frozenset({"p50", "p90", "p99", "mean"})

# OpenTelemetry's in-flight request gauges and the request durations they go with. Little's
# law (in flight = arrival rate x duration) ties each pair: one change, seen twice.
IN_FLIGHT = {
    "http.server.active_requests": "http.server.request.duration",
    "http.client.active_requests": "http.client.request.duration",
}


def service_shares(names: Sequence[str], owners: Sequence[str], share: np.ndarray) -> pd.Series:
    """The walk's share per service, each piece of evidence counted once, with its largest
    share. The statistics of one distribution (``p50``, ``p90``, ``p99``, ``mean`` of the same
    metric and attributes) are one piece: summing four views of one latency would put a caller
    whose latency moved ahead of a callee whose single queue-length gauge moved as much. A
    service's in-flight requests and its request durations are one piece too (Little's law):
    requests held by a hung callee raise only its in-flight gauge, while each caller waiting on
    it shows both, and counting them twice put every caller ahead of the callee.

    >>> names = ["a:lat:p50", "a:lat:p90", "a:lat:p99", "b:queue"]
    >>> service_shares(names, ["a", "a", "a", "b"], np.array([0.2, 0.2, 0.2, 0.3])).to_dict()
    {'a': 0.2, 'b': 0.3}
    >>> names = ["a:http.server.request.duration:p90", "a:http.server.active_requests",
    ...          "b:http.server.active_requests"]
    >>> service_shares(names, ["a", "a", "b"], np.array([0.3, 0.3, 0.3])).to_dict()
    {'a': 0.3, 'b': 0.3}
    """
    keys = [parse_series_name(name) for name in names]
    holding = {
        (o, k.service, IN_FLIGHT[k.metric])
        for o, k in zip(owners, keys, strict=True)
        if k.metric in IN_FLIGHT
    }
    codes: dict[tuple, int] = {}  # signal -> its number
    signal_of = []
    for name, owner, key in zip(names, owners, keys, strict=True):
        if key.metric in IN_FLIGHT:
            signal: tuple = (owner, key.service, IN_FLIGHT[key.metric])
        elif key.stat in DISTRIBUTION_STATS:
            signal = (owner, key.service, key.metric)
            if signal not in holding:
                signal = (*signal, key.attrs)
        else:
            signal = (owner, name)
        signal_of.append(codes.setdefault(signal, len(codes)))
    per_signal = pd.Series(share).groupby(signal_of).max()
    owner_of = [signal[0] for signal in codes]  # in code order
    return per_signal.groupby([owner_of[code] for code in per_signal.index]).sum()
