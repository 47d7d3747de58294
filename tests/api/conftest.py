"""Fixtures for the serve tests: settings on a temporary database, a window store holding a
synthetic incident, the API under ``TestClient`` (analyses on threads, fast methods)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from api_harness import TOKEN, Incident, fill_store, synthetic_incident
from fastapi.testclient import TestClient
from postgres_server import PostgresServer, server_bin

from rca.api import create_app
from rca.settings import Settings
from rca.store.window_store import WindowStore


@pytest.fixture(scope="session")
def incident() -> Incident:
    return synthetic_incident()


@pytest.fixture(scope="session")
def window_store(incident: Incident) -> WindowStore:
    store = WindowStore(step_seconds=5.0, retention_seconds=7200.0)
    fill_store(store, incident.frame)
    return store


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (skipped, saying why, when none is installed)."""
    bin_dir = server_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server (Debian package postgresql; scripts/test.sh installs it)")
    server = PostgresServer(bin_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The incident store's URL: a SQLite file, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "incidents.db")
    return request.getfixturevalue("postgres").new_database()


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict = dict(
        database_url=str(tmp_path / "incidents.db"),
        worker_processes=False,
        workers=1,
        method="baro",
        api_token=TOKEN,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_client(tmp_path: Path, window_store: WindowStore) -> Iterator[Callable[..., TestClient]]:
    """``make_client(**settings)``: an API client (lifespan running) with the bearer token
    set; closed at the end of the test."""
    opened: list[TestClient] = []

    def make(source: object = window_store, **overrides: object) -> TestClient:
        app = create_app(make_settings(tmp_path, **overrides), source=source)
        client = TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"})
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
