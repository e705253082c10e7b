"""Backend SQL dialects (placeholder until the renderers land)."""

from tap_service.adql.checked import CheckedQuery


def to_sql(checked: CheckedQuery, dialect: str) -> str:
    raise NotImplementedError
