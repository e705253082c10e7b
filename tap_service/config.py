"""The one configuration object, read from ``TAP_*`` environment variables and an optional file.

Every setting carries a description: the Helm chart's values and the docs mirror these fields, so
the description is the documentation.  Nested sections use ``__`` in environment names
(``TAP_QSERV__URL``).  A YAML or JSON file named by ``TAP_CONFIG_FILE`` is read first; the
environment overrides it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class UserFunctionConfig(BaseModel):
    """A user-defined ADQL function, declared in /capabilities and rendered per backend."""

    name: str = Field(description="ADQL name of the function, e.g. ivo_healpix_index.")
    signature: str = Field(
        description="TAPRegExt form, e.g. 'ivo_healpix_index(order INTEGER, ra DOUBLE, "
        "dec DOUBLE) -> BIGINT'."
    )
    returns: str = Field(default="double", description="VOTable datatype of the result.")
    description: str | None = Field(default=None, description="Shown in /capabilities.")
    sql: dict[str, str] = Field(
        default_factory=dict,
        description="Backend function name per dialect ('embedded', 'qserv').",
    )


class PartitionedTableConfig(BaseModel):
    """How Qserv partitions one table (its czar's CSS), for cost estimates and the sync guard."""

    kind: Literal["director", "child"] = Field(
        default="director",
        description="director (has its own positions and the secondary index on its key) or "
        "child (rows placed in the chunk of their director row, e.g. ForcedSource).",
    )
    director_key: str | None = Field(
        default=None,
        description="Column of the director key (e.g. objectId): = or IN on it is answered "
        "through Qserv's secondary index, touching one chunk per value.",
    )
    num_stripes: int = Field(
        default=340, gt=0, description="Qserv numStripes of the table's partitioning family."
    )
    num_sub_stripes_per_stripe: int = Field(
        default=3, gt=0, description="Qserv numSubStripesPerStripe (reported only)."
    )
    overlap: float = Field(
        default=0.01667, ge=0, description="Qserv overlap in degrees (reported only)."
    )


class QservConfig(BaseModel):
    """Connection to Qserv's czar and to the TAP_SCHEMA database beside it."""

    url: str = Field(
        default="mysql+pymysql://qsmaster@127.0.0.1:4040/",
        description="SQLAlchemy URL of the Qserv czar (MySQL protocol).",
    )
    tap_schema_url: str = Field(
        default="mysql+pymysql://root@127.0.0.1:3306/tap_schema",
        description="SQLAlchemy URL of the MySQL/MariaDB database holding TAP_SCHEMA.",
    )
    databases: dict[str, str] = Field(
        default_factory=dict,
        description="TAP schema name -> physical database name in Qserv, where they differ "
        '(e.g. {"dp02_dc2_catalogs": "dp02_test"}). TAP_SCHEMA always maps to the '
        "database of tap_schema_url.",
    )
    pool_size: int = Field(
        default=8, gt=0, description="Idle connections kept per database (Qserv, TAP_SCHEMA)."
    )
    connect_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Connection timeout towards Qserv and TAP_SCHEMA."
    )
    availability_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long /availability reuses the outcome of pinging both databases.",
    )
    standin_cpoly_vertices: int | None = Field(
        default=None,
        description="MariaDB stand-in only: NULL-pad scisql_s2PtInCPoly calls to this many "
        "vertex pairs (the stand-in's stored function has a fixed arity; `make standin` uses "
        "20). Leave unset for real Qserv.",
    )
    partitioning: dict[str, PartitionedTableConfig] = Field(
        default_factory=dict,
        description="TAP table name (schema.table) -> how Qserv partitions it; tables not "
        "listed are taken as replicated (not chunked). Drives `explain` and the sync guard.",
    )
    sync_max_chunks: int | None = Field(
        default=None,
        ge=0,
        description="Refuse a /sync query that would scan more chunks than this of a "
        "partitioned table (async is always allowed); unset: no guard.",
    )


