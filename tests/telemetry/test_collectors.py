"""Collectors: record keys, Prometheus text mapping, and the GPU, host and scrape collectors
run as real processes against the broker."""

from __future__ import annotations

import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import xxhash
from kafka import KafkaConsumer, TopicPartition
from kafka_harness import Topics
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from otlp_builders import kv
from patience import patience, wait_for

from collectors.gpu import GpuReading, observations, read_gpus
from collectors.otlp_records import resource_key
from collectors.prometheus_text import exposition_to_request
from rca.ingest.otlp_decode import DecodeState, Samples, decode_record
from rca.types import series_name

VLLM = """# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} 50
vllm:time_to_first_token_seconds_bucket{le="0.25",model_name="m"} 90
vllm:time_to_first_token_seconds_bucket{le="0.5",model_name="m"} 100
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="m"} 100
vllm:time_to_first_token_seconds_sum{model_name="m"} 12.5
vllm:time_to_first_token_seconds_count{model_name="m"} 100
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="m"} 0.75
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{model_name="m"} 1000
"""
DCGM = """DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",modelName="H100"} 55
DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-a"} 1024
DCGM_FI_DEV_FB_FREE{gpu="0",UUID="GPU-a"} 3072
DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a"} 61
"""
T0 = 1_800_000_000 * 10**9


def samples_of(*payloads: bytes) -> dict[str, float]:
    """Series name -> last value of the decoded payloads."""
    out, state = Samples(), DecodeState()
    for payload in payloads:
        decode_record(payload, state, out)
    return {
        series_name(s, m, st, dict(a)): v
        for (s, m, st, a), v in zip(out.keys, out.values, strict=True)
    }


def test_resource_key_is_the_collector_map_hash() -> None:
    one = Resource(attributes=[kv("service.name", "cart"), kv("k", 7)])
    other = Resource(attributes=[kv("k", 7), kv("service.name", "cart")])
    assert resource_key(one) == resource_key(other)
    assert resource_key(Resource()) == bytes(16)
    # pdatautil.MapHash: sorted keys, 0xf4 key marker, 0xf7 string / 0xfa int64 LE values,
    # xxhash64 of the buffer, then of the buffer plus 0xf3.
    buffer = b"\xf4k\xfa" + struct.pack("<q", 7) + b"\xf4service.name\xf7cart"
    expected = struct.pack(
        "<QQ", xxhash.xxh64_intdigest(buffer), xxhash.xxh64_intdigest(buffer + b"\xf3")
    )
    assert resource_key(one) == expected


def test_vllm_exposition_maps_to_genai_names_and_decodes() -> None:
    first = exposition_to_request(VLLM, "vllm", "vllm-0:8000", T0).SerializeToString()
    got = samples_of(first)
    ttft = "vllm:gen_ai.server.time_to_first_token"
    # 90 of 100 values are at or below 0.25 s: p90 is that bound; p50 the 0.1 s bound.
    assert got[f"{ttft}:p90{{model_name=m}}"] == pytest.approx(0.25)
    assert got[f"{ttft}:p50{{model_name=m}}"] == pytest.approx(0.1)
    assert got[f"{ttft}:mean{{model_name=m}}"] == pytest.approx(0.125)
    assert got["vllm:vllm%3Akv_cache_usage_perc{model_name=m}"] == 0.75
    # A scraped counter has no start time: its rate needs a second scrape.
    assert not any("prompt_tokens" in name for name in got)
    later = VLLM.replace("1000", "1600")
    second = exposition_to_request(later, "vllm", "vllm-0:8000", T0 + 10 * 10**9)
    got = samples_of(first, second.SerializeToString())
    assert got["vllm:vllm%3Aprompt_tokens_total:rate{model_name=m}"] == pytest.approx(60.0)


def test_dcgm_fields_become_hw_gpu_metrics_in_base_units() -> None:
    got = samples_of(
        exposition_to_request(DCGM, "dcgm-exporter", "dcgm:9400", T0).SerializeToString()
    )
    assert got == {
        "dcgm-exporter:hw.gpu.utilization{hw.id=GPU-a}": 0.55,
        "dcgm-exporter:hw.gpu.memory.usage{hw.id=GPU-a}": 1024 * 1048576,
        "dcgm-exporter:hw.temperature{hw.id=GPU-a,hw.type=gpu}": 61,
        "dcgm-exporter:DCGM_FI_DEV_FB_FREE{hw.id=GPU-a}": 3072,
        "dcgm-exporter:hw.gpu.memory.limit{hw.id=GPU-a}": 4096 * 1048576,
    }


def test_gpu_readings_map_to_hw_gpu_observations() -> None:
    reading = GpuReading("GPU-a", "H100", 0.5, 2e9, 8e9, 1.98e9, 300.0, 65.0)
    got = observations([reading])
    assert got["hw.gpu.memory.utilization"][0].value == 0.25
    assert got["hw.power"][0].attributes == {"hw.id": "GPU-a", "hw.type": "gpu"}


