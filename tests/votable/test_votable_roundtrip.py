"""Every VOTable serialization read back by astropy (strict) and pyvo, value by value."""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from pyvo.dal import TAPResults

from tap_service.votable import Field, Info
from tests.votable.samples import (
    BIG_ID,
    EXPECTED,
    N_ROWS,
    NAMES,
    parse_votable,
    render,
    sample_batch,
)

VOTABLE_FORMATS = ["votable", "votable/td", "votable/b"]
NS = "{http://www.ivoa.net/xml/VOTable/v1.3}"
STRING_COLUMNS = {"band", "label", "code", "ucode", "short_text", "obs_time"}
FLOAT_COLUMNS = {"ra", "flux"}

# BINARY (v1) has no NULL flags: integers equal to the declared VALUES null read back as NULL.
V1_LOST = {("objectId", 2), ("small", 0), ("count", 2), ("byte", 1)}


def _value(column: Any, row: int) -> Any:
    value = column[row]
    if np.ma.is_masked(value):
        return None
    if isinstance(value, np.ma.MaskedArray):
        if value.size and bool(np.all(np.ma.getmaskarray(value))):
            return None
        return [None if np.ma.is_masked(v) else float(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _matches(name: str, actual: Any, expected: Any) -> bool:
    if name in STRING_COLUMNS and expected is None:
        return actual == ""  # astropy does not mask strings; the bytes are checked elsewhere
    if name in FLOAT_COLUMNS and (expected is None or math.isnan(expected)):
        return actual is None  # astropy reports both NaN and NULL floats as masked
    if name == "flux" and actual is not None:
        return bool(np.float32(actual) == np.float32(expected))
    if name == "region" and expected is None:
        return actual in (None, [])  # astropy reads a NULL variable array as masked or empty
    return bool(actual == expected)


@pytest.mark.parametrize("response_format", VOTABLE_FORMATS)
def test_every_value_round_trips_through_astropy(response_format: str) -> None:
    document = render(response_format, [sample_batch()])
    table = parse_votable(document).get_first_table()
    assert len(table.array) == N_ROWS
    for name in NAMES:
        for row in range(N_ROWS):
            expected = EXPECTED[name][row]
            if response_format == "votable/b" and (name, row) in V1_LOST:
                expected = None
            actual = _value(table.array[name], row)
            assert _matches(name, actual, expected), (name, row, actual, expected)


@pytest.mark.parametrize("response_format", ["votable", "votable/td"])
def test_64_bit_ids_exact(response_format: str) -> None:
    rng = np.random.default_rng(42)
    ids = rng.integers(2**53, 2**63 - 1, size=1000, dtype=np.int64)
    ids[::7] += 1  # odd values: a trip through float64 would round them
    fields = [Field(name="objectId", datatype="long")]
    batch = pa.record_batch([pa.array(ids)], names=["objectId"])
    table = parse_votable(render(response_format, [batch], fields)).get_first_table().array
    assert np.array_equal(np.asarray(table["objectId"]), ids)
    assert BIG_ID % 2 == 1
    assert float(BIG_ID) != BIG_ID


@pytest.mark.parametrize("response_format", ["votable", "votable/td"])
def test_random_numbers_exact(response_format: str) -> None:
    """Doubles and floats read back bit for bit, including subnormals and extremes."""
    rng = np.random.default_rng(7)
    n = 5000
    doubles = rng.standard_normal(n) * 10.0 ** rng.integers(-300, 300, n)
    doubles[:4] = [5e-324, -0.0, 1.7976931348623157e308, 2.0**-1074 * 3]
    floats = (rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)).astype(np.float32)
    floats[:2] = [np.float32(1.4e-45), np.float32(3.4028235e38)]
    ints = rng.integers(-(2**31), 2**31 - 1, n, dtype=np.int32)
    shorts = rng.integers(-(2**15), 2**15 - 1, n, dtype=np.int16)
    fields = [
        Field(name="d", datatype="double"),
        Field(name="f", datatype="float"),
        Field(name="i", datatype="int"),
        Field(name="s", datatype="short"),
    ]
    batch = pa.record_batch(
        [pa.array(doubles), pa.array(floats), pa.array(ints), pa.array(shorts)],
        names=["d", "f", "i", "s"],
    )
    table = parse_votable(render(response_format, [batch], fields)).get_first_table().array
    assert np.asarray(table["d"]).tobytes() == doubles.tobytes()
    assert np.asarray(table["f"]).tobytes() == floats.tobytes()
    assert np.array_equal(np.asarray(table["i"]), ints)
    assert np.array_equal(np.asarray(table["s"]), shorts)


@pytest.mark.parametrize("response_format", VOTABLE_FORMATS)
def test_field_metadata(response_format: str) -> None:
    fields = [
        Field(
            name="ra",
            datatype="double",
            unit="deg",
            ucd="pos.eq.ra;meta.main",
            utype="stc:AstroCoords.Position2D.Value2.C1",
            description='Right ascension "ICRS" <J2000> & more',
            id="col_ra",
        ),
        Field(name="s_region", datatype="double", arraysize="*", xtype="polygon"),
        Field(name="t", datatype="char", arraysize="*", xtype="timestamp"),
    ]
    batch = pa.record_batch(
        [pa.array([1.0]), pa.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]), pa.array(["x"])],
        names=["ra", "s_region", "t"],
    )
    table = parse_votable(render(response_format, [batch], fields)).get_first_table()
    ra, region, t = table.fields
    assert (ra.name, ra.ID, ra.datatype, str(ra.unit), ra.ucd) == (
        "ra",
        "col_ra",
        "double",
        "deg",
        "pos.eq.ra;meta.main",
    )
    assert ra.utype == "stc:AstroCoords.Position2D.Value2.C1"
    assert ra.description == 'Right ascension "ICRS" <J2000> & more'
    assert (region.arraysize, region.xtype) == ("*", "polygon")
    assert (t.datatype, t.arraysize, t.xtype) == ("char", "*", "timestamp")
    assert table.name == "results"


