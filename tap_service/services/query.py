"""One path from an ADQL request to a stream of document bytes, shared by /sync and async jobs.

``prepare`` does everything that can fail because of the request (parameters, parse, check,
translation) before any byte is sent, so those failures become proper HTTP 400 answers.
``stream`` then runs the SQL: it pulls the first batch before yielding anything, so a database
error that happens at once is still reported with the right status; a failure after rows have
left becomes a trailing QUERY_STATUS=ERROR INFO, the only honest thing a stream can still say.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO

import pyarrow as pa

from tap_service import adql
from tap_service.adql.checked import CheckedQuery, OutputColumn
from tap_service.config import Config
from tap_service.exceptions import BackendError, QueryError, TapError, UsageError
from tap_service.services import metrics
from tap_service.services.descriptors import service_descriptors
from tap_service.services.explain import Estimate, estimate
from tap_service.services.tapschema import TapSchemaService
from tap_service.services.uploads import Upload, UploadService
from tap_service.storage.backend import Backend
from tap_service.votable import (
    FieldError,
    Info,
    ResultWriter,
    UnknownFormatError,
    make_writer,
)
from tap_service.votable.fields import Field

log = logging.getLogger(__name__)

ACCEPTED_LANGS = {"adql": "ADQL-2.1", "adql-2.0": "ADQL-2.0", "adql-2.1": "ADQL-2.1"}


@dataclass(frozen=True, kw_only=True)
class QueryRequest:
    """The DALI/TAP parameters of one query, already case-normalised by the handler."""

    query: str | None
    lang: str | None
    maxrec: str | None = None
    response_format: str | None = None
    request: str | None = None
    sync: bool = False  # /sync: subject to the Qserv full-scan guard (qserv.sync_max_chunks)
    upload: tuple[str, ...] = ()  # UPLOAD values, each "name,source[;name,source]"
    upload_parts: Mapping[str, IO[bytes]] = field(default_factory=dict)  # multipart files
    uploads: tuple[Upload, ...] | None = None  # already read (async jobs keep them stored)


@dataclass(frozen=True, kw_only=True)
class PreparedQuery:
    checked: CheckedQuery
    sql: str | None
    maxrec: int
    writer: ResultWriter
    estimate: Estimate | None = None
    uploads: tuple[Upload, ...] = ()

    @property
    def media_type(self) -> str:
        return self.writer.media_type


def output_fields(
    columns: tuple[OutputColumn, ...], ids: dict[int, str] | None = None
) -> list[Field]:
    """VOTable FIELDs for the result columns; unknown types travel as strings.

    ``ids`` gives FIELD IDs by position (DataLink service descriptors reference them).
    """
    fields = []
    for index, column in enumerate(columns):
        datatype = column.datatype or "char"
        arraysize = column.arraysize if column.datatype else "*"
        fields.append(
            Field(
                name=column.name,
                datatype=datatype,
                arraysize=arraysize,
                xtype=column.xtype,
                unit=column.unit,
                ucd=column.ucd,
                utype=column.utype,
                description=column.description,
                id=(ids or {}).get(index),
            )
        )
    return fields


class QueryService:
    """Turns TAP query parameters into result documents."""

    def __init__(self, config: Config, backend: Backend, tap_schema: TapSchemaService) -> None:
        self._config = config
        self._backend = backend
        self._tap_schema = tap_schema
        self._uploads = UploadService(config)

    def prepare(self, request: QueryRequest) -> PreparedQuery:
        if request.request is not None and request.request.lower() != "doquery":
            raise UsageError(
                f"REQUEST={request.request} is not supported; the only request is doQuery"
            )
        if request.lang is None or not request.lang.strip():
            raise UsageError("The LANG parameter is required: use LANG=ADQL")
        if request.lang.strip().lower() not in ACCEPTED_LANGS:
            raise UsageError(
                f"LANG={request.lang} is not supported; use ADQL, ADQL-2.0 or ADQL-2.1"
            )
        text = request.query
        if text is None or not text.strip():
            raise UsageError("The QUERY parameter is required and must hold an ADQL query")
        if len(text) > self._config.max_query_length:
            raise UsageError(
                f"The query is {len(text)} characters long; the limit is "
                f"{self._config.max_query_length}"
            )
        maxrec = self._maxrec(request.maxrec)
        uploads = request.uploads
        if uploads is None:
            uploads = self._uploads.resolve(request.upload, request.upload_parts)
        elif uploads:
            self._uploads.check_allowed()
        checked = self.check(text, uploads)
        cost = self.estimate(checked)
        if cost is not None and request.sync:
            self._guard(cost)
        try:
            sql = adql.to_sql(
                checked, self._backend.dialect, functions=tuple(self._tap_schema.model.functions())
            )
        except adql.AdqlError as exc:
            raise _query_error(exc) from exc
        infos = [
            Info(name="QUERY", value=text),
            Info(name="LANG", value=request.lang),
        ]
        if cost is not None:
            infos.append(Info(name="QSERV_ESTIMATE", value=cost.summary()))
        ids, descriptors = service_descriptors(self._config, checked.columns)
        try:
            writer = make_writer(
                request.response_format or self._config.default_format,
                output_fields(checked.columns, ids),
                infos=infos,
                resource_meta=descriptors,
            )
        except UnknownFormatError as exc:
            raise UsageError(str(exc)) from exc
        except FieldError as exc:
            raise UsageError(f"The result cannot be written in this format: {exc}") from exc
        return PreparedQuery(
            checked=checked, sql=sql, maxrec=maxrec, writer=writer, estimate=cost, uploads=uploads
        )

    def estimate(self, checked: CheckedQuery) -> Estimate | None:
        """Qserv's cost of ``checked``; None unless the qserv backend has partitioning set."""
        partitioning = self._config.qserv.partitioning
        if self._backend.dialect != "qserv" or not partitioning:
            return None
        return estimate(checked, partitioning)

    def explain(self, request: QueryRequest) -> dict[str, object]:
        """The estimate as a document, without running anything (``/explain``, CLI)."""
        if request.lang is not None and request.lang.strip().lower() not in ACCEPTED_LANGS:
            raise UsageError(f"LANG={request.lang} is not supported; use ADQL")
        if request.query is None or not request.query.strip():
            raise UsageError("The QUERY parameter is required and must hold an ADQL query")
        checked = self.check(request.query)
        cost = self.estimate(checked)
        if cost is None:
            return {
                "backend": self._backend.dialect,
                "restriction": "none",
                "summary": "not partitioned: this backend has no chunks to count",
                "tables": [t.qualified_name for t in checked.tables],
            }
        limit = self._config.qserv.sync_max_chunks
        return {
            "backend": self._backend.dialect,
            **cost.to_dict(),
            "sync_max_chunks": limit,
            "sync_allowed": limit is None or cost.chunks <= limit,
        }

    def _guard(self, cost: Estimate) -> None:
        limit = self._config.qserv.sync_max_chunks
        if limit is None or cost.chunks <= limit:
            return
        top = cost.largest
        table = top.table if top is not None else "a partitioned table"
        why = (
            "there is no restriction Qserv can use"
            if cost.restriction == "full_scan"
            else cost.summary().split(":", 1)[0]
        )
        raise UsageError(
            f"Refused on /sync: this query would scan {cost.chunks} of {cost.total_chunks} "
            f"chunks of {table} ({why}); synchronous queries may touch at most {limit}. "
            "Restrict it with a region of constant arguments at the top level of WHERE, e.g. "
            "AND CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 62.0, -37.0, 0.1)) = 1 "
            "(not under OR or NOT), or with = / IN on the object id, or submit it as an "
            "async job (/async), which has no such limit."
        )

    def check(self, text: str, uploads: tuple[Upload, ...] = ()) -> CheckedQuery:
        """Parse and check ADQL against the current TAP_SCHEMA (and this query's uploads)."""
        catalog: adql.Catalog = self._tap_schema.model
        if uploads:
            catalog = adql.OverlayCatalog(catalog, [u.table_info() for u in uploads])
        try:
            return adql.check(adql.parse(text), catalog, text=text)
        except adql.AdqlError as exc:
            raise _query_error(exc) from exc

    def stream(self, prepared: PreparedQuery, *, timeout: float | None = None) -> Iterator[bytes]:
        """The document: the first batch is fetched before this returns its iterator.

        ``timeout`` defaults to the sync limit; the database query is cancelled past it.
        """
        writer = prepared.writer
        if prepared.maxrec == 0 or prepared.sql is None:
            return iter([writer.begin(), writer.end()])
        batches = self._batches(prepared, timeout or self._config.sync_timeout_seconds)
        try:
            first = next(batches, None)
        except TapError:
            _close(batches)
            raise
        except Exception as exc:
            _close(batches)
            log.exception("query failed before its first row")
            raise BackendError(f"The database could not run the query: {_brief(exc)}") from exc
        if first is not None and first.num_rows >= self._config.batch_rows:
            # More is likely to come: fetch the next batches in their own thread while this one
            # encodes (both mostly outside the GIL), one batch ahead at most.
            batches = Prefetch(batches)
        return metrics.counted(self._document(writer, prepared.maxrec, first, batches))

    def _batches(self, prepared: PreparedQuery, timeout: float) -> Iterator[pa.RecordBatch]:
        assert prepared.sql is not None
        batch_rows = self._config.batch_rows
        if not prepared.uploads:
            return self._backend.stream(prepared.sql, batch_rows=batch_rows, timeout=timeout)
        with_tables = getattr(self._backend, "stream_with_tables", None)
        if with_tables is None:
            self._uploads.check_allowed()  # names the backend that cannot take them
            raise UsageError("TAP_UPLOAD is not available on this backend")
        tables = {u.physical_name: u.table for u in prepared.uploads}
        batches: Iterator[pa.RecordBatch] = with_tables(
            prepared.sql, tables, batch_rows=batch_rows, timeout=timeout
        )
        return batches

    def _document(
        self,
        writer: ResultWriter,
        maxrec: int,
        first: pa.RecordBatch | None,
        batches: Iterator[pa.RecordBatch],
    ) -> Iterator[bytes]:
        yield writer.begin()
        remaining = maxrec
        budget = self._config.result_bytes_limit
        written = 0
        overflow = False
        error: str | None = None
        batch = first
        try:
            while batch is not None:
                if batch.num_rows > remaining:
                    batch = batch.slice(0, remaining)
                    overflow = True
                # Under a byte budget, rows go out in small pieces so the cut lands close to it.
                step = BUDGET_PIECE_ROWS if budget is not None else max(batch.num_rows, 1)
                for start in range(0, batch.num_rows, step):
                    piece = batch.slice(start, step)
                    chunk = writer.write_batch(piece)
                    written += len(chunk)
                    yield chunk
                    remaining -= piece.num_rows
                    metrics.count_rows(piece.num_rows)
                    if budget is not None and written >= budget:
                        # Cut at this row boundary; OVERFLOW if any row is left behind.
                        rest = batch.num_rows - start - piece.num_rows
                        overflow = overflow or rest > 0 or _more_rows(batches)
                        budget_hit = True
                        break
                else:
                    budget_hit = False
                if overflow or budget_hit:
                    break
                batch = next(batches, None)
                if remaining == 0 and batch is not None:
                    # One row beyond MAXREC exists only if this batch is not empty.
                    while batch is not None and batch.num_rows == 0:
                        batch = next(batches, None)
                    overflow = batch is not None
                    break
        except TapError as exc:
            log.warning("query failed while streaming: %s", exc.message)
            error = exc.message
        except Exception as exc:
            log.exception("query failed while streaming")
            error = f"The database failed while sending rows: {_brief(exc)}"
        finally:
            _close(batches)
        after = [Info(name="QUERY_STATUS", value="ERROR", content=error)] if error else []
        yield writer.end(overflow=overflow, infos_after=after)

    def _maxrec(self, value: str | None) -> int:
        limit = self._config.maxrec_limit
        if value is None or value.strip() == "":
            return min(self._config.maxrec_default, limit)
        try:
            maxrec = int(value)
        except ValueError:
            raise UsageError(f"MAXREC must be a non-negative integer, not {value!r}") from None
        if maxrec < 0:
            raise UsageError(f"MAXREC must be a non-negative integer, not {value!r}")
        return min(maxrec, limit)


