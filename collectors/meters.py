"""Run OpenTelemetry SDK meters that export to Kafka (shared by the GPU and host collectors)."""

from __future__ import annotations

import argparse
import signal
import threading

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from collectors.kafka_exporter import KafkaMetricExporter
from collectors.kafka_sink import KafkaSink


def add_kafka_arguments(parser: argparse.ArgumentParser, default_service: str) -> None:
    """The flags every SDK-based collector takes."""
    from rca.settings import get_settings

    settings = get_settings()
    parser.add_argument("--bootstrap", default=settings.kafka_bootstrap)
    parser.add_argument("--topic", default=settings.metrics_topic)
    parser.add_argument("--service", default=default_service, help="service.name of the data")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between exports")
    parser.add_argument("--once", action="store_true", help="collect and export once, then exit")


def kafka_meter_provider(args: argparse.Namespace) -> MeterProvider:
    """A ``MeterProvider`` whose reader exports every ``args.interval`` s to Kafka."""
    exporter = KafkaMetricExporter(KafkaSink(args.bootstrap, args.topic))
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=args.interval * 1000)
    return MeterProvider(
        resource=Resource.create({"service.name": args.service}), metric_readers=[reader]
    )


def run_until_stopped(provider: MeterProvider, once: bool) -> int:
    """Export once (``once``) or until SIGINT/SIGTERM; the shutdown makes a last export."""
    if not once:
        stopping = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        stopping.wait()
    ok = provider.force_flush()
    provider.shutdown()
    return 0 if ok else 1
