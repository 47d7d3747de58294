"""The RUN engine: the walk's direction and leaks, the learners, robustness, ablations."""

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
from toys import chain_incident, lagged_driver

from rca.causal.neural_granger import (
    NeuralGranger,
    NeuralGrangerConfig,
    benjamini_hochberg,
    paired_pvalues,
    pick_device,
)
from rca.causal.nn.temporal_encoder import (
    TemporalEncoder,
    augment,
    contrastive_loss,
    overlapping_crops,
    pretrain,
)
from rca.causal.topology import random_like, topology_matrix
from rca.errors import RCAInputError
from rca.methods import make_method
from rca.methods.run import RUNConfig, compose_run
from rca.rank.anomaly_walk import anomaly_walk
from rca.rank.pagerank import pagerank
from rca.types import CausalGraph

# ---- the walk ------------------------------------------------------------------------------

# Series 0 = root, 1 = mid, 2 = frontend; cause -> effect: root -> mid -> frontend.
CHAIN = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=float)


def test_chain_ranks_the_root_first_although_the_frontend_is_louder():
    anomaly = np.array([0.5, 0.7, 0.95])
    scores = anomaly_walk(CHAIN, anomaly)
    assert np.argmax(scores) == 0
    assert scores.sum() == pytest.approx(1.0)


def test_direction_matters_reversed_chain_points_at_the_frontend():
    anomaly = np.array([0.5, 0.7, 0.95])
    assert np.argmax(anomaly_walk(CHAIN.T, anomaly)) == 2


def test_plain_personalized_pagerank_leaks_into_a_healthy_upstream_node():
    # healthy -> root -> mid -> frontend: RUN's use of PageRank (effect -> cause, personalized
    # by anomaly) hands much of the root's mass to its healthy cause; our walk does not.
    weights = np.zeros((4, 4))
    weights[3, 0] = weights[0, 1] = weights[1, 2] = 1.0
    anomaly = np.array([0.5, 0.7, 0.95, 0.0])
    plain = pagerank(weights.T, personalization=anomaly + 1e-9)
    ours = anomaly_walk(weights, anomaly)
    assert plain[3] > plain[1] and plain[3] > plain[2]  # the healthy node outranks symptoms
    assert np.argmax(ours) == 0
    assert ours[3] < 1e-6


def test_a_cause_that_changed_after_its_effect_draws_less():
    anomaly = np.array([0.6, 0.9])
    weights = np.array([[0, 1], [0, 0]], dtype=float)
    early = anomaly_walk(weights, anomaly, np.array([0.0, 1.0]))
    late = anomaly_walk(weights, anomaly, np.array([5.0, 1.0]))
    assert early[0] > late[0]


def test_no_anomaly_no_edges_is_a_deterministic_tie():
    scores = anomaly_walk(np.zeros((3, 3)), np.zeros(3))
    assert np.allclose(scores, 1 / 3)
    with pytest.raises(ValueError):
        anomaly_walk(np.zeros((2, 3)), np.zeros(3))


# ---- the method on a known chain -----------------------------------------------------------


def test_run_topology_finds_the_quiet_root_that_anomaly_scores_miss(rng):
    window, onset, calls = chain_incident(rng)
    nograph = make_method("run-nograph").rank(window, onset)
    assert nograph.services()[0][0] == "frontend"  # the loudest symptom
    topology = make_method("run-topology").fit(None, call_graph=calls).rank(window, onset)
    assert topology.services()[0][0] == "root"
    top = topology.causes[0]
    assert top.service == "root" and top.evidence.anomaly > 3 and top.evidence.onset is not None


def test_run_result_carries_graph_timings_and_evidence(rng):
    window, onset, calls = chain_incident(rng)
    result = make_method("run-fast").fit(None, call_graph=calls).rank(window, onset)
    assert {"detect", "graph", "rank", "total"} <= set(result.timings_seconds)
    assert isinstance(result.graph, CausalGraph) and any(result.graph.edges())
    assert {c.series for c in result.causes} <= set(result.graph.nodes)
    assert result.services()[0][0] == "root"
    scores = [c.score for c in result.causes]
    assert scores == sorted(scores, reverse=True)


