"""A real service for the clients: the demo catalog built by the CLI, served by uvicorn.

The session builds the full-size demo catalog (100,000 objects, 2,000,000 forced sources)
exactly as ``make serve`` does, in a temporary TAP_DATA_DIR, and starts ``tap-service serve``
on a free loopback port.  Clients (pyvo, STILTS) then talk HTTP to it like any user would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
DEMO_OBJECTS = 100_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tap_service.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


class RunningService:
    def __init__(self, base_url: str, data_dir: Path, process: subprocess.Popen[bytes]) -> None:
        self.base_url = base_url
        self.data_dir = data_dir
        self.process = process


def start_service(
    data_dir: Path,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
    wrapper: Sequence[str] = (),
) -> RunningService:
    """``wrapper``: a command prefix that execs the server (e.g. into another mount namespace)."""
    port = free_port()
    env = {**os.environ, "TAP_DATA_DIR": str(data_dir), **(extra_env or {})}
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            *wrapper,
            sys.executable,
            "-m",
            "tap_service.cli",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}/api/tap"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tap-service serve exited: {log_path.read_text()}")
        try:
            if requests.get(f"{base_url}/availability", timeout=2).status_code == 200:
                return RunningService(base_url, data_dir, process)
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"tap-service serve did not answer within 60 s: {log_path.read_text()}")


def stop_service(service: RunningService) -> None:
    service.process.terminate()
    try:
        service.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        service.process.kill()


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("tap-data")
    env = {**os.environ, "TAP_DATA_DIR": str(data_dir)}
    result = cli("demo", "--objects", str(DEMO_OBJECTS), env=env)
    assert result.returncode == 0, f"tap-service demo failed:\n{result.stdout}\n{result.stderr}"
    return data_dir


@pytest.fixture(scope="session")
def service(
    demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    log_path = tmp_path_factory.mktemp("logs") / "serve.log"
    running = start_service(demo_data_dir, log_path)
    yield running
    stop_service(running)


@pytest.fixture(scope="session")
def tap_url(service: RunningService) -> str:
    return service.base_url


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
