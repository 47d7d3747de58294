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