@pytest.mark.parametrize("response_format", VOTABLE_FORMATS)
@pytest.mark.parametrize("batches", [[], [0]], ids=["no-batches", "empty-batch"])
def test_empty_result(response_format: str, batches: list[int]) -> None:
    empty = sample_batch().slice(0, 0)
    document = render(response_format, [empty for _ in batches])
    table = parse_votable(document).get_first_table()
    assert len(table.array) == 0
    assert [field.name for field in table.fields] == NAMES


def _resource_children(document: bytes) -> list[ET.Element]:
    root = ET.fromstring(document)
    resources = root.findall(f"{NS}RESOURCE")
    return list(resources[0])


@pytest.mark.parametrize("response_format", VOTABLE_FORMATS)
def test_overflow_info_after_table(response_format: str) -> None:
    document = render(
        response_format,
        [sample_batch()],
        overflow=True,
        infos=[Info("QUERY", "SELECT TOP 5 * FROM t")],
        infos_after=[Info("note", "done", "after the rows")],
    )
    children = _resource_children(document)
    tags = [
        (child.tag.removeprefix(NS), child.get("name"), child.get("value")) for child in children
    ]
    assert tags == [
        ("INFO", "QUERY_STATUS", "OK"),
        ("INFO", "QUERY", "SELECT TOP 5 * FROM t"),
        ("TABLE", "results", None),
        ("INFO", "QUERY_STATUS", "OVERFLOW"),
        ("INFO", "note", "done"),
    ]
    assert children[-1].text == "after the rows"
    results = TAPResults(parse_votable(document))
    assert results.query_status == "OVERFLOW"
    assert len(results) == N_ROWS


@pytest.mark.parametrize("response_format", VOTABLE_FORMATS)
def test_no_overflow_status_ok_for_pyvo(response_format: str) -> None:
    document = render(response_format, [sample_batch()])
    tags = [child.tag.removeprefix(NS) for child in _resource_children(document)]
    assert tags == ["INFO", "TABLE"]
    results = TAPResults(parse_votable(document))
    assert results.query_status == "OK"
    table = results.to_table()
    assert table["objectId"][0] == BIG_ID


@pytest.mark.parametrize("response_format", VOTABLE_FORMATS)
def test_resource_meta_follows_results(response_format: str) -> None:
    descriptor = (
        b'<RESOURCE type="meta" utype="adhoc:service" name="links">\n'
        b'<PARAM name="accessURL" datatype="char" arraysize="*" value="https://x/links"/>\n'
        b'<GROUP name="inputParams"><PARAM name="ID" datatype="char" arraysize="*" value=""'
        b' ref="objectId"/></GROUP>\n</RESOURCE>\n'
    )
    document = render(response_format, [sample_batch()], resource_meta=descriptor)
    votable = parse_votable(document)
    assert [r.type for r in votable.resources] == ["results", "meta"]
    assert votable.resources[1].params[0].value == "https://x/links"
    assert votable.get_first_table().get_field_by_id("objectId").name == "objectId"


