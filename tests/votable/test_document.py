"""DALI error documents and the XML helpers, read back by astropy and pyvo."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
from astropy.io.votable import parse
from pyvo.dal import DALResults
from pyvo.dal.exceptions import DALQueryError

from tap_service.votable import Info, error_document
from tap_service.votable.document import xml_attr, xml_text

NS = "{http://www.ivoa.net/xml/VOTable/v1.3}"


def test_error_document_structure() -> None:
    document = error_document("Table 'foo' not found", infos=[Info("QUERY", "SELECT * FROM foo")])
    root = ET.fromstring(document)
    assert root.get("version") == "1.4"
    resource = root.find(f"{NS}RESOURCE")
    assert resource is not None
    assert resource.get("type") == "results"
    infos = resource.findall(f"{NS}INFO")
    assert [(i.get("name"), i.get("value"), i.text) for i in infos] == [
        ("QUERY_STATUS", "ERROR", "Table 'foo' not found"),
        ("QUERY", "SELECT * FROM foo", None),
    ]
    assert resource.find(f"{NS}TABLE") is None


def test_error_document_parsed_by_astropy() -> None:
    votable = parse(io.BytesIO(error_document("boom")), verify="exception")
    info = votable.resources[0].infos[0]
    assert (info.name, info.value, info.content) == ("QUERY_STATUS", "ERROR", "boom")


@pytest.mark.parametrize(
    "message",
    [
        "syntax error at line 1, column 8: unexpected 'FROM'",
        "values <1> & \"two\" are 'wrong'",
        "multi\nline\tmessage ünïcödé 😀",
    ],
)
def test_error_document_raises_in_pyvo(message: str) -> None:
    votable = parse(io.BytesIO(error_document(message)))
    with pytest.raises(DALQueryError) as caught:
        DALResults(votable, url="http://example.org/tap/sync")
    assert caught.value.reason == message
    assert str(caught.value) == message


def test_error_message_with_illegal_characters() -> None:
    document = error_document("bad \x00 byte \x1b")
    votable = parse(io.BytesIO(document), verify="exception")
    assert votable.resources[0].infos[0].content == "bad \ufffd byte \ufffd"


def test_escaping_helpers() -> None:
    assert xml_text("<a> & b") == "&lt;a&gt; &amp; b"
    assert xml_attr('say "x"\n\tnext\r') == "say &quot;x&quot;&#10;&#9;next&#13;"
    assert xml_text("\ud800 lone surrogate") == "\ufffd lone surrogate"
