"""Per-peer evidence: a receiver's series about one peer point at that peer only when the
change is confined to it."""

import networkx as nx
import numpy as np
import pandas as pd

from rca.methods import make_method
from rca.rank.peer_attribution import attributed_services

AGE = "fog:ros2.message.age:p90"
R1 = f"{AGE}{{messaging.destination.name=/r1/camera,service.peer.name=r1}}"
R2 = f"{AGE}{{messaging.destination.name=/r2/camera,service.peer.name=r2}}"
NAMES = [R1, R2, "fog:process.cpu.utilization", "r1:process.cpu.utilization", "r2:x"]


def test_a_change_confined_to_one_peer_counts_for_that_peer():
    owners = attributed_services(NAMES, np.array([0.8, 0.0, 0.0, 0.0, 0.0]))
    assert owners == ["r1", "fog", "fog", "r1", "r2"]


def test_a_change_at_every_peer_stays_with_the_receiver():
    owners = attributed_services(NAMES, np.array([0.8, 0.6, 0.5, 0.0, 0.0]))
    assert owners[:3] == ["fog", "fog", "fog"]


def test_one_peer_alone_unknown_peers_and_self_references_stay_put():
    alone = attributed_services([R1, "r1:x"], np.array([0.9, 0.0]))
    assert alone == ["fog", "r1"]  # nothing to compare with: the receiver keeps it
    unknown = attributed_services([R1, R2], np.array([0.9, 0.0]))
    assert unknown == ["fog", "fog"]  # r1, r2 are not services of this window
    own = "fog:x{service.peer.name=fog}"
    assert attributed_services([own, "fog:y"], np.array([0.9, 0.0])) == ["fog", "fog"]
    legacy = "fog:a{peer.service=r1}"
    other = "fog:a{peer.service=r2}"
    assert attributed_services([legacy, other, "r1:x", "r2:x"], np.array([0.9, 0, 0, 0]))[0] == "r1"


def _robots_and_fog(rng: np.random.Generator, fault: str) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Two robots streaming to one fog node (robot -> fog calls); ``link`` delays r1's frames,
    ``fog-cpu`` slows the fog node for everyone."""
    rows, onset_row = 120, 80
    index = pd.date_range("2026-03-01", periods=rows, freq="5s", tz="UTC", name="time")
    noise = lambda scale: rng.normal(0, scale, rows)  # noqa: E731
    frame = pd.DataFrame(
        {
            R1: 0.02 + noise(0.001),
            R2: 0.02 + noise(0.001),
            "fog:process.cpu.utilization": 0.3 + noise(0.01),
            "r1:messaging.client.operation.duration:p90": 0.05 + noise(0.002),
            "r2:messaging.client.operation.duration:p90": 0.05 + noise(0.002),
        },
        index=index,
    )
    after = slice(onset_row, None)
    if fault == "link":
        frame.iloc[after, frame.columns.get_loc(R1)] += 0.06
        frame.iloc[after, 3] += 0.12  # the round trip crosses the slow link twice
    else:
        frame.iloc[after, 2] += 0.4
        for column in (R1, R2):
            frame.iloc[after, frame.columns.get_loc(column)] += 0.03
        frame.iloc[after, 3] += 0.03
        frame.iloc[after, 4] += 0.03
    return frame, index[onset_row]


def test_run_blames_the_robot_for_its_link_and_the_fog_for_its_own_fault(rng):
    calls = nx.DiGraph([("r1", "fog"), ("r2", "fog")])
    window, onset = _robots_and_fog(rng, "link")
    result = make_method("run-topology").fit(None, call_graph=calls).rank(window, onset)
    assert result.services()[0][0] == "r1"
    evidence = next(c for c in result.causes if c.series == R1)
    assert evidence.service == "r1"  # measured at the fog, counted for the robot
    window, onset = _robots_and_fog(rng, "fog-cpu")
    result = make_method("run-topology").fit(None, call_graph=calls).rank(window, onset)
    assert result.services()[0][0] == "fog"


def test_a_hung_callee_ranks_ahead_of_callers_that_wait_on_it(rng):
    # No call graph. The callee holds requests it never answers: only its in-flight gauge
    # moves (its duration histogram records none of them). Each caller waits: its latency and
    # its in-flight gauge move together (Little's law), one change seen twice.
    index = pd.date_range("2026-01-01", periods=120, freq="1s", tz="UTC")
    onset, after = index[90], slice(90, None)
    route = "{http.route=/api}"
    frame = pd.DataFrame(index=index)
    frame["db:http.server.active_requests"] = 4 + rng.normal(0, 0.5, 120)
    frame.iloc[after, 0] += 200
    for caller in ("api", "web"):
        latency = 0.05 + rng.normal(0, 0.002, 120)
        latency[after] += 0.4
        for stat in ("p50", "p90", "mean"):
            frame[f"{caller}:http.server.request.duration:{stat}{route}"] = latency * (
                1.5 if stat == "p90" else 1.0
            )
        frame[f"{caller}:http.server.active_requests"] = 8 + rng.normal(0, 0.5, 120)
        frame.iloc[after, -1] += 60
    result = make_method("run-topology").fit(None).rank(frame, onset)
    assert result.services()[0][0] == "db"
