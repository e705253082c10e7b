"""DataLink against the served demo catalog, with Rubin's real templates from configuration.

A second ``tap-service serve`` runs over the session's demo catalog (DuckDB opens it read-only
from both processes) with TAP_DATALINK__TEMPLATES_DIR pointing at ../shared/rubin-sdm/datalink,
the directory of Rubin's sdm_schemas DataLink files (read in place, never copied).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import pyvo
import requests
from astropy.io.votable import parse
from PIL import Image
from pyvo.dal.adhoc import DatalinkQuery, DatalinkResults

from tests.integration.conftest import (
    RunningService,
    cli,
    free_port,
    start_service,
    stop_service,
)
from tests.integration.test_taplint import run_taplint

pytestmark = pytest.mark.integration

RUBIN_DATALINK = Path(__file__).resolve().parents[3] / "shared" / "rubin-sdm" / "datalink"
TIMESERIES_ID = "lsst://api.data.lsst.cloud/datalink/timeseries#v0.1"
BANDS = ("all", "u", "g", "r", "i", "z", "y")
DETAILS = ("full", "principal", "minimal")


@pytest.fixture(scope="module")
def datalink_service(
    demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    log_path = tmp_path_factory.mktemp("datalink-logs") / "serve.log"
    running = start_service(
        demo_data_dir,
        log_path,
        extra_env={"TAP_DATALINK__TEMPLATES_DIR": str(RUBIN_DATALINK)},
    )
    yield running
    stop_service(running)


@pytest.fixture(scope="module")
def tap(datalink_service: RunningService) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(datalink_service.base_url)


@pytest.fixture(scope="module")
def objects(tap: pyvo.dal.TAPService) -> pyvo.dal.TAPResults:
    return tap.run_sync(
        "SELECT TOP 3 objectId, coord_ra, coord_dec FROM dp02_dc2_catalogs.Object "
        "WHERE detect_isPrimary = 1 ORDER BY objectId"
    )


def _forced_count(tap: pyvo.dal.TAPService, object_id: int, band: str) -> int:
    where = f"objectId = {object_id}" + ("" if band == "all" else f" AND band = '{band}'")
    rows = tap.run_sync(f"SELECT COUNT(*) AS n FROM dp02_dc2_catalogs.ForcedSource WHERE {where}")
    return int(rows[0]["n"])


@pytest.mark.parametrize("band", BANDS)
@pytest.mark.parametrize("detail", DETAILS)
def test_pyvo_finds_the_descriptor_and_gets_the_light_curve(
    tap: pyvo.dal.TAPService, objects: pyvo.dal.TAPResults, band: str, detail: str
) -> None:
    service = objects.get_adhocservice_by_ivoid(TIMESERIES_ID)
    row = objects[1]
    query = DatalinkQuery.from_resource(row, service, band=band, detail=detail)
    assert int(query["ID"]) == int(row["objectId"])
    table = query.execute_votable().get_first_table().to_table()
    assert len(table) == _forced_count(tap, int(row["objectId"]), band)
    assert "expMidptMJD" in table.colnames
    times = np.asarray(table["expMidptMJD"])
    assert np.all(np.diff(times) >= 0)
    if band != "all":
        assert set(table["band"].tolist()) <= {band}


def test_async_results_carry_the_descriptor_and_light_curve_runs_async(
    tap: pyvo.dal.TAPService, objects: pyvo.dal.TAPResults, datalink_service: RunningService
) -> None:
    results = tap.run_async("SELECT TOP 2 objectId FROM dp02_dc2_catalogs.Object")
    assert results.get_adhocservice_by_ivoid(TIMESERIES_ID) is not None
    # The light curve's document names the ADQL it ran (INFO QUERY): the same request as a
    # TAP async job gives the same rows.
    object_id = int(objects[0]["objectId"])
    root = datalink_service.base_url.rsplit("/api/tap", 1)[0]
    response = requests.get(
        f"{root}/api/datalink/timeseries", params={"id": object_id, "band": "r"}, timeout=30
    )
    assert response.status_code == 200
    votable = parse(io.BytesIO(response.content))
    adql = next(i.value for i in votable.resources[0].infos if i.name == "QUERY")
    sync_rows = votable.get_first_table().to_table()
    async_rows = tap.run_async(adql).to_table()
    assert len(async_rows) == len(sync_rows) == _forced_count(tap, object_id, "r")
    assert list(async_rows["forcedSourceId"]) == list(sync_rows["forcedSourceId"])


def test_png_over_http(objects: pyvo.dal.TAPResults) -> None:
    service = objects.get_adhocservice_by_ivoid(TIMESERIES_ID)
    query = DatalinkQuery.from_resource(objects[0], service, RESPONSEFORMAT="image/png")
    response = query.submit()
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (800, 450)
    pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20


def test_datalinklint_links_no_errors_no_warnings(
    objects: pyvo.dal.TAPResults, datalink_service: RunningService, artifacts: Path
) -> None:
    stilts = shutil.which("stilts")
    if stilts is None:
        pytest.fail("stilts is not installed: run `make system-deps` (Debian package stilts)")
    root = datalink_service.base_url.rsplit("/api/tap", 1)[0]
    ids = "&".join(f"ID={int(r['objectId'])}" for r in objects) + "&ID=12&ID=not-an-id"
    did = tap_did(objects, datalink_service)
    ids += "&ID=" + urllib.parse.quote(did, safe="")
    result = subprocess.run(
        [stilts, "datalinklint", f"votable={root}/api/datalink/links?{ids}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    (artifacts / "datalinklint-links.txt").write_text(output)
    totals = re.search(r"Totals:\s*Errors:\s*(\d+);\s*Warnings:\s*(\d+)", output)
    assert totals, output[-3000:]
    assert totals.groups() == ("0", "0"), output
    assert "NotFoundFault" in output
    assert "UsageFault" in output


def tap_did(objects: pyvo.dal.TAPResults, datalink_service: RunningService) -> str:
    tap = pyvo.dal.TAPService(datalink_service.base_url)
    return str(
        tap.run_sync("SELECT TOP 1 obs_publisher_did FROM ivoa.ObsCore")[0]["obs_publisher_did"]
    )


def test_taplint_obs_stage(datalink_service: RunningService, artifacts: Path) -> None:
    """ObsTAP: 0 errors and 0 warnings, nothing excused (s_region is ObsCore 1.1's adql:REGION).

    The stages are TME (which OBS needs for the column metadata), MDQ (each column's result
    FIELD against its declared datatype/arraysize/xtype: s_region comes back as char
    adql:REGION) and OBS; CAP, with its one known validator mistake, is test_taplint's.
    """
    report = artifacts / "taplint-obs.txt"
    output, counts = run_taplint(datalink_service.base_url, "TME MDQ OBS", report)
    reports = [line for line in output.splitlines() if re.match(r"^[EFW]-", line)]
    assert reports == [], "\n".join(reports)
    assert (counts["errors"], counts["warnings"], counts["failures"]) == (0, 0, 0), output[-3000:]
    assert "I-OBS-DMID-01 Checking against ObsCore DM 1.1" in output
    assert "ivoa.ObsCore columns: 30/30 required" in output
    queries = re.search(r"S-OBS-QNUM-01 Successful/submitted TAP queries: (\d+)/(\d+)", output)
    assert queries, output[-3000:]
    assert queries.group(1) == queries.group(2), output[-3000:]


@pytest.fixture(scope="module")
def obscore_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """A small demo built for a known port, so ObsCore's access_url points at this service."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("obscore-data")
    env = {
        **os.environ,
        "TAP_DATA_DIR": str(data_dir),
        "TAP_DATALINK__BASE_URL": f"http://127.0.0.1:{port}",
        "TAP_DATALINK__TEMPLATES_DIR": str(RUBIN_DATALINK),
    }
    built = cli("demo", "--objects", "2000", env=env)
    assert built.returncode == 0, built.stderr
    log = (tmp_path_factory.mktemp("obscore-logs") / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tap_service.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}/api/tap"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base_url}/availability", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.2)
    running = RunningService(base_url, data_dir, process)
    yield running
    stop_service(running)


