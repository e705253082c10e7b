"""Configuration: environment, file, and documentation stay in step."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tap_service.config import Config

REPO = Path(__file__).resolve().parents[1]


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file = tmp_path / "tap.yaml"
    config_file.write_text("port: 9001\nmaxrec_default: 5\nqserv:\n  url: mysql://czar:4040/\n")
    monkeypatch.setenv("TAP_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("TAP_MAXREC_DEFAULT", "7")
    config = Config()
    assert config.port == 9001
    assert config.maxrec_default == 7
    assert config.qserv.url == "mysql://czar:4040/"
    assert config.data_dir == Path("data")


def test_nested_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAP_QSERV__TAP_SCHEMA_URL", "mysql+pymysql://u@h/ts")
    monkeypatch.setenv("TAP_DATA_DIR", "/tmp/x")
    config = Config()
    assert config.qserv.tap_schema_url == "mysql+pymysql://u@h/ts"
    assert config.catalog_path == Path("/tmp/x/catalog.duckdb")


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAP_MAXREC_LIMIT", "-1")
    with pytest.raises(ValueError, match="maxrec_limit"):
        Config()


def test_settings_table_is_current() -> None:
    """docs/configuration.md's table is generated from Config: regenerate, compare."""
    sys.path.insert(0, str(REPO / "tools"))
    import config_docs

    text = (REPO / "docs" / "configuration.md").read_text()
    assert config_docs.render(text) == text, "run: python tools/config_docs.py"
    assert "`TAP_QSERV__URL`" in text
    assert "`TAP_DATA_DIR`" in text
