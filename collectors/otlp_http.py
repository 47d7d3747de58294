"""OTLP/HTTP receiver: ``POST /v1/metrics`` in, Kafka records out (a small gateway for when
no Collector runs).

Status codes follow the OTLP/HTTP specification: 200 with an ``ExportMetricsServiceResponse``
once Kafka has acknowledged the records; 400 with a ``google.rpc.Status`` for a payload that is
not OTLP (the client must not retry); 415 for another content type; 503 with ``Retry-After``
when Kafka does not take the records in time (the client retries; nothing is dropped silently).
The gateway never throttles by itself, so it has no use for 429.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import json
import logging
import zlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, status_pb2
from kafka.errors import KafkaError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from starlette.concurrency import run_in_threadpool

from collectors.kafka_sink import KafkaSink
from collectors.otlp_records import records_by_resource

log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
RETRY_AFTER_SECONDS = 5


class BadPayload(ValueError):
    """The request body is not an OTLP metrics request."""


def _ids_hex_to_base64(node: Any) -> Any:
    """OTLP/JSON writes exemplar ``traceId``/``spanId`` as hex, protobuf's JSON mapping reads
    bytes as base64 (OTLP specification, "JSON Protobuf Encoding")."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in ("traceId", "spanId") and isinstance(value, str):
                try:
                    value = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError as exc:
                    raise BadPayload(f"{key} is not hex: {value!r}") from exc
            out[key] = _ids_hex_to_base64(value)
        return out
    if isinstance(node, list):
        return [_ids_hex_to_base64(item) for item in node]
    return node


def parse_request(
    body: bytes, content_type: str, content_encoding: str
) -> ExportMetricsServiceRequest:
    """Decompress and decode an OTLP/HTTP metrics body; ``BadPayload`` says why it is not one."""
    if content_encoding == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise BadPayload(f"body is not gzip: {exc}") from exc
    elif content_encoding not in ("", "identity"):
        raise BadPayload(f"unsupported Content-Encoding {content_encoding!r}")
    if content_type == PROTOBUF:
        try:
            return ExportMetricsServiceRequest.FromString(body)
        except DecodeError as exc:
            raise BadPayload(f"not an ExportMetricsServiceRequest: {exc}") from exc
    try:
        document = json.loads(body)
        # Unknown fields must be ignored (OTLP/JSON), so that newer clients still get through.
        return json_format.ParseDict(
            _ids_hex_to_base64(document), ExportMetricsServiceRequest(), ignore_unknown_fields=True
        )
    except (ValueError, json_format.ParseError) as exc:
        raise BadPayload(f"not OTLP/JSON metrics: {exc}") from exc


def _encode(message: Any, content_type: str) -> bytes:
    if content_type == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


def _status(
    code: int, message: str, http_status: int, content_type: str, **headers: str
) -> Response:
    body = _encode(status_pb2.Status(code=code, message=message), content_type)
    return Response(body, status_code=http_status, media_type=content_type, headers=headers)


def create_app(sink: KafkaSink) -> FastAPI:
    """The receiver as an ASGI app; ``sink`` is where accepted records go."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        sink.close()

    app = FastAPI(title="rca OTLP/HTTP metrics receiver", lifespan=lifespan)

    @app.post("/v1/metrics")
    async def receive_metrics(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in (PROTOBUF, JSON):
            return _status(
                code_pb2.INVALID_ARGUMENT,
                f"unsupported Content-Type {content_type!r}; use {PROTOBUF} or {JSON}",
                415,
                PROTOBUF,
            )
        encoding = request.headers.get("content-encoding", "").strip().lower()
        try:
            otlp = parse_request(await request.body(), content_type, encoding)
        except BadPayload as exc:
            return _status(code_pb2.INVALID_ARGUMENT, str(exc), 400, content_type)
        records = records_by_resource(otlp)
        if records:
            try:
                await run_in_threadpool(sink.send, records)
            except KafkaError as exc:
                # Unreachable, timed out or buffer full (kafka-python reports all of them as
                # KafkaError): retryable, so the client keeps the data and sends it again.
                log.warning("forwarding to Kafka failed: %s", exc)
                return _status(
                    code_pb2.UNAVAILABLE,
                    f"Kafka did not take the records: {exc}",
                    503,
                    content_type,
                    **{"Retry-After": str(RETRY_AFTER_SECONDS)},
                )
        return Response(
            _encode(ExportMetricsServiceResponse(), content_type),
            status_code=200,
            media_type=content_type,
        )

    return app


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    from rca.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m collectors.otlp_http", description=__doc__)
    parser.add_argument("--bootstrap", default=settings.kafka_bootstrap)
    parser.add_argument("--topic", default=settings.metrics_topic)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4318, help="OTLP/HTTP default 4318")
    args = parser.parse_args(argv)
    app = create_app(KafkaSink(args.bootstrap, args.topic))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
