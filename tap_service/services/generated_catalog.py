"""Deterministic rows for any Felis schema, so a real schema can be served at its real width.

``generate_tables`` makes ``rows`` rows for every table of the given Felis schemas (numpy, one
random stream per table derived from the seed and the table's name, so adding a schema does not
change another's rows).  Values follow the column's description where it matters:

* datatype and size: booleans, integers in their type's range, float32/float64, strings never
  longer than ``length``, timestamps (2022–2027), bytes for ``binary``;
* UCDs and units: ``pos.eq.ra``/``pos.eq.dec`` in the DC2 region (inside 0..360, −90..90),
  ``time.epoch``/``time.start``/``time.end`` in days as MJDs, durations and errors positive,
  fluxes positive-ish, magnitudes 15–27, ``em.wl`` in metres, bands from ``ugrizy``,
  ``pos.outline`` strings as STC-S polygons around the row's position;
* keys: primary-key columns are unique (long ids above 2^53, as DP0.2's are); a column under a
  declared foreign key, or named exactly like the one-column primary key of another table of the
  same type (``ForcedSource.objectId`` → ``Object.objectId``), takes values of that key, drawn
  from the generated target rows;
* pairs ``X_min``/``X_max`` (ObsCore's ``t_``, ``em_``) are ordered;
* NULLs: about 5 % of a nullable column's values, except in keys, positions, ``meta.id`` and
  ``meta.main`` columns and IVOA-standard (``tap:std``) columns, so joins and cone searches
  still find rows.

``build_generated_catalog`` stores them in the embedded catalog through the same publishing
path as the demo catalog and ingest: tables created from Felis, TAP_SCHEMA rows from
``felis.tap_schema_rows``, all in one transaction.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from tap_service.felis.model import FelisColumn, FelisSchema, FelisTable
from tap_service.storage.embedded import EmbeddedDatabase, qualified, quote

RA_RANGE = (50.0, 75.0)
DEC_RANGE = (-45.0, -27.0)
MJD_RANGE = (59_580.0, 61_400.0)
LONG_ID_BASE = 1_249_537_790_362_800_000
"""DP0.2 ids are around 1.25e18, above 2^53: doubles cannot hold them exactly."""
NULL_FRACTION = 0.05
BANDS = np.array(list("ugrizy"), dtype=object)

_ARROW_TYPES: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "byte": pa.int8(),
    "short": pa.int16(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "char": pa.string(),
    "string": pa.string(),
    "unicode": pa.string(),
    "text": pa.string(),
    "binary": pa.binary(),
    "timestamp": pa.timestamp("us"),
}
_INTEGER_RANGES = {"byte": 127, "short": 30_000, "int": 1_000_000, "long": 10_000_000}
_TEXT = frozenset({"char", "string", "unicode", "text"})
_OBSCORE_VALUES = {
    "dataproduct_type": ("image",),
    "dataproduct_subtype": ("lsst.calexp", "lsst.deepCoadd_calexp"),
    "o_ucd": ("phot.count",),
    "access_format": ("application/x-votable+xml;content=datalink",),
    "facility_name": ("Rubin:Simonyi",),
    "instrument_name": ("LSSTCam-imSim",),
    "obs_collection": ("LSST.DP02",),
}

ColumnKey = tuple[str, str, str]
"""(schema, table, column) names."""


@dataclass(frozen=True)
class GeneratedCounts:
    tables: int
    columns: int
    rows: int
    seconds: float


@dataclass
class _Reference:
    """Where a column's values come from: another table's columns, one row index per row."""

    target: tuple[str, str]
    target_columns: tuple[str, ...]
    columns: tuple[str, ...]


def _seed_for(seed: int, schema: str, table: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(f"{schema}.{table}".encode())])


def _references(schemas: Sequence[FelisSchema]) -> dict[tuple[str, str], list[_Reference]]:
    """Declared foreign keys, plus columns named like another table's one-column primary key."""
    primary: dict[str, list[tuple[FelisSchema, FelisTable, FelisColumn]]] = {}
    for schema in schemas:
        for table in schema.tables:
            if len(table.primary_key) == 1:
                column = schema.resolve_column(table.primary_key[0])[1]
                primary.setdefault(column.name, []).append((schema, table, column))
    found: dict[tuple[str, str], list[_Reference]] = {}
    for schema in schemas:
        for table in schema.tables:
            refs: list[_Reference] = []
            covered: set[str] = set()
            for fk in table.foreign_keys:
                target = schema.resolve_column(fk.referenced_columns[0])[0]
                if target is table:
                    continue
                cols = tuple(schema.resolve_column(c)[1].name for c in fk.columns)
                refs.append(
                    _Reference(
                        (schema.name, target.name),
                        tuple(schema.resolve_column(c)[1].name for c in fk.referenced_columns),
                        cols,
                    )
                )
                covered.update(cols)
            own_key = {schema.resolve_column(c)[1].name for c in table.primary_key}
            for column in table.columns:
                if column.name in covered or column.name in own_key:
                    continue
                candidates = [
                    (s, t)
                    for s, t, c in primary.get(column.name, [])
                    if t is not table and c.datatype == column.datatype
                ]
                # Prefer the same schema; otherwise the only candidate, if unambiguous.
                same = [(s, t) for s, t in candidates if s is schema]
                chosen = same or candidates
                if len(chosen) == 1:
                    s, t = chosen[0]
                    refs.append(_Reference((s.name, t.name), (column.name,), (column.name,)))
            found[(schema.name, table.name)] = refs
    return found


