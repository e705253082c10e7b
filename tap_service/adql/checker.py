"""Tree to checked query (placeholder until the checker lands)."""

from tap_service.adql.ast import Query
from tap_service.adql.catalog import Catalog
from tap_service.adql.checked import CheckedQuery


def check(query: Query, catalog: Catalog | None, *, text: str | None = None) -> CheckedQuery:
    raise NotImplementedError
