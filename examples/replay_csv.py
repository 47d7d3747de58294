"""Send a wide CSV (the input of ``rca analyze``) onto Kafka as OTLP metrics, so that
``rca serve`` or ``rca ingest`` stores it as if collectors had sent it:

    .venv/bin/python examples/replay_csv.py examples/sample-incident/incident.csv \\
        --bootstrap 127.0.0.1:PORT

Every column becomes an OTLP gauge of its service (a statistic such as ``:p90`` joins the
metric's name, since a gauge carries none), with the CSV's own times; one record per service,
keyed as the Collector's kafka exporter keys it. The topic is ``RCA_METRICS_TOPIC``
(default ``otlp_metrics``, which ``rca broker`` creates).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from kafka.errors import KafkaError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from collectors.kafka_sink import KafkaSink
from collectors.otlp_records import records_by_resource
from rca.datasets.wide_csv import read_wide_csv
from rca.errors import RCAInputError
from rca.settings import get_settings
from rca.types import parse_series_name


def otlp_request(window: pd.DataFrame) -> ExportMetricsServiceRequest:
    """One resource per service, one gauge per column, a point per non-NaN value."""
    request = ExportMetricsServiceRequest()
    scopes = {}
    times = window.index.as_unit("ns").asi8
    for column in window.columns:
        key = parse_series_name(column)
        if key.service not in scopes:
            resource = request.resource_metrics.add()
            resource.resource.attributes.append(
                KeyValue(key="service.name", value=AnyValue(string_value=key.service))
            )
            scopes[key.service] = resource.scope_metrics.add()
        name = f"{key.metric}.{key.stat}" if key.stat else key.metric
        gauge = scopes[key.service].metrics.add(name=name).gauge
        attributes = [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in key.attrs]
        for t, value in zip(times, window[column].to_numpy(), strict=True):
            if value == value:  # NaN is no sample
                gauge.data_points.add(
                    time_unix_nano=int(t), as_double=float(value), attributes=attributes
                )
    return request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", type=Path, help="a time column and one column per series")
    parser.add_argument(
        "--bootstrap", default=None, help="Kafka host:port (default: RCA_KAFKA_BOOTSTRAP)"
    )
    args = parser.parse_args()
    settings = get_settings()
    try:
        window = read_wide_csv(args.csv)
    except RCAInputError as exc:
        parser.exit(2, f"replay_csv: {exc}\n")
    records = records_by_resource(otlp_request(window))
    sink = KafkaSink(args.bootstrap or settings.kafka_bootstrap, settings.metrics_topic)
    try:
        sink.send(records)
    except KafkaError as exc:
        parser.exit(1, f"replay_csv: cannot send to Kafka at {sink.bootstrap}: {exc}\n")
    finally:
        sink.close()
    print(
        f"sent {window.shape[1]} series x {len(window)} rows "
        f"({window.index[0].isoformat()} .. {window.index[-1].isoformat()}) "
        f"to {settings.metrics_topic} at {sink.bootstrap} in {len(records)} records"
    )


if __name__ == "__main__":
    main()
