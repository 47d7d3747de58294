"""Neural Granger causal discovery: one gated forecaster for all series, pruned on held-out data.

Contract: ``NeuralGranger(config).fit(segments, prior) -> LearnedGraph``. ``segments`` are
standardised ``(T, N)`` arrays of the same N series (normal history, the incident's pre-onset
rows...), lags never cross a segment boundary; NaN means missing (input 0, no loss). The result
``weights[i, j] >= 0`` is the edge ``i -> j`` (cause -> effect): the relative increase of ``j``'s
held-out one-step error when ``i``'s input is permuted (Breiman-style permutation importance).

An edge is a test, not a threshold on raw gates. On held-out rows the model never trained on,
permuting an input that carries nothing about ``j`` leaves ``j``'s expected error unchanged, so
the per-row error increase (averaged over ``permutations`` draws) is tested against zero, its
standard error widened for the rows' autocorrelation. Only edges whose trained gate passes
``screen_gate`` are tested (the gates saw training rows only, so the held-out p-values stay
valid); Benjamini-Hochberg keeps those at a false-discovery rate ``fdr``; the rest get p = 1.
"Carries nothing" is conditional on the model's other inputs only as far as the input is
independent of them: a non-causal series correlated with a cause can show an increase too, so
on correlated metrics the rate bounds false *predictive* edges, not false causal ones. Each kept
edge's lag is the one whose permutation alone costs most.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
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
    permutations: int = 5
    fdr: float = 0.05
    # Edges whose trained gate is below this are not tested (the sparsity penalty has all
    # but removed them); gates start at 0.1.
    screen_gate: float = 0.01
    # An effect-size floor beside the test: a kept edge must raise the error by this share.
    min_error_increase: float = 0.02
    max_samples: int = 4000
    contrastive_pretraining: bool = False
    pretrain_steps: int = 150
    temperature: float = 0.2
    device: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class LearnedGraph:
    """``weights[i, j]``: held-out error increase of ``j`` without ``i`` (cause -> effect), 0
    where the edge was not kept; ``pvalues`` the test of every candidate edge; ``lag_steps``
    the estimated lag of every kept edge (0 elsewhere)."""

    weights: np.ndarray
    heldout_mse: float
    epochs: int
    seconds: float
    pretrain_losses: tuple[float, ...] = ()
    pvalues: np.ndarray | None = None
    lag_steps: np.ndarray | None = None


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


def paired_pvalues(differences: np.ndarray) -> np.ndarray:
    """One-sided p-values of "the mean of each column is > 0" for ``(S, N)`` per-row
    differences (NaN: no row). The standard error uses the effective sample size
    ``S (1 - r) / (1 + r)`` of a lag-1 autocorrelation ``r`` (clipped to [0, 0.9]), since
    consecutive held-out rows are not independent. A column without spread gets 0 if its mean
    is positive, else 1."""
    d = np.asarray(differences, dtype=float)
    rows = np.isfinite(d).sum(axis=0)
    mean = np.where(rows > 0, np.nansum(d, axis=0) / np.maximum(rows, 1), 0.0)
    centered = np.nan_to_num(d - mean)
    sumsq = (centered**2).sum(axis=0)
    lag1 = (centered[1:] * centered[:-1]).sum(axis=0)
    r = np.clip(np.divide(lag1, sumsq, out=np.zeros_like(sumsq), where=sumsq > 0), 0.0, 0.9)
    effective = np.maximum(rows * (1 - r) / (1 + r), 2.0)
    variance = sumsq / np.maximum(rows - 1, 1)
    se = np.sqrt(variance / effective)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, mean / se, np.where(mean > 0, np.inf, -np.inf))
    p = stats.t.sf(t, df=effective - 1)
    return np.where(rows >= 3, p, 1.0)


def benjamini_hochberg(pvalues: np.ndarray, fdr: float) -> np.ndarray:
    """The discoveries of the Benjamini-Hochberg step-up procedure at level ``fdr``, over every
    entry of ``pvalues`` (any shape)."""
    flat = np.asarray(pvalues, dtype=float).ravel()
    order = np.argsort(flat, kind="stable")
    ranked = flat[order]
    passing = np.nonzero(ranked <= fdr * np.arange(1, flat.size + 1) / flat.size)[0]
    keep = np.zeros(flat.size, dtype=bool)
    if passing.size:
        keep[order[: passing[-1] + 1]] = True
    return keep.reshape(np.shape(pvalues))


def _held_out_state(
    model: GatedForecaster, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The held-out rows' input embeddings, the gates and the hidden pre-activations: what
    permuting one input's embedding shifts by ``G[:, i] (e_i' - e_i)``."""
    embedded = model.encoder(x)
    gates = model.gates()
    return embedded, gates, torch.einsum("ji,bih->bjh", gates, embedded) + model.hidden_bias


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

        # The gates were fitted on the training rows only, so screening on them leaves the
        # held-out p-values valid and the correction need count only the screened edges.
        screened = model.gates().detach().abs().T.cpu().numpy() >= cfg.screen_gate
        np.fill_diagonal(screened, False)
        increase, pvalues, heldout = self._edge_tests(model, xv, yv, mv, screened, generator)
        kept = np.zeros_like(screened)
        kept[screened] = benjamini_hochberg(pvalues[screened], cfg.fdr)
        kept &= increase >= cfg.min_error_increase
        weights = np.where(kept, increase, 0.0)
        lags = self._lags(model, xv, yv, mv, kept, generator)
        return LearnedGraph(
            weights,
            heldout,
            epochs,
            time.perf_counter() - started,
            tuple(pretrain_losses),
            pvalues,
            lags,
        )

    def _edge_tests(
        self,
        model: GatedForecaster,
        x: torch.Tensor,
        y: torch.Tensor,
        mask: torch.Tensor,
        screened: np.ndarray,
        generator: torch.Generator,
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """``increase[i, j]``: relative increase of target ``j``'s held-out MSE when input
        ``i``'s embedding is permuted across samples (mean of ``permutations`` draws), and the
        p-value of that increase being > 0, for every ``screened`` edge (p = 1 elsewhere). Only
        ``G[:, i] e_i`` changes, so each draw costs one ``(B, N, H)`` update rather than a full
        forward pass."""
        with torch.no_grad():
            embedded, gates, pre = _held_out_state(model, x)
            missing = mask == 0

            def row_errors(pre_activation: torch.Tensor) -> torch.Tensor:
                pred = model.head(torch.relu(pre_activation), x)
                return ((pred - y) ** 2).masked_fill(missing, math.nan)

            base_rows = row_errors(pre)
            base = torch.nanmean(base_rows, dim=0).nan_to_num(0.0).clamp(min=1e-6).cpu().numpy()
            n = x.shape[1]
            increase = np.zeros((n, n))
            pvalues = np.ones((n, n))
            draws = max(1, self.config.permutations)
            perms = [torch.randperm(x.shape[0], generator=generator) for _ in range(draws)]
            for i in range(n):
                if not screened[i].any():
                    continue
                column = gates[:, i]
                total = torch.zeros_like(base_rows)
                for perm in perms:
                    delta = embedded[perm.to(x.device), i, :] - embedded[:, i, :]  # (B, H)
                    total += row_errors(pre + column[None, :, None] * delta[:, None, :])
                differences = (total / draws - base_rows).cpu().numpy()
                # A target missing in every held-out row sums to 0 over no rows: no increase.
                rows = np.maximum(np.isfinite(differences).sum(axis=0), 1)
                mean = np.nansum(differences, axis=0) / rows
                increase[i] = np.clip(mean / base, 0.0, None)
                pvalues[i] = np.where(screened[i], paired_pvalues(differences), 1.0)
        np.fill_diagonal(increase, 0.0)
        np.fill_diagonal(pvalues, 1.0)
        return np.nan_to_num(increase), pvalues, float(base.mean())

    @staticmethod
    def _lags(
        model: GatedForecaster,
        x: torch.Tensor,
        y: torch.Tensor,
        mask: torch.Tensor,
        kept: np.ndarray,
        generator: torch.Generator,
    ) -> np.ndarray:
        """``lags[i, j]`` for every kept edge: the lag (in steps) whose values, permuted alone
        in ``i``'s window, raise ``j``'s held-out error most; 0 where no edge was kept."""
        n, window = x.shape[1], x.shape[2]
        lags = np.zeros((n, n), dtype=int)
        causes = np.nonzero(kept.any(axis=1))[0]
        if causes.size == 0:
            return lags
        with torch.no_grad():
            counts = mask.sum(dim=0).clamp(min=1.0)
            embedded, gates, pre = _held_out_state(model, x)

            def errors(pre_activation: torch.Tensor) -> torch.Tensor:
                pred = model.head(torch.relu(pre_activation), x)
                return (((pred - y) ** 2) * mask).sum(dim=0) / counts

            base = errors(pre)
            perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
            for i in causes:
                cost = torch.zeros((window, n), device=x.device)
                for k in range(window):
                    shuffled = x.clone()
                    shuffled[:, i, k] = x[perm, i, k]
                    delta = model.encoder(shuffled)[:, i, :] - embedded[:, i, :]
                    cost[k] = errors(pre + gates[:, i][None, :, None] * delta[:, None, :]) - base
                # Window position k holds the value ``window - k`` steps before the target.
                best = window - cost.argmax(dim=0).cpu().numpy()
                lags[i] = np.where(kept[i], best, 0)
        return lags
