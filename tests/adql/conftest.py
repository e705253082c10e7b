"""Shared fixtures for the dialect tests: a sky catalog, its data, and the two real backends.

The data is deterministic (fixed seed) and deliberately awkward: clusters straddle RA 0/360,
crowd both poles, sit around the cone and polygon centres the tests use, mix letter case in
names, and leave some magnitudes NULL.  The same rows go into DuckDB (embedded dialect) and
into MariaDB (Qserv dialect running on the scisql stand-in functions).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tap_service.adql import check, parse, to_sql
from tap_service.adql.catalog import ColumnInfo, SimpleCatalog, TableInfo, UserFunction
from tap_service.adql.types import DOUBLE
from tap_service.services.standin import scisql_statements

GOLDEN_SCHEMA = "tap_test_adql"
# Execution uses a per-process database so that concurrent pytest runs on one MariaDB server
# (several engineers, CI shards) never drop each other's tables.
SCHEMA = f"tap_test_adql_{os.getpid()}"
REPO = Path(__file__).resolve().parents[2]
MARIADB_START = (
    "start MariaDB on 127.0.0.1:3306 (user root, empty password), e.g. "
    "`start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd`"
)


def _col(name: str, datatype: str, **kw: Any) -> ColumnInfo:
    return ColumnInfo(name=name, datatype=datatype, **kw)


FLUX_TO_MAG = UserFunction(
    name="flux_to_mag",
    signature="flux_to_mag(flux DOUBLE) -> DOUBLE",
    returns=DOUBLE,
    arg_count=1,
    sql={"qserv": "scisql_fluxToAbMag"},
)


def make_catalog(schema: str) -> SimpleCatalog:
    """The test catalog, its tables in the physical schema ``schema``."""
    sky = TableInfo(
        schema="demo",
        name="sky",
        physical_schema=schema,
        columns=(
            _col("id", "long", ucd="meta.id"),
            _col("ra", "double", unit="deg", ucd="pos.eq.ra"),
            _col("dec", "double", unit="deg", ucd="pos.eq.dec"),
            _col("mag", "double", unit="mag"),
            _col("name", "char", arraysize="*"),
            _col("band", "char", arraysize="*"),
            _col("flag", "int"),
            _col("pm", "double", unit="mas/yr", physical_name="pm_mas"),
        ),
    )
    bands = TableInfo(
        schema="demo",
        name="bands",
        physical_schema=schema,
        columns=(
            _col("band", "char", arraysize="*"),
            _col("wavelength", "double", unit="nm"),
            _col("rank", "int"),
        ),
    )
    return SimpleCatalog(table_list=(sky, bands), function_list=(FLUX_TO_MAG,))


CATALOG = make_catalog(GOLDEN_SCHEMA)
EXEC_CATALOG = make_catalog(SCHEMA)


def translate(adql: str, dialect: str, catalog: SimpleCatalog = CATALOG) -> str:
    """ADQL text through the whole pipeline to backend SQL."""
    return to_sql(check(parse(adql), catalog), dialect, functions=catalog.function_list)


# --------------------------------------------------------------------------- test data

N_UNIFORM = 12_000


def sky_rows() -> dict[str, np.ndarray]:
    """The sky table as numpy columns (fixed seed)."""
    rng = np.random.default_rng(20261124)
    ra_parts, dec_parts = [], []

    def add(ra: np.ndarray, dec: np.ndarray) -> None:
        ra_parts.append(np.mod(ra, 360.0))
        dec_parts.append(np.clip(dec, -90.0, 90.0))

    add(rng.uniform(0, 360, N_UNIFORM), np.degrees(np.arcsin(rng.uniform(-1, 1, N_UNIFORM))))
    add(rng.uniform(-1.5, 1.5, 1500), rng.uniform(-2, 2, 1500))  # across RA 0/360
    add(rng.uniform(0, 360, 1000), rng.uniform(87.5, 90, 1000))  # north pole
    add(rng.uniform(0, 360, 1000), rng.uniform(-90, -87.5, 1000))  # south pole
    add(62 + rng.normal(0, 0.05, 1500), -37 + rng.normal(0, 0.05, 1500))  # cone centre
    add(rng.uniform(9, 15, 1500), rng.uniform(9, 13, 1500))  # polygon area
    add(rng.uniform(200, 201, 500), rng.uniform(-1, 1, 500))  # box area
    ra = np.concatenate(ra_parts)
    dec = np.concatenate(dec_parts)
    order = np.argsort(dec, kind="stable")
    ra, dec = ra[order], dec[order]
    n = len(ra)
    idx = np.arange(n)
    mag = np.round(rng.normal(20, 2, n), 6)
    mag_null = idx % 17 == 0
    words = np.array(["Star", "star", "GALAXY", "galaxy", "Qso"])
    names = np.array([f"{words[i % 5]}_{i}" for i in range(n)])
    bands = np.array(list("ugrizy"))[idx % 6]
    return {
        "id": idx.astype(np.int64) + 1_000_000_000_000_000,
        "ra": ra,
        "dec": dec,
        "mag": np.where(mag_null, np.nan, mag),
        "mag_null": mag_null,
        "name": names,
        "band": bands,
        "flag": (idx % 3).astype(np.int64),
        "pm_mas": np.round(rng.normal(0, 10, n), 6),
    }


BAND_ROWS = [("u", 355.0, 1), ("g", 475.0, 2), ("r", 620.0, 3), ("i", 750.0, 4), ("z", 870.0, 5)]


def _sky_tuples(data: dict[str, np.ndarray]) -> list[tuple[Any, ...]]:
    out = []
    for i in range(len(data["id"])):
        out.append(
            (
                int(data["id"][i]),
                float(data["ra"][i]),
                float(data["dec"][i]),
                None if data["mag_null"][i] else float(data["mag"][i]),
                str(data["name"][i]),
                str(data["band"][i]),
                int(data["flag"][i]),
                float(data["pm_mas"][i]),
            )
        )
    return out


@pytest.fixture(scope="session")
def sky() -> dict[str, np.ndarray]:
    return sky_rows()


# --------------------------------------------------------------------------- DuckDB


@pytest.fixture(scope="session")
def duck(sky: dict[str, np.ndarray]) -> Iterator[Any]:
    import duckdb
    import pyarrow as pa

    from tap_service.adql.dialects.embedded import setup_statements

    con = duckdb.connect()
    for stmt in setup_statements():
        con.execute(stmt)
    con.execute(f"CREATE SCHEMA {SCHEMA}")
    table = pa.table(
        {
            "id": sky["id"],
            "ra": sky["ra"],
            "dec": sky["dec"],
            "mag": pa.array(sky["mag"], mask=sky["mag_null"]),
            "name": sky["name"].astype(str),
            "band": sky["band"].astype(str),
            "flag": sky["flag"].astype(np.int32),
            "pm_mas": sky["pm_mas"],
        }
    )
    con.register("sky_arrow", table)
    con.execute(f"CREATE TABLE {SCHEMA}.sky AS SELECT * FROM sky_arrow")
    con.unregister("sky_arrow")
    con.execute(f"CREATE TABLE {SCHEMA}.bands (band VARCHAR, wavelength DOUBLE, rank INTEGER)")
    con.executemany(f"INSERT INTO {SCHEMA}.bands VALUES (?, ?, ?)", BAND_ROWS)
    yield con
    con.close()


# --------------------------------------------------------------------------- MariaDB


def create_sky_database(cur: Any, name: str, sky: dict[str, np.ndarray]) -> None:
    """A fresh MariaDB database ``name`` holding the scisql stand-in, ``sky`` and ``bands``,
    left as the cursor's current database."""
    cur.execute(f"DROP DATABASE IF EXISTS {name}")
    cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    cur.execute(f"USE {name}")
    for stmt in scisql_statements():
        cur.execute(stmt)
    cur.execute(
        "CREATE TABLE sky (id BIGINT PRIMARY KEY, ra DOUBLE, `dec` DOUBLE, mag DOUBLE, "
        "name VARCHAR(64), band VARCHAR(8), flag INT, pm_mas DOUBLE)"
    )
    rows = _sky_tuples(sky)
    for start in range(0, len(rows), 2000):
        cur.executemany(
            "INSERT INTO sky VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows[start : start + 2000]
        )
    cur.execute("CREATE TABLE bands (band VARCHAR(8), wavelength DOUBLE, `rank` INT)")
    cur.executemany("INSERT INTO bands VALUES (%s, %s, %s)", BAND_ROWS)


