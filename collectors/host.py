"""Host and process CPU and memory (``psutil``) as OpenTelemetry metrics on Kafka.

Host: ``system.cpu.utilization`` (ratio of all CPUs), ``system.memory.usage`` (bytes, with
``system.memory.state`` = used/available) and ``system.memory.utilization``. Processes given
with ``--pid`` (repeatable): ``process.cpu.utilization`` (ratio of all CPUs, the semantic
conventions' "divided by elapsed time and number of CPUs") and ``process.memory.usage`` (RSS
bytes), each with ``process.pid``. CPU figures cover the time since the previous export.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Callable, Iterable, Sequence

import psutil
from opentelemetry.metrics import CallbackOptions, Observation

from collectors.meters import add_kafka_arguments, kafka_meter_provider, run_until_stopped

Reader = Callable[[], list[Observation]]


def system_cpu_utilization() -> list[Observation]:
    return [Observation(psutil.cpu_percent(interval=None) / 100)]


def system_memory_usage() -> list[Observation]:
    memory = psutil.virtual_memory()
    return [
        Observation(float(memory.total - memory.available), {"system.memory.state": "used"}),
        Observation(float(memory.available), {"system.memory.state": "available"}),
    ]


def system_memory_utilization() -> list[Observation]:
    memory = psutil.virtual_memory()
    return [Observation((memory.total - memory.available) / memory.total)]


def process_reader(processes: Sequence[psutil.Process], metric: str) -> Reader:
    """Observations of ``metric`` for each process still alive (an ended one gives no point
    rather than a made-up zero)."""
    cpus = psutil.cpu_count() or 1

    def read() -> list[Observation]:
        out = []
        for process in processes:
            try:
                if metric == "process.cpu.utilization":
                    value = process.cpu_percent(interval=None) / 100 / cpus
                else:
                    value = float(process.memory_info().rss)
            except psutil.Error:
                continue
            out.append(Observation(value, {"process.pid": process.pid}))
        return out

    return read


def _callback(read: Reader) -> Callable[[CallbackOptions], Iterable[Observation]]:
    return lambda _: read()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collectors.host", description=__doc__)
    add_kafka_arguments(parser, default_service=socket.gethostname())
    parser.add_argument("--pid", type=int, action="append", default=[], help="repeatable")
    args = parser.parse_args(argv)
    processes = [psutil.Process(pid) for pid in args.pid]
    provider = kafka_meter_provider(args)
    meter = provider.get_meter("collectors.host")
    gauge, updown = meter.create_observable_gauge, meter.create_observable_up_down_counter
    gauge("system.cpu.utilization", [_callback(system_cpu_utilization)], unit="1")
    updown("system.memory.usage", [_callback(system_memory_usage)], unit="By")
    gauge("system.memory.utilization", [_callback(system_memory_utilization)], unit="1")
    if processes:
        cpu = process_reader(processes, "process.cpu.utilization")
        rss = process_reader(processes, "process.memory.usage")
        gauge("process.cpu.utilization", [_callback(cpu)], unit="1")
        updown("process.memory.usage", [_callback(rss)], unit="By")
    return run_until_stopped(provider, args.once)


if __name__ == "__main__":
    raise SystemExit(main())
