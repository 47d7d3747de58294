"""Neural Granger causal discovery: one gated forecaster for all series, pruned on held-out data.

Contract: ``NeuralGranger(config).fit(segments, prior) -> LearnedGraph``. ``segments`` are
standardised ``(T, N)`` arrays of the same N series (normal history, the incident's pre-onset
rows...), lags never cross a segment boundary; NaN means missing (input 0, no loss). The result
``weights[i, j] >= 0`` is the edge ``i -> j`` (cause -> effect): the relative increase of ``j``'s
held-out one-step error when ``i``'s input is permuted (Breiman-style permutation importance),
kept only above ``min_error_increase`` -- a held-out test, not a gap heuristic on raw gates.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from rca.causal.nn.gated_forecaster import GatedForecaster, LagEmbedding
from rca.causal.nn.temporal_encoder import TemporalEncoder, pretrain


@dataclass(frozen=True)
class NeuralGrangerConfig:
    lags: int = 5
    hidden: int = 16
    epochs: int = 40
    batch_size: int = 128
    learning_rate: float = 3e-3
    sparsity: float = 2e-3
    # Penalty multiplier on the edges a call-graph prior allows (cheaper, not forced).
    prior_discount: float = 0.1
    holdout_fraction: float = 0.25
    min_error_increase: float = 0.02
    max_samples: int = 4000
    contrastive_pretraining: bool = False
    pretrain_steps: int = 150
    temperature: float = 0.2
    device: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class LearnedGraph:
    """``weights[i, j]``: held-out error increase of ``j`` without ``i`` (cause -> effect)."""

    weights: np.ndarray
    heldout_mse: float
    epochs: int
    seconds: float
    pretrain_losses: tuple[float, ...] = ()


def pick_device(requested: str | None) -> torch.device:
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def lag_samples(segment: np.ndarray, lags: int) -> tuple[np.ndarray, np.ndarray]:
    """``(S, N, lags)`` windows and ``(S, N)`` next values of one ``(T, N)`` segment."""
    steps = segment.shape[0]
    if steps <= lags:
        n = segment.shape[1]
        return np.empty((0, n, lags), np.float32), np.empty((0, n), np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(segment[:-1], lags, axis=0)
    return windows.astype(np.float32), segment[lags:].astype(np.float32)


def split_samples(
    segments: list[np.ndarray], lags: int, holdout_fraction: float, max_samples: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train/held-out samples: the last ``holdout_fraction`` of every segment is held out, so
    the held-out rows come after the rows the model learned from."""
    train_x, train_y, test_x, test_y = [], [], [], []
    for segment in segments:
        x, y = lag_samples(segment, lags)
        cut = len(x) - max(1, round(len(x) * holdout_fraction)) if len(x) > 1 else len(x)
        train_x.append(x[:cut])
        train_y.append(y[:cut])
        test_x.append(x[cut:])
        test_y.append(y[cut:])
    xs = [np.concatenate(p) for p in (train_x, train_y, test_x, test_y)]
    # Keep the most recent samples when there are too many (training cost is linear in them).
    keep_train = max(1, int(max_samples * (1 - holdout_fraction)))
    keep_test = max(1, max_samples - keep_train)
    return xs[0][-keep_train:], xs[1][-keep_train:], xs[2][-keep_test:], xs[3][-keep_test:]


def _masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return ((pred - target) ** 2 * mask).sum() / mask.sum().clamp(min=1.0)


