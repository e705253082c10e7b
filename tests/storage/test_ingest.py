"""Ingest of CSV and Parquet files: types, NULLs, located errors, atomic replacement."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tap_service.storage.embedded import EmbeddedDatabase
from tap_service.storage.ingest import IngestError, ingest

SCHEMA_YAML = """
name: survey
description: Stars for ingest tests
tap:schema_index: 5
tables:
- name: Stars
  description: Bright stars
  primaryKey: "#Stars.starId"
  tap:table_index: 1
  columns:
  - name: starId
    datatype: long
    nullable: false
    ivoa:ucd: meta.id;meta.main
    tap:principal: 1
  - name: ra
    datatype: double
    fits:tunit: deg
    ivoa:ucd: pos.eq.ra
  - name: mag
    datatype: float
    fits:tunit: mag
  - name: variable
    datatype: boolean
  - name: name
    datatype: string
    length: 12
  - name: seen
    datatype: timestamp
- name: Observations
  description: Measurements of the stars
  columns:
  - name: starId
    datatype: long
  - name: flux
    datatype: double
  constraints:
  - name: obs_star
    "@type": ForeignKey
    columns: ["#Observations.starId"]
    referencedColumns: ["#Stars.starId"]
"""

GOOD_CSV = """starId,ra,mag,variable,name,seen
1249537790362809267,10.5,12.25,true,"Vega, alpha",2024-01-02T03:04:05
2,11.0,,false,,2024-01-02 03:04:06.5
3,,13.5,FALSE,"",
4,12.0,14.0,1,"multi
line",2024-03-01T00:00:00Z
 5 ,1e1,nan,0,x,2024-03-02