@pytest.mark.parametrize("response_format", VOTABLE_FORMATS)
def test_xml_special_and_illegal_characters(response_format: str) -> None:
    nasty = "a&b<c>d\"e'f\x00g\x1bh\ufffei]]>j"
    fields = [Field(name="s", datatype="unicodeChar", arraysize="*", description="x\x01y")]
    batch = pa.record_batch([pa.array([nasty, "&amp;"])], names=["s"])
    query = "SELECT *\nFROM t\tWHERE s = '<&>\x02'"
    document = render(
        response_format,
        [batch],
        fields,
        infos=[Info("QUERY", query, query)],
    )
    votable = parse_votable(document)
    values = votable.get_first_table().array["s"]
    if response_format == "votable/td":
        assert values[0] == "a&b<c>d\"e'f\ufffdg\ufffdh\ufffdi]]>j"
    else:  # binary streams carry any character
        assert values[0] == nasty
    assert values[1] == "&amp;"
    info = votable.resources[0].infos[1]
    cleaned = query.replace("\x02", "\ufffd")
    assert info.value == cleaned  # newline and tab survive attribute normalisation
    assert info.content == cleaned
    assert votable.get_first_table().fields[0].description == "x\ufffdy"


def test_tabledata_null_cells_are_empty_elements() -> None:
    fields = [Field(name="a", datatype="long"), Field(name="b", datatype="char", arraysize="*")]
    batch = pa.record_batch([pa.array([None, 3]), pa.array(["x", None])], names=["a", "b"])
    document = render("votable/td", [batch], fields)
    assert b"<TR><TD/><TD>x</TD></TR>\n<TR><TD>3</TD><TD/></TR>\n" in document


def test_tabledata_text_forms() -> None:
    fields = [
        Field(name="d", datatype="double"),
        Field(name="f", datatype="float"),
        Field(name="b", datatype="boolean"),
        Field(name="p", datatype="double", arraysize="2", xtype="point"),
    ]
    batch = pa.record_batch(
        [
            pa.array([0.1, math.nan, -math.inf, 1e22]),
            pa.array(np.array([0.1, np.inf, 1.0, 3e-5], dtype=np.float32)),
            pa.array([True, False, None, True]),
            pa.array([[1.5, -2.0], [math.nan, 0.0], None, [1e-7, 2.0]]),
        ],
        names=["d", "f", "b", "p"],
    )
    rows = (
        render("votable/td", [batch], fields).split(b"<TABLEDATA>\n")[1].split(b"</TABLEDATA>")[0]
    )
    assert rows.decode().splitlines() == [
        "<TR><TD>0.1</TD><TD>0.1</TD><TD>T</TD><TD>1.5 -2</TD></TR>",
        "<TR><TD>NaN</TD><TD>+Inf</TD><TD>F</TD><TD>NaN 0</TD></TR>",
        "<TR><TD>-Inf</TD><TD>1</TD><TD/><TD>NaN NaN</TD></TR>",
        "<TR><TD>1e+22</TD><TD>0.00003</TD><TD>T</TD><TD>1e-7 2</TD></TR>",
    ]


def test_document_is_votable_1_4() -> None:
    document = render(None, [sample_batch()])
    assert document.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<VOTABLE version="1.4"')
    root = ET.fromstring(document)
    assert root.tag == f"{NS}VOTABLE"
    assert root.get("version") == "1.4"
    assert root.find(f"{NS}RESOURCE").get("type") == "results"  # type: ignore[union-attr]
    data = root.find(f"{NS}RESOURCE/{NS}TABLE/{NS}DATA")
    assert data is not None
    assert [child.tag for child in data] == [f"{NS}BINARY2"]


def test_pyvo_reads_the_default_format() -> None:
    document = render(None, [sample_batch()])
    table = TAPResults(parse_votable(io.BytesIO(document).getvalue())).to_table()
    assert list(table.colnames) == NAMES
    assert table["objectId"][0] == BIG_ID
    assert table["label"][0] == "Ærø 😀"
    assert table["obs_time"][0] == "2023-05-17T12:34:56.789"
    assert list(table["pt"][0]) == [10.0, -20.5]


def test_tabledata_keeps_carriage_returns() -> None:
    fields = [Field(name="s", datatype="char", arraysize="*")]
    batch = pa.record_batch([pa.array(["a\r\nb", "c\rd", "e\nf"])], names=["s"])
    document = render("votable/td", [batch], fields)
    assert b"<TD>a&#13;\nb</TD>" in document
    table = parse_votable(document).get_first_table().array
    assert list(table["s"]) == ["a\r\nb", "c\rd", "e\nf"]
