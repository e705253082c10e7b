"""Kombu's Redis transport with one fix: a worker survives losing Redis while a job runs.

With kombu 5.7 a Celery worker *exits* ("Unrecoverable error: AttributeError: 'NoneType' object
has no attribute 'hostname'") when the broker connection drops while its consumer channel is
waiting in BRPOP and holds an unacknowledged message (a job running with ``acks_late``, the pool
not full).  Celery's connection-error handler closes the connection twice:

1. ``Connection.collect()`` closes the channel; ``Channel.close()`` first reads the pending BRPOP
   reply, which raises ``ConnectionError`` before the channel is marked closed.  ``collect`` ignores
   the error and drops the transport's reference to the ``Connection`` (``transport.client``).
2. ``Connection.close()`` closes the channel again; now it gets past the BRPOP read, restores the
   unacknowledged messages, and building a Redis client for that dereferences the dropped
   ``transport.client``: an ``AttributeError``, which no one catches, and the worker stops.

Here the lost BRPOP reply does not stop the first close: the channel is closed (its messages
restored, or the attempt failing with a connection error that is ignored) while the transport
still knows its connection, and the second close finds nothing left to do.
"""

from __future__ import annotations

import logging
from queue import Empty
from typing import Any

from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)


class Channel(kombu_redis.Channel):
    def close(self) -> None:
        if self._in_poll:
            try:
                self._brpop_read()  # type: ignore[no-untyped-call]
            except Empty:
                log.debug("no message was pending when the channel closed")
            except self.connection_errors as exc:
                # The reply went with the connection; ``_in_poll`` is reset, so close anyway.
                log.info("broker connection lost during a pending receive: %s", exc)
        super().close()  # type: ignore[no-untyped-call]


class Transport(kombu_redis.Transport):
    Channel: Any = Channel


TRANSPORT = f"{__name__}:Transport"