"""


@pytest.fixture
def schema_path(tmp_path: Path) -> Path:
    path = tmp_path / "survey.yaml"
    path.write_text(SCHEMA_YAML)
    return path


@pytest.fixture
def db(tmp_path: Path) -> Iterator[EmbeddedDatabase]:
    database = EmbeddedDatabase(tmp_path / "data")
    yield database
    database.close()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _stars(db: EmbeddedDatabase) -> list[dict[str, object]]:
    return db.query('SELECT * FROM survey."Stars" ORDER BY starId').to_pylist()


def test_good_csv_loads_with_types_nulls_and_metadata(
    db: EmbeddedDatabase, schema_path: Path, tmp_path: Path
) -> None:
    result = ingest(
        db, schema_path, table="survey.Stars", file_path=_write(tmp_path, "s.csv", GOOD_CSV)
    )
    assert (result.table, result.rows) == ("survey.Stars", 5)
    rows = _stars(db)
    assert [r["starId"] for r in rows] == [2, 3, 4, 5, 1249537790362809267]
    by_id = {r["starId"]: r for r in rows}
    first = by_id[1249537790362809267]
    assert first == {
        "starId": 1249537790362809267,
        "ra": 10.5,
        "mag": 12.25,
        "variable": True,
        "name": "Vega, alpha",
        "seen": dt.datetime(2024, 1, 2, 3, 4, 5),
    }
    assert by_id[2]["mag"] is None and by_id[2]["name"] is None  # noqa: PT018
    assert by_id[2]["seen"] == dt.datetime(2024, 1, 2, 3, 4, 6, 500000)
    assert by_id[3]["ra"] is None
    assert by_id[3]["name"] == ""  # quoted empty string is a string, not NULL
    assert by_id[3]["variable"] is False
    assert by_id[4]["name"] == "multi\nline"
    assert by_id[4]["variable"] is True
    assert by_id[4]["seen"] == dt.datetime(2024, 3, 1)
    assert by_id[5]["ra"] == 10.0
    assert by_id[5]["mag"] != by_id[5]["mag"]  # NaN is a value, not NULL
    assert by_id[5]["seen"] == dt.datetime(2024, 3, 2)

    tables = {t.qualified_name: t for t in db.catalog_tables()}
    stars = tables["survey.Stars"]
    assert [c.name for c in stars.columns] == ["starId", "ra", "mag", "variable", "name", "seen"]
    ra = stars.column("ra")
    assert ra is not None
    assert (ra.unit, ra.ucd) == ("deg", "pos.eq.ra")
    seen = stars.column("seen")
    assert seen is not None
    assert (seen.datatype, seen.xtype) == ("char", "timestamp")
    assert "survey.Observations" not in tables  # not loaded yet, not published
    assert db.query(
        'SELECT count(*) AS n FROM "TAP_SCHEMA"."keys" WHERE key_id = \'obs_star\''
    ).to_pylist() == [{"n": 0}]


def test_second_table_brings_its_foreign_key(
    db: EmbeddedDatabase, schema_path: Path, tmp_path: Path
) -> None:
    ingest(db, schema_path, table="survey.Stars", file_path=_write(tmp_path, "s.csv", GOOD_CSV))
    ingest(
        db,
        schema_path,
        table="Observations",
        file_path=_write(tmp_path, "o.csv", "flux,starId\n1.5,2\n2.5,3\n"),
    )
    names = [t.qualified_name for t in db.catalog_tables()]
    assert names[:2] == ["survey.Observations", "survey.Stars"]  # table_index 0, then 1
    keys = db.query(
        'SELECT key_id, from_table, target_table FROM "TAP_SCHEMA"."keys" '
        "WHERE key_id = 'obs_star'"
    ).to_pylist()
    assert keys == [
        {"key_id": "obs_star", "from_table": "survey.Observations", "target_table": "survey.Stars"}
    ]
    obs = db.query('SELECT starId, flux FROM survey."Observations" ORDER BY starId').to_pylist()
    assert obs == [{"starId": 2, "flux": 1.5}, {"starId": 3, "flux": 2.5}]


def test_parquet_loads(db: EmbeddedDatabase, schema_path: Path, tmp_path: Path) -> None:
    table = pa.table(
        {
            "starId": pa.array([10, 11, 2**62], pa.int64()),
            "mag": pa.array([1.5, None, 3.0], pa.float64()),
            "variable": pa.array([True, None, False]),
            "seen": pa.array(
                [dt.datetime(2020, 1, 1), None, dt.datetime(2021, 6, 1, 12)], pa.timestamp("us")
            ),
            "name": pa.array(["a", "b", None]),
        }
    )
    path = tmp_path / "stars.parquet"
    pq.write_table(table, path)
    assert ingest(db, schema_path, table="survey.Stars", file_path=path).rows == 3
    rows = _stars(db)
    assert [r["starId"] for r in rows] == [10, 11, 2**62]
    assert rows[1]["mag"] is None and rows[1]["ra"] is None  # noqa: PT018 - absent column
    assert rows[2]["seen"] == dt.datetime(2021, 6, 1, 12)
    assert rows[0]["mag"] == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("starId,mag\n1,2.5\n2,abc\n3,4\n", 3, "mag", "'abc' is not a valid float"),
        ("starId,variable\n1,true\n2,yes\n", 3, "variable", "'yes' is not a valid boolean"),
        ('starId,name\n1,"two\nlines"\n2,fine\n,x\n', 5, "starId", "not nullable"),
        ("starId,name\n1,abcdefghijklmn\n", 2, "name", "longer than 12"),
        ("starId,seen\n1,yesterday\n", 2, "seen", "not a valid timestamp"),
        ("starId,seen\n1,2024-01-01T10:00:00+02:00\n", 2, "seen", "not a valid timestamp"),
        ("starId,seen\n1,infinity\n", 2, "seen", "not a valid timestamp"),
        ("starId,mag\n1.5,2\n", 2, "starId", "'1.5' is not a valid long"),
        ("starId,mag\n0x10,2\n", 2, "starId", "not a valid long"),
        ("starId,ra\n1,1.0\n\n2,2.0\n99999999999999999999,3\n", 5, "starId", "not a valid long"),
        ("starId,mag\n1,1.5\n2,1.5,7\n", 3, None, "expected 2 fields, found 3"),
        ("starId,Mag\n1,1\n", 1, "Mag", "did you mean 'mag'"),
        ("ra,mag\n1,1\n", 1, "starId", "required"),
        ("starId,mag,mag\n1,1,1\n", 1, "mag", "twice"),
    ],
)
def test_bad_csv_is_located_and_leaves_nothing(
    db: EmbeddedDatabase,
    schema_path: Path,
    tmp_path: Path,
    text: str,
    line: int,
    column: str | None,
    message: str,
) -> None:
    before = db.query('SELECT count(*) AS n FROM "TAP_SCHEMA"."columns"').to_pylist()
    with pytest.raises(IngestError, match=message) as info:
        ingest(db, schema_path, table="survey.Stars", file_path=_write(tmp_path, "b.csv", text))
    assert info.value.line == line
    assert info.value.column == column
    assert f"line {line}" in str(info.value)
    assert not db.table_exists("survey", "Stars")
    assert db.query('SELECT count(*) AS n FROM "TAP_SCHEMA"."columns"').to_pylist() == before


def test_bad_file_keeps_the_previous_content(
    db: EmbeddedDatabase, schema_path: Path, tmp_path: Path
) -> None:
    ingest(db, schema_path, table="survey.Stars", file_path=_write(tmp_path, "s.csv", GOOD_CSV))
    before = _stars(db)
    tap_before = db.query(
        'SELECT * FROM "TAP_SCHEMA"."columns" ORDER BY table_name, column_name'
    ).to_pylist()
    bad = "starId,mag\n" + "".join(f"{i},1.0\n" for i in range(1000)) + "1000,oops\n"
    with pytest.raises(IngestError) as info:
        ingest(db, schema_path, table="survey.Stars", file_path=_write(tmp_path, "b.csv", bad))
    assert (info.value.line, info.value.column) == (1002, "mag")
    assert repr(_stars(db)) == repr(before)  # repr: the NaN in row 5 is not equal to itself
    assert (
        db.query(
            'SELECT * FROM "TAP_SCHEMA"."columns" ORDER BY table_name, column_name'
        ).to_pylist()
        == tap_before
    )


def test_bad_parquet_row_is_numbered(
    db: EmbeddedDatabase, schema_path: Path, tmp_path: Path
) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"starId": [1, 2, 3], "mag": ["1.0", "2.0", "x"]}), path)
    with pytest.raises(IngestError, match="row 3, column mag") as info:
        ingest(db, schema_path, table="survey.Stars", file_path=path)
    assert (info.value.line, info.value.column) == (3, "mag")
    assert not db.table_exists("survey", "Stars")


def test_reingest_replaces_and_append_adds(
    db: EmbeddedDatabase, schema_path: Path, tmp_path: Path
) -> None:
    path = _write(tmp_path, "s.csv", GOOD_CSV)
    ingest(db, schema_path, table="survey.Stars", file_path=path)
    ingest(db, schema_path, table="survey.Stars", file_path=path)
    assert len(_stars(db)) == 5
    assert db.query(
        'SELECT count(*) AS n FROM "TAP_SCHEMA"."tables" WHERE schema_name = \'survey\''
    ).to_pylist() == [{"n": 1}]
    more = _write(tmp_path, "m.csv", "starId\n100\n101\n")
    ingest(db, schema_path, table="survey.Stars", file_path=more, replace=False)
    assert [r["starId"] for r in _stars(db)] == [2, 3, 4, 5, 100, 101, 1249537790362809267]
    ingest(db, schema_path, table="survey.Stars", file_path=more)
    assert [r["starId"] for r in _stars(db)] == [100, 101]


@pytest.mark.parametrize(
    ("table", "name", "message"),
    [
        ("survey.Planets", "x.csv", "no table 'Planets'"),
        ("other.Stars", "x.csv", "not 'other'"),
        ("survey.Stars", "x.txt", "unknown file type"),
    ],
)
def test_wrong_targets_are_refused(
    db: EmbeddedDatabase, schema_path: Path, tmp_path: Path, table: str, name: str, message: str
) -> None:
    with pytest.raises(IngestError, match=message):
        ingest(db, schema_path, table=table, file_path=_write(tmp_path, name, "starId\n1\n"))


def test_empty_file_and_bad_schema(db: EmbeddedDatabase, schema_path: Path, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="header") as info:
        ingest(db, schema_path, table="survey.Stars", file_path=_write(tmp_path, "e.csv", ""))
    assert info.value.line == 1
    broken = _write(tmp_path, "broken.yaml", "name: survey\ntables: 3\n")
    with pytest.raises(IngestError, match="Felis"):
        ingest(db, broken, table="survey.Stars", file_path=_write(tmp_path, "s.csv", GOOD_CSV))


def test_ingest_refuses_to_misdescribe_other_tables(
    db: EmbeddedDatabase, schema_path: Path, tmp_path: Path
) -> None:
    ingest(db, schema_path, table="survey.Stars", file_path=_write(tmp_path, "s.csv", GOOD_CSV))
    narrower = schema_path.read_text().replace("  - name: seen\n    datatype: timestamp\n", "")
    other = _write(tmp_path, "narrow.yaml", narrower)
    before = db.query('SELECT * FROM "TAP_SCHEMA"."columns" ORDER BY 1, 2').to_pylist()
    with pytest.raises(IngestError, match=r"survey\.Stars exists with other columns"):
        ingest(
            db,
            other,
            table="survey.Observations",
            file_path=_write(tmp_path, "o.csv", "starId,flux\n1,2\n"),
        )
    assert not db.table_exists("survey", "Observations")
    assert db.query('SELECT * FROM "TAP_SCHEMA"."columns" ORDER BY 1, 2').to_pylist() == before


def test_append_needs_matching_columns(
    db: EmbeddedDatabase, schema_path: Path, tmp_path: Path
) -> None:
    with db.transaction() as cur:
        cur.execute('CREATE SCHEMA survey; CREATE TABLE survey."Stars" (starId BIGINT)')
    with pytest.raises(IngestError, match="cannot append"):
        ingest(
            db,
            schema_path,
            table="survey.Stars",
            replace=False,
            file_path=_write(tmp_path, "s.csv", "starId\n1\n"),
        )
    assert db.query('SELECT count(*) AS n FROM survey."Stars"').to_pylist() == [{"n": 0}]


def test_table_whose_key_target_is_not_loaded_yet(
    db: EmbeddedDatabase, schema_path: Path, tmp_path: Path
) -> None:
    ingest(
        db,
        schema_path,
        table="survey.Observations",
        file_path=_write(tmp_path, "o.csv", "starId,flux\n1,2.5\n"),
    )
    assert next(t.qualified_name for t in db.catalog_tables()) == "survey.Observations"
    assert db.query(
        'SELECT count(*) AS n FROM "TAP_SCHEMA"."keys" WHERE key_id = \'obs_star\''
    ).to_pylist() == [{"n": 0}]
    ingest(db, schema_path, table="survey.Stars", file_path=_write(tmp_path, "s.csv", GOOD_CSV))
    assert db.query(
        'SELECT count(*) AS n FROM "TAP_SCHEMA"."key_columns" WHERE key_id = \'obs_star\''
    ).to_pylist() == [{"n": 1}]
