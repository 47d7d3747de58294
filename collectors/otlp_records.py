"""Kafka records from OTLP requests, framed and keyed like the Collector's kafka exporter.

With ``partition_metrics_by_resource_attributes`` the exporter copies each ``ResourceMetrics``
into its own payload and keys it with ``pdatautil.MapHash(resource.Attributes())``
(opentelemetry-collector-contrib ``exporter/kafkaexporter``, ``pkg/pdatautil/hash.go``). The
same resource always lands on the same partition, which keeps its points in order.
"""

from __future__ import annotations

import struct

import xxhash
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

# Type markers of pdatautil/hash.go, byte for byte.
_EXTRA = b"\xf3"
_KEY = b"\xf4"
_EMPTY = b"\xf5"
_BYTES = b"\xf6"
_STR = b"\xf7"
_TRUE = b"\xf8"
_FALSE = b"\xf9"
_INT = b"\xfa"
_DOUBLE = b"\xfb"
_MAP = b"\xfc"
_MAP_END = b"\xfd"
_SLICE = b"\xfe"
_SLICE_END = b"\xff"
_EMPTY_HASH = bytes(16)


def _write_map(out: bytearray, attributes: list[KeyValue]) -> None:
    # Go's sort.Strings orders by UTF-8 bytes, which is code-point order, as Python sorts str.
    for kv in sorted(attributes, key=lambda item: item.key):
        out += _KEY + kv.key.encode()
        _write_value(out, kv.value)


def _write_value(out: bytearray, value: AnyValue) -> None:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        out += _STR + value.string_value.encode()
    elif kind == "bool_value":
        out += _TRUE if value.bool_value else _FALSE
    elif kind == "int_value":
        out += _INT + struct.pack("<q", value.int_value)
    elif kind == "double_value":
        out += _DOUBLE + struct.pack("<d", value.double_value)
    elif kind == "kvlist_value":
        out += _MAP
        _write_map(out, list(value.kvlist_value.values))
        out += _MAP_END
    elif kind == "array_value":
        out += _SLICE
        for item in value.array_value.values:
            _write_value(out, item)
        out += _SLICE_END
    elif kind == "bytes_value":
        out += _BYTES + value.bytes_value
    else:
        out += _EMPTY


def resource_key(resource: Resource) -> bytes:
    """The 16-byte record key of a resource: ``pdatautil.MapHash`` of its attributes,
    independent of attribute order (two little-endian xxhash64 sums, the second over the
    buffer plus one extra byte)."""
    if not resource.attributes:
        return _EMPTY_HASH
    buffer = bytearray()
    _write_map(buffer, list(resource.attributes))
    first = xxhash.xxh64_intdigest(bytes(buffer))
    buffer += _EXTRA
    second = xxhash.xxh64_intdigest(bytes(buffer))
    return struct.pack("<QQ", first, second)


def records_by_resource(request: ExportMetricsServiceRequest) -> list[tuple[bytes, bytes]]:
    """``(key, value)`` per resource: each value is a complete ``ExportMetricsServiceRequest``
    holding that one resource."""
    records = []
    for resource_metrics in request.resource_metrics:
        one = ExportMetricsServiceRequest()
        one.resource_metrics.append(resource_metrics)
        records.append((resource_key(resource_metrics.resource), one.SerializeToString()))
    return records