def test_oracle_refuses_without_a_known_graph(rng):
    window, onset, _ = chain_incident(rng)
    with pytest.raises(ValueError, match="true series graph"):
        make_method("run-oracle").rank(window, onset)


def test_random_graph_keeps_the_density():
    weights = np.zeros((6, 6))
    weights[0, 1] = weights[2, 3] = weights[4, 5] = 0.5
    shuffled = random_like(weights, np.random.default_rng(0))
    assert (shuffled > 0).sum() == 3 and np.all(np.diag(shuffled) == 0)


def test_topology_matrix_points_from_callee_to_caller():
    names = ["front:lat", "cart:lat", "cart:cpu"]
    m = topology_matrix(names, nx.DiGraph([("front", "cart")]))
    assert m[1, 0] == 1 and m[2, 0] == 1  # cart's series may cause front's
    assert m[0, 1] == 0  # not the other way
    assert m[1, 2] == 1 and m[2, 1] == 1  # same service
    assert np.all(np.diag(m) == 0)


# ---- the learners --------------------------------------------------------------------------


def test_neural_granger_recovers_a_planted_edge_and_not_its_reverse(rng):
    steps = 1200
    x, y = lagged_driver(rng, steps, lag=2, own=0.5, gain=0.9, noise=0.2, link=np.tanh)
    z = rng.normal(size=steps)
    data = np.column_stack([x, y, z]).astype(np.float32)
    config = NeuralGrangerConfig(epochs=30, device="cpu", seed=1)
    graph = NeuralGranger(config).fit([data])
    assert graph.weights[0, 1] > 0.2  # x -> y: y's held-out error rises a lot without x
    assert graph.weights[1, 0] == 0.0
    assert graph.weights[2, 1] == 0.0 and graph.weights[2, 0] == 0.0
    assert np.isfinite(graph.heldout_mse) and graph.epochs == 30


def test_neural_granger_estimates_the_lag_of_what_it_keeps(rng):
    steps = 1200
    x, y = lagged_driver(rng, steps, lag=3, own=0.3, gain=0.9, noise=0.2)
    data = np.column_stack([x, y, rng.normal(size=steps)]).astype(np.float32)
    graph = NeuralGranger(NeuralGrangerConfig(epochs=30, device="cpu", seed=1)).fit([data])
    assert graph.weights[0, 1] > 0 and graph.lag_steps is not None
    assert graph.lag_steps[0, 1] == 3
    assert graph.pvalues is not None and graph.pvalues[0, 1] < 1e-6
    assert not graph.lag_steps[graph.weights == 0].any()


def test_independent_series_give_next_to_no_edges(rng):
    # 12 independent AR(1) series: every edge is a false discovery; the test keeps their
    # share small where a threshold on raw importances would keep whatever overfitting finds.
    steps, n = 600, 12
    data = np.zeros((steps, n))
    noise = rng.normal(size=(steps, n))
    for t in range(1, steps):
        data[t] = 0.7 * data[t - 1] + noise[t]
    config = NeuralGrangerConfig(epochs=30, device="cpu", seed=2, min_error_increase=0.0)
    graph = NeuralGranger(config).fit([data.astype(np.float32)])
    assert (graph.weights > 0).sum() <= 2  # of 132 candidates


def test_paired_pvalues_hold_their_level_on_autocorrelated_noise(rng):
    rows, columns = 150, 400
    noise = rng.normal(size=(rows, columns))
    ar = np.zeros_like(noise)
    for t in range(rows):
        ar[t] = (0.8 * ar[t - 1] if t else 0) + noise[t]
    for differences in (noise, ar):
        p = paired_pvalues(differences)
        assert 0.01 <= (p < 0.05).mean() <= 0.10
    shifted = paired_pvalues(noise[:, :3] + 0.5)
    assert (shifted < 1e-6).all()
    missing = noise[:, :2].copy()
    missing[:, 0] = np.nan
    missing[2:, 1] = np.nan  # two rows are too few
    assert paired_pvalues(missing).tolist() == [1.0, 1.0]
    constant = paired_pvalues(np.full((10, 2), [0.3, 0.0]))
    assert constant[0] < 1e-12 and constant[1] == 1.0