class UwsConfig(BaseModel):
    """Async (UWS) jobs: where they are kept, what runs them, how long they live."""

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the job store (MariaDB/PostgreSQL in production); by "
        "default an SQLite file jobs.sqlite3 under TAP_DATA_DIR.",
    )
    runner: Literal["inprocess", "celery"] = Field(
        default="inprocess",
        description="What runs jobs: threads of the API process (embedded default) or Celery "
        "workers fed through Redis (`tap-service worker`).",
    )
    result_store: Literal["local", "s3"] = Field(
        default="local",
        description="Where results go: files under TAP_DATA_DIR/results, or an S3 bucket.",
    )
    inprocess_threads: int = Field(
        default=4, gt=0, description="Jobs the in-process runner executes at once."
    )
    execution_duration_default: int = Field(
        default=600, ge=0, description="EXECUTIONDURATION of a new job, in seconds."
    )
    execution_duration_max: int = Field(
        default=3600,
        gt=0,
        description="Largest EXECUTIONDURATION a client may set, in seconds (0 asks for this).",
    )
    destruction_days: float = Field(
        default=7.0, gt=0, description="Days after creation when a job and its results are deleted."
    )
    destruction_max_days: float = Field(
        default=30.0, gt=0, description="Latest DESTRUCTION a client may set, in days from now."
    )
    wait_max_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Cap on the WAIT blocking of a job document, in seconds: a larger (or "
        "negative) WAIT waits this long at most.",
    )
    heartbeat_seconds: float = Field(
        default=2.0, gt=0, description="How often a running job records that its worker lives."
    )
    stale_after_seconds: float = Field(
        default=20.0,
        gt=0,
        description="An EXECUTING job whose heartbeat is older than this ends in ERROR (its "
        "worker died); bounds how long a killed worker's job stays EXECUTING.",
    )
    sweep_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often the API process looks for stale jobs and jobs past destruction.",
    )


class RedisConfig(BaseModel):
    """The Redis server Celery uses as broker (only with TAP_UWS__RUNNER=celery)."""

    url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis URL of the broker.")
    queue: str = Field(default="tap-async", description="Celery queue name for TAP jobs.")
    visibility_timeout_seconds: int = Field(
        default=300,
        gt=0,
        description="A job message taken by a worker that died unacknowledged is delivered "
        "again after this long (a redelivered message for a job that is no longer QUEUED "
        "does nothing, so this may be shorter than the longest job).",
    )


class S3Config(BaseModel):
    """The S3 bucket holding async results (only with TAP_UWS__RESULT_STORE=s3)."""

    endpoint_url: str | None = Field(
        default=None, description="S3 endpoint (None: AWS); e.g. http://127.0.0.1:9000."
    )
    bucket: str = Field(default="tap-results", description="Bucket holding result files.")
    prefix: str = Field(default="async/", description="Key prefix of result files.")
    region: str = Field(default="us-east-1", description="Region used for signing.")
    access_key_id: str | None = Field(
        default=None, description="Access key (None: boto3's usual credential chain)."
    )
    secret_access_key: str | None = Field(
        default=None, description="Secret key matching access_key_id."
    )
    presign_seconds: int = Field(
        default=3600, gt=0, description="Lifetime of the presigned URLs results redirect to."
    )
    max_attempts: int = Field(
        default=5,
        gt=0,
        description="Attempts per S3 request, the first included (botocore 'standard' retry "
        "mode: connection errors, 5xx and throttling, with exponential backoff). A result "
        "upload is a PUT of the whole object to its key, so retrying it is safe.",
    )
    connect_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Timeout for opening a connection to the S3 endpoint."
    )
    read_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Timeout for each read from the S3 endpoint."
    )


class DatalinkConfig(BaseModel):
    """DataLink: service descriptors on query results and the light-curve / {links} services."""

    templates_dir: Path | None = Field(
        default=None,
        description="Directory in Rubin's sdm_schemas DataLink format (datalink-manifest.json, "
        "NAME.xml templates, optional columns-minimal.yaml), read unchanged at start-up. None: "
        "results carry no service descriptors and {links} lists no service descriptor rows.",
    )
    base_url: str | None = Field(
        default=None,
        description="Root URL substituted for $baseUrl$ in templates (e.g. "
        "https://data.lsst.cloud); by default public_url without path_prefix, else "
        "http://HOST:PORT.",
    )
    lightcurve_maxrec: int = Field(
        default=100_000, gt=0, description="Most rows one light-curve request returns."
    )


