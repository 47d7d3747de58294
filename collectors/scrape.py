"""Prometheus scraper: fetch ``/metrics`` of vLLM, SGLang, DCGM exporter (or any target) every
``--interval`` seconds and write each scrape to Kafka as OTLP (see
:mod:`collectors.prometheus_text` for the mapping). Like Prometheus it adds an ``up`` gauge per
target: 1 after a good scrape, 0 when the target did not answer.

    python -m collectors.scrape --target vllm=http://vllm-0:8000/metrics \\
        --target dcgm-exporter=http://dcgm:9400/metrics --bootstrap kafka:9092
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

import httpx
from kafka.errors import KafkaError

from collectors.kafka_sink import KafkaSink
from collectors.otlp_records import records_by_resource
from collectors.prometheus_text import exposition_to_request

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    job: str
    url: str

    @property
    def instance(self) -> str:
        """``host:port``, Prometheus' ``instance`` label."""
        parsed = urlparse(self.url)
        return f"{parsed.hostname}:{parsed.port or (443 if parsed.scheme == 'https' else 80)}"


def parse_target(text: str) -> Target:
    job, sep, url = text.partition("=")
    if not sep or not job or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected JOB=URL, got {text!r}")
    return Target(job, url)


def scrape_once(client: httpx.Client, target: Target, sink: KafkaSink) -> bool:
    """Scrape one target and send it; False when the target did not answer."""
    now_ns = time.time_ns()
    try:
        reply = client.get(target.url)
        reply.raise_for_status()
        text, up = reply.text, 1.0
    except httpx.HTTPError as exc:
        log.warning("scrape of %s failed: %s", target.url, exc)
        text, up = "", 0.0
    request = exposition_to_request(text + f"up {up}\n", target.job, target.instance, now_ns)
    sink.send(records_by_resource(request))
    return up == 1.0


def main(argv: Sequence[str] | None = None) -> int:
    from rca.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m collectors.scrape", description=__doc__)
    parser.add_argument("--target", type=parse_target, action="append", required=True)
    parser.add_argument("--bootstrap", default=settings.kafka_bootstrap)
    parser.add_argument("--topic", default=settings.metrics_topic)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    sink = KafkaSink(args.bootstrap, args.topic)
    with httpx.Client(timeout=args.interval) as client:
        while True:
            started = time.monotonic()
            for target in args.target:
                try:
                    scrape_once(client, target, sink)
                except KafkaError as exc:
                    log.warning("Kafka did not take the scrape of %s: %s", target.url, exc)
            if args.once or stopping.wait(max(0.0, args.interval - (time.monotonic() - started))):
                break
    sink.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
