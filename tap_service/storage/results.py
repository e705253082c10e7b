"""Where async results live: files under TAP_DATA_DIR (embedded) or an S3 bucket (boto3).

A result is written once, by the job's runner, from the same byte stream ``/sync`` would send;
clients then either get the file served or a 303 to a presigned S3 URL.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from tap_service.exceptions import BackendUnavailableError, ResultStoreError, UploadError
from tap_service.uws.model import JobResult

log = logging.getLogger(__name__)

RESULT_ID = "result"
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _disk_error(exc: OSError, where: str) -> ResultStoreError:
    """What the job's error summary says (no server paths; the log has them)."""
    if exc.errno in _NO_SPACE:
        return ResultStoreError(
            f"No space left on the {where} to store the result; the partial result was "
            "removed. Try again later, or ask for fewer rows or columns"
        )
    reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
    return ResultStoreError(f"The result could not be written to the {where} ({reason})")


def _close(chunks: Iterable[bytes]) -> None:
    """Stop the producer (and its database query) when the result cannot be stored."""
    close = getattr(chunks, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close()


@dataclass(frozen=True)
class ResultLocation:
    """A file to serve, or a URL to redirect to."""

    path: Path | None = None
    url: str | None = None


class ResultStore(Protocol):
    def write(
        self, job_id: str, chunks: Iterable[bytes], *, mime_type: str, extension: str
    ) -> JobResult: ...

    def locate(self, result: JobResult) -> ResultLocation: ...

    def delete(self, job_id: str) -> None: ...

    def check(self) -> None: ...

    def write_upload(self, job_id: str, name: str, table: pa.Table) -> None:
        """Keep a TAP_UPLOAD table of the job (Parquet beside its results) until deletion."""
        ...

    def read_upload(self, job_id: str, name: str) -> pa.Table:
        """A table ``write_upload`` kept; ``UploadError`` if it is gone."""
        ...


UPLOADS = "uploads"


def _upload_file(name: str) -> str:
    """``<name>.parquet``; upload names are ADQL identifiers, checked again here."""
    if not name or not name.isascii() or not all(c.isalnum() or c == "_" for c in name):
        raise ValueError(f"not an upload name: {name!r}")
    return f"{name.lower()}.parquet"


def _gone(job_id: str, name: str) -> UploadError:
    return UploadError(f"The uploaded table {name} of job {job_id} is no longer stored")


def _safe_id(job_id: str) -> str:
    if not job_id or not all(c.isalnum() or c in "-_" for c in job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return job_id


class LocalResultStore:
    """``<root>/<job id>/result.<ext>``, written to a temporary name then renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(
        self, job_id: str, chunks: Iterable[bytes], *, mime_type: str, extension: str
    ) -> JobResult:
        folder = self.root / _safe_id(job_id)
        name = f"{RESULT_ID}.{extension}"
        tmp: str | None = None
        size = 0
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".partial-")
            # The file object is closed (and its buffer flushed, where ENOSPC often shows)
            # inside this try, so every write error is handled below.
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
            os.replace(tmp, folder / name)
        except BaseException as exc:
            _close(chunks)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty: nothing of this job is left behind
            if isinstance(exc, OSError):
                log.error("job %s: result not written under %s: %s", job_id, self.root, exc)
                raise _disk_error(exc, "result disk") from exc
            raise
        return JobResult(id=RESULT_ID, key=f"{job_id}/{name}", mime_type=mime_type, size=size)

    def locate(self, result: JobResult) -> ResultLocation:
        path = (self.root / result.key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"result key outside the store: {result.key!r}")
        return ResultLocation(path=path)

    def delete(self, job_id: str) -> None:
        shutil.rmtree(self.root / _safe_id(job_id), ignore_errors=True)

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def write_upload(self, job_id: str, name: str, table: pa.Table) -> None:
        folder = self.root / _safe_id(job_id) / UPLOADS
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as out:
                pq.write_table(table, out)
            os.replace(tmp, folder / _upload_file(name))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def read_upload(self, job_id: str, name: str) -> pa.Table:
        path = self.root / _safe_id(job_id) / UPLOADS / _upload_file(name)
        try:
            return pq.read_table(path)
        except FileNotFoundError:
            raise _gone(job_id, name) from None


class S3ResultStore:
    """Objects ``<prefix><job id>/result.<ext>`` in one bucket; reads are presigned URLs."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        presign_seconds: int = 3600,
        max_attempts: int = 5,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.bucket = bucket
        self.prefix = prefix
        self.presign_seconds = presign_seconds
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=BotoConfig(
                signature_version="s3v4",
                # "standard": connection errors, 5xx and throttling are retried with
                # exponential backoff; max_attempts counts the first attempt.
                retries={"mode": "standard", "max_attempts": max_attempts},
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
            ),
        )

    def write(
        self, job_id: str, chunks: Iterable[bytes], *, mime_type: str, extension: str
    ) -> JobResult:
        key = f"{self.prefix}{_safe_id(job_id)}/{RESULT_ID}.{extension}"
        size = 0
        # Spooled: small results never touch the disk; boto3 does multipart for large ones.
        # Each request (a PUT, or a part of a multipart upload) is retried by botocore as
        # configured; a failed multipart upload is aborted by boto3's transfer manager.
        try:
            with tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024) as spool:
                for chunk in chunks:
                    spool.write(chunk)
                    size += len(chunk)
                spool.seek(0)
                self.client.upload_fileobj(
                    spool, self.bucket, key, ExtraArgs={"ContentType": mime_type}
                )
        except BaseException as exc:
            _close(chunks)
            if isinstance(exc, OSError):
                log.error("job %s: result spool failed: %s", job_id, exc)
                raise _disk_error(exc, "result spool disk") from exc
            if _is_boto_error(exc):
                raise self._unreachable("stored", exc) from exc
            raise
        return JobResult(id=RESULT_ID, key=key, mime_type=mime_type, size=size)

    def _unreachable(self, action: str, exc: BaseException) -> ResultStoreError:
        log.error("S3 bucket %s: %s", self.bucket, exc)
        return ResultStoreError(
            f"The result could not be {action}: the result bucket {self.bucket} cannot be "
            f"reached or refused the request ({_boto_reason(exc)})"
        )

    def locate(self, result: JobResult) -> ResultLocation:
        url = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": result.key},
            ExpiresIn=self.presign_seconds,
        )
        return ResultLocation(url=str(url))

    def delete(self, job_id: str) -> None:
        prefix = f"{self.prefix}{_safe_id(job_id)}/"
        try:
            listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
            keys = [{"Key": item["Key"]} for item in listing.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
        except Exception as exc:
            if _is_boto_error(exc):
                raise self._unreachable("deleted", exc) from exc
            raise

    def _upload_key(self, job_id: str, name: str) -> str:
        return f"{self.prefix}{_safe_id(job_id)}/{UPLOADS}/{_upload_file(name)}"

    def write_upload(self, job_id: str, name: str, table: pa.Table) -> None:
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        buffer.seek(0)
        self.client.upload_fileobj(
            buffer,
            self.bucket,
            self._upload_key(job_id, name),
            ExtraArgs={"ContentType": "application/vnd.apache.parquet"},
        )

    def read_upload(self, job_id: str, name: str) -> pa.Table:
        buffer = io.BytesIO()
        try:
            self.client.download_fileobj(self.bucket, self._upload_key(job_id, name), buffer)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey"):
                raise _gone(job_id, name) from None
            raise BackendUnavailableError(
                f"The uploaded table {name} could not be read from bucket {self.bucket}"
            ) from exc
        buffer.seek(0)
        return pq.read_table(buffer)

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise BackendUnavailableError(
                f"The result bucket {self.bucket} cannot be reached"
            ) from exc


def _is_boto_error(exc: BaseException) -> bool:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(exc, BotoCoreError | ClientError | Boto3Error)


def _boto_reason(exc: BaseException) -> str:
    """A short reason naming no endpoint (clients read it): the error code or class."""
    from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

    cause: BaseException = exc
    while cause.__cause__ is not None and not isinstance(cause, ClientError):
        cause = cause.__cause__
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code", "error"))
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return "the endpoint does not answer"
    text = str(exc)
    if "Could not connect" in text or "Connection refused" in text:
        return "the endpoint does not answer"
    return type(exc).__name__
