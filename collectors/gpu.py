"""GPU collector: NVML readings as ``hw.gpu.*`` metrics on Kafka.

Metrics (OpenTelemetry hardware semantic conventions where one exists): ``hw.gpu.utilization``
(ratio), ``hw.gpu.memory.usage`` and ``hw.gpu.memory.limit`` (bytes),
``hw.gpu.memory.utilization`` (ratio), ``hw.power`` (W) and ``hw.temperature`` (°C) with
``hw.type=gpu``, and ``hw.gpu.clock.sm`` (Hz; no convention exists for it). Every point carries
``hw.id`` = the GPU's UUID. Without an NVIDIA GPU (or driver) it says so and exits 0.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from opentelemetry.metrics import CallbackOptions, Observation

from collectors.meters import add_kafka_arguments, kafka_meter_provider, run_until_stopped


@dataclass(frozen=True)
class GpuReading:
    uuid: str
    name: str
    utilization_ratio: float
    memory_used_bytes: float
    memory_total_bytes: float
    sm_clock_hz: float
    power_watts: float
    temperature_celsius: float


def read_gpus() -> list[GpuReading]:
    """One reading per GPU NVML sees (NVML must be initialised)."""
    import pynvml

    readings = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        readings.append(
            GpuReading(
                uuid=str(pynvml.nvmlDeviceGetUUID(handle)),
                name=str(pynvml.nvmlDeviceGetName(handle)),
                utilization_ratio=pynvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100,
                memory_used_bytes=float(memory.used),
                memory_total_bytes=float(memory.total),
                sm_clock_hz=pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM) * 1e6,
                power_watts=pynvml.nvmlDeviceGetPowerUsage(handle) / 1000,  # NVML reports mW
                temperature_celsius=float(
                    pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)
                ),
            )
        )
    return readings


def observations(readings: Iterable[GpuReading]) -> dict[str, list[Observation]]:
    """Metric name -> observations for the readings (pure)."""
    out: dict[str, list[Observation]] = {}
    for r in readings:
        gpu = {"hw.id": r.uuid}
        hw = {"hw.id": r.uuid, "hw.type": "gpu"}
        values = {
            "hw.gpu.utilization": (r.utilization_ratio, gpu),
            "hw.gpu.memory.usage": (r.memory_used_bytes, gpu),
            "hw.gpu.memory.limit": (r.memory_total_bytes, gpu),
            "hw.gpu.memory.utilization": (r.memory_used_bytes / r.memory_total_bytes, gpu),
            "hw.gpu.clock.sm": (r.sm_clock_hz, gpu),
            "hw.power": (r.power_watts, hw),
            "hw.temperature": (r.temperature_celsius, hw),
        }
        for name, (value, attributes) in values.items():
            out.setdefault(name, []).append(Observation(value, attributes))
    return out


# name -> (unit, semantic-convention instrument: memory usage/limit are up-down counters)
INSTRUMENTS = {
    "hw.gpu.utilization": ("1", "gauge"),
    "hw.gpu.memory.usage": ("By", "updowncounter"),
    "hw.gpu.memory.limit": ("By", "updowncounter"),
    "hw.gpu.memory.utilization": ("1", "gauge"),
    "hw.gpu.clock.sm": ("Hz", "gauge"),
    "hw.power": ("W", "gauge"),
    "hw.temperature": ("Cel", "gauge"),
}


def _callback(name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
    # NVML answers in microseconds, so each instrument reads the GPUs itself.
    return lambda _: observations(read_gpus()).get(name, [])


def main(argv: Sequence[str] | None = None) -> int:
    import pynvml

    parser = argparse.ArgumentParser(prog="python -m collectors.gpu", description=__doc__)
    add_kafka_arguments(parser, default_service=socket.gethostname())
    args = parser.parse_args(argv)
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        print(f"collectors.gpu: no NVIDIA GPU here ({exc}); nothing to collect", file=sys.stderr)
        return 0
    try:
        readings = read_gpus()
        if not readings:
            print("collectors.gpu: NVML sees no GPU; nothing to collect", file=sys.stderr)
            return 0
        print(f"collectors.gpu: {len(readings)} GPU(s): {', '.join(r.name for r in readings)}")
        provider = kafka_meter_provider(args)
        meter = provider.get_meter("collectors.gpu")
        for name, (unit, kind) in INSTRUMENTS.items():
            make = (
                meter.create_observable_gauge
                if kind == "gauge"
                else meter.create_observable_up_down_counter
            )
            make(name, [_callback(name)], unit=unit)
        return run_until_stopped(provider, args.once)
    finally:
        pynvml.nvmlShutdown()


if __name__ == "__main__":
    raise SystemExit(main())
