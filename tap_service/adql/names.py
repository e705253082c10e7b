"""How a catalog name is written in ADQL, and back.

TAP 1.1 asks TAP_SCHEMA to hold a column or table name that is not a valid regular identifier
(an ADQL reserved word such as ``size``, or a name with odd characters) in its delimited form,
``"size"``, so that a client can paste it into a query.  The service keeps the bare name for
resolution and SQL, and writes the delimited form wherever it publishes names.
"""

from __future__ import annotations

import re

from tap_service.adql.parser import RESERVED_WORDS

_REGULAR = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def needs_quotes(name: str) -> bool:
    """Whether ``name`` can only be written as a delimited identifier."""
    return not _REGULAR.match(name) or name.upper() in RESERVED_WORDS


def adql_name(name: str) -> str:
    """``name`` as a user must write it in ADQL: delimited only when it has to be."""
    if needs_quotes(name):
        return '"' + name.replace('"', '""') + '"'
    return name


def bare_name(written: str) -> str:
    """The name a possibly delimited identifier designates (``"size"`` → ``size``)."""
    if len(written) >= 2 and written.startswith('"') and written.endswith('"'):
        return written[1:-1].replace('""', '"')
    return written
