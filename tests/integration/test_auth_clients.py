"""tokens mode with real clients: pyvo (Bearer session), STILTS tapquery and taplint (Basic).

A second service runs on the session's demo catalog with TAP_AUTH__MODE=tokens and its own job
and token databases; tokens come from `tap-service token create`, as an operator makes them.
STILTS 3.4.7 answers a 401 Basic challenge with the java properties star.basicauth.user and
star.basicauth.password (its PropertyAuthenticator), the way TOPCAT users pass credentials.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvo
import requests

from tests.integration.conftest import RunningService, cli, start_service, stop_service
from tests.integration.test_taplint import VALIDATOR_MISTAKES, run_taplint

CONE = (
    "SELECT objectId, coord_ra, coord_dec FROM dp02_dc2_catalogs.Object "
    "WHERE CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62.0, -37.0, 0.1)) = 1"
)


@pytest.fixture(scope="module")
def auth_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    state = tmp_path_factory.mktemp("auth-state")
    return {
        "TAP_AUTH__MODE": "tokens",
        "TAP_AUTH__DATABASE_URL": f"sqlite:///{state / 'tokens.sqlite3'}",
        "TAP_UWS__DATABASE_URL": f"sqlite:///{state / 'jobs.sqlite3'}",
    }


@pytest.fixture(scope="module")
def auth_service(
    demo_data_dir: Path, auth_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    log_path = tmp_path_factory.mktemp("auth-logs") / "serve.log"
    running = start_service(demo_data_dir, log_path, auth_env)
    yield running
    stop_service(running)
    # Tokens are never logged.
    assert "tap-" not in log_path.read_text(errors="replace")


def new_token(demo_data_dir: Path, auth_env: dict[str, str], user: str) -> str:
    env = {**os.environ, "TAP_DATA_DIR": str(demo_data_dir), **auth_env}
    result = cli("token", "create", "--user", user, "--scope", "read:tap", env=env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"tap-[0-9a-f]{16}\.[A-Za-z0-9_-]+", token)
    return token


@pytest.fixture(scope="module")
def token(demo_data_dir: Path, auth_env: dict[str, str], auth_service: RunningService) -> str:
    return new_token(demo_data_dir, auth_env, "astro")


def stilts() -> str:
    path = shutil.which("stilts")
    if path is None:
        pytest.fail("stilts is not installed: run `make system-deps` (Debian package stilts)")
    return path


def basic_auth_args(token: str) -> list[str]:
    return ["-Dstar.basicauth.user=x-oauth-basic", f"-Dstar.basicauth.password={token}"]


def test_pyvo_bearer_session_sync_and_async(auth_service: RunningService, token: str) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    service = pyvo.dal.TAPService(auth_service.base_url, session=session)
    sync = service.run_sync(CONE).to_table()
    assert len(sync) > 0
    job = service.submit_job(CONE)
    job.run()
    job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=120)
    assert job.phase == "COMPLETED"
    assert job.owner == "astro"
    async_table = job.fetch_result().to_table()
    assert sorted(async_table["objectId"]) == sorted(sync["objectId"])
    job.delete()


def test_without_credentials_clients_get_401(auth_service: RunningService) -> None:
    response = requests.get(
        f"{auth_service.base_url}/sync", params={"LANG": "ADQL", "QUERY": CONE}, timeout=30
    )
    assert response.status_code == 401
    assert "Basic" in response.headers["WWW-Authenticate"]
    anonymous = pyvo.dal.TAPService(auth_service.base_url)
    with pytest.raises(pyvo.dal.DALAccessError, match="Authentication required"):
        anonymous.run_sync(CONE)
    result = subprocess.run(
        [stilts(), "tapquery", f"tapurl={auth_service.base_url}", "sync=true", "ofmt=csv",
         f"adql={CONE}"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Authentication required" in result.stderr
    assert "star.basicauth" in result.stderr  # STILTS names the properties to set


@pytest.mark.parametrize("sync", ["true", "false"])
def test_stilts_tapquery_with_basic_x_oauth_basic(
    auth_service: RunningService, token: str, sync: str
) -> None:
    result = subprocess.run(
        [stilts(), *basic_auth_args(token), "tapquery", f"tapurl={auth_service.base_url}",
         f"sync={sync}", "ofmt=csv", f"adql={CONE} ORDER BY objectId"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "objectId,coord_ra,coord_dec"
    assert len(lines) > 1


def test_taplint_with_credentials(
    auth_service: RunningService, token: str, tmp_path: Path, artifacts: Path
) -> None:
    report = artifacts / "taplint-auth.txt"
    stages = "TMV TME TMS TMC CPV CAP AVV QGE QPO QAS UWS EXA"
    # run_taplint takes the service URL; the credentials go in as java properties.
    wrapper = tmp_path / "stilts"
    wrapper.write_text(f'#!/bin/sh\nexec {stilts()} {" ".join(basic_auth_args(token))} "$@"\n')
    wrapper.chmod(0o700)
    old_path = os.environ["PATH"]
    os.environ["PATH"] = f"{tmp_path}{os.pathsep}{old_path}"
    try:
        output, counts = run_taplint(auth_service.base_url, stages, report)
    finally:
        os.environ["PATH"] = old_path
    reports = [line for line in output.splitlines() if re.match(r"^[EF]-", line)]
    problems = [line for line in reports if line not in VALIDATOR_MISTAKES]
    summary = f"taplint: {counts}; report in {report}\n" + "\n".join(problems[:60])
    assert counts["failures"] == 0, summary
    assert problems == [], summary
