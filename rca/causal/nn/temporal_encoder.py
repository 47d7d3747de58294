"""A temporal encoder shared by every series, and RUN's contrastive pre-training done right.

The encoder is a small causal dilated 1-D convolution along *time*, applied to each series
separately (channels never mix here), giving one representation per time step. Pre-training
follows RUN's idea (Lin et al., AAAI'24, after TS2Vec) without the public code's defects
(``../shared/reference/run-method.md`` §9: identical views, a loss that rewards uniform
similarity, contrast along the embedding axis): two *different*, overlapping random crops of a
series are encoded; the representations of the *same timestamp* in both crops are positives and
every other timestamp of that series in the other crop is a negative (InfoNCE with a
temperature, on L2-normalised vectors). Each crop is augmented on its own (:func:`augment`:
a random scale, jitter, and masked time steps), so the encoder learns what survives them rather
than the raw values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TemporalEncoder(nn.Module):
    """``(B, N, L) -> (B, N, H)``: the representation of each series' last time step."""

    def __init__(self, hidden: int, layers: int = 3, kernel: int = 3) -> None:
        super().__init__()
        self.kernel = kernel
        self.convs = nn.ModuleList(
            nn.Conv1d(1 if i == 0 else hidden, hidden, kernel, dilation=2**i) for i in range(layers)
        )

    def per_step(self, series: torch.Tensor) -> torch.Tensor:
        """``(S, T) -> (S, T, H)``: causal representations of every time step."""
        h = series[:, None, :]
        for i, conv in enumerate(self.convs):
            pad = (self.kernel - 1) * 2**i
            out = conv(F.pad(h, (pad, 0)))
            h = torch.relu(out) + (h if h.shape[1] == out.shape[1] else 0.0)
        return h.transpose(1, 2)

    def forward(self, lag_windows: torch.Tensor) -> torch.Tensor:
        batch, n_series, lags = lag_windows.shape
        steps = self.per_step(lag_windows.reshape(batch * n_series, lags))
        return torch.tanh(steps[:, -1, :]).reshape(batch, n_series, -1)


def contrastive_loss(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE over aligned timestamps: ``first[s, t]`` and ``second[s, t]`` are positives.

    Shapes ``(S, T, H)``, the same ``T`` timestamps in both views. Per series, the logits are
    the cosine similarities of every pair of timestamps divided by ``temperature``; the target
    of row ``t`` is column ``t``.
    """
    a = F.normalize(first, dim=-1)
    b = F.normalize(second, dim=-1)
    logits = torch.einsum("sth,suh->stu", a, b) / temperature
    target = torch.arange(logits.shape[1], device=logits.device).expand(logits.shape[0], -1)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


def overlapping_crops(
    length: int, crop: int, generator: torch.Generator
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Two distinct crops of ``crop`` steps inside ``length`` that overlap, and the overlap.

    Returns ``(start_a, end_a), (start_b, end_b), (overlap_start, overlap_end)`` with the second
    crop shifted by at least one and at most ``crop // 2`` steps, so the views differ but share
    at least half their timestamps.
    """
    if length < crop + 1:
        raise ValueError(f"series of {length} steps is too short for crops of {crop} + a shift")
    shift = int(torch.randint(1, max(2, crop // 2 + 1), (1,), generator=generator))
    shift = min(shift, length - crop)
    start = int(torch.randint(0, length - crop - shift + 1, (1,), generator=generator))
    a = (start, start + crop)
    b = (start + shift, start + shift + crop)
    return a, b, (b[0], a[1])


def augment(
    crop: torch.Tensor,
    generator: torch.Generator,
    *,
    scale: float = 0.2,
    jitter: float = 0.1,
    mask: float = 0.1,
) -> torch.Tensor:
    """``(S, T)`` crops, each series scaled by ``1 + N(0, scale)``, with ``N(0, jitter)`` added
    to every step and a ``mask`` share of its steps set to 0 (the input value of a missing
    sample). Series are standardised, so these are in units of their spread."""
    rows, steps = crop.shape
    factors = 1 + scale * torch.randn(rows, 1, generator=generator)
    noise = jitter * torch.randn(rows, steps, generator=generator)
    kept = torch.rand(rows, steps, generator=generator) >= mask
    return (crop * factors.to(crop.device) + noise.to(crop.device)) * kept.to(crop.device)


def pretrain(
    encoder: TemporalEncoder,
    series: torch.Tensor,
    *,
    crop: int,
    steps: int,
    temperature: float,
    generator: torch.Generator,
    batch_series: int = 64,
    lr: float = 1e-3,
) -> list[float]:
    """Contrastive pre-training on ``series`` ``(S, T)``; returns the loss per step."""
    optimizer = torch.optim.Adam(encoder.parameters(), lr=lr)
    losses: list[float] = []
    for _ in range(steps):
        pick = torch.randint(
            0, series.shape[0], (min(batch_series, series.shape[0]),), generator=generator
        )
        (a0, a1), (b0, b1), (o0, o1) = overlapping_crops(series.shape[1], crop, generator)
        view_a = encoder.per_step(augment(series[pick, a0:a1], generator))[:, o0 - a0 : o1 - a0]
        view_b = encoder.per_step(augment(series[pick, b0:b1], generator))[:, o0 - b0 : o1 - b0]
        loss = contrastive_loss(view_a, view_b, temperature)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses
