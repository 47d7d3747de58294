"""Shared fixtures: seeded toy windows and the shared benchmark data (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from rca.settings import Settings

# The suite's servers (in process and the `rca serve` subprocesses, which inherit this) learn
# their graph per incident: a background fit beside every test server would cost minutes of CPU.
# tests/api/test_graph_api.py switches it on where it is the subject.
os.environ.setdefault("RCA_GRAPH_REFRESH_SECONDS", "0")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = Settings().resolved_data_root()
    if root is None or not root.is_dir():
        pytest.skip("shared benchmark data not found (set RCA_DATA_ROOT)")
    return root
