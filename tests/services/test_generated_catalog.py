"""Generated rows for any Felis schema: deterministic, typed, keyed, and served as published."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tap_service.adql.dialects.embedded import setup_statements
from tap_service.felis import load_felis, parse_felis
from tap_service.felis.model import FelisSchema
from tap_service.services.generated_catalog import (
    MJD_RANGE,
    build_generated_catalog,
    generate_tables,
)
from tap_service.storage.embedded import EmbeddedDatabase

RUBIN = Path("/work/shared/rubin-sdm/schemas")
DP02 = RUBIN / "dp02_dc2.yaml"
DP02_OBSCORE = RUBIN / "dp02_obscore.yaml"
needs_rubin = pytest.mark.skipif(not DP02.exists(), reason=f"no Rubin schemas in {RUBIN}")

ROWS = 150


def _col(name: str, datatype: str, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "@id": f"#{extra.pop('table', 't')}.{name}",
        "datatype": datatype,
        **extra,
    }


# Every Felis datatype, a char primary key, a composite foreign key, and a column matching
# another table's primary key by name only.
EVERY_TYPE: dict[str, object] = {
    "name": "kinds",
    "tables": [
        {
            "name": "parent",
            "@id": "#parent",
            "primaryKey": ["#parent.code", "#parent.part"],
            "columns": [
                _col("code", "char", table="parent", length=6, nullable=False),
                _col("part", "short", table="parent", nullable=False),
                _col("t", "timestamp", table="parent"),
            ],
        },
        {
            "name": "run",
            "@id": "#run",
            "primaryKey": "#run.runId",
            "columns": [_col("runId", "int", table="run", nullable=False)],
        },
        {
            "name": "t",
            "@id": "#t",
            "primaryKey": "#t.tId",
            "constraints": [
                {
                    "name": "t_parent",
                    "@type": "ForeignKey",
                    "columns": ["#t.code", "#t.part"],
                    "referencedColumns": ["#parent.code", "#parent.part"],
                }
            ],
            "columns": [
                _col("tId", "long", nullable=False),
                _col("code", "char", length=6),
                _col("part", "short"),
                _col("runId", "int"),
                _col("flag", "boolean"),
                _col("b", "byte"),
                _col("f", "float"),
                _col("d", "double"),
                _col("s", "string", length=5),
                _col("u", "unicode", length=7),
                _col("txt", "text"),
                _col("bin", "binary", length=4),
                _col("when", "timestamp"),
                _col("mjd", "double", **{"ivoa:unit": "d", "ivoa:ucd": "time.epoch"}),
                _col("ra", "double", **{"ivoa:ucd": "pos.eq.ra"}),
                _col("dec", "double", **{"ivoa:ucd": "pos.eq.dec"}),
                _col("em_min", "double", **{"ivoa:ucd": "em.wl;stat.min"}),
                _col("em_max", "double", **{"ivoa:ucd": "em.wl;stat.max"}),
                _col("required", "double", nullable=False),
            ],
        },
    ],
}


@pytest.fixture(scope="module")
def kinds() -> FelisSchema:
    return parse_felis(EVERY_TYPE)


@pytest.fixture(scope="module")
def dp02() -> list[FelisSchema]:
    return [load_felis(DP02), load_felis(DP02_OBSCORE)]


def test_every_datatype_gets_its_arrow_type(kinds: FelisSchema) -> None:
    table = generate_tables([kinds], rows=ROWS)[("kinds", "t")]
    types = {f.name: f.type for f in table.schema}
    assert types["flag"] == pa.bool_()
    assert types["b"] == pa.int8()
    assert types["part"] == pa.int16()
    assert types["runId"] == pa.int32()
    assert types["tId"] == pa.int64()
    assert types["f"] == pa.float32()
    assert types["d"] == pa.float64()
    assert types["u"] == pa.string()
    assert types["bin"] == pa.binary()
    assert types["when"] == pa.timestamp("us")
    assert table.num_rows == ROWS
    assert max(len(v) for v in table["s"].to_pylist() if v is not None) <= 5
    assert max(len(v) for v in table["u"].to_pylist() if v is not None) <= 7
    assert all(len(v) == 4 for v in table["bin"].to_pylist() if v is not None)
    assert table["required"].null_count == 0
    assert table["tId"].null_count == 0


def test_ranges_and_pairs(kinds: FelisSchema) -> None:
    table = generate_tables([kinds], rows=ROWS)[("kinds", "t")]
    ra = table["ra"].to_numpy(zero_copy_only=False)
    dec = table["dec"].to_numpy(zero_copy_only=False)
    assert ((ra >= 0) & (ra < 360)).all()
    assert ((dec >= -90) & (dec <= 90)).all()
    mjd = pc.drop_null(table["mjd"]).to_numpy()
    assert ((mjd >= MJD_RANGE[0]) & (mjd <= MJD_RANGE[1])).all()
    lo = table["em_min"].to_numpy(zero_copy_only=False)
    hi = table["em_max"].to_numpy(zero_copy_only=False)
    both = ~np.isnan(lo) & ~np.isnan(hi)
    assert (lo[both] < hi[both]).all()
    assert ((lo[both] > 1e-7) & (lo[both] < 2e-6)).all()  # metres
    when = pc.drop_null(table["when"]).to_pylist()
    assert all(2022 <= t.year <= 2027 for t in when)


def test_keys_are_unique_and_references_resolve(kinds: FelisSchema) -> None:
    tables = generate_tables([kinds], rows=ROWS)
    parent, run, t = tables[("kinds", "parent")], tables[("kinds", "run")], tables[("kinds", "t")]
    assert len(set(t["tId"].to_pylist())) == ROWS
    assert all(i > 2**53 for i in t["tId"].to_pylist())  # ids a double cannot hold
    keys = set(zip(parent["code"].to_pylist(), parent["part"].to_pylist(), strict=True))
    assert len(keys) == ROWS
    assert set(zip(t["code"].to_pylist(), t["part"].to_pylist(), strict=True)) <= keys
    assert set(t["runId"].to_pylist()) <= set(run["runId"].to_pylist())  # by name only
    assert t["code"].null_count == 0  # references are never NULL


def test_nullable_columns_hold_some_nulls_but_not_in_the_first_row(kinds: FelisSchema) -> None:
    table = generate_tables([kinds], rows=1_000)[("kinds", "t")]
    assert table["d"].null_count > 10
    assert table["flag"].null_count > 10
    assert all(table[name][0].is_valid for name in table.column_names)


def test_same_seed_same_rows_other_seed_other_rows(kinds: FelisSchema) -> None:
    first = generate_tables([kinds], rows=ROWS, seed=3)
    again = generate_tables([kinds], rows=ROWS, seed=3)
    other = generate_tables([kinds], rows=ROWS, seed=4)
    assert all(first[k].equals(again[k]) for k in first)
    assert not first[("kinds", "t")].equals(other[("kinds", "t")])


@needs_rubin
def test_dp02_every_table_every_column(dp02: list[FelisSchema]) -> None:
    tables = generate_tables(dp02, rows=ROWS)
    assert len(tables) == 13
    for schema in dp02:
        for felis_table in schema.tables:
            data = tables[(schema.name, felis_table.name)]
            assert data.column_names == [c.name for c in felis_table.columns]
            assert data.num_rows == ROWS
            for column in felis_table.columns:
                values = data[column.name]
                if not column.nullable:
                    assert values.null_count == 0, column.name
                if column.length and pa.types.is_string(values.type):
                    longest = max((len(v) for v in values.to_pylist() if v is not None), default=0)
                    assert longest <= column.length, column.name
                ucd = column.ucd or ""
                if "pos.eq.ra" in ucd and "stat" not in ucd:
                    ra = pc.drop_null(values).to_numpy()
                    assert ((ra >= 0) & (ra < 360)).all(), column.name
                if "pos.eq.dec" in ucd and "stat" not in ucd:
                    dec = pc.drop_null(values).to_numpy()
                    assert ((dec >= -90) & (dec <= 90)).all(), column.name
            for key in felis_table.primary_key:
                name = schema.resolve_column(key)[1].name
                assert len(set(data[name].to_pylist())) == ROWS, name
    # Long primary keys of different tables never share a value (a wrong join finds nothing).
    long_keys = [
        set(tables[(s.name, t.name)][s.resolve_column(t.primary_key[0])[1].name].to_pylist())
        for s in dp02
        for t in s.tables
        if t.primary_key and s.resolve_column(t.primary_key[0])[1].datatype == "long"
    ]
    assert len(long_keys) >= 8
    assert len(set().union(*long_keys)) == sum(len(k) for k in long_keys)
    obj = tables[("dp02_dc2_catalogs", "Object")]
    assert obj.num_columns == 991
    object_ids = set(obj["objectId"].to_pylist())
    assert set(tables[("dp02_dc2_catalogs", "ForcedSource")]["objectId"].to_pylist()) <= object_ids
    # Source.visit has no declared key; its name matches Visit's primary key.
    visits = set(tables[("dp02_dc2_catalogs", "Visit")]["visit"].to_pylist())
    assert set(tables[("dp02_dc2_catalogs", "Source")]["visit"].to_pylist()) <= visits
    visits = tables[("dp02_dc2_catalogs", "CcdVisit")]
    both = pc.and_(visits["expMidptMJD"].is_valid(), visits["expMidpt"].is_valid())
    assert pc.sum(both).as_py() > ROWS // 2
    pairs = visits.filter(both)
    mjd = pairs["expMidptMJD"].to_numpy()
    micros = pairs["expMidpt"].cast(pa.int64()).to_numpy()
    assert np.allclose(micros / 86_400e6 + 40_587.0, mjd, rtol=0, atol=1e-9)
    obscore = tables[("ivoa", "ObsCore")]
    assert set(obscore["dataproduct_type"].to_pylist()) == {"image"}
    assert all(s.startswith("POLYGON ICRS ") for s in obscore["s_region"].to_pylist())
    t_min = obscore["t_min"].to_numpy(zero_copy_only=False)
    t_max = obscore["t_max"].to_numpy(zero_copy_only=False)
    assert (t_min < t_max).all()


@needs_rubin
def test_built_catalog_is_published(dp02: list[FelisSchema], tmp_path: Path) -> None:
    with EmbeddedDatabase(tmp_path, setup_statements=setup_statements()) as db:
        counts = build_generated_catalog(db, dp02, rows=50)
        assert counts.tables == 13
        assert counts.rows == 13 * 50
        n = db.query('SELECT count(*) AS n FROM "dp02_dc2_catalogs"."Object"').to_pylist()
        assert n == [{"n": 50}]
        columns = db.query(
            'SELECT count(*) AS n FROM "TAP_SCHEMA"."columns" '
            "WHERE table_name = 'dp02_dc2_catalogs.Object'"
        ).to_pylist()
        assert columns == [{"n": 991}]
        published = {t.name for t in db.catalog_tables() if t.schema == "ivoa"}
        assert published == {"ObsCore"}


def test_cli_generate(tmp_path: Path) -> None:
    felis = tmp_path / "kinds.yaml"
    import yaml

    felis.write_text(yaml.safe_dump(EVERY_TYPE))
    result = subprocess.run(
        [sys.executable, "-m", "tap_service.cli", "generate", "--felis", str(felis),
         "--rows", "30", "--fresh"],
        capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "TAP_DATA_DIR": str(tmp_path / "data")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Generated 90 rows in 3 tables" in result.stdout
    with EmbeddedDatabase(tmp_path / "data", read_only=True) as db:
        assert db.query('SELECT count(*) AS n FROM "kinds"."t"').to_pylist() == [{"n": 30}]

    bad = subprocess.run(
        [sys.executable, "-m", "tap_service.cli", "generate", "--felis", str(tmp_path / "nope")],
        capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "TAP_DATA_DIR": str(tmp_path / "data")},
    )  # fmt: skip
    assert bad.returncode == 1
    assert "error:" in bad.stderr


def test_one_to_one_keys_stay_unique_and_null_targets_are_never_picked() -> None:
    schema = parse_felis(
        {
            "name": "pairs",
            "tables": [
                {
                    "name": "a",
                    "@id": "#a",
                    "primaryKey": "#a.aId",
                    "columns": [
                        _col("aId", "long", table="a", nullable=False),
                        _col("tag", "int", table="a"),  # nullable, not a key
                    ],
                },
                {
                    "name": "b",
                    "@id": "#b",
                    "primaryKey": "#b.aId",
                    "constraints": [
                        {
                            "name": "b_a",
                            "@type": "ForeignKey",
                            "columns": ["#b.aId"],
                            "referencedColumns": ["#a.aId"],
                        },
                        {
                            "name": "b_tag",
                            "@type": "ForeignKey",
                            "columns": ["#b.tag"],
                            "referencedColumns": ["#a.tag"],
                        },
                    ],
                    "columns": [
                        _col("aId", "long", table="b", nullable=False),
                        _col("tag", "int", table="b"),
                    ],
                },
            ],
        }
    )
    tables = generate_tables([schema], rows=400, seed=1)
    a, b = tables[("pairs", "a")], tables[("pairs", "b")]
    assert a["tag"].null_count > 0  # the target column has NULLs...
    assert b["tag"].null_count == 0  # ...which are never picked
    assert set(b["tag"].to_pylist()) <= set(a["tag"].to_pylist())
    assert sorted(b["aId"].to_pylist()) == sorted(a["aId"].to_pylist())  # one to one
