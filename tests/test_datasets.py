"""Loaders on the shared benchmark data (skipped without it) and on folders made here."""

from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from rca.datasets import DATASETS, RCAEvalFolder, open_dataset
from rca.datasets.petshop import fault_of_command
from rca.datasets.synthetic import Synthetic, SyntheticConfig
from rca.datasets.wide_csv import frame_to_window, legacy_column_name, read_wide_csv
from rca.errors import DatasetLayoutError, RCAInputError
from rca.types import service_of
from rca.window import check_window


def test_legacy_columns_map_to_otel_names():
    assert legacy_column_name("carts_cpu") == "carts:container.cpu.utilization"
    assert legacy_column_name("carts-db_mem") == "carts-db:container.memory.usage"
    assert legacy_column_name("carts_lat_90") == "carts:http.server.request.duration:p90"
    assert legacy_column_name("cartservice_latency-50") == (
        "cartservice:http.server.request.duration:p50"
    )
    assert legacy_column_name("carts_lod") == "carts:http.server.request.duration:rate"
    assert legacy_column_name("queue-master_socket") == "queue-master:socket"
    assert legacy_column_name("a:b:p99") == "a:b:p99"


def test_a_deployments_pods_count_for_the_deployment_and_stay_apart(tmp_path):
    # Two replicas and a pod that came back under a new name after a kill: one service.
    columns = [
        "carts-5f6585d649-fnmft_cpu",
        "carts-5f6585d649-wc2lz_cpu",
        "carts-7b598fc7d-lmggd_cpu",
    ]
    names = [legacy_column_name(c) for c in columns]
    assert names[0] == "carts:container.cpu.utilization{k8s.pod.name=carts-5f6585d649-fnmft}"
    assert len(set(names)) == 3 and {service_of(n) for n in names} == {"carts"}
    # Words, StatefulSet ordinals and databases are names, not pods.
    for column in ["user-profile-store_cpu", "robot-1_cpu", "carts-db_mem"]:
        assert "k8s.pod.name" not in legacy_column_name(column)
    frame = pd.DataFrame({"time": [0, 1, 2], **{c: [1.0, 2.0, 3.0] for c in columns}})
    assert {service_of(c) for c in frame_to_window(frame).columns} == {"carts"}


def _write_rcaeval_case(folder: Path, rng, inject: int = 1_700_000_600) -> None:
    folder.mkdir(parents=True)
    times = np.arange(inject - 900, inject + 900)
    frame = pd.DataFrame({"time": times})
    for service in ("cartservice", "checkoutservice", "redis"):
        frame[f"{service}_cpu"] = rng.normal(10, 1, len(times))
        frame[f"{service}_mem"] = rng.normal(1e8, 1e5, len(times))
    frame.loc[frame["time"] >= inject, "checkoutservice_cpu"] += 30
    frame.to_csv(folder / "data.csv", index=False)
    (folder / "inject_time.txt").write_text(f"{inject}\n")


def test_rcaeval_layout_is_read_and_cut_to_600_plus_600_seconds(tmp_path, rng):
    _write_rcaeval_case(tmp_path / "re-test" / "checkoutservice_cpu" / "1", rng)
    dataset = open_dataset(str(tmp_path / "re-test"), None)
    assert dataset.case_ids() == ["checkoutservice_cpu/1"]
    case = dataset.load("checkoutservice_cpu/1")
    assert case.truth.service == "checkoutservice" and case.truth.fault == "cpu"
    assert case.truth.metrics == {"container.cpu.utilization"}
    assert (case.window.index < case.onset).sum() == 600
    assert (case.window.index >= case.onset).sum() == 600
    check_window(case.window)