def test_benjamini_hochberg_steps_up():
    p = np.array([[0.001, 0.8], [0.02, 0.04]])
    # Ranked 0.001 <= 0.0125, 0.02 <= 0.025, 0.04 <= 0.0375? no; 0.8: no -> the first two.
    assert benjamini_hochberg(p, 0.05).tolist() == [[True, False], [True, False]]
    assert benjamini_hochberg(p, 0.1).tolist() == [[True, False], [True, True]]
    assert not benjamini_hochberg(np.ones(5), 0.05).any()


def test_neural_granger_is_seeded_and_survives_nans_and_short_segments(rng):
    data = rng.normal(size=(200, 4)).astype(np.float32)
    data[10:20, 1] = np.nan
    config = NeuralGrangerConfig(epochs=3, device="cpu", seed=4)
    first = NeuralGranger(config).fit([data, data[:3]])
    second = NeuralGranger(config).fit([data, data[:3]])
    assert np.array_equal(first.weights, second.weights)
    empty = NeuralGranger(config).fit([data[:4]])
    assert not empty.weights.any()


def test_pick_device_uses_what_is_asked_and_otherwise_what_exists():
    assert pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device(None).type == expected


def test_crops_differ_and_overlap():
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        (a0, a1), (b0, b1), (o0, o1) = overlapping_crops(100, 32, generator)
        assert a1 - a0 == b1 - b0 == 32
        assert b0 > a0  # genuinely different views
        assert (o0, o1) == (b0, a1) and o1 - o0 >= 16


def test_augmented_views_are_scaled_jittered_and_masked():
    generator = torch.Generator().manual_seed(0)
    crop = torch.ones(200, 50)
    view = augment(crop, generator, scale=0.2, jitter=0.0, mask=0.1)
    masked = view == 0
    assert 0.05 < masked.float().mean() < 0.15
    factors = torch.where(masked, torch.nan, view).nanmean(dim=1)
    assert 0.1 < float(factors.std()) < 0.3  # one scale per series
    jittered = augment(crop, generator, scale=0.0, jitter=0.1, mask=0.0)
    assert 0.05 < float((jittered - crop).std()) < 0.15
    assert torch.equal(augment(crop, generator, scale=0.0, jitter=0.0, mask=0.0), crop)


def test_contrastive_loss_is_lower_when_positives_align():
    generator = torch.Generator().manual_seed(0)
    views = torch.randn(4, 20, 8, generator=generator)
    jitter = 0.01 * torch.randn(4, 20, 8, generator=generator)
    aligned = contrastive_loss(views, views + jitter, 0.2)
    shuffled = contrastive_loss(views, views[:, torch.randperm(20, generator=generator)], 0.2)
    assert aligned < shuffled
    assert aligned < np.log(20)  # better than chance over 20 timestamps


def test_contrastive_pretraining_reduces_the_loss(rng):
    torch.manual_seed(0)
    t = np.arange(400)
    series = np.stack([np.sin(t / p) + 0.1 * rng.normal(size=400) for p in (5, 9, 13, 17)])
    encoder = TemporalEncoder(hidden=16)
    losses = pretrain(
        encoder,
        torch.tensor(series, dtype=torch.float32),
        crop=48,
        steps=120,
        temperature=0.2,
        generator=torch.Generator().manual_seed(0),
    )
    assert np.mean(losses[-20:]) < np.mean(losses[:20]) - 0.3


def test_run_with_contrastive_pretraining_runs_end_to_end(rng):
    window, onset, calls = chain_incident(rng)
    granger = NeuralGrangerConfig(epochs=3, contrastive_pretraining=True, pretrain_steps=5)
    method = compose_run(config=RUNConfig(granger=granger)).fit(None, call_graph=calls)
    assert method.rank(window, onset).services()[0][0] == "root"


# ---- robustness ----------------------------------------------------------------------------


