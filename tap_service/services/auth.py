"""Who is asking: credentials from HTTP headers become a ``User`` (or a 401/403).

Modes (``TAP_AUTH__MODE``):

* ``none``: everyone is anonymous; nothing is checked (the embedded demo).
* ``tokens``: ``Authorization: Bearer TOKEN``, or ``Basic`` with the token as the password (any
  user name, TOPCAT's ``x-oauth-basic`` included) or as the user name with an empty password.
  The token must be in the token store, unexpired, and carry ``required_scope``.
* ``trusted-header``: an ingress (Gafaelfawr) authenticated the request and names the user in
  ``X-Auth-Request-User``; the header is believed only from ``trusted_proxies``.

No token text is ever logged or put in an error message.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from tap_service.config import AuthConfig
from tap_service.exceptions import AuthenticationError, PermissionDeniedError
from tap_service.storage.tokens import TokenStore

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class User:
    """The authenticated caller; ``name`` None means anonymous (mode none, open endpoints)."""

    name: str | None
    scopes: tuple[str, ...] = ()

    @property
    def quota_key(self) -> str:
        return self.name or ANONYMOUS


ANONYMOUS_USER = User(name=None)


def token_from_authorization(value: str | None) -> str | None:
    """The token carried by an Authorization header value, or None when there is none."""
    if not value:
        return None
    scheme, _, rest = value.strip().partition(" ")
    rest = rest.strip()
    if scheme.lower() == "bearer":
        return rest or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(rest, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, password = decoded.partition(":")
        return password or user or None
    return None


class AuthService:
    """Checks one request's credentials; built once per process (holds the token store)."""

    def __init__(self, config: AuthConfig, tokens: TokenStore | None) -> None:
        self._config = config
        self._tokens = tokens
        self._proxies = [ipaddress.ip_network(p, strict=False) for p in config.trusted_proxies]

    @property
    def mode(self) -> str:
        return self._config.mode

    def is_anonymous_endpoint(self, relative_path: str) -> bool:
        """Whether a path under the TAP prefix is served without credentials."""
        first = relative_path.strip("/").split("/", 1)[0]
        return first in self._config.anonymous_endpoints

    def authenticate(
        self,
        headers: Mapping[str, str],
        client_host: str | None,
        *,
        anonymous_ok: bool = False,
    ) -> User:
        mode = self._config.mode
        if mode == "none":
            return ANONYMOUS_USER
        if mode == "trusted-header":
            return self._from_header(headers, client_host, anonymous_ok=anonymous_ok)
        return self._from_token(headers, anonymous_ok=anonymous_ok)

    def _challenge(self, message: str, error: str | None = None) -> AuthenticationError:
        return AuthenticationError(message, realm=self._config.realm, error=error)

    def _from_token(self, headers: Mapping[str, str], *, anonymous_ok: bool) -> User:
        token = token_from_authorization(headers.get("authorization"))
        if token is None:
            if anonymous_ok:
                return ANONYMOUS_USER
            raise self._challenge(
                "Authentication required: send the token as 'Authorization: Bearer TOKEN', "
                "or as the password of HTTP Basic (user x-oauth-basic)"
            )
        assert self._tokens is not None
        info = self._tokens.verify(token)
        if info is None:
            if anonymous_ok:
                return ANONYMOUS_USER
            log.info("refused an unknown, malformed or expired token")
            raise self._challenge("The token is not valid (unknown or expired)", "invalid_token")
        scope = self._config.required_scope
        if scope and scope not in info.scopes:
            if anonymous_ok:
                return ANONYMOUS_USER
            raise PermissionDeniedError(
                f"The token of {info.username} lacks the scope {scope} this service requires"
            )
        return User(name=info.username, scopes=info.scopes)

    def _from_header(
        self, headers: Mapping[str, str], client_host: str | None, *, anonymous_ok: bool
    ) -> User:
        name = (headers.get(self._config.user_header.lower()) or "").strip()
        if not name:
            if anonymous_ok:
                return ANONYMOUS_USER
            raise self._challenge("Authentication required: this service sits behind an ingress")
        if not self._trusted(client_host):
            log.warning("%s from untrusted peer %s ignored", self._config.user_header, client_host)
            if anonymous_ok:
                return ANONYMOUS_USER
            raise self._challenge(
                f"{self._config.user_header} is only accepted from the authenticating ingress"
            )
        return User(name=name)

    def _trusted(self, host: str | None) -> bool:
        if host is None:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._proxies)
