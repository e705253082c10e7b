"""Shared test data: one Field per datatype/shape the writers support, and rows covering
NULLs, extremes, unicode and XML-special text.  Expected values are written out by hand so
the tests compare against an independent statement of the truth, not the writer's own code."""

from __future__ import annotations

import datetime
import io
import math
from typing import Any

import numpy as np
import pyarrow as pa
from astropy.io.votable import parse

from tap_service.votable import Field, Info, make_writer

BIG_ID = 2**62 + 12345  # not representable as a double: exact round trip proves no float path

FIELDS = [
    Field(name="objectId", datatype="long", ucd="meta.id;meta.main", id="objectId"),
    Field(name="ra", datatype="double", unit="deg", ucd="pos.eq.ra", description="RA <ICRS> & co"),
    Field(name="flux", datatype="float", unit="nJy"),
    Field(name="flag", datatype="boolean"),
    Field(name="small", datatype="short"),
    Field(name="count", datatype="int"),
    Field(name="byte", datatype="unsignedByte"),
    Field(name="band", datatype="char", arraysize="*"),
    Field(name="label", datatype="unicodeChar", arraysize="*"),
    Field(name="code", datatype="char", arraysize="4"),
    Field(name="ucode", datatype="unicodeChar", arraysize="3"),
    Field(name="short_text", datatype="char", arraysize="5*"),
    Field(name="pt", datatype="double", arraysize="2", xtype="point", unit="deg"),
    Field(name="region", datatype="double", arraysize="*", xtype="polygon", unit="deg"),
    Field(name="obs_time", datatype="char", arraysize="*", xtype="timestamp"),
    Field(name="empty", datatype="int"),
]

NAMES = [field.name for field in FIELDS]

# Columns exactly as a database would hand them over (note the narrower or different Arrow
# types that the declared datatypes must override).
COLUMNS: dict[str, pa.Array] = {
    "objectId": pa.array([BIG_ID, None, -(2**63), 2**63 - 1, 0], pa.int64()),
    "ra": pa.array([0.1, None, math.nan, math.inf, -math.inf], pa.float64()),
    "flux": pa.array(np.array([0.1, 3.4e38, -1.5e-10, 0, 0], np.float32), pa.float32()).cast(
        pa.float32()
    ),
    "flag": pa.array([True, False, None, True, False]),
    "small": pa.array([-32768, 32767, None, 0, 1], pa.int32()),  # declared short
    "count": pa.array([1, None, -(2**31), 2**31 - 1, 7], pa.int64()),  # declared int
    "byte": pa.array([0, 255, None, 128, 1], pa.uint8()),
    "band": pa.array(["r", None, "", "a<b>&\"c'", "x,y\nz"], pa.large_string()),
    "label": pa.array(["Ærø 😀", None, "", "naïve \u03b1", "tab\there"]),
    "code": pa.array(["abcdefg", "ab", None, "", "wxyz"]),
    "ucode": pa.array(["äöüß", "é", None, "", "xyz"]),
    "short_text": pa.array(["123456789", "ok", None, "", "fives"]),
    "pt": pa.array([[10.0, -20.5], None, [1e-300, 1e300], [0.0, 0.0], [359.9, 89.9]]),
    "region": pa.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], None, [], [0.5] * 8, [1.0, 2.0, 3.0]]),
    "obs_time": pa.array(
        [
            datetime.datetime(2023, 5, 17, 12, 34, 56, 789123),
            None,
            datetime.datetime(1970, 1, 1),
            datetime.datetime(2099, 12, 31, 23, 59, 59, 999000),
            datetime.datetime(2000, 2, 29, 0, 0, 0, 1000),
        ],
        pa.timestamp("us"),
    ),
    "empty": pa.nulls(5),
}

N_ROWS = 5

# What every VOTable serialization must give back (None = NULL).  Floats compare exactly.
EXPECTED: dict[str, list[Any]] = {
    "objectId": [BIG_ID, None, -(2**63), 2**63 - 1, 0],
    "ra": [0.1, None, math.nan, math.inf, -math.inf],
    "flux": [np.float32(0.1), np.float32(3.4e38), np.float32(-1.5e-10), 0.0, 0.0],
    "flag": [True, False, None, True, False],
    "small": [-32768, 32767, None, 0, 1],
    "count": [1, None, -(2**31), 2**31 - 1, 7],
    "byte": [0, 255, None, 128, 1],
    "band": ["r", None, "", "a<b>&\"c'", "x,y\nz"],
    "label": ["Ærø 😀", None, "", "naïve \u03b1", "tab\there"],
    "code": ["abcd", "ab", None, "", "wxyz"],
    "ucode": ["äöü", "é", None, "", "xyz"],
    "short_text": ["12345", "ok", None, "", "fives"],
    "pt": [[10.0, -20.5], None, [1e-300, 1e300], [0.0, 0.0], [359.9, 89.9]],
    "region": [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], None, [], [0.5] * 8, [1.0, 2.0, 3.0]],
    "obs_time": [
        "2023-05-17T12:34:56.789",
        None,
        "1970-01-01T00:00:00.000",
        "2099-12-31T23:59:59.999",
        "2000-02-29T00:00:00.001",
    ],
    "empty": [None] * 5,
}


