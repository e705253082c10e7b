"""Load a CSV or Parquet file into the embedded catalog as a Felis-described TAP table.

The file is first read as it is (CSV: every field as text; Parquet: its own types) into Arrow
and exposed to DuckDB as a staging view; one scan then converts every column to its Felis type
and finds the first value that does not convert, breaks NOT NULL, or exceeds ``length``.  Only a
file that passes is swapped in: drop + create + insert + TAP_SCHEMA rows in one transaction, so
a failure at any point leaves the previous table and its metadata exactly as they were.

CSV conventions: a header line names the columns (matched exactly to Felis column names, in any
order; nullable columns may be absent); an empty unquoted field is NULL while ``""`` is an empty
string; booleans are ``true``/``false`` (also ``1``/``0``, any case).
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tap_service.felis.model import FelisColumn, FelisError, FelisSchema, FelisTable, load_felis
from tap_service.storage.embedded import (
    DUCKDB_TYPES,
    EmbeddedDatabase,
    create_table_sql,
    qualified,
    quote,
    table_state,
)

_ROW = "__ingest_row"
_VIEW = "__ingest_staging"
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2")
_PARQUET_SUFFIXES = (".parquet", ".pq")


class IngestError(Exception):
    """A file that cannot be loaded; ``line`` and ``column`` locate the first bad value.

    ``line`` is the physical line in a CSV file (the header is line 1) and the 1-based row
    number in a Parquet file; either may be None when the problem is not tied to one value.
    """

    def __init__(self, message: str, *, line: int | None = None, column: str | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True)
class IngestResult:
    table: str
    rows: int
    seconds: float


def ingest(
    db: EmbeddedDatabase,
    felis_schema_path: str | Path,
    *,
    table: str,
    file_path: str | Path,
    replace: bool = True,
) -> IngestResult:
    """Load ``file_path`` into ``table`` ("SCHEMA.TABLE" of the Felis file) and publish it.

    ``replace`` (the default) swaps the table's whole content for the file's; otherwise rows
    are appended to what the table holds.  Raises ``IngestError`` and changes nothing on any
    problem.
    """
    started = time.perf_counter()
    try:
        schema = load_felis(felis_schema_path)
    except (FelisError, OSError) as exc:
        raise IngestError(f"cannot read the Felis schema: {exc}") from exc
    felis_table = _find_table(schema, table)
    path = Path(file_path)
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        staged = _read_csv(path, felis_table)
        describe = _CsvLines(path)
    elif name.endswith(_PARQUET_SUFFIXES):
        staged = _read_parquet(path, felis_table)
        describe = None
    else:
        raise IngestError(f"{path.name}: unknown file type (expected .csv or .parquet)")

    try:
        _load(db, schema, felis_table, staged, describe, replace=replace)
    except duckdb.Error as exc:
        raise IngestError(f"the database refused the load: {exc}") from exc
    return IngestResult(
        table=f"{schema.name}.{felis_table.name}",
        rows=staged.num_rows,
        seconds=time.perf_counter() - started,
    )


def _load(
    db: EmbeddedDatabase,
    schema: FelisSchema,
    felis_table: FelisTable,
    staged: pa.Table,
    describe: _CsvLines | None,
    *,
    replace: bool,
) -> None:
    """Validate the staged rows, then swap them (and TAP_SCHEMA) in, in one transaction."""
    target = qualified(schema.name, felis_table.name)
    with db.transaction() as cur:
        cur.register(_VIEW, staged)
        try:
            _validate(cur, felis_table, staged, describe)
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema.name)}")
            exists = _exists(cur, schema.name, felis_table.name)
            if exists and not replace and table_state(cur, schema.name, felis_table) != "matches":
                raise IngestError(
                    f"cannot append: {target} exists with other columns than the Felis file "
                    "describes"
                )
            if exists and replace:
                cur.execute(f"DROP TABLE {target}")
            if not exists or replace:
                cur.execute(create_table_sql(schema.name, felis_table))
            names = [c.name for c in felis_table.columns]
            selects = [
                _convert(c, staged.schema.field(c.name).type)
                if c.name in staged.column_names
                else f"CAST(NULL AS {DUCKDB_TYPES[c.datatype]})"
                for c in felis_table.columns
            ]
            cur.execute(
                f"INSERT INTO {target} ({', '.join(quote(n) for n in names)}) "
                f"SELECT {', '.join(selects)} FROM {quote(_VIEW)} ORDER BY {quote(_ROW)}"
            )
            present = {felis_table.name}
            for other in schema.tables:
                state = table_state(cur, schema.name, other) if other is not felis_table else ""
                if state == "matches":
                    present.add(other.name)
                elif state == "differs":
                    # Publishing this file's description of it would make TAP_SCHEMA lie.
                    raise IngestError(
                        f"table {schema.name}.{other.name} exists with other columns than "
                        "this Felis file describes; reload it from this file first or use "
                        "the Felis file it was loaded with"
                    )
            db.publish_in(cur, schema.with_tables(present), create_tables=False)
        finally:
            cur.unregister(_VIEW)


def _find_table(schema: FelisSchema, name: str) -> FelisTable:
    schema_part, dot, table_part = name.rpartition(".")
    if dot and schema_part != schema.name:
        raise IngestError(
            f"table {name!r}: the Felis file describes schema {schema.name!r}, not {schema_part!r}"
        )
    try:
        return schema.table(table_part)
    except KeyError:
        known = ", ".join(t.name for t in schema.tables)
        raise IngestError(f"schema {schema.name!r} has no table {table_part!r} ({known})") from None


def _check_header(names: list[str], table: FelisTable, *, line: int | None) -> None:
    try:
        _check_names(names, table)
    except IngestError as exc:
        if line is None:
            raise
        raise IngestError(f"line {line}: {exc.message}", line=line, column=exc.column) from None


def _check_names(names: list[str], table: FelisTable) -> None:
    line = None
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise IngestError(f"column {name!r} appears twice", line=line, column=name)
        seen.add(name)
        match = table.column(name)
        if match is None or match.name != name:
            extra = f" (did you mean {match.name!r}?)" if match is not None else ""
            raise IngestError(
                f"column {name!r} is not in table {table.name}{extra}", line=line, column=name
            )
    for col in table.columns:
        if col.name not in seen and not col.nullable:
            raise IngestError(
                f"column {col.name!r} is required (not nullable) but missing from the file",
                line=line,
                column=col.name,
            )


def _read_csv(path: Path, table: FelisTable) -> pa.Table:
    try:
        with _open_text(path) as stream:
            header = next(csv.reader(stream), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise IngestError(f"{path.name}: cannot read: {exc}", line=1) from exc
    if not header:
        raise IngestError(f"{path.name}: empty file; a header line is required", line=1)
    header = [h.strip() for h in header]
    _check_header(header, table, line=1)
    try:
        data = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _csv_shape_error(path, len(header), exc) from exc
    data = data.rename_columns([c.strip() for c in data.column_names])
    return data.append_column(_ROW, pa.array(range(data.num_rows), type=pa.int64()))


def _csv_shape_error(path: Path, width: int, exc: Exception) -> IngestError:
    """pyarrow says a row is malformed; find which line, with the csv module (error path)."""
    try:
        with _open_text(path) as stream:
            reader = csv.reader(stream)
            for fields in reader:
                if len(fields) != width and fields:
                    return IngestError(
                        f"line {reader.line_num}: expected {width} fields, found {len(fields)}",
                        line=reader.line_num,
                    )
    except (UnicodeDecodeError, csv.Error) as inner:
        return IngestError(f"{path.name}: not a readable CSV file: {inner}")
    return IngestError(f"{path.name}: not a readable CSV file: {exc}")


def _read_parquet(path: Path, table: FelisTable) -> pa.Table:
    try:
        data = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise IngestError(f"{path.name}: not a readable Parquet file: {exc}") from exc
    _check_header(list(data.column_names), table, line=None)
    return data.append_column(_ROW, pa.array(range(data.num_rows), type=pa.int64()))


def _open_text(path: Path) -> Any:
    if path.name.lower().endswith(".gz"):
        import gzip

        return gzip.open(path, "rt", encoding="utf-8", newline="")
    if path.name.lower().endswith(".bz2"):
        import bz2

        return bz2.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _convert(column: FelisColumn, source: pa.DataType) -> str:
    """SQL turning the staged value into the Felis type; NULL where it does not convert."""
    ref = quote(column.name)
    target = DUCKDB_TYPES[column.datatype]
    textual = pa.types.is_string(source) or pa.types.is_large_string(source)
    if column.datatype == "boolean" and textual:
        return (
            f"CASE lower(trim({ref})) WHEN 'true' THEN true WHEN '1' THEN true "
            f"WHEN 'false' THEN false WHEN '0' THEN false END"
        )
    if target == "VARCHAR" and textual:
        return ref
    if not textual:
        return f"TRY_CAST({ref} AS {target})"
    # DuckDB's casts are lenient where a catalog must not be: '1.5' would become the integer
    # 2, '0x10' 16, and '12:00+02:00' would lose its offset.  Accept only plain forms.
    pattern = _TEXT_FORMS.get(target)
    cast = f"TRY_CAST(trim({ref}) AS {target})"
    if pattern is None:
        return cast
    return f"CASE WHEN regexp_full_match(trim({ref}), '{pattern}') THEN {cast} END"


_INTEGER_FORM = r"[+-]?[0-9]+"
_TEXT_FORMS = {
    "TINYINT": _INTEGER_FORM,
    "SMALLINT": _INTEGER_FORM,
    "INTEGER": _INTEGER_FORM,
    "BIGINT": _INTEGER_FORM,
    # ISO 8601 date or date-time, UTC: no offset, or Z / +00 / +00:00.
    "TIMESTAMP": r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]*)?)?)?"
    r"(Z|[+-]00(:?00)?)?",
}


class _CsvLines:
    """Maps a data row number to its physical line (quoted values may span lines)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def line_of(self, row: int) -> int:
        """Line on which data row ``row`` (0-based) starts; blank lines are not rows."""
        with _open_text(self.path) as stream:
            reader = csv.reader(stream)
            next(reader, None)
            before = reader.line_num
            seen = 0
            for fields in reader:
                if not fields:
                    before = reader.line_num
                    continue
                if seen == row:
                    return before + 1
                seen += 1
                before = reader.line_num
            return before + 1