def test_layout_errors_are_clear(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="RCAEval's layout"):
        RCAEvalFolder(tmp_path / "empty").case_ids()
    with pytest.raises(DatasetLayoutError, match="neither a dataset"):
        open_dataset(str(tmp_path / "missing"), None)
    with pytest.raises(DatasetLayoutError, match="needs a data root"):
        open_dataset("rcd-sockshop", None)
    with pytest.raises(DatasetLayoutError):
        open_dataset("nezha-ob", tmp_path)
    with pytest.raises(DatasetLayoutError):
        open_dataset("petshop", tmp_path)
    bad = tmp_path / "bad" / "svc_cpu" / "1"
    bad.mkdir(parents=True)
    (bad / "data.csv").write_text("time,svc_cpu\n1,2\n")
    (bad / "inject_time.txt").write_text("not-a-time")
    with pytest.raises(DatasetLayoutError, match="inject_time"):
        RCAEvalFolder(tmp_path / "bad").load("svc_cpu/1")


def test_wide_csv_errors(tmp_path):
    no_time = tmp_path / "no_time.csv"
    no_time.write_text("a_cpu,b_cpu\n1,2\n3,4\n")
    with pytest.raises(RCAInputError, match="no time column"):
        read_wide_csv(no_time)
    with pytest.raises(RCAInputError, match="no such file"):
        read_wide_csv(tmp_path / "absent.csv")
    twice = tmp_path / "twice.csv"
    twice.write_text("time,a_cpu,a:container.cpu.utilization\n1,2,3\n2,3,4\n")
    with pytest.raises(RCAInputError, match="same series twice"):
        read_wide_csv(twice)
    words = tmp_path / "words.csv"
    words.write_text("time,a_cpu\nmonday,1\ntuesday,2\n")
    with pytest.raises(RCAInputError, match="not times"):
        read_wide_csv(words)


def test_synthetic_cases_are_seeded_and_keep_the_true_graph():
    first = Synthetic(SyntheticConfig(seed=5)).load("0003")
    again = Synthetic(SyntheticConfig(seed=5)).load("0003")
    pd.testing.assert_frame_equal(first.window, again.window)
    assert first.true_graph is not None and first.true_graph.number_of_edges() > 0
    assert first.truth.service in {service_of(c) for c in first.window.columns}
    assert set(first.true_graph.nodes) <= set(first.window.columns)


def test_synthetic_hard_cases_have_a_louder_non_root():
    case = Synthetic(SyntheticConfig(seed=1, hard=True)).load("0000")
    before = case.window[case.window.index < case.onset]
    after = case.window[case.window.index >= case.onset]
    iqr = (before.quantile(0.75) - before.quantile(0.25)).clip(lower=1e-9)
    loudest = ((after - before.median()).abs() / iqr).max().idxmax()
    assert service_of(loudest) != case.truth.service


def test_sim_alert_names_the_slo_the_incident_broke():
    dataset = open_dataset("sim:sockshop", None)
    dropped = dataset.load("0450")  # drop faults (ids 400-499) slow the front-end down
    assert dropped.truth.fault == "drop" and dropped.alert.services == ("front-end",)
    assert dropped.alert.series and all(
        s.startswith("front-end:http.server.request.duration:p90") for s in dropped.alert.series
    )
    assert set(dropped.alert.series) <= set(dropped.window.columns)
    assert dataset.load("0000").alert is None  # a CPU hog there breaks no SLO


def test_sim_large_is_a_fixed_train_ticket_sized_stack():
    dataset = open_dataset("sim:large", None, seed=3)
    case = dataset.load("0007")
    calls = case.call_graph
    assert calls.number_of_nodes() == 45 and nx.is_directed_acyclic_graph(calls)
    assert nx.descendants(calls, "gateway") == set(calls.nodes) - {"gateway"}
    assert sum(1 for n in calls.nodes if n.endswith("-mongo")) == 12
    assert {service_of(c) for c in case.window.columns} == set(calls.nodes)
    other = open_dataset("sim:large", None, seed=4).load("0007")
    assert set(other.call_graph.edges) == set(calls.edges)  # one system, whatever the seed
    with pytest.raises(DatasetLayoutError, match="large"):
        open_dataset("sim:nope", None)


