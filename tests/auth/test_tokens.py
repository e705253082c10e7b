"""The token store and credential parsing: hashed storage, expiry, revocation, header forms."""

from __future__ import annotations

import base64
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from tap_service.config import AuthConfig
from tap_service.exceptions import AuthenticationError, PermissionDeniedError
from tap_service.services.auth import AuthService, token_from_authorization
from tap_service.storage.jobs import sqlite_url
from tap_service.storage.tokens import TokenStore
from tests.fixtures.services import mariadb_jobs_url


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore.from_url(sqlite_url(tmp_path / "tokens.sqlite3"))


def test_the_store_works_on_mariadb_as_in_production() -> None:
    # Fails (never skips) naming the start command when MariaDB is not running.
    mariadb = TokenStore.from_url(mariadb_jobs_url("tap_test_tokens"))
    try:
        token, info = mariadb.create("alice", ["read:tap"], lifetime=timedelta(days=1))
        found = mariadb.verify(token)
        assert found is not None
        assert found.username == "alice"
        assert found.expires == info.expires
        assert mariadb.verify(token + "x") is None
        assert mariadb.revoke(info.key)
        assert mariadb.verify(token) is None
    finally:
        mariadb.close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_created_token_verifies_and_only_its_hash_is_stored(
    store: TokenStore, tmp_path: Path
) -> None:
    token, info = store.create("alice", ["read:tap"])
    assert token.startswith(f"tap-{info.key}.")
    found = store.verify(token)
    assert found is not None
    assert found.username == "alice"
    assert found.scopes == ("read:tap",)
    secret = token.split(".", 1)[1]
    with sqlite3.connect(tmp_path / "tokens.sqlite3") as con:
        dump = "\n".join(con.iterdump())
    assert secret not in dump
    assert token not in dump
    assert info.key in dump


def test_wrong_secret_unknown_key_and_malformed_tokens_are_refused(store: TokenStore) -> None:
    token, info = store.create("alice", ["read:tap"])
    assert store.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.verify(f"tap-{'0' * 16}.whatever") is None
    for bad in ("", "tap-", "gt-abc.def", f"tap-{info.key}", f"tap-{info.key}.", "x" * 500):
        assert store.verify(bad) is None


def test_expired_and_revoked_tokens_are_refused(store: TokenStore) -> None:
    expired, _ = store.create("alice", ["read:tap"], lifetime=timedelta(seconds=-1))
    assert store.verify(expired) is None
    token, info = store.create("bob", ["read:tap"])
    assert sorted(t.username for t in store.list_tokens()) == ["alice", "bob"]
    assert store.revoke(info.key)
    assert not store.revoke(info.key)
    assert store.verify(token) is None
    assert [t.username for t in store.list_tokens()] == ["alice"]


def test_user_names_with_spaces_are_refused(store: TokenStore) -> None:
    with pytest.raises(ValueError, match="no spaces"):
        store.create("a b", ["read:tap"])


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer tok", "tok"),
        ("bearer  tok ", "tok"),
        (basic("x-oauth-basic", "tok"), "tok"),
        (basic("anyone", "tok"), "tok"),
        (basic("tok", ""), "tok"),
        (basic("", ""), None),
        ("Basic !!!notbase64", None),
        ("Digest abc", None),
        ("Bearer", None),
        (None, None),
    ],
)
def test_token_from_authorization(header: str | None, expected: str | None) -> None:
    assert token_from_authorization(header) == expected


def test_scope_and_challenges(store: TokenStore) -> None:
    service = AuthService(AuthConfig(mode="tokens"), store)
    good, _ = store.create("alice", ["read:tap"])
    other, _ = store.create("carol", ["read:image"])
    assert service.authenticate({"authorization": f"Bearer {good}"}, None).name == "alice"
    with pytest.raises(PermissionDeniedError):
        service.authenticate({"authorization": f"Bearer {other}"}, None)
    with pytest.raises(AuthenticationError) as caught:
        service.authenticate({}, None)
    assert caught.value.challenges == ['Basic realm="tap"', 'Bearer realm="tap"']
    with pytest.raises(AuthenticationError) as caught:
        service.authenticate({"authorization": "Bearer tap-nope"}, None)
    assert 'error="invalid_token"' in caught.value.challenges[1]
    assert service.authenticate({}, None, anonymous_ok=True).name is None


def test_trusted_header_only_from_trusted_proxies() -> None:
    config = AuthConfig(mode="trusted-header", trusted_proxies=["10.0.0.0/8", "::1"])
    service = AuthService(config, None)
    headers = {"x-auth-request-user": "alice"}
    assert service.authenticate(headers, "10.1.2.3").name == "alice"
    assert service.authenticate(headers, "::1").name == "alice"
    for peer in ("192.168.1.1", "testclient", None):
        with pytest.raises(AuthenticationError):
            service.authenticate(headers, peer)
    with pytest.raises(AuthenticationError):
        service.authenticate({}, "10.1.2.3")
