"""The published picture on real data, reproduced by ``rca bench`` (RCAEval ASE'24, Table 5)."""

from rca.datasets import open_dataset
from rca.eval.bench import pick_cases, run_bench


def test_pick_cases_spreads_the_limit():
    ids = [f"{fault}/{i}" for fault in ("cpu", "mem") for i in range(5)]
    assert pick_cases(ids, 2) == ["cpu/0", "mem/0"]
    assert pick_cases(ids, None) == ids and pick_cases(ids, 0) == []


def test_rcd_sockshop_reproduces_the_published_baselines(data_root):
    dataset = open_dataset("rcd-sockshop", data_root)
    rows, _ = run_bench([dataset], ["random", "nsigma", "baro"], progress=False)
    by_method = {row.method: row for row in rows}
    assert all(row.cases == 50 and row.errors == 0 for row in rows)
    # Published Avg@5: BARO 0.99, NSigma 0.98, random 0.34.
    assert by_method["baro"].avg5 >= 0.97
    assert by_method["nsigma"].avg5 >= 0.96
    assert 0.2 <= by_method["random"].avg5 <= 0.5


def test_a_failing_method_is_counted_not_fatal(monkeypatch):
    from rca.datasets import Synthetic, SyntheticConfig
    from rca.methods.baro import BARO

    def boom(self, window, onset, alert):
        raise RuntimeError("boom")

    monkeypatch.setattr(BARO, "_rank", boom)
    rows, outcomes = run_bench(
        [Synthetic(SyntheticConfig(n_cases=2))], ["baro", "nsigma"], progress=False
    )
    assert rows[0].errors == 2 and rows[0].ac1 == 0.0
    assert rows[1].errors == 0
    assert 0.0 <= rows[1].ac1 <= 1.0
    assert "boom" in outcomes[0].error