class AuthConfig(BaseModel):
    """Who may use the service: anonymous, tokens checked here, or a user named by the ingress."""

    mode: Literal["none", "tokens", "trusted-header"] = Field(
        default="none",
        description="none: everyone is anonymous (the embedded demo); tokens: Bearer or Basic "
        "credentials checked against the hashed token store (`tap-service token create`); "
        "trusted-header: the user is the X-Auth-Request-User header set by an authenticating "
        "ingress (Gafaelfawr), believed only from trusted_proxies.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the token store (tokens mode); by default an SQLite file "
        "tokens.sqlite3 under TAP_DATA_DIR. May be the job-store database.",
    )
    required_scope: str = Field(
        default="read:tap",
        description="Scope a token must carry to use the service (403 without it).",
    )
    anonymous_endpoints: list[str] = Field(
        default_factory=lambda: ["availability", "capabilities", "tables", "examples"],
        description="First path segments under path_prefix served without credentials "
        "(an empty list protects them too).",
    )
    user_header: str = Field(
        default="X-Auth-Request-User",
        description="trusted-header mode: the header naming the authenticated user.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="trusted-header mode: addresses or CIDR networks of the ingress; the user "
        "header from any other peer is refused (401).",
    )
    realm: str = Field(default="tap", description="Realm named in the WWW-Authenticate challenges.")


class QuotaConfig(BaseModel):
    """Per-user limits (an anonymous client counts as the user 'anonymous')."""

    enabled: bool = Field(default=False, description="Enforce the limits below.")
    backend: Literal["memory", "redis"] = Field(
        default="memory",
        description="Where request counts live: this process (embedded default) or Redis "
        "(shared by every API replica; uses redis.url).",
    )
    requests_per_minute: int = Field(
        default=600, ge=0, description="Requests a user may make per minute (0: no limit)."
    )
    concurrent_queries: int = Field(
        default=12,
        ge=0,
        description="Queries a user may have running at once: /sync queries plus async jobs "
        "QUEUED or EXECUTING (0: no limit). Over it: 429; an async job is left PENDING.",
    )


class LoggingConfig(BaseModel):
    """What the processes (API and workers) log, and how."""

    format: Literal["text", "json"] = Field(
        default="text",
        description="text: human-readable lines; json: one JSON object per line with time, "
        "level, logger, message, request_id, user and job_id (for log collectors).",
    )
    level: str = Field(default="INFO", description="Root log level (DEBUG, INFO, WARNING...).")
    user_header: str = Field(
        default="X-Auth-Request-User",
        description="Request header naming the authenticated user in logs when the auth layer "
        "has not set one (Gafaelfawr sets this header in front of the service).",
    )


class MetricsConfig(BaseModel):
    """Prometheus metrics."""

    enabled: bool = Field(
        default=True, description="Serve Prometheus metrics at /metrics on the API port."
    )
    worker_port: int | None = Field(
        default=None,
        description="Port on which `tap-service worker` serves its own /metrics (job counters, "
        "rows and bytes written); None: workers expose no metrics endpoint.",
    )


class UploadConfig(BaseModel):
    """TAP_UPLOAD: tables a query brings along (``UPLOAD=name,param:part`` or ``name,URL``)."""

    enabled: bool = Field(
        default=True,
        description="Accept UPLOAD on /sync and /async (the Qserv backend refuses it anyway).",
    )
    max_bytes: int = Field(
        default=32 * 1024 * 1024,
        gt=0,
        description="Largest total size of the VOTables one request uploads (inline parts and "
        "fetched URLs together), in bytes; past it the request is refused with HTTP 413 "
        "without reading further.",
    )
    max_rows: int = Field(
        default=1_000_000, gt=0, description="Most rows one uploaded table may hold."
    )
    max_columns: int = Field(
        default=500, gt=0, description="Most FIELDs one uploaded table may have."
    )
    max_tables: int = Field(default=8, gt=0, description="Most uploaded tables per request.")
    fetch_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Time allowed to fetch an UPLOAD given as an http(s) URL (connect and "
        "each read).",
    )
    allow_private_urls: bool = Field(
        default=False,
        description="Fetch UPLOAD URLs whose host resolves to a loopback, private or "
        "link-local address (off: the service could otherwise be used to reach internal "
        "endpoints).",
    )


