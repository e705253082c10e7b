"""What a query will cost on Qserv, computed before it runs (``explain``, the sync guard).

From the checked tree and the partitioning configuration (``QservConfig.partitioning``):

* **spatial**: Qserv narrows the chunks it dispatches to when a ``scisql_s2PtIn*(...) = 1``
  with constant arguments stands in the top-level AND of WHERE.  The Qserv dialect writes the
  first ``CONTAINS(POINT(col, col), <constant CIRCLE / BOX / convex POLYGON>) = 1`` conjunct that
  way (``dialects/qserv.py``); the same rule is applied here, and the region's chunks are
  counted with ``adql.chunks`` in each partitioned table's own scheme.
* **secondary index**: otherwise, ``key = constant`` or ``key IN (constants)`` in the top-level
  AND on a configured ``director_key`` is resolved through Qserv's secondary index: at most one
  chunk per distinct value.
* **full scan**: otherwise every chunk of every partitioned table is scanned.
* **none**: no partitioned table (replicated tables, TAP_SCHEMA, the embedded backend).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from tap_service.adql import ast
from tap_service.adql.catalog import TableInfo
from tap_service.adql.checked import CheckedQuery
from tap_service.adql.chunks import ChunkScheme, scheme
from tap_service.adql.dialects.base import const_circle, const_polygon, predicate_parts
from tap_service.adql.rewrite import const_value, rewrite
from tap_service.config import PartitionedTableConfig

Restriction = Literal["spatial", "secondary_index", "full_scan", "none"]
_Counter = Callable[[ChunkScheme], int]
_RegionChunks = Callable[[ChunkScheme], frozenset[int]]


@dataclass(frozen=True, kw_only=True)
class TableScan:
    """One table of the query and what Qserv will read of it."""

    table: str
    kind: Literal["director", "child", "replicated"]
    chunks: int
    total_chunks: int

    def to_dict(self) -> dict[str, object]:
        return {
            "table": self.table,
            "kind": self.kind,
            "chunks": self.chunks,
            "total_chunks": self.total_chunks,
        }


@dataclass(frozen=True, kw_only=True)
class Estimate:
    restriction: Restriction
    chunks: int
    total_chunks: int
    tables: tuple[TableScan, ...]
    region: str | None = None
    ids: int | None = None

    @property
    def largest(self) -> TableScan | None:
        scans = [t for t in self.tables if t.kind != "replicated"]
        return max(scans, key=lambda t: t.chunks) if scans else None

    def summary(self) -> str:
        """One line, for an INFO element and logs."""
        if self.restriction == "none":
            return "no partitioned table: nothing is scanned chunk by chunk"
        how = {
            "spatial": f"restricted spatially by {self.region}",
            "secondary_index": f"restricted by the director key ({self.ids} value(s), "
            "secondary index)",
            "full_scan": "full scan (no restriction Qserv can use)",
        }[self.restriction]
        names = ", ".join(t.table for t in self.tables if t.kind != "replicated")
        return f"{how}: {self.chunks} of {self.total_chunks} chunks of {names}"

    def to_dict(self) -> dict[str, object]:
        return {
            "restriction": self.restriction,
            "chunks": self.chunks,
            "total_chunks": self.total_chunks,
            "region": self.region,
            "ids": self.ids,
            "tables": [t.to_dict() for t in self.tables],
            "summary": self.summary(),
        }


def estimate(checked: CheckedQuery, partitioning: Mapping[str, PartitionedTableConfig]) -> Estimate:
    """The estimate for ``checked`` under ``partitioning`` (TAP table name -> configuration)."""
    parts = {t.qualified_name: partitioning.get(t.qualified_name) for t in checked.tables}
    partitioned = {name: p for name, p in parts.items() if p is not None}
    if not partitioned:
        return Estimate(
            restriction="none",
            chunks=0,
            total_chunks=0,
            tables=tuple(
                TableScan(table=n, kind="replicated", chunks=0, total_chunks=0) for n in parts
            ),
        )
    query = rewrite(checked).query
    conjuncts = _top_conjuncts(query)
    ranges = _range_tables(query)

    region = next((r for r in map(_restrictor_region, conjuncts) if r is not None), None)
    if region is not None:
        label, chunks_of = region
        return _build(parts, "spatial", lambda s: len(chunks_of(s)), region=label)

    ids = _director_ids(conjuncts, ranges, partitioned)
    if ids is not None:
        return _build(parts, "secondary_index", lambda s: min(ids, s.total_chunks), ids=ids)
    return _build(parts, "full_scan", lambda s: s.total_chunks)


def _build(
    parts: Mapping[str, PartitionedTableConfig | None],
    restriction: Restriction,
    count: _Counter,
    *,
    region: str | None = None,
    ids: int | None = None,
) -> Estimate:
    scans = []
    for name, p in parts.items():
        if p is None:
            scans.append(TableScan(table=name, kind="replicated", chunks=0, total_chunks=0))
            continue
        s = scheme(p.num_stripes, p.num_sub_stripes_per_stripe, p.overlap)
        scans.append(
            TableScan(table=name, kind=p.kind, chunks=count(s), total_chunks=s.total_chunks)
        )
    top = max((t for t in scans if t.kind != "replicated"), key=lambda t: t.chunks)
    return Estimate(
        restriction=restriction,
        chunks=top.chunks,
        total_chunks=top.total_chunks,
        tables=tuple(scans),
        region=region,
        ids=ids,
    )


def _top_conjuncts(query: ast.Query) -> list[ast.Condition]:
    body = query.body
    if not isinstance(body, ast.SelectQuery) or body.where is None:
        return []
    out: list[ast.Condition] = []
    stack = [body.where]
    while stack:
        c = stack.pop()
        if isinstance(c, ast.And):
            stack += [c.right, c.left]
        else:
            out.append(c)
    return out


def _range_tables(query: ast.Query) -> dict[str, TableInfo]:
    out = {}
    for node in ast.walk(query):
        if isinstance(node, ast.TableRef) and node.binding and node.binding.table:
            out[node.binding.range_name] = node.binding.table
    return out


def _restrictor_region(
    c: ast.Condition,
) -> tuple[str, _RegionChunks] | None:
    """The constant region when ``c`` is the kind of conjunct Qserv restricts chunks with."""
    if not isinstance(c, ast.Comparison):
        return None
    call, positive = predicate_parts(c)
    if call is None or not positive or len(call.args) != 2:
        return None
    point, region = call.args
    if call.name == "INTERSECTS" and isinstance(region, ast.Point):
        point, region = region, point
    if not (
        isinstance(point, ast.Point)
        and isinstance(point.x, ast.ColumnRef)
        and isinstance(point.y, ast.ColumnRef)
    ):
        return None
    circle = const_circle(region)
    if circle is not None:
        lon, lat, r = circle
        return f"CIRCLE({lon:g}, {lat:g}, {r:g})", lambda s: s.circle_chunks(lon, lat, r)
    shape = const_polygon(region)
    if shape is None or not shape.convex:
        return None
    part = list(shape.parts[0])
    kind = "BOX" if isinstance(region, ast.Box) else "POLYGON"
    return f"{kind} of {len(part)} vertices", lambda s: s.polygon_chunks(part)


def _director_ids(
    conjuncts: list[ast.Condition],
    ranges: Mapping[str, TableInfo],
    partitioned: Mapping[str, PartitionedTableConfig],
) -> int | None:
    """Distinct constant values of the first ``key = c`` / ``key IN (...)`` on a director key."""
    for c in conjuncts:
        if isinstance(c, ast.Comparison) and c.op == "=":
            for col, other in ((c.left, c.right), (c.right, c.left)):
                if _is_key(col, ranges, partitioned) and _const(other) is not None:
                    return 1
        if isinstance(c, ast.InList) and not c.negated and _is_key(c.operand, ranges, partitioned):
            values = [_const(v) for v in c.items]
            if all(v is not None for v in values):
                return len(set(values))
    return None


def _const(e: ast.Expr) -> object | None:
    if isinstance(e, ast.StringLiteral):
        return e.value
    return const_value(e)


def _is_key(
    e: ast.Expr, ranges: Mapping[str, TableInfo], partitioned: Mapping[str, PartitionedTableConfig]
) -> bool:
    if not isinstance(e, ast.ColumnRef) or e.binding is None:
        return False
    table = ranges.get(e.binding.range_name)
    if table is None:
        return False
    p = partitioned.get(table.qualified_name)
    if p is None or p.director_key is None:
        return False
    return p.director_key.lower() in (e.binding.info.name.lower(), e.binding.column.lower())
