"""(Personalized) PageRank by power iteration on a dense weighted adjacency matrix."""

from __future__ import annotations

import numpy as np


def pagerank(
    adjacency: np.ndarray,
    personalization: np.ndarray | None = None,
    damping: float = 0.85,
    tol: float = 1e-10,
    max_iter: int = 1000,
) -> np.ndarray:
    """Stationary distribution of a walk that follows edge ``i -> j`` with probability
    proportional to ``adjacency[i, j]`` and teleports with probability ``1 - damping``.

    ``r = damping * (P' r + dangling mass * v) + (1 - damping) * v`` where ``P`` is the
    row-normalised adjacency and ``v`` the personalization (uniform by default); nodes without
    out-edges send their mass along ``v`` (Page et al., 1999; networkx does the same).
    """
    a = np.asarray(adjacency, dtype=float)
    n = a.shape[0]
    if n == 0:
        return np.zeros(0)
    v = np.full(n, 1.0 / n) if personalization is None else np.asarray(personalization, float)
    if v.shape != (n,) or np.any(v < 0) or v.sum() <= 0:
        raise ValueError("personalization must be n non-negative weights with a positive sum")
    v = v / v.sum()
    out = a.sum(axis=1)
    dangling = out == 0
    p = np.divide(a, out[:, None], out=np.zeros_like(a), where=~dangling[:, None])
    r = v.copy()
    for _ in range(max_iter):
        nxt = damping * (p.T @ r + r[dangling].sum() * v) + (1 - damping) * v
        if np.abs(nxt - r).sum() < tol:
            return nxt
        r = nxt
    return r