def _validate(cur: Any, table: FelisTable, staged: pa.Table, lines: _CsvLines | None) -> None:
    """One scan: the first row (and in it the first column) holding an unusable value."""
    checks: list[tuple[FelisColumn, str]] = []
    for col in table.columns:
        if col.name not in staged.column_names:
            continue
        ref = quote(col.name)
        converted = _convert(col, staged.schema.field(col.name).type)
        problems = [f"({ref} IS NOT NULL AND ({converted}) IS NULL)"]
        if not col.nullable:
            problems.append(f"{ref} IS NULL")
        if col.length is not None and DUCKDB_TYPES[col.datatype] == "VARCHAR":
            problems.append(f"length(CAST({ref} AS VARCHAR)) > {col.length}")
        checks.append((col, " OR ".join(problems)))
    if not checks:
        return
    aggregates = ", ".join(f"min(CASE WHEN {cond} THEN {quote(_ROW)} END)" for _, cond in checks)
    first_bad = cur.execute(f"SELECT {aggregates} FROM {quote(_VIEW)}").fetchall()[0]
    bad = [(row, col) for row, (col, _) in zip(first_bad, checks, strict=True) if row is not None]
    if not bad:
        return
    row = min(r for r, _ in bad)
    column = next(
        c for r, c in sorted(bad, key=lambda rc: (rc[0], _position(table, rc[1]))) if r == row
    )
    raw = staged.column(column.name)[row].as_py()
    if raw is None:
        reason = "is empty (NULL) but the column is not nullable"
    elif column.length is not None and isinstance(raw, str) and len(raw) > column.length:
        reason = f"{raw!r} is longer than {column.length} characters"
    else:
        reason = f"{raw!r} is not a valid {column.datatype}"
    if lines is not None:
        line = lines.line_of(row)
        where = f"line {line}"
    else:
        line = row + 1
        where = f"row {line}"
    raise IngestError(f"{where}, column {column.name}: {reason}", line=line, column=column.name)


def _position(table: FelisTable, column: FelisColumn) -> int:
    return [c.name for c in table.columns].index(column.name)


def _exists(cur: Any, schema: str, table: str) -> bool:
    found = cur.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    ).fetchall()
    return bool(found and found[0][0])
