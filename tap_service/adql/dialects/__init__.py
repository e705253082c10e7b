"""Backend SQL dialects: ``qserv`` (MySQL protocol + scisql UDFs) and ``embedded`` (DuckDB).

``to_sql`` applies the dialect-neutral rewrites (constant folding, IN_UNIT) and renders; it
raises ``AdqlUnsupportedError`` for valid ADQL the chosen backend cannot run.
"""

from collections.abc import Iterable

from tap_service.adql.catalog import UserFunction
from tap_service.adql.checked import CheckedQuery
from tap_service.adql.dialects.base import Renderer
from tap_service.adql.dialects.embedded import EmbeddedRenderer, setup_statements
from tap_service.adql.dialects.qserv import QservRenderer
from tap_service.adql.errors import AdqlUnsupportedError
from tap_service.adql.rewrite import rewrite

DIALECTS: dict[str, type[Renderer]] = {"qserv": QservRenderer, "embedded": EmbeddedRenderer}


def to_sql(checked: CheckedQuery, dialect: str, *, functions: Iterable[UserFunction] = ()) -> str:
    """One SQL statement for ``dialect``.

    ``functions`` are the catalog's user-defined functions: the tree names a UDF but does not
    carry its declaration, and ``UserFunction.sql[dialect]`` gives the backend's name for it.
    """
    renderer = DIALECTS.get(dialect)
    if renderer is None:
        raise AdqlUnsupportedError(f"unknown SQL dialect {dialect!r}")
    return renderer(rewrite(checked), functions).render()


__all__ = ["DIALECTS", "setup_statements", "to_sql"]