def test_sim_datasets_come_from_an_installed_provider(monkeypatch):
    """The library finds the stack simulator through its entry point only (services/ is never
    imported by rca/); without one, sim: says what is missing."""
    import rca.datasets

    assert "sockshop" in rca.datasets.sim_stacks()
    monkeypatch.setattr(rca.datasets, "PROVIDERS_GROUP", "rca.datasets.none-installed")
    assert rca.datasets.sim_stacks() == []
    with pytest.raises(DatasetLayoutError, match="sim:sockshop needs the stack simulator"):
        open_dataset("sim:sockshop", None)


def test_helpers():
    assert fault_of_command("aws ssm put-parameter --name '/petstore/searchdelay'") == "latency"
    assert fault_of_command("python -m issue_dynamo_db_requests -num_iterations=800") == (
        "request-overload"
    )
    assert fault_of_command("echo") is None


# ---- the shared benchmark data -------------------------------------------------------------


def test_rcd_sockshop_splices_normal_before_anomalous(data_root):
    dataset = open_dataset("rcd-sockshop", data_root)
    ids = dataset.case_ids()
    assert len(ids) == 50
    case = dataset.load("orders-mem/5")  # its normal file was recorded after the anomalous one
    raw = pd.read_csv(data_root / "rcd-sockshop" / "orders-mem" / "5" / "anomalous.csv")
    assert case.onset == pd.Timestamp(raw["time"].min(), unit="s", tz="UTC")
    assert (case.window.index >= case.onset).sum() == len(raw)
    assert case.window.index[case.window.index < case.onset][-1] == case.onset - pd.Timedelta(
        seconds=1
    )
    assert case.truth.service == "orders" and case.truth.fault == "mem"
    check_window(case.window)


def test_nezha_aligns_on_time_and_stops_at_the_next_fault(data_root):
    dataset = open_dataset("nezha-ob", data_root)
    ids = dataset.case_ids()
    assert len(ids) == 56
    first, second = dataset.load(ids[0]), dataset.load(ids[1])
    check_window(first.window)
    # adservice's TimeStamp on 2022-08-22 is 2e8 s ahead; aligned on Time, it shares the grid.
    ad = first.window["adservice:container.cpu.utilization"]
    assert ad.notna().mean() > 0.9
    assert first.window.index[-1] < second.onset
    assert first.truth.service == "frontend" and first.truth.fault == "cpu_contention"
    assert first.history is not None and first.history.index[0] > dataset.load(ids[23]).onset
    assert first.call_graph is not None and first.call_graph.has_edge("frontend", "cartservice")
    memory = first.window["frontend:container.memory.usage"].dropna()
    assert memory.median() > 1e6  # MiB in the file, bytes (OTel's unit) in the window


def test_petshop_splices_normal_data_where_it_exists(data_root):
    dataset = open_dataset("petshop", data_root)
    ids = dataset.case_ids()
    assert len(ids) == 68
    low = dataset.load("low_traffic/test/issue_9")
    assert (low.window.index < low.onset).sum() > 100  # the noissue rows
    assert low.truth.service == "payforadoption_AWS::ECS::Container"
    assert low.truth.fault == "latency"
    temporal = dataset.load(next(i for i in ids if i.startswith("temporal_traffic1")))
    assert len(temporal.window) == 5 and "MISSING" in temporal.notes[0]
    check_window(low.window)
    # target.json's SLO is the alert: PetSite's mean latency or availability.
    alerts = {dataset.load(i).alert for i in ids[::7]}
    assert {a.services for a in alerts} == {("PetSite",)}
    assert {a.series for a in alerts} == {("PetSite:latency:mean",), ("PetSite:availability:mean",)}


def test_every_registered_dataset_opens(data_root):
    for entry in DATASETS:
        assert open_dataset(entry.name, data_root).case_ids()
