"""The detector's scale of normal: routine spikes widen it, a few extreme rows do not blind it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rca.detect.robust import STD_CAP, robust_spread


def _spread(values: np.ndarray) -> float:
    return float(robust_spread(pd.DataFrame({"s": values}), 0.0)[1]["s"])


def test_one_extreme_row_widens_the_scale_at_most_std_cap_robust_scales():
    # Latency near 10 ms with 1 ms of noise; one row of an earlier incident at 36 s.
    values = 0.010 + np.random.default_rng(0).normal(0, 0.001, 30)
    values[7] = 36.0
    spread = _spread(values)
    assert spread <= STD_CAP * 0.0015  # robust scale ~1 ms: a 100 ms delay still stands out
    assert 0.1 / spread > 10


def test_a_value_repeated_to_rounding_keeps_its_spikes_in_the_scale():
    # One value repeated, but one ulp apart in places (as parsed or averaged): its MAD is
    # ~1e-19, not 0, and must not become a scale to cap the standard deviation to.
    values = np.full(30, 0.0048)
    values[::2] = np.nextafter(0.0048, 0.0)
    values[[9, 17, 25]] = [0.04625, 0.04625, 0.0475]
    mad = (pd.Series(values) - pd.Series(values).median()).abs().median()
    assert 0 < mad < 1e-17  # the rounding this is about
    assert _spread(values) > 0.005


def test_a_mostly_zero_rate_with_chatter_keeps_its_routine_spikes_in_the_scale():
    rng = np.random.default_rng(1)
    values = np.zeros(300)
    values[rng.choice(300, 100, replace=False)] = 0.01  # chatter: IQR > 0, MAD 0
    values[rng.choice(300, 6, replace=False)] = 50.0  # bursts it has had all along
    assert 50.0 / _spread(values) < 10