class Config(BaseSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="TAP_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"),
        description="Embedded state: the DuckDB catalog, the job store and result files.",
    )
    host: str = Field(default="127.0.0.1", description="Address `tap-service serve` binds.")
    port: int = Field(default=8000, description="Port `tap-service serve` listens on.")
    path_prefix: str = Field(default="/api/tap", description="Base URL path of the TAP service.")
    public_url: str | None = Field(
        default=None,
        description="Base URL clients see (behind a proxy); by default derived from the request.",
    )
    backend: Literal["embedded", "qserv"] = Field(
        default="embedded", description="Which database answers catalog queries."
    )
    schema_files: list[Path] = Field(
        default_factory=list,
        description="Felis YAML files published at start-up in addition to what TAP_DATA_DIR "
        "already holds.",
    )
    examples_file: Path | None = Field(
        default=None,
        description="DALI examples document served at /examples (default: the packaged one).",
    )
    maxrec_default: int = Field(
        default=100_000, ge=0, description="Row limit when a query gives no MAXREC."
    )
    maxrec_limit: int = Field(
        default=10_000_000,
        ge=0,
        description="Hard row limit (in /capabilities): a larger MAXREC is capped to it, as "
        "TAP 1.1 says, and the result ends with QUERY_STATUS=OVERFLOW when rows were left out.",
    )
    sync_timeout_seconds: float = Field(
        default=600.0, gt=0, description="A /sync query running longer is cancelled."
    )
    result_bytes_limit: int | None = Field(
        default=None,
        gt=0,
        description="Result-size budget in bytes: a result growing past it is cut at a row "
        "boundary and marked OVERFLOW (instead of Qserv's all-or-nothing failure). None: "
        "no budget.",
    )
    max_query_length: int = Field(
        default=100_000,
        gt=0,
        description="Longest ADQL text accepted, in characters (400 beyond it); also bounds "
        "every parameter value an async job keeps.",
    )
    batch_rows: int = Field(
        default=16_384, gt=0, description="Rows per batch between database and writer."
    )
    default_format: str = Field(
        default="votable",
        description="Output format when a query gives no RESPONSEFORMAT: any accepted value "
        "(votable = VOTable BINARY2, votable/td, csv, tsv, parquet, or a MIME type).",
    )

    @field_validator("default_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        from tap_service.votable.formats import resolve_format  # pure library, no cycle

        resolve_format(value)  # UnknownFormatError (a ValueError) names the accepted values
        return value

    threads: int = Field(
        default=8, gt=0, description="Worker threads running database queries and writers."
    )
    embedded_memory_limit: str | None = Field(
        default=None,
        pattern=r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="Embedded backend: DuckDB's memory_limit (e.g. '256MB'), which bounds its "
        "cache of catalog blocks as well as sorts, joins and aggregations (these spill or fail "
        "past it). Unset: DuckDB's default, 80% of the machine's memory.",
    )
    user_functions: list[UserFunctionConfig] = Field(
        default_factory=list, description="User-defined ADQL functions (see docs/configuration.md)."
    )
    obscore_declare: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Declare the ObsCore 1.1 data model in /capabilities for the published "
        "ivoa.ObsCore table: auto (only if it conforms: every mandatory ObsCore 1.1 column, "
        "with the standard utype, UCD, unit and datatype; otherwise one warning at start-up "
        "lists the defects), always (whenever ivoa.ObsCore is published), never.",
    )
    qserv: QservConfig = Field(default_factory=QservConfig)
    uws: UwsConfig = Field(default_factory=UwsConfig)
    upload: UploadConfig = Field(default_factory=UploadConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    s3: S3Config = Field(default_factory=S3Config)
    datalink: DatalinkConfig = Field(default_factory=DatalinkConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    shutdown_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="On SIGTERM the API stops accepting connections and lets responses in "
        "flight finish for at most this long (keep it below Kubernetes' "
        "terminationGracePeriodSeconds).",
    )
    auth: AuthConfig = Field(default_factory=AuthConfig)
    quotas: QuotaConfig = Field(default_factory=QuotaConfig)
    service_title: str = Field(
        default="tap_service demo TAP", description="Title shown in capabilities and pages."
    )

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "catalog.duckdb"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls), file_secret_settings)


class _FileSource(PydanticBaseSettingsSource):
    """Reads the YAML/JSON file named by ``TAP_CONFIG_FILE``, lowest precedence but defaults."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        name = os.environ.get("TAP_CONFIG_FILE")
        if not name:
            return {}
        text = Path(name).read_text(encoding="utf-8")
        data = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
        if not isinstance(data, dict):
            raise ValueError(f"{name}: the configuration file must hold a mapping")
        return data
