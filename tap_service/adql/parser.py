"""ADQL text to tree (placeholder until the grammar lands)."""

from tap_service.adql.ast import Query


def parse(text: str) -> Query:
    raise NotImplementedError