def _order(
    schemas: Sequence[FelisSchema], refs: dict[tuple[str, str], list[_Reference]]
) -> list[tuple[FelisSchema, FelisTable]]:
    """Tables with referenced tables first (a cycle is broken in document order)."""
    by_key = {(s.name, t.name): (s, t) for s in schemas for t in s.tables}
    done: set[tuple[str, str]] = set()
    visiting: set[tuple[str, str]] = set()
    ordered: list[tuple[FelisSchema, FelisTable]] = []

    def visit(key: tuple[str, str]) -> None:
        if key in done or key in visiting:
            return
        visiting.add(key)
        for ref in refs.get(key, []):
            visit(ref.target)
        visiting.discard(key)
        done.add(key)
        ordered.append(by_key[key])

    for key in by_key:
        visit(key)
    return ordered


def generate_tables(
    schemas: Iterable[FelisSchema], *, rows: int = 200, seed: int = 42
) -> dict[tuple[str, str], pa.Table]:
    """``rows`` rows for every table of ``schemas``, keyed by (schema name, table name).

    Columns come in Felis document order with the Arrow type matching the Felis datatype.
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    schema_list = list(schemas)
    refs = _references(schema_list)
    result: dict[tuple[str, str], pa.Table] = {}
    for schema, table in _order(schema_list, refs):
        key = (schema.name, table.name)
        rng = _seed_for(seed, *key)
        pk_names = {schema.resolve_column(c)[1].name for c in table.primary_key}
        values: dict[str, npt.NDArray[Any]] = {}
        keep: set[str] = set(pk_names)
        for ref in refs[key]:
            source = result.get(ref.target)
            picks = None if source is None else _picks(source, ref, rng, rows, pk_names)
            if source is None or picks is None:  # a cycle, or no usable rows: generate freely
                continue
            for col, target_col in zip(ref.columns, ref.target_columns, strict=True):
                target_values = source.column(target_col).to_numpy(zero_copy_only=False)
                values[col] = np.asarray(target_values)[picks]
                keep.add(col)
        position = _position(rng, rows)
        first_key = table.primary_key[0] if table.primary_key else None
        for column in table.columns:
            if column.name in values:
                continue
            unique = column.name in pk_names and (
                first_key is None or schema.resolve_column(first_key)[1] is column
            )
            values[column.name] = _values(column, table, rng, rows, unique, position, key)
        _order_pairs(table, values, rng)
        arrays = {}
        for column in table.columns:
            mask = None
            if column.name not in keep and _may_be_null(column):
                mask = rng.random(rows) < NULL_FRACTION
                mask[0] = False  # the first row is complete: TOP 1 shows every value
            arrays[column.name] = pa.array(
                values[column.name], type=_ARROW_TYPES[column.datatype], mask=mask
            )
        result[key] = pa.table(arrays)
    return result


def _may_be_null(column: FelisColumn) -> bool:
    if not column.nullable or column.std:
        return False
    ucd = column.ucd or ""
    return not any(word in ucd for word in ("pos.", "meta.id", "meta.main"))


def _picks(
    source: pa.Table,
    ref: _Reference,
    rng: np.random.Generator,
    rows: int,
    pk_names: set[str],
) -> npt.NDArray[np.int64] | None:
    """Which target row each generated row points at: only rows whose referenced values are
    all non-NULL; each at most once when the referencing columns are part of this table's
    primary key (a one-to-one table), None when that cannot be done."""
    valid = np.ones(source.num_rows, dtype=bool)
    for name in ref.target_columns:
        valid &= source.column(name).is_valid().to_numpy(zero_copy_only=False)
    candidates = np.flatnonzero(valid)
    if len(candidates) == 0:
        return None
    if pk_names & set(ref.columns):
        if len(candidates) < rows:
            return None
        return np.asarray(rng.permutation(candidates)[:rows], dtype=np.int64)
    return np.asarray(rng.choice(candidates, rows), dtype=np.int64)


def _position(
    rng: np.random.Generator, rows: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """One sky position per row, shared by every ra/dec column of the table."""
    ra = rng.uniform(*RA_RANGE, rows)
    sin_lo, sin_hi = np.sin(np.radians(DEC_RANGE))
    dec = np.degrees(np.arcsin(rng.uniform(sin_lo, sin_hi, rows)))
    return ra, dec


def _values(
    column: FelisColumn,
    table: FelisTable,
    rng: np.random.Generator,
    rows: int,
    unique: bool,
    position: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
    key: tuple[str, str],
) -> npt.NDArray[Any]:
    kind = column.datatype
    ucd = (column.ucd or "").lower()
    unit = column.unit or ""
    if kind == "boolean":
        return rng.random(rows) < 0.5
    if kind in _INTEGER_RANGES:
        return _integers(column, rng, rows, unique, ucd, _id_base(*key))
    if kind in ("float", "double"):
        floats = _floats(rng, rows, ucd, unit, position)
        return floats.astype(np.float32 if kind == "float" else np.float64)
    if kind == "timestamp":
        return _mjd_to_timestamp(rng.uniform(*MJD_RANGE, rows))
    if kind == "binary":
        size = column.length or 8
        return np.array([rng.bytes(size) for _ in range(rows)], dtype=object)
    if kind in _TEXT:
        return _strings(column, table, rng, rows, unique, ucd, position)
    raise ValueError(f"column {column.name}: no generator for datatype {kind!r}")


def _id_base(schema: str, table: str) -> int:
    """Where a table's long ids start: tables apart by multiples of 10^12, so the ids of two
    tables never coincide and a join on the wrong key finds nothing."""
    return LONG_ID_BASE + (zlib.crc32(f"{schema}.{table}".encode()) % 997) * 10**12


def _integers(
    column: FelisColumn,
    rng: np.random.Generator,
    rows: int,
    unique: bool,
    ucd: str,
    id_base: int,
) -> npt.NDArray[Any]:
    kind = column.datatype
    dtype = {"byte": np.int8, "short": np.int16, "int": np.int32, "long": np.int64}[kind]
    if unique:
        steps = rng.integers(1, 1_000 if kind == "long" else 3, rows, dtype=np.int64)
        base = id_base if kind == "long" else 0
        return (base + np.cumsum(steps)).astype(dtype)
    if "obs.calib" in ucd:  # ObsCore calib_level: 0..4
        return rng.integers(1, 4, rows).astype(dtype)
    high = _INTEGER_RANGES[kind]
    if "meta.number" in ucd:
        high = min(high, 10_000)
    return rng.integers(0, high, rows).astype(dtype)


def _floats(
    rng: np.random.Generator,
    rows: int,
    ucd: str,
    unit: str,
    position: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> npt.NDArray[np.float64]:
    ra, dec = position
    if "pos.eq.ra" in ucd:
        if "stat.error" in ucd:
            return rng.uniform(1e-6, 1e-4, rows)
        # Corners and per-band positions stay close to the row's position.
        return np.mod(ra + rng.normal(0.0, 0.01, rows) * ("meta.main" not in ucd), 360.0)
    if "pos.eq.dec" in ucd:
        if "stat.error" in ucd:
            return rng.uniform(1e-6, 1e-4, rows)
        near = dec + rng.normal(0.0, 0.01, rows) * ("meta.main" not in ucd)
        return np.clip(near, -90.0, 90.0)
    if unit == "d" and any(w in ucd for w in ("time.epoch", "time.start", "time.end")):
        return rng.uniform(*MJD_RANGE, rows)
    if "stat.error" in ucd or "time.duration" in ucd or "time.resolution" in ucd:
        return rng.uniform(0.01, 60.0, rows)
    if "em.wl" in ucd:
        return rng.uniform(3.2e-7, 1.06e-6, rows)
    if "phot.flux" in ucd:
        return rng.lognormal(6.0, 2.0, rows) * np.where(rng.random(rows) < 0.1, -0.1, 1.0)
    if "phot.mag" in ucd:
        return rng.uniform(15.0, 27.0, rows)
    return rng.normal(0.0, 100.0, rows)


def _strings(
    column: FelisColumn,
    table: FelisTable,
    rng: np.random.Generator,
    rows: int,
    unique: bool,
    ucd: str,
    position: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> npt.NDArray[Any]:
    limit = column.length
    name = column.name
    if unique:
        width = len(str(rows))
        if limit is not None and limit < width:
            raise ValueError(f"column {table.name}.{name}: length {limit} too small for {rows} ids")
        prefix = name[: max(0, (limit or 32) - width - 1)]
        texts = [f"{prefix}-{i:0{width}d}" if prefix else f"{i:0{width}d}" for i in range(rows)]
    elif (
        "instr.bandpass" in ucd
        or "instr.filter" in ucd
        or name.lower()
        in (
            "band",
            "filtername",
        )
    ):
        bands = rng.choice(BANDS, rows)
        texts = (
            list(bands)
            if (limit or 1) < 6 or "instr.bandpass" in ucd
            else [f"{b}_sim_1.4" for b in bands]
        )
    elif "pos.outline" in ucd:
        texts = [_stcs_polygon(r, d) for r, d in zip(*position, strict=True)]
    elif "meta.ref.url" in ucd:
        texts = [f"https://data.example.org/{table.name.lower()}/{i}" for i in range(rows)]
    elif "meta.ref.ivoid" in ucd or "meta.ref.uri" in ucd:
        texts = [f"ivo://example.org/{table.name.lower()}?{i}" for i in range(rows)]
    elif table.name.lower() == "obscore" and name in _OBSCORE_VALUES:
        texts = list(rng.choice(np.array(_OBSCORE_VALUES[name], dtype=object), rows))
    else:
        texts = [f"{name}_{int(v)}" for v in rng.integers(0, 1_000, rows)]
    if limit is not None:
        texts = [t[:limit] for t in texts]
    return np.array(texts, dtype=object)


def _stcs_polygon(ra: float, dec: float, half: float = 0.1) -> str:
    dx = half / max(np.cos(np.radians(dec)), 1e-6)
    corners = [
        (ra - dx, dec - half),
        (ra + dx, dec - half),
        (ra + dx, dec + half),
        (ra - dx, dec + half),
    ]
    return "POLYGON ICRS " + " ".join(f"{r % 360.0:.6f} {d:.6f}" for r, d in corners)


def _mjd_to_timestamp(mjd: npt.NDArray[np.float64]) -> npt.NDArray[np.datetime64]:
    micros = np.round((mjd - 40_587.0) * 86_400e6).astype(np.int64)
    return micros.astype("datetime64[us]")


def _order_pairs(
    table: FelisTable, values: dict[str, npt.NDArray[Any]], rng: np.random.Generator
) -> None:
    """Related columns agree: ``X_min`` ≤ ``X_max`` for numeric pairs (ObsCore t_min/t_max,
    em_min/em_max), and a timestamp ``X`` is the instant of its MJD twin ``XMJD`` (DP0.2's
    expMidpt/expMidptMJD)."""
    for column in table.columns:
        twin = values.get(column.name + "MJD")
        if column.datatype == "timestamp" and twin is not None and twin.dtype.kind == "f":
            values[column.name] = _mjd_to_timestamp(twin.astype(np.float64))
    for column in table.columns:
        if not column.name.endswith("_min") or column.datatype not in ("float", "double"):
            continue
        upper = column.name[: -len("_min")] + "_max"
        if upper in values and values[upper].dtype.kind == "f":
            low = values[column.name]
            spread = np.abs(low) * rng.uniform(1e-4, 1e-2, len(low)) + 1e-9
            values[upper] = (low + spread).astype(values[upper].dtype)


def build_generated_catalog(
    db: EmbeddedDatabase,
    schemas: Sequence[FelisSchema],
    *,
    rows: int = 200,
    seed: int = 42,
) -> GeneratedCounts:
    """Create every table of ``schemas`` (replacing existing ones), fill them, publish them.

    One transaction: on any error the catalog keeps what it had.
    """
    started = time.perf_counter()
    tables = generate_tables(schemas, rows=rows, seed=seed)
    with db.transaction() as cur:
        for schema in schemas:
            db.publish_in(cur, schema, replace_tables=True)
            for table in schema.tables:
                _insert(cur, schema.name, table, tables[(schema.name, table.name)])
    with db.cursor() as cur:
        cur.execute("CHECKPOINT")
    return GeneratedCounts(
        tables=len(tables),
        columns=sum(t.num_columns for t in tables.values()),
        rows=sum(t.num_rows for t in tables.values()),
        seconds=time.perf_counter() - started,
    )


def _insert(cur: Any, schema: str, table: FelisTable, data: pa.Table) -> None:
    view = f"__generated_{table.name}"
    cur.register(view, data)
    try:
        column_list = ", ".join(quote(c.name) for c in table.columns)
        cur.execute(
            f"INSERT INTO {qualified(schema, table.name)} ({column_list}) "
            f"SELECT {column_list} FROM {quote(view)}"
        )
    finally:
        cur.unregister(view)
