"""Faults inside one service process, switched on and off through its admin endpoint.

Real where the machine allows, modelled (and labelled so) where it does not:

- ``cpu``: busy threads in this process; they hold the interpreter lock as a CPU-bound thread
  of a real service does, so requests wait for the CPU as in a throttled container;
- ``mem``: a leak of real allocations, large buffers (resident memory grows by ``mb_per_s``)
  and small tracked objects (``objects_per_s``), so the garbage collector's full passes scan a
  growing heap and pause the service longer and longer, as a leaking JVM or CPython does;
- ``latency``, ``errors``, ``drop``: decided per request by :meth:`FaultState.request_fate`;
- ``gpu-throttle``, ``kv-pressure``: read by the modelled GPU and LLM engine
  (:mod:`services.engine`): a lower SM clock, KV-cache blocks taken away;
- ``link-delay``, ``link-jitter``, ``link-loss``: read by a robot for every message on its
  link to the fog node, both ways (tc-netem's semantics, applied in the sender).

What each fault sets from its parameters (a delay, a share of requests, a clock factor, a
leak rate...) and its caps come from :data:`services.stack.FAULTS`, the table the simulator
(:mod:`services.sim`) reads too. Every activation records ``started_unix_ns`` once the effect
is on (the threads run, the flags are set): the ground truth the injector logs.
"""

from __future__ import annotations

import gc
import mmap
import threading
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from services.stack import EFFECTS, FAULTS

_LEAK_TICK_SECONDS = 0.1


@dataclass
class ActiveFault:
    id: str
    fault: str
    params: dict[str, float]
    started_unix_ns: int
    modelled: bool
    # What it sets from its parameters, by quantity (services.stack.Effect).
    effects: dict[str, float] = field(default_factory=dict, repr=False)
    stop: threading.Event = field(default_factory=threading.Event, repr=False)
    threads: list[threading.Thread] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "fault": self.fault,
            "params": dict(self.params),
            "started_unix_ns": self.started_unix_ns,
            "modelled": self.modelled,
        }


def _spin(stop: threading.Event) -> None:
    """Burn CPU in pure Python until ``stop`` (checked every few hundred microseconds)."""
    while not stop.is_set():
        total = 0
        for i in range(5000):
            total += i * i


class FaultState:
    """The faults active in this process; thread-safe."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, ActiveFault] = {}
        self._rng = np.random.default_rng(seed)
        self._leak: list[object] = []

    # -- switching ------------------------------------------------------------------------

    def inject(self, fault: str, params: dict[str, float] | None = None) -> ActiveFault:
        """Switch ``fault`` on (parameters default from :data:`services.stack.FAULTS`)."""
        spec = FAULTS.get(fault)
        if spec is None:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        unknown = set(params or {}) - set(spec.defaults)
        if unknown:
            raise ValueError(f"{fault} takes {sorted(spec.defaults)}, not {sorted(unknown)}")
        merged = {**spec.defaults, **{k: float(v) for k, v in (params or {}).items()}}
        if any(v < 0 for v in merged.values()):
            raise ValueError("fault parameters must not be negative")
        effects = spec.effects_of(merged)
        active = ActiveFault(uuid.uuid4().hex[:12], fault, merged, 0, spec.modelled, effects)
        if fault == "cpu":
            for i in range(int(effects["busy_threads"])):
                thread = threading.Thread(
                    target=_spin, args=(active.stop,), name=f"cpu-hog-{i}", daemon=True
                )
                active.threads.append(thread)
        elif fault == "mem":
            active.threads.append(
                threading.Thread(target=self._grow, args=(active,), name="memory-leak", daemon=True)
            )
        for thread in active.threads:
            thread.start()
        active.started_unix_ns = time.time_ns()
        with self._lock:
            self._active[active.id] = active
        return active

    def clear(self, fault_id: str | None = None) -> list[ActiveFault]:
        """Switch off one fault (``fault_id``) or all; a leak's memory is given back."""
        with self._lock:
            ids = list(self._active) if fault_id is None else [fault_id]
            gone = [self._active.pop(i) for i in ids if i in self._active]
        for active in gone:
            active.stop.set()
            for thread in active.threads:
                thread.join(timeout=2.0)
        leak: list[object] = []
        with self._lock:  # one check and swap: a fault injected meanwhile keeps its buffers
            if any(a.fault == "mem" for a in gone) and not self._has("mem"):
                leak, self._leak = self._leak, []
        for item in leak:
            if isinstance(item, mmap.mmap):
                item.close()
        if leak:
            gc.collect()
        return gone

    def active(self) -> list[ActiveFault]:
        with self._lock:
            return list(self._active.values())

    def _has(self, fault: str) -> bool:
        """Whether a fault of type ``fault`` is active (the caller holds ``_lock``)."""
        return any(a.fault == fault for a in self._active.values())

    def _effect(self, quantity: str) -> float:
        """``quantity`` as the active faults set it (the hardest hit), neutral without one."""
        with self._lock:
            values = [a.effects[quantity] for a in self._active.values() if quantity in a.effects]
        return EFFECTS[quantity].combine(values)

    def _grow(self, active: ActiveFault) -> None:
        chunk_bytes = int(active.effects["leak_bytes_per_s"] * _LEAK_TICK_SECONDS)
        objects = int(active.effects["leak_objects_per_s"] * _LEAK_TICK_SECONDS)
        while not active.stop.wait(_LEAK_TICK_SECONDS):
            # An anonymous mapping, not a bytearray: malloc may serve a freed buffer's size from
            # its heap (its mmap threshold grows after large frees) and keep it when freed, so
            # the leak would not be given back. Writing one byte a page makes every page resident.
            grown: list[object] = [[{"seq": i, "owner": active.id} for i in range(objects)]]
            if chunk_bytes > 0:  # a mapping of 0 bytes is an error
                buffer = mmap.mmap(-1, chunk_bytes)
                for offset in range(0, chunk_bytes, mmap.PAGESIZE):
                    buffer[offset] = 1
                grown.append(buffer)
            with self._lock:
                self._leak.extend(grown)

    # -- what the request path and the models read ----------------------------------------

    def request_fate(self) -> tuple[float, bool, bool]:
        """For one request: seconds to add, whether to answer 500, whether to never answer."""
        with self._lock:
            if not self._active:
                return 0.0, False, False
            draws = self._rng.random(2)
        delay = self._effect("delay_seconds")
        error = draws[0] < self._effect("error_ratio")
        drop = draws[1] < self._effect("drop_ratio")
        return delay, bool(error), bool(drop)

    @property
    def clock_factor(self) -> float:
        """GPU SM clock as a share of nominal (1 without ``gpu-throttle``)."""
        return self._effect("clock_factor")

    @property
    def kv_taken(self) -> float:
        """Share of the KV cache taken away by ``kv-pressure``."""
        return self._effect("kv_taken")

    def link_delay_seconds(self) -> float:
        """One-way extra delay of one message on this service's link."""
        delay = self._effect("link_delay_seconds")
        jitter = self._effect("link_jitter_seconds")
        if jitter > 0:
            with self._lock:
                delay += float(self._rng.uniform(0.0, jitter))
        return delay

    def link_lost(self) -> bool:
        ratio = self._effect("link_loss_ratio")
        if ratio <= 0:
            return False
        with self._lock:
            return bool(self._rng.random() < ratio)

    def close(self) -> None:
        self.clear()
