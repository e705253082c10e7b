"""TAP_UPLOAD: a 10,000-row upload joined with Object, and the reader at the size limit.

Run with `make bench` (or `python benchmarks/bench_upload.py [--runs N] [--data-dir DIR]`).
It builds the demo catalog with the real CLI (100,000 objects), starts `tap-service serve`, and
generates the upload with a fixed seed from the catalog file (9,000 rows within about an
arcsecond of an object, 1,000 elsewhere).  For BINARY2 and TABLEDATA uploads it times, through
/sync (median of N, upload + parse + query + result), a count, the CONTAINS and DISTANCE
cross-matches at 1" and the id join; then one async round trip; then the reader alone on
documents of about TAP_UPLOAD__MAX_BYTES (32 MiB) in each serialization.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import requests
from astropy.io.votable import from_table
from astropy.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import ensure_demo  # noqa: E402
from tap_service.votable.reader import read_votable  # noqa: E402
from tests.integration.conftest import start_service, stop_service  # noqa: E402

OBJECT = "dp02_dc2_catalogs.Object"
MATCH = "DISTANCE(POINT('ICRS', t.ra, t.dec), POINT('ICRS', o.coord_ra, o.coord_dec))"
QUERIES = {
    "count": "SELECT COUNT(*) AS n FROM TAP_UPLOAD.t",
    'CONTAINS 1"': f"SELECT t.src_id, o.objectId, {MATCH} AS dist FROM TAP_UPLOAD.t AS t "
    f"JOIN {OBJECT} AS o ON CONTAINS(POINT('ICRS', o.coord_ra, o.coord_dec), "
    "CIRCLE('ICRS', t.ra, t.dec, 1.0/3600)) = 1",
    'DISTANCE 1"': f"SELECT t.src_id, o.objectId, {MATCH} AS dist "
    f"FROM TAP_UPLOAD.t AS t, {OBJECT} AS o WHERE {MATCH} < 1.0/3600",
    "id join": f"SELECT t.src_id, o.objectId, o.r_psfFlux FROM TAP_UPLOAD.t AS t "
    f"JOIN {OBJECT} AS o ON o.objectId = t.objid",
}


def upload_table(catalog: Path, rows: int = 10_000, seed: int = 20261124) -> Table:
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        obj = con.execute(
            'SELECT objectId, coord_ra, coord_dec FROM "dp02_dc2_catalogs"."Object"'
        ).fetchnumpy()
    finally:
        con.close()
    rng = np.random.default_rng(seed)
    near = rows * 9 // 10
    picks = rng.choice(len(obj["objectId"]), near, replace=False)
    ra = np.concatenate(
        [obj["coord_ra"][picks] + rng.normal(0, 0.4 / 3600, near),
         rng.uniform(obj["coord_ra"].min(), obj["coord_ra"].max(), rows - near)]
    )  # fmt: skip
    dec = np.concatenate(
        [obj["coord_dec"][picks] + rng.normal(0, 0.4 / 3600, near),
         rng.uniform(obj["coord_dec"].min(), obj["coord_dec"].max(), rows - near)]
    )  # fmt: skip
    objid = np.concatenate([obj["objectId"][picks], -1 - np.arange(rows - near)])
    return Table({"src_id": np.arange(rows, dtype=np.int32), "ra": ra, "dec": dec, "objid": objid})


def votable(table: Table, serialization: str) -> bytes:
    buffer = io.BytesIO()
    from_table(table).to_xml(buffer, tabledata_format=serialization)
    return buffer.getvalue()


def timed_sync(base: str, query: str, body: bytes, runs: int) -> tuple[float, int]:
    times = []
    rows = 0
    for _ in range(runs):
        start = time.perf_counter()
        response = requests.post(
            f"{base}/sync",
            data={"LANG": "ADQL", "QUERY": query, "UPLOAD": "t,param:t", "MAXREC": "1000000",
                  "RESPONSEFORMAT": "csv"},
            files={"t": ("t.vot", body)},
            timeout=600,
        )  # fmt: skip
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text[:500]
        rows = len(response.text.splitlines()) - 1
    return statistics.median(times), rows


def timed_async(base: str, query: str, body: bytes) -> float:
    start = time.perf_counter()
    created = requests.post(
        f"{base}/async",
        data={"LANG": "ADQL", "QUERY": query, "UPLOAD": "t,param:t", "PHASE": "RUN",
              "MAXREC": "1000000"},
        files={"t": ("t.vot", body)},
        allow_redirects=False,
        timeout=600,
    )  # fmt: skip
    assert created.status_code == 303, created.text[:500]
    job = created.headers["Location"]
    while "COMPLETED" not in requests.get(job, params={"WAIT": "10"}, timeout=60).text:
        pass
    requests.get(f"{job}/results/result", timeout=60).raise_for_status()
    elapsed = time.perf_counter() - start
    requests.delete(job, timeout=60)
    return elapsed


def reader_at_limit(limit: int = 32 * 1024 * 1024) -> None:
    rng = np.random.default_rng(1)
    print(f"\nreader alone on documents of about {limit / 2**20:.0f} MiB:")
    for serialization, row_bytes in (("binary2", 29), ("tabledata", 150)):
        rows = limit // row_bytes
        table = Table(
            {"id": np.arange(rows, dtype=np.int64), "ra": rng.uniform(0, 360, rows),
             "dec": rng.uniform(-90, 90, rows)}
        )  # fmt: skip
        data = votable(table, serialization)
        start = time.perf_counter()
        result = read_votable([data[i : i + 65536] for i in range(0, len(data), 65536)])
        elapsed = time.perf_counter() - start
        assert result.table.num_rows == rows
        print(
            f"  {serialization:9}  {len(data) / 2**20:5.1f} MiB  {rows:>9,} rows  "
            f"{elapsed:6.2f} s  ({rows / elapsed / 1e3:,.0f} k rows/s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        ensure_demo(data_dir, 100_000)
        table = upload_table(data_dir / "catalog.duckdb")
        service = start_service(data_dir, Path(tmp) / "serve.log")
        try:
            print(f"10,000-row upload joined with {OBJECT} (100,000 rows), /sync, "
                  f"median of {args.runs}:")  # fmt: skip
            print(f"  {'upload':10} {'size':>8}  " + "  ".join(f"{q:>13}" for q in QUERIES))
            for serialization in ("binary2", "tabledata"):
                body = votable(table, serialization)
                cells = []
                for query in QUERIES.values():
                    seconds, rows = timed_sync(service.base_url, query, body, args.runs)
                    cells.append(f"{seconds:6.3f} s {rows:>5}")
                print(f"  {serialization:10} {len(body) / 1e3:6.0f} kB  " + "  ".join(cells))
            body = votable(table, "binary2")
            seconds = timed_async(service.base_url, QUERIES['CONTAINS 1"'], body)
            print(f"async round trip (BINARY2 upload, CONTAINS join): {seconds:.3f} s")
        finally:
            stop_service(service)
    reader_at_limit()


if __name__ == "__main__":
    main()
