"""`tap-service token create | list | revoke`, as an operator runs them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tap_service.cli import main
from tap_service.config import Config
from tap_service.factory import Factory


def test_create_list_revoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TAP_DATA_DIR", str(tmp_path))
    assert main(["token", "create", "--user", "alice", "--days", "2", "--note", "laptop"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"tap-[0-9a-f]{16}\.[A-Za-z0-9_-]+", token)
    key = token[4:20]
    assert (tmp_path / "tokens.sqlite3").exists()
    info = Factory(Config(data_dir=tmp_path)).token_store.verify(token)
    assert info is not None
    assert info.username == "alice"
    assert info.scopes == ("read:tap",)
    assert info.expires is not None

    assert main(["token", "create", "--user", "bob", "--scope", "read:tap", "--scope", "x"]) == 0
    capsys.readouterr()
    assert main(["token", "list"]) == 0
    listing = capsys.readouterr().out
    assert key in listing
    assert "laptop" in listing
    assert "read:tap,x" in listing
    assert token[21:] not in listing  # never the secret
    assert main(["token", "list", "--user", "bob"]) == 0
    assert "alice" not in capsys.readouterr().out

    assert main(["token", "revoke", key]) == 0
    assert main(["token", "revoke", key]) == 1
    assert "no token" in capsys.readouterr().err
    assert Factory(Config(data_dir=tmp_path)).token_store.verify(token) is None
    assert main(["token", "create", "--user", "a b"]) == 1
