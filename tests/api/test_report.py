"""The report page: names from telemetry are escaped (in the page and in the pictures, where a
"$" would start matplotlib's mathtext), the pictures are PNGs."""

from __future__ import annotations

import base64
import re

import pandas as pd
import pytest

from rca.methods import make_method
from rca.report import render_report
from rca.types import series_name


@pytest.mark.parametrize("evil", ['<script>alert("x")</script>', "<script>$\\frac$</script>"])
def test_names_from_telemetry_cannot_inject_html_or_mathtext(evil, rng):
    index = pd.date_range("2026-01-01", periods=60, freq="5s", tz="UTC")
    window = pd.DataFrame(
        {
            series_name(evil, "cpu"): rng.normal(0, 1, 60),
            series_name("ok", "cpu"): rng.normal(0, 1, 60),
        },
        index=index,
    )
    window.iloc[40:, 0] += 25
    result = make_method("run-topology").rank(window, index[40])
    page = render_report("id<1>", evil, result, window, index[40])
    assert "<script>" not in page and "&lt;script&gt;" in page
    pictures = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(pictures) == 2  # the service graph and the series
    assert all(base64.b64decode(p).startswith(b"\x89PNG") for p in pictures)
