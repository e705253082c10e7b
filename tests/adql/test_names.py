"""Delimited forms of catalog names, as TAP_SCHEMA publishes them."""

from __future__ import annotations

import pytest

from tap_service.adql import parse
from tap_service.adql.names import adql_name, bare_name, needs_quotes


@pytest.mark.parametrize(
    ("name", "written"),
    [
        ("size", '"size"'),
        ("objectId", "objectId"),
        ("2mass", '"2mass"'),
        ('a"b', '"a""b"'),
        ("SELECT", '"SELECT"'),
        ("g_psfFlux", "g_psfFlux"),
    ],
)
def test_written_form_round_trips(name: str, written: str) -> None:
    assert adql_name(name) == written
    assert bare_name(written) == name
    assert needs_quotes(name) == (written != name)


@pytest.mark.parametrize("name", ["size", "objectId", "a b", 'q"uote', "value"])
def test_written_form_parses_as_that_column(name: str) -> None:
    query = parse(f"SELECT {adql_name(name)} FROM t")
    item = query.body.items[0]  # type: ignore[union-attr]
    assert item.expr.name.name == name  # type: ignore[union-attr]
