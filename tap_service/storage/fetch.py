"""Fetching a TAP_UPLOAD table given by URL (``UPLOAD=name,https://...``).

The body is copied to a spooled temporary file in pieces and the copy stops one byte past the
limit, so a large or endless response costs at most ``limit`` bytes.  Hosts that resolve to
loopback, private or link-local addresses are refused unless configured otherwise: the service
must not become a way to reach endpoints inside its own network.
"""

from __future__ import annotations

import ipaddress
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import IO

from tap_service.exceptions import UploadError, UploadTooLargeError

PIECE = 1 << 16


class _CheckedRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are followed only to http(s) URLs that pass the same host check."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private

    def redirect_request(  # type: ignore[no-untyped-def]
        self, req, fp, code, msg, headers, newurl
    ):
        check_url(newurl, allow_private=self._allow_private)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def check_url(url: str, *, allow_private: bool) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UploadError(f"Only http and https URLs can be uploaded, not {url!r}")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 0, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise UploadError(
            f"The upload URL's host {parts.hostname} cannot be resolved: {exc}"
        ) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise UploadError(
                f"The upload URL's host {parts.hostname} is an internal address ({address}); "
                "this service only fetches uploads from public hosts"
            )


def fetch(url: str, *, limit: int, timeout: float, allow_private: bool) -> IO[bytes]:
    """The body of ``url`` in a temporary file positioned at 0; errors are ``UploadError``."""
    check_url(url, allow_private=allow_private)
    opener = urllib.request.build_opener(_CheckedRedirect(allow_private))
    request = urllib.request.Request(url, headers={"User-Agent": "tap-service upload fetch"})  # noqa: S310 - scheme checked above
    spool = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)  # noqa: SIM115 - returned
    try:
        with opener.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > limit:
                raise UploadTooLargeError(
                    f"The table at {url} is {int(length)} bytes; uploads are limited to "
                    f"{limit} bytes"
                )
            size = 0
            deadline = time.monotonic() + timeout
            while True:
                if time.monotonic() > deadline:
                    raise UploadError(f"Fetching {url} took longer than {timeout:g} s")
                piece = response.read(PIECE)
                if not piece:
                    break
                size += len(piece)
                if size > limit:
                    raise UploadTooLargeError(
                        f"The table at {url} is larger than the upload limit of {limit} bytes"
                    )
                spool.write(piece)
    except UploadError:
        spool.close()
        raise
    except urllib.error.HTTPError as exc:
        spool.close()
        raise UploadError(f"The upload URL {url} answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        spool.close()
        reason = getattr(exc, "reason", exc)
        raise UploadError(f"The upload URL {url} could not be fetched: {reason}") from None
    spool.seek(0)
    return spool
