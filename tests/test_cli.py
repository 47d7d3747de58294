"""The ``rca`` command end to end: ``analyze`` and the bench's progress in process, ``bench`` in
a subprocess as a user runs it."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from toys import REPO

from rca.cli import main

EXAMPLE = REPO / "examples" / "sample-incident"


def analyze(capsys, *args: str) -> tuple[int, str, str]:
    """``rca analyze`` in this process (no interpreter and torch import per call)."""
    code = main(["analyze", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_analyze_the_bundled_example_finds_its_root_cause(capsys):
    meta = json.loads((EXAMPLE / "incident.json").read_text())
    code, out, err = analyze(
        capsys,
        str(EXAMPLE / "incident.csv"),
        "--onset",
        meta["onset"],
        "--method",
        "baro",
        "--truth",
        meta["root_cause"]["service"],
    )
    assert code == 0, err
    assert f"truth {meta['root_cause']['service']}: #1 " in out
    assert "(given)" in out


def test_analyze_without_an_onset_detects_it_and_still_finds_the_cause(capsys):
    meta = json.loads((EXAMPLE / "incident.json").read_text())
    truth = meta["root_cause"]["service"]
    code, out, err = analyze(
        capsys, str(EXAMPLE / "incident.csv"), "--method", "baro", "--truth", truth
    )
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.startswith("onset: "))
    detected = pd.Timestamp(line.split()[1])
    assert abs(detected - pd.Timestamp(meta["onset"])) <= pd.Timedelta(seconds=5)  # one step
    assert "detected, change-point, confidence" in line
    assert f"truth {truth}: #1 " in out


def test_analyze_takes_the_onset_from_an_incident_json_call_graph(capsys):
    # The README's `rca analyze window.csv --call-graph incident.json`: the file holds the onset.
    meta = json.loads((EXAMPLE / "incident.json").read_text())
    code, out, err = analyze(
        capsys,
        str(EXAMPLE / "incident.csv"),
        "--call-graph",
        str(EXAMPLE / "incident.json"),
        "--method",
        "baro",
    )
    assert code == 0, err
    assert f"onset: {pd.Timestamp(meta['onset']).isoformat()} (from " in out


def test_analyze_alert_time_bounds_the_detected_onset(tmp_path, capsys):
    # Two changes; an alert between them means the first one is the incident.
    rng = np.random.default_rng(0)
    level = np.r_[np.zeros(20), np.full(40, 5.0), np.full(20, 12.0)]
    rows = [f"{t},{1 + rng.normal(0, 0.1) + level[t]:.4f},{2 + level[t]:.4f}" for t in range(80)]
    path = tmp_path / "two.csv"
    path.write_text("time,a_cpu,b_cpu\n" + "\n".join(rows) + "\n")
    code, out, err = analyze(capsys, str(path), "--method", "nsigma")
    assert code == 0, err
    assert "onset: 1970-01-01T00:01:00+00:00 (detected" in out
    code, out, err = analyze(capsys, str(path), "--method", "nsigma", "--alert-time", "45")
    assert code == 0, err
    assert "onset: 1970-01-01T00:00:20+00:00 (detected" in out


def test_analyze_writes_json_creating_its_folder(tmp_path, capsys):
    out_path = tmp_path / "new" / "folder" / "ranking.json"
    code, _, err = analyze(
        capsys, str(EXAMPLE / "incident.csv"), "--method", "baro", "--json", str(out_path)
    )
    assert code == 0, err
    payload = json.loads(out_path.read_text())
    assert payload["ranking"][0]["service"] and payload["series"]
    assert payload["onset_method"].startswith("detected") and 0 < payload["onset_confidence"] <= 1


def test_analyze_history_from_a_file_or_a_span_of_the_csv(tmp_path, capsys):
    csv_path = str(EXAMPLE / "incident.csv")
    code, out, err = analyze(capsys, csv_path, "--method", "baro", "--history-span", "10m")
    assert code == 0, err
    assert "32 series x 240 rows" not in out and "series x " in out  # the span left the window
    history = tmp_path / "normal.csv"
    pd.read_csv(csv_path).iloc[:100].to_csv(history, index=False)
    code, out, err = analyze(capsys, csv_path, "--method", "baro", "--history", str(history))
    assert code == 0, err
    assert "32 series x 240 rows" in out


@pytest.mark.parametrize(
    ("content", "onset", "message"),
    [
        ("a_cpu,b_cpu\n1,2\n3,4\n", "1", "no time column"),
        ("time,a_cpu\n1,2\n2,3\n3,4\n", "99", "outside the window"),
        ("time,a_cpu\n1,2\n2,3\n3,4\n", "soon", "cannot read"),
        ("time\n1\n2\n", "1", "no series columns"),
        # Onset at the last row: one row after it, every series flat (was an empty ranking, rc 0).
        ("time,a_cpu\n" + "".join(f"{t},{t % 3}\n" for t in range(10)), "9", "from it on"),
        ("time,a_cpu,b_cpu\n" + "".join(f"{t},x,n/a\n" for t in range(10)), "5", "no series"),
    ],
)
def test_analyze_bad_input_is_a_clear_error(tmp_path, capsys, content, onset, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, out, err = analyze(capsys, str(path), "--onset", onset, "--method", "baro")
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_analyze_bad_arguments_are_one_line_errors_before_any_work(tmp_path, capsys):
    csv_path = str(EXAMPLE / "incident.csv")
    garbage = tmp_path / "calls.json"
    garbage.write_bytes(bytes(range(256)))
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    empty_graph = tmp_path / "empty-graph.json"
    empty_graph.write_text('{"nodes": [], "edges": []}')
    bad_edge = tmp_path / "bad-edge.json"
    bad_edge.write_text('{"nodes": ["a:x", "b:y"], "edges": [[-1, 0, 1.0]]}')
    binary_csv = tmp_path / "calls.csv"
    binary_csv.write_bytes(b"\xff\xfe\x00garbage")
    cases = [
        ([str(tmp_path)], "is a folder"),
        ([csv_path, "--call-graph", str(garbage)], "is not a call graph"),
        ([csv_path, "--call-graph", str(binary_csv)], "is not a call graph"),
        ([csv_path, "--call-graph", str(listed)], "JSON object"),
        ([csv_path, "--call-graph", str(tmp_path / "none.csv")], "no such file"),
        ([csv_path, "--top", "-3"], "--top must be a positive"),
        ([csv_path, "--top", "0"], "--top must be a positive"),
        ([csv_path, "--json", str(tmp_path)], "is a folder"),
        ([csv_path, "--json", str(garbage / "x.json")], "cannot create its folder"),
        ([csv_path, "--history-span", "10h"], "--history-span"),
        ([csv_path, "--history", str(EXAMPLE / "incident.json")], "incident.json"),
        ([csv_path, "--graph", str(garbage)], "is not JSON"),
        ([csv_path, "--graph", str(listed)], "is not a fitted graph"),
        ([csv_path, "--graph", str(empty_graph)], "non-empty list"),
        ([csv_path, "--graph", str(bad_edge)], "node indices 0..1"),
        ([csv_path, "--graph", str(tmp_path / "none.json")], "no such file"),
    ]
    for args, message in cases:
        code, out, err = analyze(capsys, *args, "--method", "baro")
        assert code == 2, (args, out)
        assert message in err and len(err.strip().splitlines()) == 1, (args, err)


def test_a_graph_fitted_once_serves_later_analyses(tmp_path, capsys):
    meta = json.loads((EXAMPLE / "incident.json").read_text())
    truth = meta["root_cause"]["service"]
    frame = pd.read_csv(EXAMPLE / "incident.csv")
    normal = tmp_path / "normal.csv"
    frame.iloc[:100].to_csv(normal, index=False)
    graph = tmp_path / "graph.json"
    code = main(["graph", str(normal), "--out", str(graph)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"32 series x 100 rows -> {len(json.loads(graph.read_text())['edges'])} edges" in out
    assert json.loads(graph.read_text())["nodes"] == list(frame.columns[1:])
    csv_path = str(EXAMPLE / "incident.csv")
    code, out, err = analyze(
        capsys, csv_path, "--onset", meta["onset"], "--graph", str(graph), "--truth", truth
    )
    assert code == 0, err
    assert f"graph: {graph} (32 of its 32 series in the window)" in out
    assert f"truth {truth}: #1 " in out
    code, out, err = analyze(
        capsys, csv_path, "--onset", meta["onset"], "--graph", str(graph), "--method", "baro"
    )
    assert code == 2 and "baro does not use a learned graph" in err
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"nodes": ["x:cpu"], "edges": []}')
    code, out, err = analyze(capsys, csv_path, "--onset", meta["onset"], "--graph", str(elsewhere))
    assert code == 2 and "none of its 1 series is in the window" in err
    code = main(["graph", str(normal), "--out", str(graph), "--call-graph", str(tmp_path)])
    assert code == 2 and "no such file" in capsys.readouterr().err
    frame.iloc[:20].to_csv(normal, index=False)
    code = main(["graph", str(normal), "--out", str(graph)])
    assert code == 2 and "20 rows of history" in capsys.readouterr().err


def test_analyze_all_nan_and_constant_series_is_not_a_crash(tmp_path, capsys):
    rows = "\n".join(f"{t},5,,{t % 3 + (10 if t >= 20 else 0)}" for t in range(40))
    path = tmp_path / "flat.csv"
    path.write_text("time,a_cpu,b_cpu,c_cpu\n" + rows + "\n")
    code, out, err = analyze(capsys, str(path), "--onset", "20", "--method", "run-topology")
    assert code == 0, err
    assert "2 dropped" in out and " c " in out
    assert "(every series dropped as flat)" in out  # a and b keep a place, last


def test_bench_on_synthetic_writes_the_documented_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["--methods", "random,baro", "--limit", "4", "--json", str(out), "--quiet"]
    code = main(["bench", "--dataset", "synthetic", *args])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    results = json.loads(out.read_text())["results"]
    assert [r["method"] for r in results] == ["random", "baro"]
    keys = {"dataset", "method", "cases", "ac1", "ac3", "avg5", "seconds_median", "seconds_p90"}
    assert all(keys <= set(r) and r["cases"] == 4 for r in results)
    assert "AC@1" in stdout and "Avg@5" in stdout


def test_bench_bad_folder_and_bad_method_are_clear_errors(tmp_path, capsys):
    assert main(["bench", "--dataset", str(tmp_path), "--quiet"]) == 2
    assert "RCAEval's layout" in capsys.readouterr().err
    assert main(["bench", "--dataset", "synthetic", "--methods", "nope", "--quiet"]) == 2
    assert "unknown method" in capsys.readouterr().err


def test_bench_progress_off_a_terminal_is_log_lines_with_counts_and_real_rates(capsys):
    code = main(["bench", "--dataset", "synthetic", "--limit", "3", "--methods", "nsigma"])
    err = capsys.readouterr().err  # stderr captured: not a terminal, as in CI or behind | tee
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("synthetic: ")]
    assert [line.split(",")[0].split(" in ")[0] for line in lines] == [
        "synthetic: 1/3 cases",
        "synthetic: 3/3 cases",
    ]
    assert "ETA" in lines[0] and "AC@1 nsigma=" in lines[-1]
    for line in lines:
        rate = re.search(r"([0-9.]+) (cases/s|s/case)", line)
        assert rate is not None and float(rate.group(1)) > 0, line
