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
from pydantic import BaseModel, Field
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
        default=10_000_000, ge=0, description="Largest MAXREC a client may ask for."
    )
    sync_timeout_seconds: float = Field(
        default=600.0, gt=0, description="A /sync query running longer is cancelled."
    )
    max_query_length: int = Field(
        default=100_000, gt=0, description="Longest ADQL text accepted, in characters."
    )
    batch_rows: int = Field(
        default=16_384, gt=0, description="Rows per batch between database and writer."
    )
    threads: int = Field(
        default=8, gt=0, description="Worker threads running database queries and writers."
    )
    user_functions: list[UserFunctionConfig] = Field(
        default_factory=list, description="User-defined ADQL functions (see docs/configuration.md)."
    )
    qserv: QservConfig = Field(default_factory=QservConfig)
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
