"""Felis YAML as typed, immutable objects.

Felis (lsst/felis) is the schema language Rubin describes its catalogs in.  We read the subset a
TAP service needs — names, datatypes, lengths, nullability, the ``ivoa:``/``votable:``/``tap:``/
``fits:`` annotations, primary keys, indexes and foreign keys — and resolve the VOTable view of
each column (datatype, arraysize, xtype) exactly once, here, with the defaults Felis documents:

* datatype: boolean→boolean, byte→unsignedByte, short, int, long, float, double,
  char/string/text/timestamp→char, unicode→unicodeChar, binary→unsignedByte;
  ``votable:datatype`` overrides (Felis' advice for signed bytes is ``votable:datatype: short``).
* arraysize: ``votable:arraysize`` if given; else for ``length`` > 1 ``N`` for char (fixed) and
  ``N*`` for string/unicode/binary (bounded variable); else ``*`` for timestamp and text.
  An arraysize of 1 is never emitted (VOTable forbids it), so ``char`` of length 1 has none.
* xtype: ``votable:xtype`` if given, else ``timestamp`` for the timestamp datatype.
* unit: ``ivoa:unit`` or ``fits:tunit`` (Felis rejects both at once; so do we).

Annotations of other tools (``mysql:datatype``, ``postgresql:datatype``...) are accepted and
ignored; unknown plain keys are refused, since a typo there would silently lose metadata.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tap_service.adql.catalog import ColumnInfo, TableInfo

FELIS_DATATYPES: Mapping[str, str] = {
    "boolean": "boolean",
    "byte": "unsignedByte",
    "short": "short",
    "int": "int",
    "long": "long",
    "float": "float",
    "double": "double",
    "char": "char",
    "string": "char",
    "unicode": "unicodeChar",
    "text": "char",
    "binary": "unsignedByte",
    "timestamp": "char",
}
"""Felis datatype → VOTable datatype (Felis documentation, "Data Type Mappings")."""

SIZED_DATATYPES = frozenset({"char", "string", "unicode", "binary"})
"""Felis types that require ``length``."""

VOTABLE_DATATYPES = frozenset(
    {
        "boolean",
        "bit",
        "unsignedByte",
        "short",
        "int",
        "long",
        "char",
        "unicodeChar",
        "float",
        "double",
        "floatComplex",
        "doubleComplex",
    }
)

_SCHEMA_KEYS = frozenset(
    {"name", "@id", "description", "tables", "version", "votable:utype", "tap:schema_index"}
)
_TABLE_KEYS = frozenset(
    {
        "name",
        "@id",
        "description",
        "columns",
        "constraints",
        "indexes",
        "primaryKey",
        "columnGroups",
        "votable:utype",
        "tap:table_index",
    }
)
_COLUMN_KEYS = frozenset(
    {
        "name",
        "@id",
        "description",
        "datatype",
        "length",
        "precision",
        "nullable",
        "value",
        "autoincrement",
        "ivoa:ucd",
        "ivoa:unit",
        "fits:tunit",
        "tap:column_index",
        "tap:principal",
        "tap:std",
        "votable:arraysize",
        "votable:datatype",
        "votable:xtype",
        "votable:utype",
    }
)
_CONSTRAINT_KEYS = frozenset(
    {
        "name",
        "@id",
        "@type",
        "description",
        "columns",
        "referencedColumns",
        "expression",
        "deferrable",
        "initially",
        "votable:utype",
        "annotations",
    }
)
_INDEX_KEYS = frozenset({"name", "@id", "description", "columns", "expressions"})


_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader reads dp02_dc2.yaml (300 kB) several times faster than the pure one."""


class FelisError(ValueError):
    """A Felis document we cannot use; the message names the offending object."""


@dataclass(frozen=True, kw_only=True)
class FelisColumn:
    """One column, with its VOTable type already resolved."""

    name: str
    id: str
    datatype: str
    votable_datatype: str
    length: int | None = None
    precision: int | None = None
    arraysize: str | None = None
    xtype: str | None = None
    nullable: bool = True
    description: str | None = None
    ucd: str | None = None
    unit: str | None = None
    utype: str | None = None
    principal: bool = False
    std: bool = False
    column_index: int | None = None

    @property
    def size(self) -> int | None:
        """TAP 1.0 ``size`` (deprecated): the number in ``N`` or ``N*``, as Felis derives it."""
        if self.arraysize is None:
            return None
        digits = self.arraysize.removesuffix("*")
        return int(digits) if digits.isdigit() else None

    def column_info(self, *, indexed: bool = False) -> ColumnInfo:
        return ColumnInfo(
            name=self.name,
            datatype=self.votable_datatype,
            arraysize=self.arraysize,
            xtype=self.xtype,
            unit=self.unit,
            ucd=self.ucd,
            utype=self.utype,
            description=self.description,
            principal=self.principal,
            indexed=indexed,
            std=self.std,
        )


