"""Rubin's real DataLink directory (../shared/rubin-sdm/datalink, GPL-3 test data read in place)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from xml.etree import ElementTree

import pytest
from astropy.io.votable import parse

from tap_service.datalink import DatalinkConfigError, LinkRow, links_document, load_templates
from tap_service.datalink.links import error_row

RUBIN_DATALINK = Path(__file__).resolve().parents[3] / "shared" / "rubin-sdm" / "datalink"
OBJECT_KEY = "dp02_dc2_catalogs_Object_objectId"
NS = "{http://www.ivoa.net/xml/VOTable/v1.3}"


@pytest.fixture(scope="module")
def rubin() -> Path:
    assert (RUBIN_DATALINK / "datalink-manifest.json").exists(), RUBIN_DATALINK
    return RUBIN_DATALINK


def test_reads_rubin_directory_unchanged(rubin: Path) -> None:
    templates = load_templates(rubin)
    names = {d.name for d in templates.descriptors}
    # Manifest entries without a template (other releases) are skipped, not errors.
    assert names == {
        "dp02_object_to_fs_timeseries",
        "dp02_diaobject_to_dias_timeseries",
        "dp02_diaobject_to_diafs_timeseries",
        "obscore_links",
    }
    assert OBJECT_KEY in templates.needed_keys
    assert templates.minimal_columns["dp02_dc2_catalogs.ForcedSource"] == ()


def test_fill_replaces_every_placeholder_and_keeps_only_the_resource(rubin: Path) -> None:
    templates = load_templates(rubin)
    meta = templates.resource_meta("https://example.org/", {OBJECT_KEY: OBJECT_KEY}).decode()
    assert "$" not in meta
    assert "this will be dropped" not in meta
    root = ElementTree.fromstring(f"<VOTABLE>{meta}</VOTABLE>")
    (resource,) = root.findall("RESOURCE")
    assert resource.get("utype") == "adhoc:service"
    params = {p.get("name"): p for p in resource.iter("PARAM")}
    assert params["accessURL"].get("value") == "https://example.org/api/datalink/timeseries"
    assert params["id"].get("ref") == OBJECT_KEY
    assert params["table"].get("value") == "dp02_dc2_catalogs.ForcedSource"


def test_descriptors_need_all_their_columns(rubin: Path) -> None:
    templates = load_templates(rubin)
    assert templates.resource_meta("http://h", {}) == b""
    assert templates.resource_meta("http://h", {"other_key": "other_key"}) == b""


def test_fill_values_fixes_the_id_for_links(rubin: Path) -> None:
    descriptor = load_templates(rubin).descriptor("dp02_object_to_fs_timeseries")
    assert descriptor is not None
    text = descriptor.fill_values("http://h", {OBJECT_KEY: "1249537790362800610"}, "ts-1")
    resource = ElementTree.fromstring(text)
    assert resource.get("ID") == "ts-1"
    params = {p.get("name"): p for p in resource.iter("PARAM")}
    assert params["id"].get("value") == "1249537790362800610"
    assert params["id"].get("ref") is None
    defaults = descriptor.param_defaults()
    assert defaults["band"] == "all"
    assert defaults["detail"] == "principal"


def test_bad_directories_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DatalinkConfigError, match="cannot read"):
        load_templates(tmp_path)
    (tmp_path / "datalink-manifest.json").write_text(json.dumps({"x": ["bad key!"]}))
    with pytest.raises(DatalinkConfigError, match="FIELD ID"):
        load_templates(tmp_path)
    (tmp_path / "datalink-manifest.json").write_text(json.dumps({"x": ["a_b_c"]}))
    (tmp_path / "x.xml").write_text("<VOTABLE><RESOURCE>")
    with pytest.raises(DatalinkConfigError, match="well-formed"):
        load_templates(tmp_path)


def test_links_document_is_a_datalink_votable() -> None:
    rows = [
        LinkRow(
            id="1", semantics="#this", access_url="http://a?x=1&y=2", content_type="text/plain"
        ),
        LinkRow(id="1", semantics="#proc", service_def="svc"),
        error_row("2", "NotFoundFault", "no such thing"),
    ]
    document = links_document(rows)
    table = parse(io.BytesIO(document)).get_first_table().to_table()
    assert list(table.colnames[:8]) == [
        "ID",
        "access_url",
        "service_def",
        "error_message",
        "description",
        "semantics",
        "content_type",
        "content_length",
    ]
    assert next(iter(table["access_url"])) == "http://a?x=1&y=2"
    assert list(table["error_message"])[2] == "NotFoundFault: no such thing"
    root = ElementTree.fromstring(document)
    assert root.find(f"{NS}RESOURCE/{NS}INFO").get("value") == "OK"


def test_a_link_has_exactly_one_target() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        LinkRow(id="1", semantics="#this")
    with pytest.raises(ValueError, match="exactly one"):
        LinkRow(id="1", semantics="#this", access_url="a", service_def="b")
