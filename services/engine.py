"""Modelled accelerators: a GPU and the two phases of a disaggregated LLM engine.

No GPU is needed: GPU work is waiting (``asyncio.sleep``) sized from the tokens, the batch and
the SM clock, and the readings (utilization, memory, SM clock, power) follow from that work.
The GPU's ``hw.id`` starts with ``modelled-`` so nobody mistakes them for hardware readings;
with an NVIDIA GPU present and ``gpu.source: auto``, :class:`GpuModel` reports NVML's readings
instead (the work itself stays modelled).

Semantics follow vLLM (ecosystem.md §2.6): *waiting* requests are queued for the engine,
*running* ones are in the batch; decode allocates KV blocks as tokens are generated and, when
the cache is full, preempts a request, which later recomputes its KV (vLLM's default
recompute preemption). ``kv-pressure`` takes a share of the cache away; ``gpu-throttle`` lowers
the SM clock, so every GPU step takes ``1 / clock_factor`` times longer and power drops.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import numpy as np

from services.faults import FaultState
from services.stack import Gpu, Llm

log = logging.getLogger(__name__)

_DECODE_CHUNK_TOKENS = 4
_BLOCK_TOKENS = 16


class Level:
    """A level (requests waiting, running, KV tokens held) and its time-weighted mean.

    The gauges report the mean since the previous reading, Little's-law style, not the value
    at the reading's instant: a 20 ms prefill read once a second would otherwise show as 0 or
    1 at random.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()
        self._area = 0.0
        self._since = self._mark = time.monotonic()

    def add(self, delta: float) -> None:
        with self._lock:
            at = time.monotonic()
            self._area += self.now * (at - self._since)
            self._since = at
            self.now += delta

    def mean(self) -> float:
        """Time-weighted mean since the previous call."""
        with self._lock:
            at = time.monotonic()
            area = self._area + self.now * (at - self._since)
            mean = area / max(at - self._mark, 1e-9)
            self._area, self._since, self._mark = 0.0, at, at
        return mean


class _Nvml:
    """NVML readings of one GPU, or ``None`` when there is no NVIDIA GPU."""

    @staticmethod
    def open(index: int) -> _Nvml | None:
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
        except Exception:  # no driver, no library, no device: modelled readings instead
            return None
        return _Nvml(index % count) if count else None

    def __init__(self, index: int) -> None:
        self.index = index

    def read(self) -> tuple[str, dict[str, float]]:
        """The GPU's UUID and its hw.gpu.* readings."""
        from collectors.gpu import read_gpus

        reading = read_gpus()[self.index]
        return reading.uuid, {
            "hw.gpu.utilization": reading.utilization_ratio,
            "hw.gpu.memory.usage": reading.memory_used_bytes,
            "hw.gpu.clock.sm": reading.sm_clock_hz,
            "hw.power": reading.power_watts,
        }


class GpuModel:
    """One GPU: busy time (any kernel running) is integrated between readings."""

    def __init__(self, config: Gpu, faults: FaultState, name: str, index: int = 0) -> None:
        self.config = config
        self.faults = faults
        self.kv_bytes = 0.0
        self._lock = threading.Lock()
        self._active = 0
        self._busy_since = 0.0
        self._busy_total = 0.0
        self._mark = (time.monotonic(), 0.0)
        self._rng = np.random.default_rng(abs(hash(name)) % 2**32)
        self.nvml = _Nvml.open(index) if config.source == "auto" else None
        self.hw_id = f"modelled-{name}" if self.nvml is None else ""

    async def compute(self, nominal_seconds: float) -> float:
        """Run ``nominal_seconds`` of GPU work at the current clock; returns the real time."""
        seconds = nominal_seconds / self.faults.clock_factor  # at least 0.05 (FAULTS)
        self._enter()
        try:
            await asyncio.sleep(seconds)
        finally:
            self._exit()
        return seconds

    def _enter(self) -> None:
        with self._lock:
            if self._active == 0:
                self._busy_since = time.monotonic()
            self._active += 1

    def _exit(self) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0:
                self._busy_total += time.monotonic() - self._busy_since

    def utilization(self) -> float:
        """Busy share of the time since the previous call."""
        with self._lock:
            now = time.monotonic()
            busy = self._busy_total + (now - self._busy_since if self._active else 0.0)
            mark_time, mark_busy = self._mark
            self._mark = (now, busy)
        return float(np.clip((busy - mark_busy) / max(now - mark_time, 1e-6), 0.0, 1.0))

    def readings(self) -> dict[str, float]:
        """hw.gpu.* values now: NVML's when present, else modelled from the work."""
        if self.nvml is not None:
            self.hw_id, values = self.nvml.read()
            return values
        cfg = self.config
        util = self.utilization()
        factor = self.faults.clock_factor
        noise = float(self._rng.normal(0.0, 0.003))
        return {
            "hw.gpu.utilization": util,
            "hw.gpu.memory.usage": cfg.weights_bytes + self.kv_bytes,
            "hw.gpu.clock.sm": cfg.sm_clock_hz * factor * (1.0 + noise),
            "hw.power": cfg.idle_watts + (cfg.tdp_watts - cfg.idle_watts) * util * factor,
        }