def sample_batch() -> pa.RecordBatch:
    return pa.record_batch([COLUMNS[name] for name in NAMES], names=NAMES)


def render(
    response_format: str | None,
    batches: list[pa.RecordBatch],
    fields: list[Field] | None = None,
    *,
    overflow: bool = False,
    infos: list[Info] | None = None,
    infos_after: list[Info] | None = None,
    resource_meta: bytes = b"",
) -> bytes:
    writer = make_writer(
        response_format,
        FIELDS if fields is None else fields,
        infos=infos or [],
        resource_meta=resource_meta,
        table_name="results",
    )
    parts = [writer.begin()]
    parts.extend(writer.write_batch(batch) for batch in batches)
    parts.append(writer.end(overflow=overflow, infos_after=infos_after or []))
    return b"".join(parts)


def parse_votable(document: bytes) -> Any:
    """Parse strictly: any astropy VOTable warning (spec violation) fails the test."""
    return parse(io.BytesIO(document), verify="exception")


def cell(column: Any, row: int) -> Any:
    """A parsed cell as a plain Python value, None for masked (NULL)."""
    value = column[row]
    if np.ma.is_masked(value):
        return None
    if isinstance(value, np.ma.MaskedArray):
        if value.mask is not np.ma.nomask and bool(np.all(value.mask)) and value.size:
            return None
        value = value.filled(np.nan)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def same(actual: Any, expected: Any) -> bool:
    """Equality where NaN equals NaN (the round trip must keep NaN, not turn it into NULL)."""
    if isinstance(expected, list) and isinstance(actual, list):
        return len(actual) == len(expected) and all(
            same(a, e) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(expected, float | np.floating) and isinstance(actual, float | np.floating):
        if math.isnan(expected):
            return math.isnan(actual)
        return float(actual) == float(expected)
    return bool(actual == expected)


def random_batch(rows: int, seed: int) -> pa.RecordBatch:
    """Seeded random rows for every sample Field, about a tenth of them NULL."""
    rng = np.random.default_rng(seed)

    def nulls() -> Any:
        return rng.random(rows) < 0.1

    alphabet = list("abcXYZ019 ,;\"'<>&\t\nü€😀")
    words = ["".join(rng.choice(alphabet, size=int(k))) for k in rng.integers(0, 12, rows)]
    polygons = [  # valid DALI polygons: 3 to 6 vertices
        None if drop else rng.uniform(-10, 10, int(k) * 2).tolist()
        for k, drop in zip(rng.integers(3, 7, rows), nulls(), strict=True)
    ]
    points = [None if drop else rng.standard_normal(2).tolist() for drop in nulls()]
    stamps = rng.integers(0, 4_000_000_000_000_000, rows)
    columns = {
        "objectId": pa.array(rng.integers(-(2**63), 2**63 - 1, rows, dtype=np.int64), mask=nulls()),
        "ra": pa.array(rng.standard_normal(rows) * 1e5, mask=nulls()),
        "flux": pa.array(rng.standard_normal(rows).astype(np.float32), mask=nulls()),
        "flag": pa.array(rng.random(rows) < 0.5, mask=nulls()),
        "small": pa.array(rng.integers(-(2**15), 2**15, rows, dtype=np.int16), mask=nulls()),
        "count": pa.array(rng.integers(-(2**31), 2**31, rows, dtype=np.int64), mask=nulls()),
        "byte": pa.array(rng.integers(0, 256, rows, dtype=np.uint8), mask=nulls()),
        "band": pa.array(words, mask=nulls()),
        "label": pa.array(words[::-1], mask=nulls()),
        "code": pa.array(words, mask=nulls()),
        "ucode": pa.array(words[::-1], mask=nulls()),
        "short_text": pa.array(words, mask=nulls()),
        "pt": pa.array(points, pa.list_(pa.float64())),
        "region": pa.array(polygons, pa.list_(pa.float64())),
        "obs_time": pa.array(stamps, pa.timestamp("us"), mask=nulls()),
        "empty": pa.nulls(rows),
    }
    return pa.record_batch([columns[name] for name in NAMES], names=NAMES)