def collect_once(collector: str, bootstrap: str, *args: str) -> subprocess.CompletedProcess:
    """``python -m collectors.<collector> --once`` against ``bootstrap``, as a real process."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            f"collectors.{collector}",
            "--once",
            "--bootstrap",
            bootstrap,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=patience(),
    )


def nvidia_gpus() -> list[str]:
    """The UUIDs of the GPUs NVML sees here; empty without an NVIDIA driver."""
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    try:
        return [reading.uuid for reading in read_gpus()]
    finally:
        pynvml.nvmlShutdown()


def test_gpu_collector_without_a_gpu_says_so_and_exits_0() -> None:
    if nvidia_gpus():
        pytest.skip("this machine has an NVIDIA GPU")
    done = collect_once("gpu", "127.0.0.1:1")
    assert done.returncode == 0 and "no NVIDIA GPU" in done.stderr


def topic_samples(topics: Topics, *names: str) -> dict[str, float]:
    """The samples on the metrics topic, read until each of ``names`` is among them."""
    consumer = KafkaConsumer(bootstrap_servers=topics.bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topics.metrics, p) for p in range(4)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    payloads: list[bytes] = []

    def read() -> bool:
        for records in consumer.poll(timeout_ms=300).values():
            payloads.extend(r.value for r in records)
        return set(names) <= samples_of(*payloads).keys()

    wait_for(read, f"{', '.join(names)} on the topic")
    consumer.close()
    return samples_of(*payloads)


@pytest.mark.slow
def test_host_collector_writes_cpu_and_memory_to_kafka(topics: Topics) -> None:
    done = collect_once(
        "host", topics.bootstrap, "--topic", topics.metrics, "--service", "node-1", "--pid", "1"
    )
    assert done.returncode == 0, done.stderr
    cpu, memory = "node-1:system.cpu.utilization", "node-1:system.memory.utilization"
    rss = "node-1:process.memory.usage{process.pid=1}"
    got = topic_samples(topics, cpu, memory, rss)
    assert 0 <= got[cpu] <= 1
    assert 0 < got[memory] < 1
    assert got[rss] > 0


@pytest.mark.slow
def test_gpu_collector_writes_each_gpus_readings_to_kafka(topics: Topics) -> None:
    # Runs where a GPU is (the project's GPU check); CI machines have none and skip it.
    gpus = nvidia_gpus()
    if not gpus:
        pytest.skip("no NVIDIA GPU here")
    done = collect_once("gpu", topics.bootstrap, "--topic", topics.metrics, "--service", "gpu-node")
    assert done.returncode == 0, done.stderr
    names = {
        metric: f"gpu-node:{metric}{{hw.id={gpus[0]}}}"
        for metric in ("hw.gpu.utilization", "hw.gpu.memory.limit", "hw.gpu.clock.sm")
    }
    power = f"gpu-node:hw.power{{hw.id={gpus[0]},hw.type=gpu}}"
    got = topic_samples(topics, *names.values(), power)
    assert 0 <= got[names["hw.gpu.utilization"]] <= 1
    assert got[names["hw.gpu.memory.limit"]] > 2**30
    assert got[names["hw.gpu.clock.sm"]] > 1e8  # Hz, not MHz
    assert 0 < got[power] < 2000  # W, not mW


@pytest.fixture
def exposition_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (VLLM if self.path == "/vllm" else DCGM).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.slow
def test_scraper_writes_each_target_and_an_up_gauge(topics: Topics, exposition_server: str) -> None:
    done = collect_once(
        "scrape",
        topics.bootstrap,
        "--topic",
        topics.metrics,
        "--target",
        f"vllm={exposition_server}/vllm",
        "--target",
        f"dcgm-exporter={exposition_server}/dcgm",
        "--target",
        "gone=http://127.0.0.1:1/",
    )
    assert done.returncode == 0, done.stderr
    gpu = "dcgm-exporter:hw.gpu.utilization{hw.id=GPU-a}"
    ttft = "vllm:gen_ai.server.time_to_first_token:p90{model_name=m}"
    got = topic_samples(topics, "vllm:up", "dcgm-exporter:up", "gone:up", gpu, ttft)
    assert got["vllm:up"] == 1.0 and got["dcgm-exporter:up"] == 1.0 and got["gone:up"] == 0.0
    assert got[gpu] == 0.55
    assert got[ttft] == pytest.approx(0.25)


def test_collector_config_exports_otlp_proto_partitioned_by_resource() -> None:
    yaml = pytest.importorskip("yaml")
    path = Path(__file__).resolve().parents[2] / "collectors" / "otelcol" / "collector.yaml"
    config = yaml.safe_load(path.read_text())
    kafka = config["exporters"]["kafka"]
    assert kafka["metrics"] == {"topic": "otlp_metrics", "encoding": "otlp_proto"}
    assert kafka["partition_metrics_by_resource_attributes"] is True
    pipeline = config["service"]["pipelines"]["metrics"]
    assert set(pipeline["receivers"]) == {"otlp", "hostmetrics", "prometheus"}
    assert pipeline["exporters"] == ["kafka"]
