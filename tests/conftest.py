"""Shared fixtures: seeded toy windows and the shared benchmark data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rca.settings import Settings


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = Settings().resolved_data_root()
    if root is None or not root.is_dir():
        pytest.skip("shared benchmark data not found (set RCA_DATA_ROOT)")
    return root
