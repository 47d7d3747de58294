"""Pairwise linear Granger causality (F-test), vectorised over candidate causes.

For an effect ``y`` and a candidate cause ``x`` at lag order ``p`` the restricted model regresses
``y_t`` on ``1, y_{t-1..t-p}`` and the unrestricted one adds ``x_{t-1..t-p}``;

    F = ((RSS_r - RSS_u) / p) / (RSS_u / (T - 2p - 1))

(Granger 1969; the ``ssr_ftest`` of statsmodels' ``grangercausalitytests``). By Frisch-Waugh,
``RSS_u = RSS_r - b' (M' M)^-1 b`` with ``M`` the cause's lags residualised on the restricted
design and ``b = M' e_r``, so every cause is tested against one effect in one batched solve.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def lagged(x: np.ndarray, lags: int) -> np.ndarray:
    """``(T - lags, lags)`` matrix of ``x_{t-1} .. x_{t-lags}`` for ``t = lags .. T-1``."""
    return np.column_stack([x[lags - k : len(x) - k] for k in range(1, lags + 1)])


def granger_pvalues(data: np.ndarray, lags: int) -> np.ndarray:
    """``p[i, j]``: p-value of "series ``i`` Granger-causes series ``j``" at lag order ``lags``.

    ``data`` is ``(T, N)`` without NaNs. The diagonal is 1. Pairs whose regression is degenerate
    (a cause collinear with the effect's own past) get p = 1.
    """
    steps, n = data.shape
    dof = steps - lags - (2 * lags + 1)
    if dof < 1:
        raise ValueError(f"{steps} rows are too few for a Granger test at lag {lags}")
    pvalues = np.ones((n, n))
    cause_lags = np.stack([lagged(data[:, i], lags) for i in range(n)])  # (N, T', p)
    for j in range(n):
        y = data[lags:, j]
        design = np.column_stack([np.ones(len(y)), lagged(data[:, j], lags)])
        q, _ = np.linalg.qr(design)
        e_r = y - q @ (q.T @ y)
        rss_r = float(e_r @ e_r)
        m = cause_lags - q @ np.einsum("tk,ntp->nkp", q, cause_lags)  # (N, T', p)
        gram = np.einsum("ntp,ntq->npq", m, m) + 1e-12 * np.eye(lags)
        b = np.einsum("ntp,t->np", m, e_r)
        explained = np.einsum("np,np->n", b, np.linalg.solve(gram, b[..., None])[..., 0])
        rss_u = np.maximum(rss_r - explained, 1e-300)
        f = ((rss_r - rss_u) / lags) / (rss_u / dof)
        p = stats.f.sf(f, lags, dof)
        p[~np.isfinite(p)] = 1.0
        pvalues[:, j] = p
        pvalues[j, j] = 1.0
    return pvalues