class NeuralGranger:
    """The causal-graph learner of the ``run`` method."""

    def __init__(self, config: NeuralGrangerConfig | None = None) -> None:
        self.config = config or NeuralGrangerConfig()

    def fit(self, segments: list[np.ndarray], prior: np.ndarray | None = None) -> LearnedGraph:
        cfg = self.config
        started = time.perf_counter()
        n = segments[0].shape[1]
        device = pick_device(cfg.device)
        generator = torch.Generator().manual_seed(cfg.seed)
        x_train, y_train, x_test, y_test = split_samples(
            segments, cfg.lags, cfg.holdout_fraction, cfg.max_samples
        )
        if len(x_train) < 2 or len(x_test) < 1:
            return LearnedGraph(np.zeros((n, n)), math.nan, 0, time.perf_counter() - started)

        def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, ...]:
            mask = torch.from_numpy(np.isfinite(y).astype(np.float32))
            return (
                torch.from_numpy(np.nan_to_num(x)).to(device),
                torch.from_numpy(np.nan_to_num(y)).to(device),
                mask.to(device),
            )

        xt, yt, mt = tensors(x_train, y_train)
        xv, yv, mv = tensors(x_test, y_test)

        pretrain_losses: list[float] = []
        if cfg.contrastive_pretraining:
            encoder: torch.nn.Module = TemporalEncoder(cfg.hidden).to(device)
            series = torch.from_numpy(
                np.nan_to_num(np.concatenate(segments)).T.astype(np.float32)
            ).to(device)
            crop = max(cfg.lags * 4, 16)
            if series.shape[1] > crop + 1:
                pretrain_losses = pretrain(
                    encoder,
                    series,
                    crop=crop,
                    steps=cfg.pretrain_steps,
                    temperature=cfg.temperature,
                    generator=generator,
                )
        else:
            encoder = LagEmbedding(n, cfg.lags, cfg.hidden, generator).to(device)
        model = GatedForecaster(n, cfg.lags, cfg.hidden, encoder, generator).to(device)

        penalty = torch.full((n, n), cfg.sparsity, device=device)
        if prior is not None:  # prior[i, j] allows cause i -> effect j; gates are [j, i]
            allowed = torch.from_numpy(np.asarray(prior, dtype=bool).T).to(device)
            penalty = torch.where(allowed, penalty * cfg.prior_discount, penalty)

        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
        samples = len(xt)
        epochs = 0
        # A bar on a terminal only (disable=None), gone when done: training is one stage of many.
        bar = tqdm(range(cfg.epochs), desc="granger", unit="epoch", disable=None, leave=False)
        for _ in bar:
            order = torch.randperm(samples, generator=generator).to(device)
            for start in range(0, samples, cfg.batch_size):
                batch = order[start : start + cfg.batch_size]
                loss = _masked_mse(model(xt[batch]), yt[batch], mt[batch])
                loss = loss + (penalty * model.gates().abs()).sum()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            epochs += 1

        weights, heldout = self._permutation_importance(model, xv, yv, mv, generator)
        weights[weights < cfg.min_error_increase] = 0.0
        return LearnedGraph(
            weights, heldout, epochs, time.perf_counter() - started, tuple(pretrain_losses)
        )

    @staticmethod
    @torch.no_grad()
    def _permutation_importance(
        model: GatedForecaster,
        x: torch.Tensor,
        y: torch.Tensor,
        mask: torch.Tensor,
        generator: torch.Generator,
    ) -> tuple[np.ndarray, float]:
        """``out[i, j]``: relative increase of target ``j``'s held-out MSE when input ``i``'s
        embedding is permuted across samples. Only ``G[:, i] e_i`` changes, so each input costs
        one ``(B, N, H)`` update rather than a full forward pass."""
        embedded = model.encoder(x)
        gates = model.gates()
        pre = torch.einsum("ji,bih->bjh", gates, embedded) + model.hidden_bias
        counts = mask.sum(dim=0).clamp(min=1.0)

        def per_target_mse(pre_activation: torch.Tensor) -> torch.Tensor:
            pred = model.head(torch.relu(pre_activation), x)
            return (((pred - y) ** 2) * mask).sum(dim=0) / counts

        base = per_target_mse(pre)
        n = x.shape[1]
        out = np.zeros((n, n))
        perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
        for i in range(n):
            delta = embedded[perm, i, :] - embedded[:, i, :]  # (B, H)
            if not torch.any(gates[:, i] != 0):
                continue
            shifted = pre + gates[:, i][None, :, None] * delta[:, None, :]
            increase = (per_target_mse(shifted) - base) / base.clamp(min=1e-6)
            out[i] = increase.clamp(min=0.0).cpu().numpy()
        np.fill_diagonal(out, 0.0)
        return out, float(base.mean())