def noisy_window(
    rng, n_series: int, rows: int = 80, onset_row: int = 60
) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Noise, and series ``s0:m0`` 10 sigma up from ``onset_row`` on."""
    index = pd.date_range("2026-01-01", periods=rows, freq="10s", tz="UTC")
    columns = {f"s{i // 4}:m{i % 4}": rng.normal(0, 1, rows) for i in range(n_series)}
    window = pd.DataFrame(columns, index=index)
    window.iloc[onset_row:, 0] += 10
    return window, index[onset_row]


def test_thousand_series_give_a_result(rng):
    window, onset = noisy_window(rng, 1000, rows=40, onset_row=30)
    method = compose_run(config=RUNConfig(granger=NeuralGrangerConfig(epochs=1, hidden=4)))
    result = method.rank(window, onset)
    assert result.services()[0][0] == "s0" and len(result.causes) == 1000


def test_two_series_gaps_and_constants_give_a_result(rng):
    window, onset = noisy_window(rng, 2)
    window.iloc[5:9, 1] = np.nan
    window["flat:m"] = 3.0
    result = make_method("run-fast").rank(window, onset)
    assert result.services()[0][0] == "s0" and result.dropped == ("flat:m",)


def test_an_event_rate_that_appears_with_the_fault_counts_from_zero(rng):
    from rca.detect.robust import gather_evidence

    index = pd.date_range("2026-01-01", periods=40, freq="1s", tz="UTC")
    onset = index[30]
    ok = "db:http.server.request.duration:rate{http.response.status_code=200}"
    failed = "db:http.server.request.duration:rate{http.response.status_code=500}"
    lonely = "cache:cache.evictions:rate"
    window = pd.DataFrame(
        {
            ok: 10.0 + rng.normal(0, 0.2, 40),
            failed: np.where(index >= index[32], 5.0, np.nan),  # first report 2 s after onset
            lonely: np.where(index >= onset, 3.0, np.nan),
            "db:new.gauge": np.where(index >= onset, 1.0, np.nan),
        },
        index=index,
    )
    evidence = gather_evidence(window, onset, relative_floor=0.05, persist=2)
    # 5 failures/s beside ~10 good ones: the relative floor of that traffic (0.5/s) is the unit.
    assert evidence.strength[failed] == pytest.approx(5.0 / (0.05 * window[ok][:30].median()))
    assert evidence.z[failed].iloc[:32].eq(0.0).all()  # nothing counted before the first report
    assert evidence.strength[lonely] == pytest.approx(3.0)  # no traffic beside it: 1 event/step
    # A level that appears is still unknown before.
    assert evidence.dropped == {"db:new.gauge": "empty before the onset"}


def test_a_series_that_leaves_a_level_it_never_left_is_scored_not_dropped(rng):
    from rca.detect.robust import gather_evidence

    index = pd.date_range("2026-01-01", periods=40, freq="60s", tz="UTC")
    onset = index[30]
    ok = "api:http.server.request.duration:rate{http.response.status_code=200}"
    failed = "api:http.server.request.duration:rate{http.response.status_code=500}"
    ratio = "api:http.server.success_ratio"
    window = pd.DataFrame(
        {
            ok: 20.0 + rng.normal(0, 0.5, 40),
            failed: np.where(index >= onset, 4.0, 0.0),  # reported as 0 until the fault
            ratio: np.where(index >= onset, 80.0, 100.0),  # 100 % until the fault
            "api:process.threads": 8.0,  # never moves: nothing to score
            "api:queue.depth": np.where(index >= onset, 2.0, 0.0),  # 0 has no size to scale by
        },
        index=index,
    )
    evidence = gather_evidence(window, onset, relative_floor=0.05, persist=2)
    # 20 % lost against a scale of 5 % of its level; 4 failures/s against 5 % of ~20 good ones.
    assert evidence.strength[ratio] == pytest.approx(20.0 / (0.05 * 100.0))
    assert evidence.surprise[ratio] == pytest.approx(evidence.strength[ratio])
    assert evidence.strength[failed] == pytest.approx(4.0 / (0.05 * window[ok][:30].median()))
    assert evidence.dropped == {
        "api:process.threads": "constant before the onset",
        "api:queue.depth": "constant before the onset",
    }
    # The service whose availability fell ranks above noisy ones that did nothing.
    noise = {f"s{i}:m": rng.normal(0, 1, 40) for i in range(6)}
    quiet = pd.DataFrame({ratio: window[ratio], **noise}, index=index)
    assert make_method("run-topology").rank(quiet, onset).services()[0][0] == "api"


def test_too_short_a_pre_onset_period_is_a_clear_error(rng):
    window, _ = noisy_window(rng, 4)
    with pytest.raises(RCAInputError, match="before the onset"):
        make_method("run-fast").rank(window, window.index[1])


def test_all_series_flat_is_a_clear_error(rng):
    window, onset = noisy_window(rng, 4)
    window.loc[:] = 1.0
    with pytest.raises(RCAInputError, match="constant"):
        make_method("run").rank(window, onset)


# ---- call graphs ---------------------------------------------------------------------------


def test_call_graph_sources(tmp_path):
    from rca.causal.call_graph import from_service_graph_series, read_call_graph
    from rca.types import series_name

    names = [
        series_name(
            "otelcol",
            "traces_service_graph_request_total",
            "rate",
            {"client": "frontend", "server": "cart"},
        ),
        series_name("cart", "container.cpu.utilization"),
    ]
    assert list(from_service_graph_series(names).edges) == [("frontend", "cart")]
    csv_file = tmp_path / "dependency.csv"
    csv_file.write_text("Source,Target,Weight\nfrontend,cart,1\ncart,redis,1\n")
    assert set(read_call_graph(csv_file).edges) == {("frontend", "cart"), ("cart", "redis")}
    stack = tmp_path / "stack.json"
    stack.write_text('{"calls": [["gateway", "router"], {"from": "router", "to": "decode"}]}')
    assert set(read_call_graph(stack).edges) == {("gateway", "router"), ("router", "decode")}
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(RCAInputError, match="caller and callee"):
        read_call_graph(bad)


def test_run_reads_the_call_graph_from_service_graph_metrics(rng):
    from rca.types import series_name

    window, onset, _ = chain_incident(rng)
    for client, server in (("frontend", "mid"), ("mid", "root")):
        name = series_name(
            "otelcol",
            "traces_service_graph_request_total",
            "rate",
            {"client": client, "server": server},
        )
        window[name] = 100 + rng.normal(0, 1, len(window))
    assert make_method("run-topology").rank(window, onset).services()[0][0] == "root"


# ---- a total ranking -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["run-nograph", "run-topology", "run-fast"])
def test_quiet_services_are_ordered_by_their_evidence_never_tied_last(rng, method):
    """One loud service, eleven that barely move (robust z from 0.5 to 2.7, under the walk's
    offset) and one that is constant: every service gets its own place, the quiet ones in
    the order of how far they moved, the constant one last."""
    index = pd.date_range("2026-01-01", periods=120, freq="10s", tz="UTC")
    onset_row = 90
    window = pd.DataFrame(
        {f"s{i:02d}:latency": rng.normal(0.0, 1.0, 120) for i in range(12)}, index=index
    )
    window["flat:latency"] = 1.0
    window.iloc[onset_row:, 0] += 30.0  # s00: the incident
    # s01..s11: the same small noise after the onset, shifted by 0.3 .. 2.3 robust spreads.
    after = rng.normal(0.0, 0.01, 120 - onset_row)
    for i in range(1, 12):
        calm = window.iloc[:onset_row, i]
        spread = max(
            1.4826 * (calm - calm.median()).abs().median(),
            (calm.quantile(0.75) - calm.quantile(0.25)) / 1.349,
            calm.std(ddof=0),
        )
        window.iloc[onset_row:, i] = calm.median() + (0.2 * i + 0.3) * spread + after
    result = make_method(method).rank(window, index[onset_row])
    ranking = result.services()
    scores = [score for _, score in ranking]
    assert len(set(scores)) == len(scores) == 13  # total: no tie anywhere
    assert [s for s, _ in ranking] == ["s00", *[f"s{i:02d}" for i in range(11, 0, -1)], "flat"]


@pytest.mark.parametrize("method", ["run-nograph", "run-topology"])
def test_changes_too_large_for_the_walk_to_tell_apart_are_ordered_by_their_evidence(rng, method):
    """A 300 ms delay on the fastest of five services of a few ms each, reaching two callers,
    one latency series per service and no call graph: every z is in the thousands, where the
    walk's anomaly reads 1.0 for all three. The root moved furthest against its own spread."""
    index = pd.date_range("2026-01-01", periods=120, freq="1s", tz="UTC")
    base = {"cart": 0.002, "front": 0.004, "orders": 0.005, "user": 0.01, "ship": 0.03}
    window = pd.DataFrame(
        {
            f"{s}:http.server.request.duration:p90": m * (1 + rng.normal(0, 0.02, 120))
            for s, m in base.items()
        },
        index=index,
    )
    for service in ("cart", "front", "orders"):
        window.loc[index[100] :, f"{service}:http.server.request.duration:p90"] += 0.3
    ranking = make_method(method).rank(window, index[100]).services()
    assert [s for s, _ in ranking][:3] == ["cart", "front", "orders"]
    assert ranking[0][1] > ranking[1][1] > ranking[2][1]


