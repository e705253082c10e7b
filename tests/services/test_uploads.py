"""UPLOAD parameter parsing, the Qserv refusal, URL checks and the stored (Parquet) form."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tap_service.config import Config
from tap_service.exceptions import UploadError, UsageError
from tap_service.services.uploads import Upload, UploadService, parse_upload
from tap_service.services.vosi import capabilities_document
from tap_service.storage.fetch import check_url
from tap_service.votable import Field


def test_several_uploads_in_one_or_several_values() -> None:
    specs = parse_upload(["a,param:x;b,https://example.org/t.vot", "c,param:y"], max_tables=8)
    assert [(s.name, s.source, s.part) for s in specs] == [
        ("a", "param:x", "x"),
        ("b", "https://example.org/t.vot", None),
        ("c", "param:y", "y"),
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a", "must be name,param:part or name,URL"),
        ("a b,param:x", "not a regular ADQL identifier"),
        ('"a",param:x', "not a regular ADQL identifier"),
        ("_a,param:x", "not a regular ADQL identifier"),
        ("a,param:x;A,param:y", "given twice"),
        ("a,param:", "needs the name of a request part"),
        ("a,ftp://example.org/t", "neither param"),
        ("a,param:x;b,param:y;c,param:z", "at most 2"),
    ],
)
def test_bad_upload_values(value: str, message: str) -> None:
    with pytest.raises(UploadError, match=message):
        parse_upload([value], max_tables=2)


def test_qserv_backend_refuses_uploads_and_does_not_declare_them() -> None:
    config = Config(backend="qserv")
    with pytest.raises(UsageError, match="TAP_UPLOAD is not available on the Qserv backend"):
        UploadService(config).resolve(["t,param:x"], {"x": io.BytesIO(b"")})
    assert "uploadMethod" not in capabilities_document(config, "http://x/tap")
    embedded = capabilities_document(Config(), "http://x/tap")
    assert "TAPRegExt#upload-inline" in embedded
    assert '<uploadLimit><default unit="byte">33554432</default>' in embedded


def test_loopback_and_private_hosts_are_refused_unless_allowed() -> None:
    for url in ("http://127.0.0.1/t.vot", "http://10.1.2.3/t.vot", "http://[::1]/x"):
        with pytest.raises(UploadError, match="internal address"):
            check_url(url, allow_private=False)
        check_url(url, allow_private=True)
    with pytest.raises(UploadError, match="Only http and https"):
        check_url("file:///etc/passwd", allow_private=True)


def test_stored_form_keeps_field_metadata_through_parquet() -> None:
    upload = Upload(
        name="t",
        fields=(
            Field(name="ra", datatype="double", unit="deg", ucd="pos.eq.ra"),
            Field(name="pos", datatype="double", arraysize="2", xtype="point"),
        ),
        table=pa.table({"c0": [1.0], "c1": [[1.0, 2.0]]}),
    )
    buffer = io.BytesIO()
    pq.write_table(upload.stored(), buffer)
    back = Upload.from_stored("t", pq.read_table(io.BytesIO(buffer.getvalue())))
    assert back.fields == upload.fields
    assert back.table.to_pydict() == upload.table.to_pydict()
    info = back.table_info()
    assert info.qualified_name == "TAP_UPLOAD.t"
    assert info.is_upload
    assert [(c.name, c.sql_name, c.xtype) for c in info.columns] == [
        ("ra", "c0", None),
        ("pos", "c1", "point"),
    ]
