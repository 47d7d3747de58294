"""``random``: a seeded random order of the window's series (RCAEval's "dummy")."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from rca.detect.flat import flat_columns
from rca.methods.base import RCAMethod, causes_from_scores
from rca.types import Alert, RCAResult
from rca.window import Window


class RandomRanker(RCAMethod):
    """A random permutation of the series that are not constant over the window, as in
    RCAEval's dummy (which drops constant columns, shuffles, then deduplicates services: a
    service with more series is likelier to rank high)."""

    name = "random"

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def _rank(self, window: Window, onset: pd.Timestamp, alert: Alert | None) -> RCAResult:
        # Seeded per window so that a case ranks the same whatever ran before it.
        dropped = flat_columns(window)
        kept = window.columns.drop(dropped)
        fingerprint = zlib.crc32("|".join(map(str, window.columns)).encode())
        key = None if self.seed is None else [self.seed, fingerprint, window.index[0].value]
        rng = np.random.default_rng(key)
        scores = pd.Series(rng.permutation(len(kept)).astype(float), kept)
        return RCAResult(self.name, causes_from_scores(scores), dropped=tuple(dropped))
