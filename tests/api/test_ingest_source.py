"""An API-only replica reads windows from the ingest workers' GET /window with the API's token."""

from collections.abc import Iterator

import pytest

from rca.errors import RCAInputError
from rca.incidents.sources import IngestHttpSource
from rca.ingest.status_http import serve_status
from rca.store.window_store import WindowStore

TOKEN = "a-token-of-twenty-chars"


@pytest.fixture
def guarded_worker(window_store: WindowStore) -> Iterator[str]:
    server = serve_status("127.0.0.1", 0, window_store, lambda: {"status": "ok"}, token=TOKEN)
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}"
    server.shutdown()
    server.server_close()


def test_the_source_sends_the_token_the_worker_asks_for(guarded_worker, incident):
    start, end = incident.frame.index[0], incident.frame.index[-1]
    window = IngestHttpSource(guarded_worker, TOKEN).window(start, end)
    assert len(window.columns) == len(incident.frame.columns)
    with pytest.raises(RCAInputError, match="HTTP 401"):
        IngestHttpSource(guarded_worker).window(start, end)


def test_a_window_over_the_workers_cell_cap_is_a_clear_error(window_store, incident):
    server = serve_status("127.0.0.1", 0, window_store, lambda: {}, max_cells=10)
    host, port = server.server_address[:2]
    try:
        with pytest.raises(RCAInputError, match="no ingest worker had data"):
            IngestHttpSource(f"http://{host}:{port}").window(
                incident.frame.index[0], incident.frame.index[-1]
            )
    finally:
        server.shutdown()
        server.server_close()
