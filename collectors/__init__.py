"""Getting metrics onto Kafka in the OpenTelemetry Collector kafka exporter's wire format.

Topic ``otlp_metrics``, encoding ``otlp_proto``: one ``ExportMetricsServiceRequest`` per record,
one resource per record, keyed by the hash of the resource's attributes
(``partition_metrics_by_resource_attributes: true``), so ingest reads our records and the
Collector's the same way. Run a collector with ``python -m collectors.<module> --help``.
"""
