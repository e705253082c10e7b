"""docker-compose.yml: the client-side check (no Docker engine runs here) and its shape.

``docker compose config`` (or the Debian ``docker-compose`` 1.x client, installed by
``make system-deps``) validates the file against the Compose schema.  The test then checks what
the schema cannot: every service the issue names is there, start order waits on health, and
every TAP_* variable names a real setting and validates as a Config.  Building the image and
starting the stack need a Docker engine and are not tested here (see docs/deployment.md).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from tap_service.config import Config

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    pytest.fail(
        "neither `docker compose` nor `docker-compose` is installed; install the "
        "client with: make system-deps (apt-get install docker-compose)"
    )


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_compose_config_accepts_the_file() -> None:
    result = subprocess.run(
        [*compose_command(), "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_services_and_start_order() -> None:
    services = compose()["services"]
    assert {"api", "worker", "redis", "qserv", "jobsdb", "minio", "standin", "s3-init"} <= set(
        services
    )
    for name in ("qserv", "jobsdb", "redis", "minio", "api"):
        assert services[name]["healthcheck"]["test"], f"{name} has no health check"
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["standin"]["condition"] == "service_completed_successfully"
        assert depends["s3-init"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
    assert services["standin"]["depends_on"]["qserv"]["condition"] == "service_healthy"
    assert services["standin"]["command"][0] == "standin"
    assert services["api"]["command"] == ["serve"]
    assert services["worker"]["command"][0] == "worker"
    # One image for every role.
    assert len({services[n]["image"] for n in ("api", "worker", "standin")}) == 1


def _field_exists(model: type[BaseModel], path: list[str]) -> bool:
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    if len(path) == 1:
        return True
    annotation = field.annotation
    return (
        isinstance(annotation, type)
        and issubclass(annotation, BaseModel)
        and _field_exists(annotation, path[1:])
    )


@pytest.mark.parametrize("service", ["api", "worker", "standin"])
def test_environment_names_real_settings(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = compose()["services"][service]["environment"]
    for name, value in env.items():
        assert name.startswith("TAP_")
        path = name.removeprefix("TAP_").lower().split("__")
        assert _field_exists(Config, path), f"{service}: {name} is no setting"
        monkeypatch.setenv(name, str(value))
    config = Config()
    assert config.backend == "qserv"
    assert config.uws.runner == "celery"
    assert config.uws.result_store == "s3"


def test_dockerfile_runs_the_cli() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["tap-service"]' in text
    assert "uv sync --frozen --no-dev" in text
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored
    assert ".git" in ignored
