"""TAP_SCHEMA 1.1 rows from a Felis schema, and TAP_SCHEMA's description of itself.

The rows follow what Felis' own TAP_SCHEMA loader writes (``table_name`` is ``schema.table``,
``indexed`` marks one-column primary keys and indexes, ``size`` is the number in the arraysize,
``table_index`` defaults to 0, ``schema_index`` to 0 unless ``tap:schema_index`` says otherwise,
a foreign key becomes one ``keys`` row named after the constraint plus one ``key_columns`` row
per column pair), except that ``column_index`` is filled in for tables that declare none (see
``_column_index``).  Booleans are 0/1 integers because TAP 1.1 types those columns as ``int``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tap_service.adql.names import adql_name
from tap_service.felis.model import FelisColumn, FelisSchema, FelisTable, parse_felis

TAP_SCHEMA_NAME = "TAP_SCHEMA"


@dataclass(frozen=True, kw_only=True)
class SchemaRow:
    schema_name: str
    utype: str | None
    description: str | None
    schema_index: int | None


@dataclass(frozen=True, kw_only=True)
class TableRow:
    schema_name: str
    table_name: str
    table_type: str
    utype: str | None
    description: str | None
    table_index: int | None


@dataclass(frozen=True, kw_only=True)
class ColumnRow:
    table_name: str
    column_name: str
    datatype: str
    arraysize: str | None
    xtype: str | None
    size: int | None
    description: str | None
    utype: str | None
    unit: str | None
    ucd: str | None
    indexed: int
    principal: int
    std: int
    column_index: int | None


@dataclass(frozen=True, kw_only=True)
class KeyRow:
    key_id: str
    from_table: str
    target_table: str
    utype: str | None
    description: str | None


@dataclass(frozen=True, kw_only=True)
class KeyColumnRow:
    key_id: str
    from_column: str
    target_column: str


@dataclass(frozen=True, kw_only=True)
class TapSchemaRows:
    """Everything one Felis schema contributes to the five TAP_SCHEMA tables."""

    schema: SchemaRow
    tables: tuple[TableRow, ...]
    columns: tuple[ColumnRow, ...]
    keys: tuple[KeyRow, ...]
    key_columns: tuple[KeyColumnRow, ...]


def tap_schema_rows(schema: FelisSchema, *, schema_index: int | None = None) -> TapSchemaRows:
    """The TAP_SCHEMA rows describing ``schema``.

    A foreign key whose target table is not part of ``schema`` (for instance after
    ``FelisSchema.with_tables``) is left out: TAP_SCHEMA must not point at tables it lacks.
    """
    prefix = schema.name + "."
    tables = tuple(
        TableRow(
            schema_name=schema.name,
            table_name=prefix + t.name,
            table_type="table",
            utype=t.utype,
            description=t.description,
            table_index=0 if t.table_index is None else t.table_index,
        )
        for t in schema.tables
    )
    columns = tuple(
        ColumnRow(
            table_name=prefix + t.name,
            column_name=adql_name(c.name),  # TAP 1.1: reserved words delimited, "size"
            datatype=c.votable_datatype,
            arraysize=c.arraysize,
            xtype=c.xtype,
            size=c.size,
            description=c.description,
            utype=c.utype,
            unit=c.unit,
            ucd=c.ucd,
            indexed=int(t.is_indexed(c)),
            principal=int(c.principal),
            std=int(c.std),
            column_index=_column_index(t, c, position),
        )
        for t in schema.tables
        for position, c in enumerate(t.columns, start=1)
    )
    present = {t.name for t in schema.tables}
    keys: list[KeyRow] = []
    key_columns: list[KeyColumnRow] = []
    for table in schema.tables:
        for fk in table.foreign_keys:
            target_table = schema.resolve_column(fk.referenced_columns[0])[0]
            if target_table.name not in present:
                continue
            keys.append(
                KeyRow(
                    key_id=fk.name,
                    from_table=prefix + table.name,
                    target_table=prefix + target_table.name,
                    utype=fk.utype,
                    description=fk.description,
                )
            )
            for from_id, target_id in zip(fk.columns, fk.referenced_columns, strict=True):
                key_columns.append(
                    KeyColumnRow(
                        key_id=fk.name,
                        from_column=adql_name(schema.resolve_column(from_id)[1].name),
                        target_column=adql_name(schema.resolve_column(target_id)[1].name),
                    )
                )
    index = schema_index if schema_index is not None else schema.schema_index
    return TapSchemaRows(
        schema=SchemaRow(
            schema_name=schema.name,
            utype=schema.utype,
            description=schema.description,
            schema_index=0 if index is None else index,
        ),
        tables=tables,
        columns=columns,
        keys=tuple(keys),
        key_columns=tuple(key_columns),
    )


def _column_index(table: FelisTable, column: FelisColumn, position: int) -> int | None:
    """``tap:column_index``, or the document position when the table declares none at all.

    DP0.2's Object has 991 columns and no ``tap:column_index``: written as NULL, every reader
    of TAP_SCHEMA (our catalog, VOSI /tables, TOPCAT) would have to invent an order, usually
    alphabetical.  Numbering them as declared keeps the curated order; a table that declares
    indexes for some columns keeps exactly what it declared (the rest stay NULL, listed last).
    """
    if column.column_index is not None:
        return column.column_index
    if any(c.column_index is not None for c in table.columns):
        return None
    return position


def _col(
    name: str,
    datatype: str,
    description: str,
    index: int,
    *,
    length: int | None = None,
    nullable: bool = True,
) -> dict[str, object]:
    column: dict[str, object] = {
        "name": name,
        "datatype": datatype,
        "description": description,
        "nullable": nullable,
        "tap:principal": 1,
        "tap:std": 1,
        "tap:column_index": index,
    }
    if length is not None:
        column["length"] = length
    return column


_ForeignKeySpec = tuple[str, str, str, str]
_TableSpec = tuple[str, str, int, list[dict[str, object]], list[str], list[_ForeignKeySpec]]

_SELF_TABLES: list[_TableSpec] = [
    (
        "schemas",
        "description of schemas in this tableset",
        100000,
        [
            _col(
                "schema_name",
                "string",
                "schema name for reference to tap_schema.schemas",
                1,
                length=64,
                nullable=False,
            ),
            _col("utype", "string", "lists the utypes of schemas in the tableset", 2, length=512),
            _col("description", "string", "describes schemas in the tableset", 3, length=512),
            _col("schema_index", "int", "recommended sort order when listing schemas", 4),
        ],
        ["schema_name"],
        [],
    ),
    (
        "tables",
        "description of tables in this tableset",
        101000,
        [
            _col(
                "schema_name",
                "string",
                "the schema this table belongs to",
                1,
                length=64,
                nullable=False,
            ),
            _col(
                "table_name",
                "string",
                "the fully qualified table name",
                2,
                length=128,
                nullable=False,
            ),
            _col("table_type", "string", "one of: table view", 3, length=8, nullable=False),
            _col("utype", "string", "lists the utype of tables in the tableset", 4, length=512),
            _col("description", "string", "describes tables in the tableset", 5, length=512),
            _col("table_index", "int", "recommended sort order when listing tables", 6),
        ],
        ["table_name"],
        [("k1", "schema_name", "schemas", "schema_name")],
    ),
    (
        "columns",
        "description of columns in this tableset",
        102000,
        [
            _col(
                "table_name",
                "string",
                "the table this column belongs to",
                1,
                length=128,
                nullable=False,
            ),
            _col("column_name", "string", "the column name", 2, length=64, nullable=False),
            _col(
                "datatype",
                "string",
                "lists the ADQL datatype of columns in the tableset",
                3,
                length=64,
                nullable=False,
            ),
            _col(
                "arraysize",
                "string",
                "lists the size of variable-length columns in the tableset",
                4,
                length=16,
            ),
            _col("xtype", "string", "a DALI or custom extended type annotation", 5, length=64),
            _col("size", "int", "deprecated: use arraysize", 6),
            _col("description", "string", "describes the columns in the tableset", 7, length=512),
            _col("utype", "string", "lists the utypes of columns in the tableset", 8, length=512),
            _col(
                "unit",
                "string",
                "lists the unit used for column values in the tableset",
                9,
                length=64,
            ),
            _col("ucd", "string", "lists the UCDs of columns in the tableset", 10, length=64),
            _col("indexed", "int", "an indexed column; 1 means 1, 0 means 0", 11, nullable=False),
            _col(
                "principal", "int", "a principal column; 1 means 1, 0 means 0", 12, nullable=False
            ),
            _col("std", "int", "a standard column; 1 means 1, 0 means 0", 13, nullable=False),
            _col(
                "column_index", "int", "recommended sort order when listing columns of a table", 14
            ),
        ],
        ["table_name", "column_name"],
        [("k2", "table_name", "tables", "table_name")],
    ),
    (
        "keys",
        "description of foreign keys in this tableset",
        103000,
        [
            _col(
                "key_id",
                "string",
                "unique key to join to tap_schema.key_columns",
                1,
                length=64,
                nullable=False,
            ),
            _col(
                "from_table",
                "string",
                "the table with the foreign key",
                2,
                length=128,
                nullable=False,
            ),
            _col(
                "target_table",
                "string",
                "the table with the primary key",
                3,
                length=128,
                nullable=False,
            ),
            _col("utype", "string", "lists the utype of keys in the tableset", 4, length=512),
            _col("description", "string", "describes keys in the tableset", 5, length=512),
        ],
        ["key_id"],
        [
            ("k3", "from_table", "tables", "table_name"),
            ("k4", "target_table", "tables", "table_name"),
        ],
    ),
    (
        "key_columns",
        "description of foreign key columns in this tableset",
        104000,
        [
            _col(
                "key_id", "string", "key to join to tap_schema.keys", 1, length=64, nullable=False
            ),
            _col("from_column", "string", "column in the from_table", 2, length=64, nullable=False),
            _col(
                "target_column",
                "string",
                "column in the target_table",
                3,
                length=64,
                nullable=False,
            ),
        ],
        [],
        [("k5", "key_id", "keys", "key_id")],
    ),
]


def tap_schema_schema() -> FelisSchema:
    """TAP_SCHEMA 1.1 described in Felis terms, so it is published like any other schema.

    Column names, types, sizes and descriptions are those of the TAP 1.1 recommendation
    (section 4); ``schema_index`` 100000 lists it after the science schemas.
    """
    tables: list[dict[str, object]] = []
    for name, description, table_index, columns, primary, fks in _SELF_TABLES:
        cols = [{**c, "@id": f"#{name}.{c['name']}"} for c in columns]
        table: dict[str, object] = {
            "name": name,
            "@id": f"#{name}",
            "description": description,
            "tap:table_index": table_index,
            "columns": cols,
        }
        if len(primary) == 1:
            table["primaryKey"] = f"#{name}.{primary[0]}"
        elif primary:
            table["primaryKey"] = [f"#{name}.{p}" for p in primary]
        if fks:
            table["constraints"] = [
                {
                    "name": key_id,
                    "@type": "ForeignKey",
                    "columns": [f"#{name}.{column}"],
                    "referencedColumns": [f"#{target}.{target_column}"],
                }
                for key_id, column, target, target_column in fks
            ]
        tables.append(table)
    return parse_felis(
        {
            "name": TAP_SCHEMA_NAME,
            "@id": "#TAP_SCHEMA",
            "description": "A TAP-standard-mandated schema to describe tablesets in a TAP 1.1 "
            "service",
            "tap:schema_index": 100000,
            "tables": tables,
        }
    )
