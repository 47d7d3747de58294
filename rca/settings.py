"""Deployment settings, read from the environment (prefix ``RCA_``) in one place."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rca.errors import RCAInputError

# Where the shared benchmark data lives next to a checkout of this repository.
_SHARED_DATA = Path("..") / "shared" / "data"
# Shortest API token accepted: a guessable token is no token.
MIN_TOKEN_LENGTH = 16
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RCA_", extra="forbid")

    data_root: Path | None = None

    # Telemetry path (collectors -> Kafka -> ingest -> window store).
    kafka_bootstrap: str = "127.0.0.1:9092"
    metrics_topic: str = "otlp_metrics"
    dlq_topic: str = "otlp_metrics.dlq"
    metrics_partitions: int = 6
    ingest_group: str = "rca-ingest"
    retention_seconds: float = 3600.0
    step_seconds: float = 1.0
    # tansu joins a group in ~3 s and stalls with kafka-python's 300 s default poll interval.
    kafka_session_timeout_ms: int = 6000
    kafka_max_poll_interval_ms: int = 10000
    # Ingest bounds: series in the window store (more are counted and their points dropped),
    # and what one GET /window may ask (series x steps; requests at once, more get 503).
    max_series: int = 50_000
    window_max_cells: int = 5_000_000
    window_max_concurrent: int = 4

    # Serve (`rca serve`: REST API, webhooks, incidents, Grafana write-back; rca/api).
    # Bearer token for writes and incident data (RCA_API_TOKEN, or a file holding it), at
    # least 16 characters, surrounding whitespace ignored. Without one, `rca serve` listens on
    # loopback only.
    api_token: SecretStr | None = None
    api_token_file: Path | None = None
    # Incident store: a file path (SQLite) or any SQLAlchemy URL (PostgreSQL for replicas).
    database_url: str = "rca-incidents.db"
    # Finished incidents older than this are deleted (seconds, or 30d / 12h / 90m; 0 keeps
    # them for ever).
    incident_retention: float = 30 * 86400.0
    # Method of analyses that do not name one (a key of rca.methods.METHODS).
    method: str = "run"
    # Analyses running at once (worker processes), and how many may wait before new ones are
    # turned away (429 on POST /v1/rca, 503 on webhooks so that senders retry).
    workers: int = 2
    queue_limit: int = 64
    # Analyses run in worker processes (off the server's interpreter); False runs them on
    # threads of the server process (tests, notebooks).
    worker_processes: bool = True
    # Largest request body accepted (413 above).
    max_body_bytes: int = 1_048_576
    # Window of an alert's analysis around its onset, history before it for learning, and
    # how long after the onset an analysis waits for data.
    alert_before_seconds: float = 900.0
    alert_after_seconds: float = 300.0
    alert_settle_seconds: float = 60.0
    history_seconds: float = 3600.0
    # The learned causal graph is fitted in the background every graph_refresh_seconds (0: never;
    # each analysis then learns its own) from the last graph_history_seconds of every series.
    graph_refresh_seconds: float = 3600.0
    graph_history_seconds: float = 86400.0
    # Who calls whom (a dependency CSV, or JSON with a "calls" list): the RCA's call-graph
    # prior. Service-graph metrics in the window (traces_service_graph_request_total) are
    # used with or without it.
    call_graph: Path | None = None
    # With --no-ingest: the ingest workers' status endpoint (GET /window); every address the
    # host name resolves to is asked (a headless Service lists every worker).
    ingest_url: str | None = None
    # Grafana unified-alerting webhook HMAC secret (contact point hmacConfig).
    webhook_hmac_secret: SecretStr | None = None
    webhook_hmac_max_skew_seconds: float = 300.0
    # Grafana write-back (annotations) and `rca grafana provision`.
    grafana_url: str | None = None
    grafana_token: SecretStr | None = None
    grafana_org_id: int = 1
    # How Grafana and report links reach this API (default: http://HOST:PORT of rca serve).
    public_url: str | None = None

    @field_validator("incident_retention", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        """``30d``, ``12h``, ``90m``, ``45s`` or plain seconds."""
        if not isinstance(value, str):
            return value
        match = _DURATION.match(value.lower())
        if match is None:
            raise ValueError(f"{value!r} is not a duration (e.g. 30d, 12h, 90m, 3600)")
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]

    def resolved_api_token(self) -> str | None:
        """The API token from ``RCA_API_TOKEN`` (unset or empty: none), else from
        ``RCA_API_TOKEN_FILE``, stripped; ``RCAInputError`` when what is set is blank or
        shorter than :data:`MIN_TOKEN_LENGTH`."""
        if self.api_token is not None and self.api_token.get_secret_value():
            token, origin = self.api_token.get_secret_value().strip(), "RCA_API_TOKEN"
        elif self.api_token_file is not None:
            token, origin = self.api_token_file.read_text().strip(), "RCA_API_TOKEN_FILE"
        else:
            return None
        if len(token) < MIN_TOKEN_LENGTH:
            raise RCAInputError(
                f"{origin} holds {'a blank token' if not token else 'a token too short'}: "
                f"use at least {MIN_TOKEN_LENGTH} characters (e.g. openssl rand -hex 24)"
            )
        return token

    def resolved_data_root(self) -> Path | None:
        """The configured data root, else ``../shared/data`` beside the working directory or
        beside this checkout, when one exists."""
        if self.data_root is not None:
            return self.data_root
        checkout = Path(__file__).resolve().parent.parent
        for candidate in (Path.cwd() / _SHARED_DATA, checkout / _SHARED_DATA):
            if candidate.is_dir():
                return candidate.resolve()
        return None


@lru_cache
def get_settings() -> Settings:
    return Settings()
