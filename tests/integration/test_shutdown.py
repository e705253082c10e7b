"""SIGTERM to an API during a streaming /sync: the response completes, new connections are refused.

uvicorn closes its listening socket as soon as the signal arrives, waits for responses in flight
(at most TAP_SHUTDOWN_TIMEOUT_SECONDS), then runs the lifespan shutdown and exits (uvicorn
re-raises SIGTERM).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.integration.conftest import cli
from tests.integration.test_metrics import start, stop

FORCED = "dp02_dc2_catalogs.ForcedSource"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("shutdown-data")
    env = {**os.environ, "TAP_DATA_DIR": str(data_dir)}
    result = cli("demo", "--objects", "10000", "--forced-per-object", "10", env=env)
    assert result.returncode == 0, result.stderr
    return data_dir


def test_sigterm_lets_streaming_sync_finish_and_refuses_new_connections(
    catalog: Path, tmp_path: Path
) -> None:
    server = start(
        catalog, tmp_path / "serve.log", "--log-level", "info", "--shutdown-timeout", "60"
    )
    try:
        response = requests.post(
            f"{server.url}/sync",
            data={
                "LANG": "ADQL",
                "QUERY": f"SELECT * FROM {FORCED}",
                "RESPONSEFORMAT": "votable/td",
                "MAXREC": "1000000",
            },
            stream=True,
            timeout=60,
        )
        assert response.status_code == 200
        chunks = response.iter_content(chunk_size=64 * 1024)
        received = bytearray(next(chunks))
        # Streaming for real: the document is far from done when the signal arrives.
        assert b"</VOTABLE>" not in received

        server.process.send_signal(signal.SIGTERM)
        port = urlsplit(server.root).port
        assert port is not None
        deadline = time.monotonic() + 10
        refused = False
        while time.monotonic() < deadline and not refused:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    time.sleep(0.1)
            except ConnectionRefusedError:
                refused = True
        assert refused, "the API still accepted connections 10 s after SIGTERM"
        assert server.process.poll() is None, "the API exited before its response was done"

        for chunk in chunks:
            received.extend(chunk)
        text = bytes(received)
        assert text.rstrip().endswith(b"</VOTABLE>")
        assert b'QUERY_STATUS" value="ERROR' not in text
        assert text.count(b"<TR>") == 100_000
        # uvicorn re-raises the signal once its graceful shutdown is over.
        assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in server.log.read_text()
    finally:
        if server.process.poll() is None:
            stop(server)
