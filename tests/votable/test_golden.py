"""Golden documents: a small result in every format, compared after canonicalisation.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/votable/test_golden.py``
and review the diff.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tap_service.votable import Info, error_document
from tests.votable.samples import render, sample_batch

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

DESCRIPTOR = (
    b'<RESOURCE type="meta" utype="adhoc:service">\n'
    b'<PARAM name="accessURL" datatype="char" arraysize="*" value="https://example.org/links"/>\n'
    b"</RESOURCE>\n"
)


def _documents() -> dict[str, bytes]:
    infos = [Info("QUERY", "SELECT TOP 5 * FROM dp02.Object WHERE ra < 1"), Info("LANG", "ADQL")]
    documents = {}
    for name, response_format in [
        ("binary2.xml", "votable"),
        ("tabledata.xml", "votable/td"),
        ("binary.xml", "votable/b"),
        ("result.csv", "csv"),
        ("result.tsv", "tsv"),
    ]:
        documents[name] = render(
            response_format,
            [sample_batch()],
            infos=infos,
            overflow=True,
            resource_meta=DESCRIPTOR,
        )
    documents["error.xml"] = error_document("Unknown table 'dp02.Objekt'", infos=infos[:1])
    return documents


def _canonical(name: str, document: bytes) -> str:
    if name.endswith(".xml"):
        return ET.canonicalize(document.decode("utf-8"), strip_text=True)
    return document.decode("utf-8")


@pytest.mark.parametrize("name", sorted(_documents()))
def test_golden(name: str) -> None:
    document = _documents()[name]
    path = GOLDEN / name
    if UPDATE:
        path.write_bytes(document)
    assert path.exists(), f"missing {path}: run with UPDATE_GOLDEN=1"
    assert _canonical(name, document) == _canonical(name, path.read_bytes())
