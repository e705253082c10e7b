"""RESPONSEFORMAT resolution, media types, the /capabilities list, Field validation."""

from __future__ import annotations

import pytest

from tap_service.votable import (
    Field,
    FieldError,
    UnknownFormatError,
    make_writer,
    resolve_format,
    supported_formats,
)

FIELDS = [Field(name="a", datatype="long")]

CASES = [
    (None, "BINARY2", "application/x-votable+xml;serialization=BINARY2"),
    ("", "BINARY2", "application/x-votable+xml;serialization=BINARY2"),
    ("votable", "BINARY2", "application/x-votable+xml;serialization=BINARY2"),
    ("VOTable", "BINARY2", "application/x-votable+xml;serialization=BINARY2"),
    ("application/x-votable+xml", "BINARY2", "application/x-votable+xml;serialization=BINARY2"),
    ("text/xml", "BINARY2", "application/x-votable+xml;serialization=BINARY2"),
    ("votable/b2", "BINARY2", "application/x-votable+xml;serialization=BINARY2"),
    (
        "application/x-votable+xml;serialization=BINARY2",
        "BINARY2",
        "application/x-votable+xml;serialization=BINARY2",
    ),
    (
        "Application/X-VOTable+XML; Serialization = binary2",
        "BINARY2",
        "application/x-votable+xml;serialization=BINARY2",
    ),
    ("votable/td", "TABLEDATA", "application/x-votable+xml;serialization=TABLEDATA"),
    ("VOTABLE/TD", "TABLEDATA", "application/x-votable+xml;serialization=TABLEDATA"),
    (
        "application/x-votable+xml;serialization=TABLEDATA",
        "TABLEDATA",
        "application/x-votable+xml;serialization=TABLEDATA",
    ),
    (
        'application/x-votable+xml; serialization="tabledata"',
        "TABLEDATA",
        "application/x-votable+xml;serialization=TABLEDATA",
    ),
    ("votable/b", "BINARY", "application/x-votable+xml;serialization=BINARY"),
    (
        "application/x-votable+xml;serialization=BINARY",
        "BINARY",
        "application/x-votable+xml;serialization=BINARY",
    ),
    ("csv", "CSV", "text/csv;header=present"),
    ("text/csv", "CSV", "text/csv;header=present"),
    ("text/csv;header=present", "CSV", "text/csv;header=present"),
    ("text/csv; header=absent", "CSV", "text/csv;header=absent"),
    ("tsv", "TSV", "text/tab-separated-values"),
    ("TEXT/TAB-SEPARATED-VALUES", "TSV", "text/tab-separated-values"),
    ("parquet", "PARQUET", "application/vnd.apache.parquet"),
    ("application/vnd.apache.parquet", "PARQUET", "application/vnd.apache.parquet"),
    ("Application/VND.Apache.Parquet", "PARQUET", "application/vnd.apache.parquet"),
]


@pytest.mark.parametrize(("response_format", "kind", "media_type"), CASES)
def test_accepted_formats(response_format: str | None, kind: str, media_type: str) -> None:
    assert resolve_format(response_format).kind == kind
    assert make_writer(response_format, FIELDS).media_type == media_type


@pytest.mark.parametrize(
    "response_format",
    [
        "fits",
        "application/fits",
        "votable/fits",
        "application/x-votable+xml;serialization=FITS",
        "text/csv;header=maybe",
        "json",
        "text/html",
        "votable/td;x=1",
    ],
)
def test_unknown_formats(response_format: str) -> None:
    with pytest.raises(UnknownFormatError) as caught:
        make_writer(response_format, FIELDS)
    error = caught.value
    assert error.response_format == response_format
    assert "votable" in error.accepted
    assert "csv" in error.accepted
    assert response_format in str(error)
    assert isinstance(error, ValueError)


def test_supported_formats_are_all_accepted() -> None:
    formats = supported_formats()
    assert formats[0].serialization == "BINARY2"  # the default comes first
    assert {f.serialization for f in formats} == {"BINARY2", "TABLEDATA", "BINARY", None}
    for fmt in formats:
        # TAPRegExt: the service must accept the advertised MIME type and every alias
        writer = make_writer(fmt.mime, FIELDS)
        assert writer.media_type == fmt.mime
        for alias in fmt.aliases:
            assert make_writer(alias, FIELDS).media_type == fmt.mime
    ivo_ids = {f.ivo_id for f in formats if f.ivo_id}
    assert "ivo://ivoa.net/std/TAPRegExt#output-votable-binary2" in ivo_ids
    assert "ivo://ivoa.net/std/TAPRegExt#output-votable-td" in ivo_ids


@pytest.mark.parametrize(
    "field",
    [
        Field(name="x", datatype="string"),
        Field(name="x", datatype="doubleComplex"),
        Field(name="x", datatype="char", arraysize="abc"),
        Field(name="x", datatype="boolean", arraysize="*"),
    ],
)
def test_unsupported_fields_fail_early(field: Field) -> None:
    with pytest.raises(FieldError, match=r"'x'|arraysize"):
        make_writer(None, [field])