def test_when_nothing_crosses_the_offset_the_weak_evidence_still_orders_every_service(rng):
    """No series is anomalous enough for the walk (it then spreads evenly, which says
    nothing): the services follow their robust evidence, none tied."""
    index = pd.date_range("2026-01-01", periods=60, freq="60s", tz="UTC")
    window = pd.DataFrame({f"s{i}:latency": rng.normal(0.0, 1.0, 60) for i in range(6)}, index)
    window.iloc[40:, 2] += 2.0  # s2 moved a little, under the offset
    result = make_method("run-nograph").rank(window, index[40])
    scores = dict(result.services())
    assert len(set(scores.values())) == 6
    assert result.services()[0][0] == "s2" and max(scores.values()) < 0
    assert result.confidence == 0.0


@pytest.mark.parametrize("guard", [True, False])
def test_an_onset_two_steps_late_neither_defines_normal_nor_hides_the_change(rng, guard):
    """Two fault rows just before a late onset: without the guard band they count as normal
    (the spread grows by the very change being measured); with it the strength is unchanged."""
    from rca.detect.robust import gather_evidence

    window, onset, _ = chain_incident(rng)
    late = onset + 2 * (window.index[1] - window.index[0])
    exact = gather_evidence(window, onset).strength
    shifted = gather_evidence(window, late, guard=guard).strength
    cpu = "root:container.cpu.utilization"
    if guard:
        assert shifted[cpu] == pytest.approx(exact[cpu], rel=0.05)
    else:
        assert shifted[cpu] < 0.8 * exact[cpu]


