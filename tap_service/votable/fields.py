"""Column metadata for VOTable FIELD elements, shared by every output format writer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Field:
    """One output column.

    ``datatype`` is a VOTable datatype (boolean, unsignedByte, short, int, long, float, double,
    char, unicodeChar); ``arraysize`` as in VOTable (``None`` scalar, ``"*"``, ``"12"``,
    ``"3*"``, ``"2"``); ``xtype`` per DALI (timestamp, point, circle, polygon, ...).  ``id`` is
    the FIELD ID attribute (DataLink service descriptors reference it).
    """

    name: str
    datatype: str
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None
    id: str | None = None