@dataclass(frozen=True, kw_only=True)
class FelisForeignKey:
    """A ForeignKey constraint: column ids on this table → column ids on the target table."""

    name: str
    id: str | None
    columns: tuple[str, ...]
    referenced_columns: tuple[str, ...]
    description: str | None = None
    utype: str | None = None


@dataclass(frozen=True, kw_only=True)
class FelisTable:
    name: str
    id: str
    columns: tuple[FelisColumn, ...]
    description: str | None = None
    utype: str | None = None
    table_index: int | None = None
    primary_key: tuple[str, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()
    foreign_keys: tuple[FelisForeignKey, ...] = ()

    def column(self, name: str) -> FelisColumn | None:
        for col in self.columns:
            if col.name == name:
                return col
        lowered = name.lower()
        for col in self.columns:
            if col.name.lower() == lowered:
                return col
        return None

    def is_indexed(self, column: FelisColumn) -> bool:
        """TAP_SCHEMA ``indexed``: a one-column primary key or a one-column index, as in Felis."""
        if self.primary_key == (column.id,):
            return True
        return any(index == (column.id,) for index in self.indexes)

    def table_info(self, schema: str) -> TableInfo:
        return TableInfo(
            schema=schema,
            name=self.name,
            columns=tuple(
                c.column_info(indexed=self.is_indexed(c)) for c in self.ordered_columns()
            ),
            description=self.description,
            utype=self.utype,
        )

    def ordered_columns(self) -> list[FelisColumn]:
        """Columns in the order TAP_SCHEMA will list them (see ``felis.tap._column_index``).

        A table without any ``tap:column_index`` keeps document order; otherwise indexed columns
        come first by index and the others follow by name, as a TAP_SCHEMA reader sorts them.
        """
        if all(c.column_index is None for c in self.columns):
            return list(self.columns)
        return sorted(
            self.columns,
            key=lambda c: (c.column_index is None, c.column_index or 0, c.name),
        )


@dataclass(frozen=True, kw_only=True)
class FelisSchema:
    name: str
    id: str
    tables: tuple[FelisTable, ...]
    description: str | None = None
    utype: str | None = None
    schema_index: int | None = None
    version: str | None = None
    _ids: Mapping[str, tuple[FelisTable, FelisColumn]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def table(self, name: str) -> FelisTable:
        for table in self.tables:
            if table.name == name:
                return table
        lowered = name.lower()
        for table in self.tables:
            if table.name.lower() == lowered:
                return table
        raise KeyError(f"schema {self.name!r} has no table {name!r}")

    def resolve_column(self, column_id: str) -> tuple[FelisTable, FelisColumn]:
        """The table and column a ``#Table.column`` reference points at."""
        try:
            return self._ids[column_id]
        except KeyError:
            raise FelisError(f"schema {self.name!r}: no column with @id {column_id!r}") from None

    def table_infos(self) -> list[TableInfo]:
        """What the ADQL checker needs, straight from the document (tests, offline tools)."""
        return [t.table_info(self.name) for t in self.ordered_tables()]

    def ordered_tables(self) -> list[FelisTable]:
        return sorted(self.tables, key=lambda t: (t.table_index is None, t.table_index or 0))

    def with_tables(self, names: set[str]) -> FelisSchema:
        """The same schema restricted to ``names`` (an ingest publishes what exists)."""
        kept = tuple(t for t in self.tables if t.name in names)
        return FelisSchema(
            name=self.name,
            id=self.id,
            tables=kept,
            description=self.description,
            utype=self.utype,
            schema_index=self.schema_index,
            version=self.version,
            # Keep every id: a kept table's foreign key may still name a dropped table's
            # column, and TAP_SCHEMA rows need to resolve it to leave the key out.
            _ids=self._ids,
        )


def load_felis(path: str | Path) -> FelisSchema:
    """Read a Felis YAML file."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as stream:
            document = yaml.load(stream, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise FelisError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return parse_felis(document)
    except FelisError as exc:
        raise FelisError(f"{path}: {exc}") from exc


def parse_felis(document: object) -> FelisSchema:
    """Build a ``FelisSchema`` from an already-parsed YAML document."""
    data = _mapping(document, "schema")
    _check_keys(data, _SCHEMA_KEYS, "schema")
    name = _required_str(data, "name", "schema")
    where = f"schema {name!r}"
    raw_tables = data.get("tables")
    if not isinstance(raw_tables, list) or not raw_tables:
        raise FelisError(f"{where}: 'tables' must be a non-empty list")
    tables = [_parse_table(item, i, where) for i, item in enumerate(raw_tables)]
    _unique([t.name for t in tables], f"{where}: table names")

    ids: dict[str, tuple[FelisTable, FelisColumn]] = {}
    for table in tables:
        for col in table.columns:
            if col.id in ids:
                raise FelisError(f"{where}: duplicate @id {col.id!r}")
            ids[col.id] = (table, col)
    version = data.get("version")
    if isinstance(version, Mapping):
        version = version.get("current")
    schema = FelisSchema(
        name=name,
        id=_opt_str(data, "@id", where) or f"#{name}",
        tables=tuple(tables),
        description=_opt_str(data, "description", where),
        utype=_opt_str(data, "votable:utype", where),
        schema_index=_opt_int(data, "tap:schema_index", where),
        version=None if version is None else str(version),
        _ids=ids,
    )
    _check_references(schema)
    return schema


def _parse_table(item: object, position: int, where: str) -> FelisTable:
    data = _mapping(item, f"{where}: tables[{position}]")
    name = _required_str(data, "name", f"{where}: tables[{position}]")
    here = f"table {name!r}"
    _check_keys(data, _TABLE_KEYS, here)
    raw_columns = data.get("columns")
    if not isinstance(raw_columns, list) or not raw_columns:
        raise FelisError(f"{here}: 'columns' must be a non-empty list")
    columns = tuple(_parse_column(c, i, name) for i, c in enumerate(raw_columns))
    _unique([c.name for c in columns], f"{here}: column names")

    primary = data.get("primaryKey")
    if primary is None:
        primary_key: tuple[str, ...] = ()
    elif isinstance(primary, str):
        primary_key = (primary,)
    elif isinstance(primary, list) and all(isinstance(p, str) for p in primary):
        primary_key = tuple(primary)
    else:
        raise FelisError(f"{here}: 'primaryKey' must be a column @id or a list of them")

    indexes: list[tuple[str, ...]] = []
    for i, raw in enumerate(data.get("indexes") or []):
        index = _mapping(raw, f"{here}: indexes[{i}]")
        _check_keys(index, _INDEX_KEYS, f"{here}: indexes[{i}]")
        cols = index.get("columns")
        if cols is not None:
            indexes.append(tuple(_str_list(cols, f"{here}: indexes[{i}].columns")))

    foreign_keys: list[FelisForeignKey] = []
    for i, raw in enumerate(data.get("constraints") or []):
        constraint = _mapping(raw, f"{here}: constraints[{i}]")
        _check_keys(constraint, _CONSTRAINT_KEYS, f"{here}: constraints[{i}]")
        kind = constraint.get("@type")
        if kind not in ("ForeignKey", "Unique", "Check"):
            raise FelisError(f"{here}: constraints[{i}] has unknown @type {kind!r}")
        if kind != "ForeignKey":
            continue
        cname = _required_str(constraint, "name", f"{here}: constraints[{i}]")
        fk_cols = _str_list(constraint.get("columns"), f"{here}: {cname}.columns")
        ref_cols = _str_list(
            constraint.get("referencedColumns"), f"{here}: {cname}.referencedColumns"
        )
        if not fk_cols or len(fk_cols) != len(ref_cols):
            raise FelisError(
                f"{here}: foreign key {cname!r} needs as many referencedColumns as columns"
            )
        foreign_keys.append(
            FelisForeignKey(
                name=cname,
                id=_opt_str(constraint, "@id", here),
                columns=tuple(fk_cols),
                referenced_columns=tuple(ref_cols),
                description=_opt_str(constraint, "description", here),
                utype=_opt_str(constraint, "votable:utype", here),
            )
        )

    return FelisTable(
        name=name,
        id=_opt_str(data, "@id", here) or f"#{name}",
        columns=columns,
        description=_opt_str(data, "description", here),
        utype=_opt_str(data, "votable:utype", here),
        table_index=_opt_int(data, "tap:table_index", here),
        primary_key=primary_key,
        indexes=tuple(indexes),
        foreign_keys=tuple(foreign_keys),
    )


def _parse_column(item: object, position: int, table: str) -> FelisColumn:
    data = _mapping(item, f"table {table!r}: columns[{position}]")
    name = _required_str(data, "name", f"table {table!r}: columns[{position}]")
    here = f"column {table}.{name}"
    _check_keys(data, _COLUMN_KEYS, here)
    datatype = _required_str(data, "datatype", here)
    if datatype not in FELIS_DATATYPES:
        raise FelisError(
            f"{here}: unknown datatype {datatype!r} (Felis has {', '.join(FELIS_DATATYPES)})"
        )
    length = _opt_int(data, "length", here)
    if length is not None and length <= 0:
        raise FelisError(f"{here}: length must be positive")
    if datatype in SIZED_DATATYPES and length is None:
        raise FelisError(f"{here}: datatype {datatype!r} needs a length")

    votable_datatype = _opt_str(data, "votable:datatype", here) or FELIS_DATATYPES[datatype]
    if votable_datatype not in VOTABLE_DATATYPES:
        raise FelisError(f"{here}: votable:datatype {votable_datatype!r} is not a VOTable type")

    raw_arraysize = data.get("votable:arraysize")
    arraysize: str | None
    if raw_arraysize is not None:
        arraysize = str(raw_arraysize)
    elif length is not None and length > 1 and datatype == "char":
        arraysize = str(length)
    elif length is not None and length > 1 and datatype in ("string", "unicode", "binary"):
        arraysize = f"{length}*"
    elif datatype in ("timestamp", "text"):
        arraysize = "*"
    else:
        arraysize = None

    xtype = _opt_str(data, "votable:xtype", here)
    if xtype is None and datatype == "timestamp":
        xtype = "timestamp"

    fits_unit = _opt_str(data, "fits:tunit", here)
    ivoa_unit = _opt_str(data, "ivoa:unit", here)
    if fits_unit and ivoa_unit:
        raise FelisError(f"{here}: has both fits:tunit and ivoa:unit")

    nullable = data.get("nullable", True)
    if not isinstance(nullable, bool):
        raise FelisError(f"{here}: nullable must be true or false")

    return FelisColumn(
        name=name,
        id=_opt_str(data, "@id", here) or f"#{table}.{name}",
        datatype=datatype,
        votable_datatype=votable_datatype,
        length=length,
        precision=_opt_int(data, "precision", here),
        arraysize=arraysize,
        xtype=xtype,
        nullable=nullable,
        description=_opt_str(data, "description", here),
        ucd=_opt_str(data, "ivoa:ucd", here),
        unit=ivoa_unit or fits_unit,
        utype=_opt_str(data, "votable:utype", here),
        principal=_flag(data, "tap:principal", here),
        std=_flag(data, "tap:std", here),
        column_index=_opt_int(data, "tap:column_index", here),
    )


def _check_references(schema: FelisSchema) -> None:
    for table in schema.tables:
        own = {c.id for c in table.columns}
        for ref in table.primary_key:
            if ref not in own:
                raise FelisError(f"table {table.name!r}: primaryKey {ref!r} is not its column")
        for index in table.indexes:
            for ref in index:
                if ref not in own:
                    raise FelisError(f"table {table.name!r}: index {ref!r} is not its column")
        for fk in table.foreign_keys:
            for ref in fk.columns:
                if ref not in own:
                    raise FelisError(
                        f"table {table.name!r}: foreign key {fk.name!r} column {ref!r} is not "
                        "one of its columns"
                    )
            targets = {schema.resolve_column(ref)[0].name for ref in fk.referenced_columns}
            if len(targets) != 1:
                raise FelisError(
                    f"table {table.name!r}: foreign key {fk.name!r} must reference one table"
                )


def iter_columns(schema: FelisSchema) -> Iterator[tuple[FelisTable, FelisColumn]]:
    for table in schema.tables:
        for col in table.columns:
            yield table, col


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FelisError(f"{where}: expected a mapping, found {type(value).__name__}")
    return value


def _check_keys(data: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in data:
        if not isinstance(key, str):
            raise FelisError(f"{where}: key {key!r} is not a string")
        if key in allowed or (":" in key and not key.startswith(("tap:", "ivoa:", "votable:"))):
            continue
        raise FelisError(f"{where}: unknown key {key!r}")


def _required_str(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FelisError(f"{where}: {key!r} is required and must be a non-empty string")
    return value.strip()


def _opt_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    """Strings with Felis' whitespace stripping; an empty annotation (``fits:tunit:``) is None."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FelisError(f"{where}: {key!r} must be a string")
    text = str(value).strip()
    return text or None


def _opt_int(data: Mapping[str, Any], key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FelisError(f"{where}: {key!r} must be an integer")
    return value


def _flag(data: Mapping[str, Any], key: str, where: str) -> bool:
    value = data.get(key, 0)
    if value is None:
        return False
    if value in (0, 1) or isinstance(value, bool):
        return bool(value)
    raise FelisError(f"{where}: {key!r} must be 0 or 1")


def _str_list(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FelisError(f"{where}: expected a list of column @ids")
    return list(value)


def _unique(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise FelisError(f"{where} must be unique; {name!r} repeats")
        seen.add(name)