class Prefetch:
    """Reads a batch iterator in a background thread, at most ``depth`` batches ahead.

    The bounded queue is the backpressure: when the client (and so the encoder) is slow, the
    reader blocks on ``put`` and the database cursor is not advanced, so memory holds at most
    ``depth + 1`` fetched batches besides the one being encoded.  Errors of the source are
    re-raised by ``__next__`` in the consumer's thread.  ``close`` stops the reader and the
    source (the database query) from any thread.
    """

    _END = object()

    def __init__(self, source: Iterator[pa.RecordBatch], depth: int = 1) -> None:
        self._source = source
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._run, name="tap-fetch", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for batch in self._source:
                if not self._put(batch):
                    break
            else:
                self._put(self._END)
        except Exception as exc:  # noqa: BLE001 - re-raised by __next__ in the consumer
            self._put(exc)
        finally:
            if self._stop.is_set():
                _close(self._source)

    def __iter__(self) -> Prefetch:
        return self

    def __next__(self) -> pa.RecordBatch:
        if self._finished:
            raise StopIteration
        item = self._queue.get()
        if item is self._END:
            self._finished = True
            raise StopIteration
        if isinstance(item, Exception):
            self._finished = True
            raise item
        assert isinstance(item, pa.RecordBatch)
        return item

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._finished = True
        # Interrupts a query the reader is blocked in (QueryStream allows any thread); a
        # generator running in the reader raises ValueError and closes itself on waking.
        with contextlib.suppress(ValueError):
            _close(self._source)
        while True:  # free the reader if it waits on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break


# Rows per writer call when TAP_RESULT_BYTES_LIMIT is set: the cut overshoots the budget by at
# most this many rows' worth of bytes.
BUDGET_PIECE_ROWS = 1024


def _more_rows(batches: Iterator[pa.RecordBatch]) -> bool:
    """Whether ``batches`` still holds a row (consumes up to the first non-empty batch)."""
    return any(batch.num_rows for batch in batches)


def _close(batches: Iterator[pa.RecordBatch]) -> None:
    """Stop the database query behind ``batches`` (a no-op once it has finished)."""
    close = getattr(batches, "close", None)
    if close is not None:
        close()


def _query_error(exc: adql.AdqlError) -> QueryError:
    return QueryError(str(exc), line=exc.line, column=exc.column)


def _brief(exc: BaseException) -> str:
    """The first line of a driver message: enough to act on, no internals."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
