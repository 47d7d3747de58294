"""A live lab: broker, ingest, a running stack and its load, as one context manager.

    with LiveLab(load_stack("llm-serving"), run_dir) as lab:
        lab.wait_for_telemetry(timeout_seconds=30)
        injection = lab.inject("decode-0", "kv-pressure")
        ...
        window = lab.window(start, end)

On entry it starts the tansu broker on a free loopback port (or uses ``bootstrap``), an ingest
consumer (:class:`rca.ingest.kafka_source.KafkaIngest`) on a thread filling a
:class:`rca.store.window_store.WindowStore`, the stack's processes and the load generator. On
exit, also after an error or Ctrl-C, it clears every fault and stops everything in reverse
order: load, services, ingest, broker.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import pandas as pd

from rca.ingest.kafka_source import IngestConfig, KafkaIngest
from rca.store.window_store import WindowStore
from rca.transport.broker import TansuBroker, start_broker
from rca.transport.topics import telemetry_topics
from rca.window import Window
from services.inject import Injection, Injector
from services.runner import RunningStack, start_stack
from services.stack import Stack

Progress = Callable[[str], None]


class LiveLab:
    def __init__(
        self,
        stack: Stack,
        run_dir: Path,
        *,
        bootstrap: str | None = None,
        topic: str = "otlp_metrics",
        rate: float | None = None,
        profile: str = "steady",
        period_seconds: float = 600.0,
        step_seconds: float = 1.0,
        retention_seconds: float = 3600.0,
        seed: int = 0,
        progress: Progress | None = None,
    ) -> None:
        self.stack = stack
        self.run_dir = run_dir
        self.bootstrap = bootstrap
        self.topic = topic
        self.rate = rate
        self.profile = profile
        self.period_seconds = period_seconds
        self.seed = seed
        self.progress = progress or (lambda _: None)
        self.store = WindowStore(step_seconds, retention_seconds)
        self.broker: TansuBroker | None = None
        self.running: RunningStack | None = None
        self.injector: Injector | None = None
        self._ingest: KafkaIngest | None = None
        self._ingest_thread: threading.Thread | None = None
        self._stop_ingest = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> LiveLab:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self.bootstrap is None:
            self.broker = start_broker(topics=telemetry_topics(self.topic, f"{self.topic}.dlq", 1))
            self.bootstrap = self.broker.bootstrap
            self.progress(f"broker: tansu on {self.bootstrap}")
        self._ingest = KafkaIngest(
            IngestConfig(
                bootstrap=self.bootstrap,
                topic=self.topic,
                dlq_topic=f"{self.topic}.dlq",
                group=f"rca-demo-{self.stack.name}",
                session_timeout_ms=3000,
                max_poll_interval_ms=5000,
            ),
            self.store,
        )
        self._ingest_thread = threading.Thread(
            target=self._ingest.run, args=(self._stop_ingest,), name="rca-ingest", daemon=True
        )
        self._ingest_thread.start()
        self.progress(f"ingest: consumer on {self.topic} into the window store")
        self.running = start_stack(
            self.stack, self.bootstrap, self.run_dir, topic=self.topic, seed=self.seed
        )
        self.injector = Injector(self.run_dir)
        self.progress(
            f"stack: {self.stack.name} up, {len(self.running.processes)} services on loopback "
            f"(pids {', '.join(str(p) for p in self.running.pids.values())})"
        )
        self.running.start_load(self.rate, self.profile, self.period_seconds, self.seed)
        rate = self.rate or self.stack.load.rate_per_second
        self.progress(f"load: {self.profile}, {rate:g} requests/s")

    def stop(self) -> None:
        """Clear faults, stop load, services, ingest and broker; safe to call twice."""
        if self.injector is not None and self.running is not None:
            alive = self.running.alive()
            if any(alive.values()):
                with contextlib.suppress(Exception):
                    self.injector.clear_touched()
        if self.running is not None:
            self.running.stop()
            self.running = None
            self.progress("teardown: load and services stopped")
        self._stop_ingest.set()
        if self._ingest_thread is not None:
            self._ingest_thread.join(timeout=15)
            self._ingest_thread = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
            self.progress("teardown: ingest and broker stopped")

    # -- telemetry ------------------------------------------------------------------------

    def services_seen(self) -> set[str]:
        return set(self.store.services())

    def wait_for_telemetry(self, timeout_seconds: float = 60.0) -> None:
        """Until every service has sent metrics (or ``TimeoutError``)."""
        deadline = time.monotonic() + timeout_seconds
        wanted = set(self.stack.services)
        while not wanted <= self.services_seen():
            self.check_alive()
            if time.monotonic() > deadline:
                missing = ", ".join(sorted(wanted - self.services_seen()))
                raise TimeoutError(f"no telemetry after {timeout_seconds:.0f} s from {missing}")
            time.sleep(0.5)

    def now(self) -> pd.Timestamp:
        return pd.Timestamp.now(tz="UTC")

    def window(self, start: object, end: object) -> Window:
        return self.store.window(start, end)

    def check_alive(self) -> None:
        """Raise when a service or the load generator died (its log says why)."""
        if self.running is None:
            return
        dead = [name for name, ok in self.running.alive().items() if not ok]
        if dead:
            raise RuntimeError(f"exited: {', '.join(dead)} (logs in {self.run_dir / 'logs'})")

    # -- faults ---------------------------------------------------------------------------

    def inject(self, target: str, fault: str, params: dict[str, float] | None = None) -> Injection:
        assert self.injector is not None, "the lab is not running"
        return self.injector.inject(target, fault, params)

    def clear(self, target: str) -> None:
        assert self.injector is not None, "the lab is not running"
        self.injector.clear(target)
