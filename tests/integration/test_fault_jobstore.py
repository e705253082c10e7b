"""The job store's database (MariaDB) killed and restarted under the running API.

The catalog is the embedded demo (DuckDB), so /sync does not need the job store; async jobs do.
While the job database is down: /async answers 503 with a DALI error (never a 500 or a hang),
/sync keeps working.  After the restart, the SQLAlchemy pool (pre-ping) reconnects by itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tap_service.storage.jobs import JobStore
from tests.fixtures.private import PrivateMariaDB, assert_clean_unavailable, private_mariadb
from tests.integration.conftest import RunningService, cli, start_service, stop_service

pytestmark = [pytest.mark.integration, pytest.mark.mariadb]

QUERY = "SELECT TOP 3 objectId FROM dp02_dc2_catalogs.Object ORDER BY objectId"


class Setup:
    def __init__(self, db: PrivateMariaDB, api: RunningService) -> None:
        self.db = db
        self.api = api


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("fault-jobstore")
    data_dir = root / "data"
    built = cli("demo", "--objects", "1000", "--forced-per-object", "1",
                env={**os.environ, "TAP_DATA_DIR": str(data_dir)})  # fmt: skip
    assert built.returncode == 0, built.stderr
    with private_mariadb(root / "mariadb") as db:
        admin = sa.create_engine(f"{db.url}/", poolclass=sa.pool.NullPool)
        with admin.begin() as con:
            con.execute(sa.text("CREATE DATABASE jobs"))
        admin.dispose()
        JobStore.from_url(f"{db.url}/jobs").close()
        env = {"TAP_UWS__DATABASE_URL": f"{db.url}/jobs", "TAP_UWS__SWEEP_INTERVAL_SECONDS": "1"}
        api = start_service(data_dir, root / "serve.log", env)
        try:
            yield Setup(db, api)
        finally:
            stop_service(api)


def create(base: str) -> requests.Response:
    return requests.post(
        f"{base}/async",
        data={"LANG": "ADQL", "QUERY": QUERY, "PHASE": "RUN", "RESPONSEFORMAT": "csv"},
        allow_redirects=False,
        timeout=30,
    )


def test_job_database_killed_then_restarted(setup: Setup, tmp_path: Path) -> None:
    base = setup.api.base_url
    first = create(base)
    assert first.status_code == 303, first.text
    job_url = first.headers["location"]

    setup.db.kill()
    start = time.monotonic()
    refused = create(base)
    took = time.monotonic() - start
    assert_clean_unavailable(refused, "job database cannot be reached")
    listed = requests.get(job_url, timeout=30)
    assert listed.status_code == 503, listed.text[:500]
    assert took < 10
    sync = requests.post(
        f"{base}/sync", data={"LANG": "ADQL", "QUERY": QUERY, "RESPONSEFORMAT": "csv"}, timeout=30
    )
    assert sync.status_code == 200  # the catalog does not depend on the job database

    setup.db.start()
    back_at = time.monotonic()
    while True:
        again = create(base)
        if again.status_code == 303:
            break
        assert again.status_code == 503, again.text[:300]
        assert time.monotonic() - back_at < 30, "no recovery 30 s after the restart"
        time.sleep(0.2)
    recovered = time.monotonic() - back_at
    job = requests.get(again.headers["location"], params={"WAIT": "10"}, timeout=30)
    assert job.status_code == 200
    assert requests.get(job_url, timeout=30).status_code == 200
    print(f"\njob database down: /async 503 in {took:.2f} s; new jobs accepted "
          f"{recovered:.2f} s after the restart began")  # fmt: skip