def test_inside_a_service_a_clear_change_is_ordered_by_its_surprise(rng):
    """Memory grows 15x while the CPU it takes along saturates (the stress tool's memory
    fault): the 5 % floor puts memory's strength below the CPU's, its own noise does not."""
    rows, onset_row = 240, 180
    index = pd.date_range("2026-03-01", periods=rows, freq="5s", tz="UTC")
    step = np.arange(rows) >= onset_row
    window = pd.DataFrame(
        {
            "orders:container.cpu.utilization": np.where(step, 99.5, 1.3)
            + rng.normal(0, 0.15, rows),
            "orders:container.memory.usage": np.where(step, 2.3e8, 1.5e7)
            + rng.normal(0, 1e5, rows),
            "orders:http.server.request.duration:p90": 0.05 + rng.normal(0, 0.005, rows),
            "front:http.server.request.duration:p90": 0.08 + rng.normal(0, 0.005, rows),
        },
        index=index,
    )
    result = make_method("run-topology").fit(None).rank(window, index[onset_row])
    anomaly = {c.series: c.evidence.anomaly for c in result.causes}
    # By strength, CPU would come first.
    assert anomaly["orders:container.cpu.utilization"] > anomaly["orders:container.memory.usage"]
    assert [c.series for c in result.causes[:2]] == [
        "orders:container.memory.usage",
        "orders:container.cpu.utilization",
    ]