_CPOLY = re.compile(r"scisql_s2PtInCPoly\(", re.IGNORECASE)


def pad_cpoly_for_mariadb(sql: str, max_vertices: int = 20) -> str:
    """The one documented adjustment: NULL-pad scisql_s2PtInCPoly to the stand-in's arity.

    Real scisql_s2PtInCPoly is variadic; the MariaDB stand-in takes exactly 2 + 2*20 arguments.
    """
    out = []
    pos = 0
    for m in _CPOLY.finditer(sql):
        if m.start() < pos:
            continue
        depth, i, commas = 1, m.end(), 0
        in_str: str | None = None
        while depth:
            ch = sql[i]
            if in_str:
                if ch == in_str:
                    in_str = None
            elif ch in "'`\"":
                in_str = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif ch == "," and depth == 1:
                commas += 1
            i += 1
        close = i - 1
        missing = 2 + 2 * max_vertices - (commas + 1)
        inner = pad_cpoly_for_mariadb(sql[m.end() : close], max_vertices)
        out.append(sql[pos : m.end()] + inner + ", NULL" * missing + ")")
        pos = close + 1
    out.append(sql[pos:])
    return "".join(out)


def mariadb_sql(adql: str) -> str:
    return pad_cpoly_for_mariadb(translate(adql, "qserv", EXEC_CATALOG))


class Unavailable:
    """Stands in for the MariaDB connection when the server is down: any use fails the test."""

    def __init__(self, message: str) -> None:
        self.message = message

    def cursor(self) -> Any:
        pytest.fail(self.message, pytrace=False)


@pytest.fixture(scope="session")
def maria(sky: dict[str, np.ndarray]) -> Iterator[Any]:
    import pymysql

    try:
        con = pymysql.connect(
            host="127.0.0.1", port=3306, user="root", password="", autocommit=True
        )
    except pymysql.err.OperationalError as exc:
        # Fail inside each test (not as a setup error) with the way out in the message.
        yield Unavailable(f"MariaDB is unreachable ({exc}); {MARIADB_START}")
        return
    cur = con.cursor()
    create_sky_database(cur, SCHEMA, sky)
    try:
        yield con
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS {SCHEMA}")
        con.close()
