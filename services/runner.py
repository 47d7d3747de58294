"""Bring a stack up as real processes, one per service, and take it down again.

:func:`start_stack` picks a free loopback port per service, writes the peers file (service ->
port) and a fresh admin token (mode 0600) into the run directory, starts every service
(:mod:`services.app`) and the load generator (:mod:`services.load`) as child processes and
waits until each answers ``GET /health``. :meth:`RunningStack.stop` ends them (SIGTERM, then
SIGKILL after a grace period) and waits for each, so nothing is left behind.

Every child is in its own process group (a Ctrl-C in the terminal reaches only the parent,
which then stops the children in order) and asks Linux to SIGTERM it when the parent dies
(``PR_SET_PDEATHSIG``), so even a killed parent leaves no orphans. The run directory's
``run.json`` tells :mod:`services.inject` where everything is; ``logs/`` holds each child's
output.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from rca.transport.broker import free_ports
from services.stack import Stack, load_stack


class StackError(RuntimeError):
    """A service did not come up (its log's tail is in the message)."""


def _tail(path: Path, lines: int = 12) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class RunningStack:
    """A stack's processes; ``urls`` by service, the admin ``token``."""

    stack: Stack
    run_dir: Path
    bootstrap: str
    ports: dict[str, int]
    token: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def urls(self) -> dict[str, str]:
        return {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}

    @property
    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes.items()}

    def manifest(self) -> dict[str, object]:
        return {
            "stack": self.stack.name,
            "bootstrap": self.bootstrap,
            "urls": self.urls,
            "pids": self.pids,
            "token_file": str(self.run_dir / "admin.token"),
            "faults_log": str(self.run_dir / "faults.jsonl"),
        }

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log_dir = self.run_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        with (log_dir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", *args, "--parent-pid", str(os.getpid())],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.processes[name] = process
        return process

    def start_load(
        self, rate: float | None, profile: str, period_seconds: float, seed: int
    ) -> None:
        """Start (or restart) the load generator."""
        old = self.processes.pop("load", None)
        if old is not None:
            _stop([old], 5.0)
        args = [
            "services.load",
            "--stack",
            self.stack.name,
            "--peers",
            str(self.run_dir / "peers.json"),
            "--profile",
            profile,
            "--period",
            str(period_seconds),
            "--seed",
            str(seed),
        ]
        if rate is not None:
            args += ["--rate", str(rate)]
        self._spawn("load", args)

    def alive(self) -> dict[str, bool]:
        return {name: p.poll() is None for name, p in self.processes.items()}

    def stop(self, timeout_seconds: float = 5.0) -> None:
        """Stop the load first, then every service; wait for all of them."""
        load = self.processes.pop("load", None)
        if load is not None:
            _stop([load], timeout_seconds)
        _stop(list(self.processes.values()), timeout_seconds)


def _stop(processes: list[subprocess.Popen[bytes]], timeout_seconds: float) -> None:
    running = [p for p in processes if p.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):  # the group: a child's children too
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_seconds
    for process in running:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def start_stack(
    stack: Stack | str,
    bootstrap: str,
    run_dir: Path,
    *,
    topic: str = "otlp_metrics",
    interval_seconds: float = 1.0,
    seed: int = 0,
    timeout_seconds: float = 60.0,
) -> RunningStack:
    """Start every service of ``stack``; raises :class:`StackError` (after stopping what did
    start) when one does not answer ``/health`` within the timeout."""
    stack = load_stack(stack) if isinstance(stack, str) else stack
    run_dir.mkdir(parents=True, exist_ok=True)
    ports = dict(zip(stack.services, free_ports(len(stack.services)), strict=True))
    (run_dir / "peers.json").write_text(json.dumps(ports, indent=2))
    token = secrets.token_urlsafe(24)
    token_file = run_dir / "admin.token"
    token_file.touch(mode=0o600)
    token_file.write_text(token)
    running = RunningStack(stack, run_dir, bootstrap, ports, token)
    try:
        for index, name in enumerate(stack.services):
            running._spawn(
                name,
                [
                    "services.app",
                    "--stack",
                    stack.name,
                    "--service",
                    name,
                    "--port",
                    str(ports[name]),
                    "--peers",
                    str(run_dir / "peers.json"),
                    "--bootstrap",
                    bootstrap,
                    "--topic",
                    topic,
                    "--interval",
                    str(interval_seconds),
                    "--token-file",
                    str(token_file),
                    "--seed",
                    str(seed * 1000 + index),
                ],
            )
        _wait_healthy(running, timeout_seconds)
    except BaseException:
        running.stop()
        raise
    (run_dir / "run.json").write_text(json.dumps(running.manifest(), indent=2))
    return running


def _wait_healthy(running: RunningStack, timeout_seconds: float) -> None:
    pending = dict(running.urls)
    deadline = time.monotonic() + timeout_seconds
    with httpx.Client(timeout=1.0) as client:
        while pending:
            for name, url in list(pending.items()):
                process = running.processes[name]
                if process.poll() is not None:
                    raise StackError(
                        f"{name} exited with {process.returncode} while starting:\n"
                        + _tail(running.run_dir / "logs" / f"{name}.log")
                    )
                try:
                    if client.get(f"{url}/health").status_code == 200:
                        del pending[name]
                except httpx.HTTPError:
                    pass
            if pending and time.monotonic() > deadline:
                raise StackError(f"not healthy after {timeout_seconds:.0f} s: {sorted(pending)}")
            if pending:
                time.sleep(0.2)