def test_pyvo_follows_obscore_access_url_to_links(obscore_service: RunningService) -> None:
    tap = pyvo.dal.TAPService(obscore_service.base_url)
    results = tap.run_sync(
        "SELECT TOP 3 obs_publisher_did, access_url, s_region FROM ivoa.ObsCore "
        "WHERE CONTAINS(POINT('ICRS', 60.0, -35.0), s_region) = 1"
    )
    assert len(results) >= 1
    seen = 0
    # Rubin's obscore_links descriptor has no ID input (its accessURL PARAM refs the row's
    # access_url), which pyvo 1.9's iter_datalinks/getdatalink cannot invoke ("Invalid URL
    # ''"); pyvo's DataLink reader on the record's data URL (access_url, found by its ObsCore
    # utype) works.
    for record in results:
        assert record.getdataurl() == record["access_url"]
        links = DatalinkResults.from_result_url(record.getdataurl())
        rows = list(links)
        assert [str(r.semantics) for r in rows] == ["#this", "#auxiliary"]
        votable = parse(io.BytesIO(requests.get(rows[0].access_url, timeout=30).content))
        assert len(votable.get_first_table().array) == 1  # the image's CcdVisit record
        seen += 1
    assert seen == len(results)


def test_light_curve_as_async_job(
    tap: pyvo.dal.TAPService, objects: pyvo.dal.TAPResults, datalink_service: RunningService
) -> None:
    object_id = int(objects[2]["objectId"])
    root = datalink_service.base_url.rsplit("/api/tap", 1)[0]
    response = requests.post(
        f"{root}/api/datalink/timeseries/async",
        data={"id": object_id, "band": "g", "detail": "minimal", "PHASE": "RUN"},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 303, response.text
    job = pyvo.dal.AsyncTAPJob(response.headers["location"])
    job.wait(timeout=60)
    job.raise_if_error()
    table = job.fetch_result().to_table()
    assert table.colnames == ["objectId", "band", "psfFlux", "psfFluxErr", "expMidptMJD"]
    assert len(table) == _forced_count(tap, object_id, "g")
    png = requests.post(
        f"{root}/api/datalink/timeseries/async",
        data={"id": object_id, "RESPONSEFORMAT": "image/png"},
        timeout=30,
    )
    assert png.status_code == 400
    assert "synchronously" in png.text


def test_stilts_plots_s_region_as_footprints(
    datalink_service: RunningService, tmp_path: Path
) -> None:
    """TOPCAT's plotting (STILTS plot2sky, area layer) reads our s_region strings as STC-S."""
    stilts = shutil.which("stilts")
    if stilts is None:
        pytest.fail("stilts is not installed: run `make system-deps` (Debian package stilts)")
    votable = tmp_path / "footprints.vot"
    response = requests.get(
        f"{datalink_service.base_url}/sync",
        params={"LANG": "ADQL", "QUERY": "SELECT TOP 100 s_region FROM ivoa.ObsCore"},
        timeout=60,
    )
    assert response.status_code == 200
    votable.write_bytes(response.content)
    png = tmp_path / "footprints.png"
    result = subprocess.run(
        [
            stilts,
            "plot2sky",
            f"in={votable}",
            "layer1=area",
            "area1=s_region",
            "color1=red",
            f"out={png}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red.sum() > 100  # the footprints' outlines are drawn
