"""Inject faults into a running stack through each service's admin endpoint, and log them.

Every injection and every clearing is appended to the run's ``faults.jsonl`` (one JSON object
per line): the stack, the target, the fault and its parameters, and the exact start time the
target process reported once the fault was on (``started_unix_ns``) or the time it was cleared.
That file is the ground truth of a live run.

    python -m services inject --run-dir RUN --target decode-0 --fault kv-pressure
    python -m services clear --run-dir RUN --target decode-0
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from services.stack import FAULTS, load_stack


class InjectionError(RuntimeError):
    """The admin endpoint refused or could not be reached."""


@dataclass(frozen=True)
class Injection:
    """The ground truth of one injection."""

    stack: str
    target: str
    fault: str
    params: dict[str, float]
    fault_id: str
    started_unix_ns: int
    modelled: bool
    link: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "event": "injected",
            "stack": self.stack,
            "target": self.target,
            "fault": self.fault,
            "params": self.params,
            "id": self.fault_id,
            "started_unix_ns": self.started_unix_ns,
            "modelled": self.modelled,
            "link": self.link,
        }


class Injector:
    """Talks to the admin endpoints of one running stack (``run.json`` in ``run_dir``)."""

    def __init__(self, run_dir: Path, timeout_seconds: float = 10.0) -> None:
        manifest = json.loads((run_dir / "run.json").read_text())
        self.stack = load_stack(manifest["stack"])
        self.urls: dict[str, str] = manifest["urls"]
        self.token = Path(manifest["token_file"]).read_text().strip()
        self.log_path = Path(manifest["faults_log"])
        self.timeout_seconds = timeout_seconds
        # Targets this injector put a fault on, so a teardown clears only those.
        self.touched: set[str] = set()

    def _request(
        self, method: str, target: str, path: str, body: Any = None, timeout: float | None = None
    ) -> dict[str, Any]:
        if target not in self.urls:
            raise InjectionError(f"no service {target!r} in {self.stack.name}")
        try:
            reply = httpx.request(
                method,
                f"{self.urls[target]}{path}",
                json=body,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.timeout_seconds if timeout is None else timeout,
            )
        except httpx.HTTPError as exc:
            raise InjectionError(f"{target}: {exc}") from exc
        if reply.status_code >= 400:
            raise InjectionError(f"{target}: HTTP {reply.status_code}: {reply.text}")
        return reply.json()

    def _log(self, record: dict[str, Any]) -> None:
        with self.log_path.open("a") as out:
            out.write(json.dumps(record) + "\n")

    def inject(self, target: str, fault: str, params: dict[str, float] | None = None) -> Injection:
        if fault not in FAULTS:
            raise InjectionError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        targets = self.stack.targets(fault)
        if target not in targets:
            raise InjectionError(
                f"{fault} does not apply to {target}; targets: {', '.join(targets)}"
            )
        body = {"fault": fault, "params": self.stack.params(fault, params)}
        reply = self._request("POST", target, "/admin/faults", body)
        self.touched.add(target)
        link = self.stack.services[target].link
        injection = Injection(
            stack=self.stack.name,
            target=target,
            fault=fault,
            params=reply["params"],
            fault_id=reply["id"],
            started_unix_ns=int(reply["started_unix_ns"]),
            modelled=bool(reply["modelled"]),
            link=f"{target}<->{link.peer}" if link and fault.startswith("link-") else None,
        )
        self._log(injection.to_json())
        return injection

    def clear(self, target: str, timeout_seconds: float | None = None) -> dict[str, Any]:
        reply = self._request("DELETE", target, "/admin/faults", timeout=timeout_seconds)
        record = {
            "event": "cleared",
            "stack": self.stack.name,
            "target": target,
            "ids": [c["id"] for c in reply.get("cleared", [])],
            "at_unix_ns": int(reply.get("at_unix_ns", time.time_ns())),
        }
        self._log(record)
        return record

    def clear_touched(self, timeout_seconds: float = 3.0) -> None:
        """Clear the faults of every target this injector touched: best effort with short
        timeouts, as it runs on teardown, where a slow or dead service is skipped."""
        for target in sorted(self.touched):
            with contextlib.suppress(InjectionError):
                self.clear(target, timeout_seconds)

    def active(self, target: str) -> list[dict[str, Any]]:
        return list(self._request("GET", target, "/admin/faults")["active"])


def read_truth(log_path: Path) -> list[dict[str, Any]]:
    """The records of a ``faults.jsonl``."""
    if not log_path.exists():
        return []
    return [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
