"""The ``rca`` command end to end, in a subprocess as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from toys import REPO

EXAMPLE = REPO / "examples" / "sample-incident"


def rca(*args: str, env_root: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rca.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def test_analyze_the_bundled_example_finds_its_root_cause():
    meta = json.loads((EXAMPLE / "incident.json").read_text())
    done = rca(
        "analyze",
        str(EXAMPLE / "incident.csv"),
        "--onset",
        meta["onset"],
        "--method",
        "baro",
        "--truth",
        meta["root_cause"]["service"],
    )
    assert done.returncode == 0, done.stderr
    assert f"truth {meta['root_cause']['service']}: #1 " in done.stdout


def test_analyze_writes_json(tmp_path):
    meta = json.loads((EXAMPLE / "incident.json").read_text())
    out = tmp_path / "ranking.json"
    done = rca(
        "analyze", str(EXAMPLE / "incident.csv"), "--onset", meta["onset"], "--json", str(out)
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(out.read_text())
    assert payload["ranking"][0]["service"] and payload["series"]


@pytest.mark.parametrize(
    ("content", "onset", "message"),
    [
        ("a_cpu,b_cpu\n1,2\n3,4\n", "1", "no time column"),
        ("time,a_cpu\n1,2\n2,3\n3,4\n", "99", "outside the window"),
        ("time,a_cpu\n1,2\n2,3\n3,4\n", "soon", "cannot read"),
        ("time\n1\n2\n", "1", "no series columns"),
    ],
)
def test_analyze_bad_input_is_a_clear_error(tmp_path, content, onset, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    done = rca("analyze", str(path), "--onset", onset)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_analyze_all_nan_and_constant_series_is_not_a_crash(tmp_path):
    rows = "\n".join(f"{t},5,,{t % 3 + (10 if t >= 20 else 0)}" for t in range(40))
    path = tmp_path / "flat.csv"
    path.write_text("time,a_cpu,b_cpu,c_cpu\n" + rows + "\n")
    done = rca("analyze", str(path), "--onset", "20")
    assert done.returncode == 0, done.stderr
    assert "2 dropped" in done.stdout and " c " in done.stdout


def test_bench_on_synthetic_writes_the_documented_json(tmp_path):
    out = tmp_path / "bench.json"
    done = rca(
        "bench",
        "--dataset",
        "synthetic",
        "--methods",
        "random,baro",
        "--limit",
        "4",
        "--json",
        str(out),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())["results"]
    assert [r["method"] for r in results] == ["random", "baro"]
    keys = {"dataset", "method", "cases", "ac1", "ac3", "avg5", "seconds_median", "seconds_p90"}
    assert all(keys <= set(r) and r["cases"] == 4 for r in results)
    assert "AC@1" in done.stdout and "Avg@5" in done.stdout


def test_bench_bad_folder_and_bad_method_are_clear_errors(tmp_path):
    done = rca("bench", "--dataset", str(tmp_path), "--quiet")
    assert done.returncode == 2 and "RCAEval's layout" in done.stderr
    done = rca("bench", "--dataset", "synthetic", "--methods", "nope", "--quiet")
    assert done.returncode == 2 and "unknown method" in done.stderr
