"""TAP_UPLOAD with the clients astronomers use: pyvo and STILTS (TOPCAT's TAP code).

A 10,000-row table is generated with a fixed seed from the demo catalog file itself (most rows
within an arcsecond of a real object, some far from any, some with ids the catalog does not
have), uploaded, and joined with Object by position (CONTAINS and DISTANCE) and by id.  The
expected answers are computed independently: DuckDB's Python API reads the catalog file
directly, numpy computes the angular distances.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import numpy as np
import pytest
import pyvo
import requests
from astropy.io.votable import from_table
from astropy.table import Table

from tests.integration.conftest import RunningService, start_service, stop_service

OBJECT = "dp02_dc2_catalogs.Object"
ROWS = 10_000
RADIUS_ARCSEC = 1.0
RADIUS = RADIUS_ARCSEC / 3600
SEED = 20261124
MAX_BYTES = 3_000_000  # the module's service: a 10k-row TABLEDATA upload (~1.4 MB) fits

CONTAINS_JOIN = (
    "SELECT t.src_id, o.objectId, "
    "DISTANCE(POINT('ICRS', t.ra, t.dec), POINT('ICRS', o.coord_ra, o.coord_dec)) AS dist "
    f"FROM TAP_UPLOAD.t AS t JOIN {OBJECT} AS o "
    "ON CONTAINS(POINT('ICRS', o.coord_ra, o.coord_dec), "
    f"CIRCLE('ICRS', t.ra, t.dec, {RADIUS_ARCSEC}/3600.0)) = 1"
)
DISTANCE_JOIN = (
    "SELECT t.src_id, o.objectId, "
    "DISTANCE(POINT('ICRS', t.ra, t.dec), POINT('ICRS', o.coord_ra, o.coord_dec)) AS dist "
    f"FROM TAP_UPLOAD.t AS t, {OBJECT} AS o "
    "WHERE DISTANCE(POINT('ICRS', t.ra, t.dec), POINT('ICRS', o.coord_ra, o.coord_dec)) "
    f"< {RADIUS_ARCSEC}/3600.0"
)
ID_JOIN = (
    "SELECT t.src_id, o.objectId, o.r_psfFlux "
    f"FROM TAP_UPLOAD.t AS t JOIN {OBJECT} AS o ON o.objectId = t.objid"
)


# -- the service, the table, the independent answers --------------------------------------------


@pytest.fixture(scope="module")
def upload_service(
    demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    """The demo service with a small upload limit and URL fetches from loopback allowed."""
    log_path = tmp_path_factory.mktemp("upload-logs") / "serve.log"
    running = start_service(
        demo_data_dir,
        log_path,
        {
            "TAP_UPLOAD__MAX_BYTES": str(MAX_BYTES),
            "TAP_UPLOAD__ALLOW_PRIVATE_URLS": "true",
        },
    )
    yield running
    stop_service(running)


@pytest.fixture(scope="module")
def url(upload_service: RunningService) -> str:
    return upload_service.base_url


@pytest.fixture(scope="module")
def catalog(upload_service: RunningService) -> dict[str, np.ndarray]:
    con = duckdb.connect(str(upload_service.data_dir / "catalog.duckdb"), read_only=True)
    try:
        return con.execute(
            'SELECT objectId, coord_ra, coord_dec, r_psfFlux FROM "dp02_dc2_catalogs"."Object"'
        ).fetchnumpy()
    finally:
        con.close()


@pytest.fixture(scope="module")
def table(catalog: dict[str, np.ndarray]) -> Table:
    """10,000 rows: 9,000 within about an arcsecond of an object, 1,000 anywhere nearby."""
    rng = np.random.default_rng(SEED)
    n_obj = len(catalog["objectId"])
    near = 9_000
    picks = rng.choice(n_obj, near, replace=False)
    ra = np.empty(ROWS)
    dec = np.empty(ROWS)
    ra[:near] = catalog["coord_ra"][picks] + rng.normal(0, 0.4 / 3600, near)
    dec[:near] = catalog["coord_dec"][picks] + rng.normal(0, 0.4 / 3600, near)
    ra[near:] = rng.uniform(catalog["coord_ra"].min(), catalog["coord_ra"].max(), ROWS - near)
    dec[near:] = rng.uniform(catalog["coord_dec"].min(), catalog["coord_dec"].max(), ROWS - near)
    objid = np.empty(ROWS, dtype=np.int64)
    objid[:near] = catalog["objectId"][picks]
    objid[near:] = -1 - np.arange(ROWS - near)  # ids the catalog does not have
    out = Table(
        {
            "src_id": np.arange(ROWS, dtype=np.int32),
            "ra": ra,
            "dec": dec,
            "objid": objid,
        }
    )
    out["ra"].unit = "deg"
    out["dec"].unit = "deg"
    return out


def angular_distance(ra1: np.ndarray, dec1: np.ndarray, ra2: float, dec2: float) -> np.ndarray:
    r1, d1, r2, d2 = map(np.radians, (ra1, dec1, ra2, dec2))
    hav = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0, 1))))


@pytest.fixture(scope="module")
def expected_pairs(table: Table, catalog: dict[str, np.ndarray]) -> dict[tuple[int, int], float]:
    """(src_id, objectId) → distance for every pair closer than RADIUS, by numpy."""
    order = np.argsort(catalog["coord_dec"])
    decs = catalog["coord_dec"][order]
    pairs: dict[tuple[int, int], float] = {}
    for src, ra, dec in zip(table["src_id"], table["ra"], table["dec"], strict=True):
        lo = np.searchsorted(decs, dec - RADIUS, "left")
        hi = np.searchsorted(decs, dec + RADIUS, "right")
        cand = order[lo:hi]
        dist = angular_distance(catalog["coord_ra"][cand], catalog["coord_dec"][cand], ra, dec)
        for index in np.nonzero(dist <= RADIUS)[0]:
            pairs[(int(src), int(catalog["objectId"][cand[index]]))] = float(dist[index])
    assert len(pairs) > 5_000  # the joins are not trivially empty
    return pairs


@pytest.fixture(scope="module")
def expected_ids(table: Table, catalog: dict[str, np.ndarray]) -> dict[int, tuple[int, float]]:
    flux = dict(zip(catalog["objectId"].tolist(), catalog["r_psfFlux"].tolist(), strict=True))
    out = {}
    for src, objid in zip(table["src_id"].tolist(), table["objid"].tolist(), strict=True):
        if objid in flux:
            value = flux[objid]
            out[src] = (objid, float("nan") if value is None else float(value))
    assert len(out) == 9_000
    return out


def check_pairs(got: dict[tuple[int, int], float], expected: dict[tuple[int, int], float]) -> None:
    # A pair within 1e-9 degree of the radius may fall either way of it (rounding).
    edge = {k for k, d in {**expected, **got}.items() if abs(d - RADIUS) < 1e-9}
    assert set(got) - edge == set(expected) - edge
    worst = max(abs(got[k] - expected[k]) for k in set(got) & set(expected))
    assert worst < 1e-9


def pairs_of(result: Table) -> dict[tuple[int, int], float]:
    return {
        (int(s), int(o)): float(d)
        for s, o, d in zip(result["src_id"], result["objectId"], result["dist"], strict=True)
    }


def votable_bytes(table: Table, serialization: str = "binary2") -> bytes:
    buffer = io.BytesIO()
    from_table(table).to_xml(buffer, tabledata_format=serialization)
    return buffer.getvalue()


# -- pyvo ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tap(url: str) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(url)


def test_pyvo_sync_contains_join_matches_numpy(
    tap: pyvo.dal.TAPService, table: Table, expected_pairs: dict[tuple[int, int], float]
) -> None:
    start = time.perf_counter()
    result = tap.run_sync(CONTAINS_JOIN, uploads={"t": table}, maxrec=1_000_000).to_table()
    elapsed = time.perf_counter() - start
    check_pairs(pairs_of(result), expected_pairs)
    print(f"pyvo sync 10k-row upload + CONTAINS join: {elapsed:.2f} s, {len(result)} rows")


def test_pyvo_sync_distance_join_matches_numpy(
    tap: pyvo.dal.TAPService, table: Table, expected_pairs: dict[tuple[int, int], float]
) -> None:
    start = time.perf_counter()
    result = tap.run_sync(DISTANCE_JOIN, uploads={"t": table}, maxrec=1_000_000).to_table()
    elapsed = time.perf_counter() - start
    check_pairs(pairs_of(result), expected_pairs)
    print(f"pyvo sync 10k-row upload + DISTANCE join: {elapsed:.2f} s, {len(result)} rows")


def test_pyvo_sync_id_join_keeps_64_bit_ids(
    tap: pyvo.dal.TAPService, table: Table, expected_ids: dict[int, tuple[int, float]]
) -> None:
    result = tap.run_sync(ID_JOIN, uploads={"t": table}, maxrec=1_000_000).to_table()
    got = {
        int(s): (int(o), float(f))
        for s, o, f in zip(result["src_id"], result["objectId"], result["r_psfFlux"], strict=True)
    }
    assert got.keys() == expected_ids.keys()
    for src, (objid, flux) in expected_ids.items():
        assert got[src][0] == objid
        assert got[src][1] == pytest.approx(flux, rel=1e-6, nan_ok=True)  # NULL flux: NaN
    assert any(objid > 2**53 for objid, _ in got.values())


def test_pyvo_upload_metadata_reaches_the_result(tap: pyvo.dal.TAPService, table: Table) -> None:
    result = tap.run_sync(
        "SELECT TOP 5 * FROM TAP_UPLOAD.t ORDER BY src_id", uploads={"t": table}
    ).to_table()
    assert result.colnames == ["src_id", "ra", "dec", "objid"]
    assert str(result["ra"].unit) == "deg"
    assert result["objid"].dtype == np.int64
    assert list(result["src_id"]) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(result["ra"], table["ra"][:5])


def test_pyvo_two_uploads_joined_with_each_other(tap: pyvo.dal.TAPService, table: Table) -> None:
    small = table[:100]
    result = tap.run_sync(
        "SELECT COUNT(*) AS n FROM TAP_UPLOAD.a AS a JOIN TAP_UPLOAD.b AS b ON a.src_id = b.src_id",
        uploads={"a": table, "b": small},
    ).to_table()
    assert int(result["n"][0]) == 100


def test_pyvo_run_async_contains_join(
    tap: pyvo.dal.TAPService, table: Table, expected_pairs: dict[tuple[int, int], float]
) -> None:
    result = tap.run_async(CONTAINS_JOIN, uploads={"t": table}, maxrec=1_000_000).to_table()
    check_pairs(pairs_of(result), expected_pairs)


def test_pyvo_submit_job_with_upload_and_delete(
    tap: pyvo.dal.TAPService,
    table: Table,
    expected_ids: dict[int, tuple[int, float]],
    upload_service: RunningService,
) -> None:
    job = tap.submit_job(ID_JOIN, uploads={"t": table}, maxrec=1_000_000)
    stored = upload_service.data_dir / "results" / job.job_id / "uploads" / "t.parquet"
    assert stored.exists()  # kept with the job until it runs
    job.run()
    job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=120)
    assert job.phase == "COMPLETED", job.phase
    result = job.fetch_result().to_table()
    assert {int(s) for s in result["src_id"]} == expected_ids.keys()
    job.delete()
    assert not stored.parent.exists()  # the upload goes with the job


def test_pyvo_async_job_failing_on_the_upload_ends_in_error(
    tap: pyvo.dal.TAPService, table: Table
) -> None:
    job = tap.submit_job("SELECT nosuch FROM TAP_UPLOAD.t", uploads={"t": table})
    job.run()
    job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
    assert job.phase == "ERROR"
    assert "nosuch" in (job.job.errorsummary.message.content or "")
    job.delete()


# -- STILTS -------------------------------------------------------------------------------------


def stilts() -> str:
    path = shutil.which("stilts")
    if path is None:
        pytest.fail("stilts is not installed: run `make system-deps` (Debian package stilts)")
    return path


def stilts_csv(
    url: str, adql: str, upload: Path, sync: bool, serialization: str = "BINARY2"
) -> Table:
    result = subprocess.run(
        [stilts(), "tapquery", f"tapurl={url}", f"sync={'true' if sync else 'false'}",
         "ofmt=csv", "maxrec=1000000", f"adql={adql}", "nupload=1", f"upload1={upload}",
         "ufmt1=votable", "upname1=t", f"upvotformat={serialization}"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return Table.read(result.stdout, format="ascii.csv")


@pytest.mark.parametrize(
    ("sync", "serialization"),
    [(True, "TABLEDATA"), (False, "BINARY2"), (True, "BINARY")],
    ids=["sync-tabledata", "async-binary2", "sync-binary"],
)
def test_stilts_contains_join_matches_numpy(
    url: str,
    table: Table,
    expected_pairs: dict[tuple[int, int], float],
    tmp_path: Path,
    sync: bool,
    serialization: str,
) -> None:
    upload = tmp_path / "t.vot"
    upload.write_bytes(votable_bytes(table, "tabledata"))
    result = stilts_csv(url, CONTAINS_JOIN, upload, sync, serialization)
    check_pairs(pairs_of(result), expected_pairs)


def test_stilts_id_join(
    url: str, table: Table, expected_ids: dict[int, tuple[int, float]], tmp_path: Path
) -> None:
    upload = tmp_path / "t.vot"
    upload.write_bytes(votable_bytes(table, "binary"))
    result = stilts_csv(url, ID_JOIN, upload, sync=False, serialization="TABLEDATA")
    got = {int(s): int(o) for s, o in zip(result["src_id"], result["objectId"], strict=True)}
    assert got == {src: objid for src, (objid, _) in expected_ids.items()}


# -- URL uploads --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def table_server(table: Table) -> Iterator[str]:
    """A small HTTP server with the table at /t.vot (and nothing else)."""
    body = votable_bytes(table)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/t.vot":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-votable+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_url_upload_sync_and_async(
    url: str, table_server: str, expected_ids: dict[int, tuple[int, float]]
) -> None:
    params = {
        "LANG": "ADQL",
        "QUERY": "SELECT COUNT(*) AS n FROM TAP_UPLOAD.t AS t "
        f"JOIN {OBJECT} AS o ON o.objectId = t.objid",
        "UPLOAD": f"t,{table_server}/t.vot",
        "RESPONSEFORMAT": "csv",
    }
    sync = requests.post(f"{url}/sync", data=params, timeout=60)
    assert sync.status_code == 200, sync.text
    assert sync.text.splitlines()[1] == str(len(expected_ids))
    created = requests.post(
        f"{url}/async", data={**params, "PHASE": "RUN"}, timeout=60, allow_redirects=False
    )
    assert created.status_code == 303, created.text
    job = created.headers["Location"]
    deadline = time.monotonic() + 60
    phase = ""
    while time.monotonic() < deadline:  # WAIT returns at each phase change
        phase = requests.get(f"{job}/phase", timeout=60).text
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            break
        requests.get(job, params={"WAIT": "5"}, timeout=60)
    assert phase == "COMPLETED", requests.get(job, timeout=60).text
    assert requests.get(f"{job}/results/result", timeout=60).text.splitlines()[1] == str(
        len(expected_ids)
    )


def test_pyvo_url_upload(tap: pyvo.dal.TAPService, table_server: str) -> None:
    result = tap.run_sync(
        "SELECT COUNT(*) AS n, MAX(src_id) AS last_id FROM TAP_UPLOAD.t",
        uploads={"t": f"{table_server}/t.vot"},  # pyvo sends UPLOAD=t,<url>: we fetch it
    ).to_table()
    assert (int(result["n"][0]), int(result["last_id"][0])) == (ROWS, ROWS - 1)


# -- errors -------------------------------------------------------------------------------------


def dali_error(response: requests.Response) -> str:
    text = response.text
    assert 'name="QUERY_STATUS" value="ERROR"' in text, text
    return text


@pytest.mark.parametrize(
    ("upload", "files", "query", "message"),
    [
        ("t,param:x", {"x": b"not xml at all"}, "SELECT * FROM TAP_UPLOAD.t", "not well-formed"),
        ("t,param:x", {"x": b"<VOTABLE><RESOURCE/></VOTABLE>"}, "SELECT * FROM TAP_UPLOAD.t",
         "holds no TABLE"),
        ("t,param:x", {"x": None}, "SELECT * FROM TAP_UPLOAD.other", "Unknown table"),
        ("t,param:missing", {"x": None}, "SELECT * FROM TAP_UPLOAD.t", "no part named"),
        ("9t,param:x", {"x": None}, "SELECT 1 AS a FROM TAP_UPLOAD.t", "regular ADQL identifier"),
        ("t,param:x;T,param:x", {"x": None}, "SELECT * FROM TAP_UPLOAD.t", "given twice"),
        ("t,file:///etc/passwd", {}, "SELECT * FROM TAP_UPLOAD.t", "neither param"),
        ("t,http://127.0.0.1:9/t.vot", {}, "SELECT * FROM TAP_UPLOAD.t", "could not be fetched"),
    ],
    ids=["not-xml", "no-table", "unknown-name", "missing-part", "bad-name", "duplicate",
         "file-url", "url-refused"],
)  # fmt: skip
def test_upload_errors_are_dali_400(
    url: str, table: Table, upload: str, files: dict[str, bytes | None], query: str, message: str
) -> None:
    parts = {
        k: (f"{k}.vot", v if v is not None else votable_bytes(table[:10])) for k, v in files.items()
    }
    response = requests.post(
        f"{url}/sync",
        data={"LANG": "ADQL", "QUERY": query, "UPLOAD": upload},
        files=parts or None,
        timeout=60,
    )
    assert response.status_code == 400, response.text
    assert message in dali_error(response)


def test_url_not_found_is_reported(url: str, table_server: str) -> None:
    response = requests.post(
        f"{url}/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t",
              "UPLOAD": f"t,{table_server}/nothing.vot"},
        timeout=60,
    )  # fmt: skip
    assert response.status_code == 400
    assert "answered HTTP 404" in dali_error(response)


def test_oversize_upload_is_413_sync_and_async(url: str, table: Table) -> None:
    big = votable_bytes(Table({"x": np.arange(400_000, dtype=np.float64)}), "tabledata")
    assert len(big) > MAX_BYTES + (1 << 20)
    for endpoint in ("sync", "async"):
        response = requests.post(
            f"{url}/{endpoint}",
            data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:x"},
            files={"x": ("x.vot", big)},
            timeout=60,
            allow_redirects=False,
        )
        assert response.status_code == 413, response.text
        assert "limit" in dali_error(response)


def test_oversize_within_the_body_slack_is_still_refused(url: str) -> None:
    """A table just over the limit (the body fits the framing allowance) is refused too."""
    rows = 74_000  # about 42 bytes a row: 3.1 MB
    big = votable_bytes(Table({"x": np.arange(rows, dtype=np.float64)}), "tabledata")
    assert MAX_BYTES < len(big) < MAX_BYTES + (1 << 20)
    response = requests.post(
        f"{url}/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:x"},
        files={"x": ("x.vot", big)},
        timeout=60,
    )
    assert response.status_code == 413, response.text
    assert "larger than the limit" in dali_error(response)


def test_oversize_chunked_body_is_cut_off(url: str) -> None:
    """Without Content-Length the service stops reading once the body passes the limit."""
    boundary = "tap-upload-test"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="LANG"\r\n\r\nADQL\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="UPLOAD"\r\n\r\nt,param:x\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="QUERY"\r\n\r\n'
        "SELECT * FROM TAP_UPLOAD.t\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="x"; filename="x.vot"\r\n'
        "Content-Type: application/x-votable+xml\r\n\r\n<VOTABLE>"
    ).encode()

    def body() -> Iterator[bytes]:
        yield head
        piece = b"<!--" + b"x" * (1 << 16) + b"-->"
        for _ in range(4 * MAX_BYTES // len(piece)):  # four times the limit, if all were read
            yield piece

    response = requests.post(
        f"{url}/sync",
        data=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=60,
    )
    assert response.status_code == 413, response.text
    assert "not read further" in dali_error(response)


def test_pyvo_reports_an_upload_error(tap: pyvo.dal.TAPService, table: Table) -> None:
    with pytest.raises(pyvo.dal.DALQueryError, match="Unknown column"):
        tap.run_sync("SELECT nosuch FROM TAP_UPLOAD.t", uploads={"t": table[:10]})
