"""Deployment settings, read from the environment (prefix ``RCA_``) in one place."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

# Where the shared benchmark data lives next to a checkout of this repository.
_SHARED_DATA = Path("..") / "shared" / "data"


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
