"""An OpenTelemetry SDK ``MetricExporter`` that writes to Kafka like the Collector does."""

from __future__ import annotations

import logging

from kafka.errors import KafkaError
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.metrics.view import Aggregation

from collectors.kafka_sink import KafkaSink
from collectors.otlp_records import records_by_resource

log = logging.getLogger(__name__)


class KafkaMetricExporter(MetricExporter):
    """Each export becomes one ``ExportMetricsServiceRequest`` record per resource, encoding
    ``otlp_proto``, keyed by the resource hash (see :mod:`collectors.otlp_records`).

    Drive it with ``PeriodicExportingMetricReader(KafkaMetricExporter(sink))``. A failed send
    returns ``FAILURE``; the SDK keeps cumulative state, so the next export carries the data.
    """

    def __init__(
        self,
        sink: KafkaSink,
        preferred_temporality: dict[type, AggregationTemporality] | None = None,
        preferred_aggregation: dict[type, Aggregation] | None = None,
    ) -> None:
        super().__init__(
            preferred_temporality=preferred_temporality,
            preferred_aggregation=preferred_aggregation,
        )
        self.sink = sink

    def export(
        self,
        metrics_data: MetricsData,
        timeout_millis: float = 10_000,
        **kwargs: object,  # the SDK's abstract signature has them; nothing is read from them
    ) -> MetricExportResult:
        records = records_by_resource(encode_metrics(metrics_data))
        try:
            self.sink.send(records, timeout_seconds=timeout_millis / 1000)
        except KafkaError as exc:
            log.warning("metrics export to Kafka failed: %s", exc)
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True  # export() returns only after the broker acknowledged

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        self.sink.close(timeout_seconds=timeout_millis / 1000)