class PrefillEngine:
    """Prompts are computed in a batch of at most ``max_batch``; their KV stays on this GPU
    until it has been transferred to a decode worker."""

    def __init__(self, config: Llm, gpu: GpuModel) -> None:
        self.config = config
        self.gpu = gpu
        self.waiting = Level()
        self.running = Level()
        self.kv_tokens = Level()
        self._slots = asyncio.Semaphore(config.max_batch)

    async def prefill(self, prompt_tokens: int) -> None:
        self.waiting.add(1)
        async with self._slots:
            self.waiting.add(-1)
            self.running.add(1)
            self._hold(prompt_tokens)
            try:
                await self.gpu.compute(
                    prompt_tokens / 1000 * self.config.prefill_ms_per_1k_tokens / 1000
                )
            finally:
                self.running.add(-1)

    async def transfer(self, prompt_tokens: int) -> float:
        """Push the prompt's KV to the decode worker (NIXL-like); seconds it took."""
        nbytes = prompt_tokens * self.config.kv_bytes_per_token
        seconds = nbytes / (self.config.kv_link_gbytes_per_s * 1e9)
        await asyncio.sleep(seconds)
        return seconds

    def _hold(self, tokens: float) -> None:
        self.kv_tokens.add(tokens)
        self.gpu.kv_bytes = self.kv_tokens.now * self.config.kv_bytes_per_token

    def release(self, prompt_tokens: int) -> None:
        self._hold(-prompt_tokens)

    def kv_usage(self) -> float:
        """Mean share of the KV cache in use since the previous reading."""
        return min(1.0, self.kv_tokens.mean() / self.config.kv_cache_tokens)


class DecodeEngine:
    """Continuous batching: at most ``max_batch`` requests generate together, each step slower
    by ``batch_slowdown`` per extra request; KV grows by one token per generated token."""

    def __init__(self, config: Llm, gpu: GpuModel, faults: FaultState) -> None:
        self.config = config
        self.gpu = gpu
        self.faults = faults
        self.waiting = Level()
        self.running = Level()
        self.kv_tokens = Level()
        self.preemptions = 0
        self._changed = asyncio.Condition()
        self._rng = np.random.default_rng()

    def capacity(self) -> float:
        return self.config.kv_cache_tokens * (1.0 - self.faults.kv_taken)

    def kv_usage(self) -> float:
        """Mean share of the whole cache in use since the previous reading, the share
        ``kv-pressure`` took counted as used."""
        used = self.kv_tokens.mean() + self.config.kv_cache_tokens * self.faults.kv_taken
        return min(1.0, used / self.config.kv_cache_tokens)

    def _hold(self, tokens: float) -> None:
        self.kv_tokens.add(tokens)
        self.gpu.kv_bytes = self.kv_tokens.now * self.config.kv_bytes_per_token

    def _fits(self, tokens: float) -> bool:
        running = self.running.now
        if running == 0:
            return True  # an empty engine always takes the next request (no deadlock)
        return running < self.config.max_batch and self.kv_tokens.now + tokens <= self.capacity()

    async def _admit(self, tokens: float) -> None:
        self.waiting.add(1)
        try:
            async with self._changed:
                await self._changed.wait_for(lambda: self._fits(tokens + _BLOCK_TOKENS))
                self.running.add(1)
                self._hold(tokens)
        finally:
            self.waiting.add(-1)

    async def _leave(self, tokens: float) -> None:
        async with self._changed:
            self.running.add(-1)
            self._hold(-tokens)
            self._changed.notify_all()

    async def generate(self, prompt_tokens: int, max_tokens: int) -> tuple[float, int]:
        """Generate ``max_tokens``; returns (unix time of the first token, preemptions)."""
        cfg = self.config
        generated = 0
        first_token_unix = 0.0
        preempted = 0
        while generated < max_tokens:
            held = prompt_tokens + generated
            await self._admit(held)
            try:
                if preempted:  # recompute the KV that the preemption threw away
                    await self.gpu.compute(held / 1000 * 30.0 / 1000)
                while generated < max_tokens:
                    chunk = (
                        1 if generated == 0 else min(_DECODE_CHUNK_TOKENS, max_tokens - generated)
                    )
                    step = cfg.tpot_ms / 1000 * (1 + cfg.batch_slowdown * (self.running.now - 1))
                    # Steps vary with the batch's sequence lengths and kernels' timing.
                    await self.gpu.compute(step * chunk * float(self._rng.lognormal(0.0, 0.15)))
                    generated += chunk
                    if not first_token_unix:
                        first_token_unix = time.time()
                    full = self.kv_tokens.now + chunk > self.capacity()
                    if generated < max_tokens and full and self.running.now > 1:
                        preempted += 1
                        self.preemptions += 1
                        break
                    self._hold(chunk)
                    held += chunk
            finally:
                await self._leave(held)
        return first_token_unix, preempted
