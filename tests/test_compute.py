"""One thread rule for torch and NumPy's BLAS (rca/compute.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from rca.compute import configure_torch_threads, torch_threads


def _blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


@pytest.fixture
def restored(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "")
    before_torch, before_blas = torch.get_num_threads(), max(_blas_threads(), default=1)
    yield monkeypatch
    torch.set_num_threads(before_torch)
    threadpool_limits(before_blas, user_api="blas")


def test_the_rule_reaches_torch_and_numpys_blas(restored):
    np.ones((2, 2)) @ np.ones((2, 2))  # NumPy's BLAS is loaded
    assert _blas_threads(), "NumPy without a BLAS thread pool"
    restored.setenv("RCA_TORCH_THREADS", "1")
    assert configure_torch_threads() == 1
    assert torch.get_num_threads() == 1 and _blas_threads() == {1}


def test_a_bad_setting_is_a_clear_error(restored):
    restored.setenv("RCA_TORCH_THREADS", "two")
    with pytest.raises(SystemExit, match="RCA_TORCH_THREADS must be a whole number"):
        torch_threads()
