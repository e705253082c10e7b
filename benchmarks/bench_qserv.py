"""Qserv backend throughput on the MariaDB stand-in, side by side with the bare driver.

Run with `make bench` (or `python benchmarks/bench_qserv.py [--rows N]`); needs MariaDB on
127.0.0.1:3306 (root, no password).  Builds a per-process database with an N-row table shaped
like DP0.2 Object columns (64-bit ids above 2^53, doubles, a nullable flux, a boolean), then
fetches all rows three ways in one process, each twice (best of two):

* bare driver: PyMySQL SSCursor.fetchmany loop (the limit: what the wire + driver deliver);
* fetch path: MySQLBackend.stream → Arrow record batches;
* end to end: QueryService (parse, check, render, route) → VOTable BINARY2 bytes.

It prints rows/s and the ratios to the bare driver (issue 5's target: end to end >= 70%), and
the process RSS growth between 10% and 100% of the end-to-end stream.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pymysql  # noqa: E402
import pymysql.cursors  # noqa: E402

from tap_service.config import Config  # noqa: E402
from tap_service.felis.model import load_felis  # noqa: E402
from tap_service.services.query import QueryRequest, QueryService  # noqa: E402
from tap_service.services.tapschema import TapSchemaService  # noqa: E402
from tap_service.storage.mysql_tap_schema import MySQLTapSchema  # noqa: E402
from tap_service.storage.qserv import MySQLBackend, RoutingBackend  # noqa: E402

DB = f"tap_bench_qserv_{os.getpid()}"
TS_DB = f"tap_bench_qserv_ts_{os.getpid()}"
URL = f"mysql+pymysql://root@127.0.0.1:3306/{DB}"
TS_URL = f"mysql+pymysql://root@127.0.0.1:3306/{TS_DB}"
BATCH = 16_384
COLUMNS = "objectId, coord_ra, coord_dec, g_psfFlux, r_psfFlux, detect_isPrimary"

FELIS = """
name: bench
"@id": "#bench"
tables:
  - name: Object
    "@id": "#Object"
    primaryKey: "#Object.objectId"
    columns:
      - {name: objectId, "@id": "#Object.objectId", datatype: long, nullable: false}
      - {name: coord_ra, "@id": "#Object.coord_ra", datatype: double}
      - {name: coord_dec, "@id": "#Object.coord_dec", datatype: double}
      - {name: g_psfFlux, "@id": "#Object.g_psfFlux", datatype: double}
      - {name: r_psfFlux, "@id": "#Object.r_psfFlux", datatype: double}
      - {name: detect_isPrimary, "@id": "#Object.detect_isPrimary", datatype: boolean}
"""


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build(rows: int) -> None:
    con = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    with con.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        cur.execute(f"CREATE DATABASE {DB}")
        cur.execute(f"USE {DB}")
        cur.execute(
            f"CREATE TABLE {DB}.Object (objectId BIGINT NOT NULL PRIMARY KEY, coord_ra DOUBLE, "
            "coord_dec DOUBLE, g_psfFlux DOUBLE, r_psfFlux DOUBLE, detect_isPrimary BOOLEAN)"
        )
        cur.execute(
            f"INSERT INTO {DB}.Object SELECT seq + 1249537790362800000, 50 + RAND(seq) * 25, "
            "-45 + RAND(seq + 1) * 18, IF(seq % 17 = 0, NULL, RAND(seq + 2) * 1000), "
            f"RAND(seq + 3) * 1000, seq % 3 = 0 FROM seq_1_to_{rows}"
        )
    con.close()
    path = Path(tempfile.mkdtemp()) / "bench.yaml"
    path.write_text(FELIS)
    store = MySQLTapSchema(TS_URL)
    store.create()
    store.publish(load_felis(path))


def drop() -> None:
    con = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    with con.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        cur.execute(f"DROP DATABASE IF EXISTS {TS_DB}")
    con.close()


def bare(rows: int) -> int:
    con = pymysql.connect(host="127.0.0.1", user="root", password="", database=DB)
    cur = con.cursor(pymysql.cursors.SSCursor)
    cur.execute(f"SELECT {COLUMNS} FROM {DB}.Object")
    n = 0
    while True:
        chunk = cur.fetchmany(BATCH)
        if not chunk:
            break
        n += len(chunk)
    con.close()
    return n


def fetch_path(backend: RoutingBackend) -> int:
    n = 0
    for batch in backend.stream(f"SELECT {COLUMNS} FROM `bench`.`Object`", batch_rows=BATCH):
        n += batch.num_rows
    return n


def end_to_end(service: QueryService, rows: int, memory: list[float]) -> int:
    prepared = service.prepare(
        QueryRequest(
            query=f"SELECT {COLUMNS} FROM bench.Object",
            lang="ADQL",
            maxrec=str(rows),
            response_format="votable",
        )
    )
    size = 0
    first = True
    for chunk in service.stream(prepared):
        size += len(chunk)
        if first:
            memory.append(rss_mb())
            first = False
    memory.append(rss_mb())
    return size


def timed(label: str, fn: Callable[[], int]) -> tuple[float, int]:
    best = float("inf")
    result = 0
    for _ in range(2):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    rows = args.rows
    t0 = time.perf_counter()
    build(rows)
    print(f"bench_qserv: {rows:,} rows loaded in {time.perf_counter() - t0:.1f} s")
    catalog = MySQLBackend(URL)
    tap_schema = MySQLBackend(TS_URL)
    routing = RoutingBackend(catalog, tap_schema, databases={"bench": DB})
    config = Config(backend="qserv", batch_rows=BATCH, maxrec_limit=max(rows, 1))
    service = QueryService(config, routing, TapSchemaService(routing))
    try:
        t_bare, n_bare = timed("bare", lambda: bare(rows))
        t_fetch, n_fetch = timed("fetch", lambda: fetch_path(routing))
        memory: list[float] = []
        t_e2e, size = timed("e2e", lambda: end_to_end(service, rows, memory))
        assert n_bare == n_fetch == rows, (n_bare, n_fetch)
        r_bare, r_fetch, r_e2e = rows / t_bare, rows / t_fetch, rows / t_e2e
        print(f"  bare driver (PyMySQL SSCursor)  {r_bare:>12,.0f} rows/s  (limit)")
        print(
            f"  fetch path (Arrow batches)      {r_fetch:>12,.0f} rows/s  "
            f"{r_fetch / r_bare:6.1%} of bare"
        )
        print(
            f"  end to end (VOTable BINARY2)    {r_e2e:>12,.0f} rows/s  "
            f"{r_e2e / r_bare:6.1%} of bare  (target >= 70%)  {size / 1e6:.0f} MB document"
        )
        first, last = memory[-2], memory[-1]
        print(
            f"  RSS during the end-to-end stream: {first:.0f} MB after the first bytes, "
            f"{last:.0f} MB at the end (growth {last - first:+.0f} MB for {rows:,} rows)"
        )
    finally:
        routing.close()
        drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
