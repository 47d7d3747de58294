"""Seeded toy windows shared by the tests (a module, not conftest, so imports are unambiguous)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent


def toy_window(
    rng: np.random.Generator,
    services: tuple[str, ...] = ("front", "cart", "db"),
    rows: int = 120,
    onset_row: int = 80,
    shifted: str | None = "cart",
    shift: float = 8.0,
) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Noisy CPU and latency per service; ``shifted``'s CPU jumps by ``shift`` sigma at onset."""
    index = pd.date_range("2026-03-01", periods=rows, freq="10s", tz="UTC", name="time")
    columns = {}
    for service in services:
        columns[f"{service}:container.cpu.utilization"] = 20 + rng.normal(0, 1, rows)
        columns[f"{service}:http.server.request.duration:p90"] = 0.1 + rng.normal(0, 0.01, rows)
    window = pd.DataFrame(columns, index=index)
    if shifted:
        window.iloc[onset_row:, window.columns.get_loc(f"{shifted}:container.cpu.utilization")] += (
            shift
        )
    return window, index[onset_row]
