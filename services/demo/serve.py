"""``rca serve`` beside a demo (``rca demo --keep-running``): start it, alert it, read it back.

The API runs as its own process with its own ingest consumer on the demo's broker, an incident
database in the demo's output folder and a fresh bearer token. When the SLO watcher fires, the
demo posts a Grafana unified-alerting webhook notification (``version: "1"``, the shape of
``../shared/reference/fixtures/grafana_webhook_payload.json``) to ``POST /v1/alerts/grafana``,
with the watcher's onset as ``rca_onset`` and the breached service as ``service_name``; the API
opens the incident and analyses it like any alert from Grafana.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from rca.transport.broker import free_port

# Runs a command so that Linux SIGTERMs it when this process dies (PR_SET_PDEATHSIG survives
# exec), so a killed demo leaves no API server behind.
_WITH_PARENT_DEATH = (
    "import ctypes, os, signal, sys; "
    "ctypes.CDLL('libc.so.6').prctl(1, signal.SIGTERM); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def grafana_notification(
    *,
    alertname: str,
    service: str,
    summary: str,
    onset: pd.Timestamp,
    method: str,
    fingerprint: str,
    value: float,
) -> dict[str, Any]:
    """A Grafana webhook notification (``version: "1"``) for one firing alert."""
    labels = {
        "alertname": alertname,
        "service_name": service,
        "grafana_folder": "rca-demo",
        "rca_onset": onset.isoformat(),
        "rca_method": method,
    }
    return {
        "receiver": "rca-webhook",
        "status": "firing",
        "orgId": 1,
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": summary},
                "startsAt": onset.isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": fingerprint,
                "values": {"A": value},
                "valueString": f"[ var='A' labels={{}} value={value:.6g} ]",
            }
        ],
        "groupLabels": {"alertname": alertname},
        "commonLabels": labels,
        "commonAnnotations": {"summary": summary},
        "externalURL": "",
        "version": "1",
        "groupKey": f'{{}}:{{alertname="{alertname}"}}',
        "truncatedAlerts": 0,
        "title": f"[FIRING:1] {alertname} ({service})",
        "state": "alerting",
        "message": summary,
    }


@dataclass
class ApiServer:
    process: subprocess.Popen[bytes]
    url: str
    token: str
    log_path: Path

    @staticmethod
    def start(
        bootstrap: str,
        folder: Path,
        *,
        before_seconds: float,
        after_seconds: float,
        timeout_seconds: float = 60.0,
    ) -> ApiServer:
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        token = secrets.token_urlsafe(24)
        token_file = folder / "api.token"
        token_file.touch(mode=0o600)
        token_file.write_text(token)
        env = {
            **os.environ,
            "RCA_API_TOKEN_FILE": str(token_file),
            "RCA_DATABASE_URL": str(folder / "incidents.db"),
            "RCA_INGEST_GROUP": "rca-serve-demo",
            "RCA_STEP_SECONDS": "1",
            "RCA_ALERT_BEFORE_SECONDS": str(before_seconds),
            "RCA_ALERT_AFTER_SECONDS": str(after_seconds),
            "RCA_ALERT_SETTLE_SECONDS": str(after_seconds + 3),
            "RCA_HISTORY_SECONDS": "900",
            "RCA_WORKERS": "1",
        }
        env.pop("RCA_API_TOKEN", None)
        log_path = folder / "serve.log"
        command = [sys.executable, "-m", "rca.cli", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--bootstrap", bootstrap]
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-c", _WITH_PARENT_DEATH, *command],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                process_group=0,
            )
        server = ApiServer(process, f"http://127.0.0.1:{port}", token, log_path)
        server._wait_ready(timeout_seconds)
        return server

    def _wait_ready(self, timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        while True:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-1500:]
                raise RuntimeError(f"rca serve exited with {self.process.returncode}:\n{tail}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"rca serve not healthy after {timeout_seconds:.0f} s")
            time.sleep(0.3)

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def alert(self, notification: dict[str, Any]) -> str:
        """Post a Grafana notification; the id of the incident it opened."""
        reply = httpx.post(
            f"{self.url}/v1/alerts/grafana",
            json=notification,
            headers=self._headers,
            timeout=30.0,
        )
        reply.raise_for_status()
        return str(reply.json()["data"][0]["id"])

    def incident(self, incident_id: str) -> dict[str, Any]:
        reply = httpx.get(
            f"{self.url}/v1/incidents/{incident_id}", headers=self._headers, timeout=30.0
        )
        reply.raise_for_status()
        return dict(reply.json())

    def wait_done(self, incident_id: str, timeout_seconds: float) -> dict[str, Any]:
        """The incident once its analysis ended (done or failed), or as it is at the timeout."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            row = self.incident(incident_id)
            if row.get("status") in ("done", "failed") or time.monotonic() > deadline:
                return row
            time.sleep(1.0)

    def stop(self, timeout_seconds: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
