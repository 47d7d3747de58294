"""One forecaster for all series at once, with learnable input gates that form the graph.

For target ``j`` and lag windows ``x_i = (x_i(t-L), ..., x_i(t-1))``:

    e_i     = encoder(x_i)                                   (shared or per-input, H values)
    h_j     = relu( sum_{i != j} G[j, i] * e_i + b_j )
    x_j(t)  = v_j . h_j + c_j + a_j . x_j                      (own past enters linearly)

``G`` (N x N) is the only path from another series into ``j``; an L1 penalty on it (weighted
per edge, so a call-graph prior can make some edges cheaper) drives unused inputs to zero. One
batched ``einsum`` serves every target, instead of RUN's one model per metric.
"""

from __future__ import annotations

import torch
from torch import nn


class LagEmbedding(nn.Module):
    """A separate linear map of each input's lag window: ``tanh(W_i x_i + b_i)``."""

    def __init__(self, n_series: int, lags: int, hidden: int, generator: torch.Generator) -> None:
        super().__init__()
        scale = 1.0 / lags**0.5
        self.weight = nn.Parameter(torch.randn(n_series, lags, hidden, generator=generator) * scale)
        self.bias = nn.Parameter(torch.zeros(n_series, hidden))

    def forward(self, lag_windows: torch.Tensor) -> torch.Tensor:  # (B, N, L) -> (B, N, H)
        return torch.tanh(torch.einsum("bnl,nlh->bnh", lag_windows, self.weight) + self.bias)


class GatedForecaster(nn.Module):
    """Predicts every series one step ahead from all series' lag windows."""

    def __init__(
        self,
        n_series: int,
        lags: int,
        hidden: int,
        encoder: nn.Module,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.gate = nn.Parameter(torch.full((n_series, n_series), 0.1))
        self.hidden_bias = nn.Parameter(torch.zeros(n_series, hidden))
        self.readout = nn.Parameter(torch.randn(n_series, hidden, generator=generator) / hidden)
        self.out_bias = nn.Parameter(torch.zeros(n_series))
        self.own = nn.Parameter(torch.zeros(n_series, lags))
        self.register_buffer("off_diagonal", 1.0 - torch.eye(n_series))

    def gates(self) -> torch.Tensor:
        """``G`` with the diagonal forced to zero: a series is not its own Granger cause."""
        return self.gate * self.off_diagonal

    def hidden(self, embedded: torch.Tensor) -> torch.Tensor:  # (B, N, H) -> (B, N, H)
        return torch.relu(torch.einsum("ji,bih->bjh", self.gates(), embedded) + self.hidden_bias)

    def head(self, hidden: torch.Tensor, lag_windows: torch.Tensor) -> torch.Tensor:
        own = torch.einsum("bjl,jl->bj", lag_windows, self.own)
        return torch.einsum("bjh,jh->bj", hidden, self.readout) + self.out_bias + own

    def forward(self, lag_windows: torch.Tensor) -> torch.Tensor:  # (B, N, L) -> (B, N)
        return self.head(self.hidden(self.encoder(lag_windows)), lag_windows)
