"""The token store: who a token belongs to, what it may do, until when.

A token reads ``tap-KEY.SECRET``.  KEY (public, 16 hex digits) finds the row; only the SHA-256
digest of SECRET is stored, and the digest of a presented secret is compared with
``hmac.compare_digest`` (constant time).  SECRET holds 128 random bits, so a plain digest is
enough: there is nothing to guess from it.  Tokens and secrets never reach the log; only keys do.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tap_service.storage.jobs import make_engine

PREFIX = "tap-"

metadata = sa.MetaData()
token_table = sa.Table(
    "tap_auth_token",
    metadata,
    sa.Column("token_key", sa.String(32), primary_key=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("username", sa.String(255), nullable=False),
    sa.Column("scopes", sa.String(1024), nullable=False),
    sa.Column("created", sa.DateTime(), nullable=False),
    sa.Column("expires", sa.DateTime()),
    sa.Column("note", sa.String(255)),
)
_C = token_table.c


@dataclass(frozen=True)
class TokenInfo:
    key: str
    username: str
    scopes: tuple[str, ...]
    created: datetime
    expires: datetime | None
    note: str | None = None

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires is not None and self.expires <= (now or datetime.now(UTC))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """(key, secret) of a well-formed token, else None."""
    if not token.startswith(PREFIX):
        return None
    key, dot, secret = token[len(PREFIX) :].partition(".")
    if not dot or len(key) != 16 or not secret:
        return None
    return key, secret


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _naive(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


class TokenStore:
    """Hashed tokens in a SQL table (SQLite under TAP_DATA_DIR, or any SQLAlchemy database)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        metadata.create_all(engine)

    @classmethod
    def from_url(cls, url: str) -> TokenStore:
        return cls(make_engine(url, "token database"))

    def close(self) -> None:
        self._engine.dispose()

    def create(
        self,
        username: str,
        scopes: list[str] | tuple[str, ...],
        *,
        lifetime: timedelta | None = None,
        note: str | None = None,
    ) -> tuple[str, TokenInfo]:
        """A new token: (the token text, shown once; what the store keeps about it)."""
        if not username or any(c.isspace() for c in username):
            raise ValueError("The user name must be non-empty and hold no spaces")
        key = secrets.token_hex(8)
        secret = secrets.token_urlsafe(16)
        now = datetime.now(UTC).replace(microsecond=0)
        info = TokenInfo(
            key=key,
            username=username,
            scopes=tuple(sorted(set(scopes))),
            created=now,
            expires=now + lifetime if lifetime is not None else None,
            note=note,
        )
        with self._engine.begin() as con:
            con.execute(
                token_table.insert().values(
                    token_key=key,
                    secret_hash=_digest(secret),
                    username=username,
                    scopes=" ".join(info.scopes),
                    created=_naive(info.created),
                    expires=_naive(info.expires),
                    note=note,
                )
            )
        return f"{PREFIX}{key}.{secret}", info

    def verify(self, token: str) -> TokenInfo | None:
        """What a presented token is, if it is one of ours and has not expired; else None."""
        parts = split_token(token)
        if parts is None:
            return None
        key, secret = parts
        with self._engine.connect() as con:
            row = con.execute(sa.select(token_table).where(_C.token_key == key)).mappings().first()
        if row is None:
            # Spend the same work as a real comparison, so timing says nothing about keys.
            hmac.compare_digest(_digest(secret), "0" * 64)
            return None
        if not hmac.compare_digest(_digest(secret), str(row["secret_hash"])):
            return None
        info = self._info(row)
        return None if info.expired() else info

    def list_tokens(self, username: str | None = None) -> list[TokenInfo]:
        query = sa.select(token_table).order_by(_C.created, _C.token_key)
        if username is not None:
            query = query.where(_C.username == username)
        with self._engine.connect() as con:
            return [self._info(row) for row in con.execute(query).mappings()]

    def revoke(self, key_or_token: str) -> bool:
        """Delete a token by its key (or by the whole token text); False if there was none."""
        parts = split_token(key_or_token)
        key = parts[0] if parts else key_or_token
        with self._engine.begin() as con:
            return con.execute(token_table.delete().where(_C.token_key == key)).rowcount > 0

    @staticmethod
    def _info(row: sa.RowMapping) -> TokenInfo:
        created = _aware(row["created"])
        assert created is not None
        return TokenInfo(
            key=row["token_key"],
            username=row["username"],
            scopes=tuple(str(row["scopes"]).split()),
            created=created,
            expires=_aware(row["expires"]),
            note=row["note"],
        )
