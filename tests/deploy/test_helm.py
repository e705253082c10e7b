"""The Helm chart, checked without helm (not installable here: not on Debian or PyPI).

What is checked: values.yaml is valid YAML, every value is documented by a comment, the
``config`` block has exactly the fields of ``Config`` (and validates as a Config), every
template renders (with tests/deploy/gotemplate.py, a Go-template subset) to valid Kubernetes-
shaped YAML for the default values and with every option on, and missing required values stop
the rendering.  What is not: helm's own rendering and linting, the Kubernetes API schemas, and
an install on a cluster (see docs/deployment.md).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from tap_service.config import Config
from tests.deploy.gotemplate import Renderer, TemplateError

CHART = Path(__file__).resolve().parents[2] / "helm" / "tap-service"
REGENERATE = "run `python tools/helm_values.py` to regenerate the config block"


def values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


def config_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        keys.add(prefix + name)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= config_keys(annotation, f"{prefix}{name}.")
    return keys


def value_keys(tree: dict[str, Any], prefix: str = "", nested: set[str] | None = None) -> set[str]:
    keys = set()
    for name, value in tree.items():
        keys.add(prefix + name)
        if isinstance(value, dict) and (nested is None or prefix + name in nested):
            keys |= value_keys(value, f"{prefix}{name}.", nested)
    return keys


def test_values_config_mirrors_config_fields() -> None:
    expected = config_keys(Config)
    nested = {k for k in expected if k not in {"qserv.databases"}}
    found = value_keys(values()["config"], nested=nested)
    assert found - expected == set(), f"values.yaml has settings Config lacks; {REGENERATE}"
    assert expected - found == set(), f"values.yaml lacks Config settings; {REGENERATE}"


def test_values_config_is_a_valid_config() -> None:
    Config.model_validate(values()["config"])


def test_values_config_block_is_current() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "helm_values", CHART.parents[1] / "tools" / "helm_values.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (CHART / "values.yaml").read_text()
    assert module.render(text) == text, REGENERATE


def test_every_value_is_documented() -> None:
    """Each key has a comment above it, or lies inside a documented key (e.g. resources)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    stack: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing keys
    for number, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z_][\w-]*):", line)
        if not match:
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        documented = number > 0 and lines[number - 1].strip().startswith("#")
        inherited = any(d for _, d in stack)
        opens_section = line.rstrip().endswith(":")
        if not (documented or inherited or opens_section):
            undocumented.append(line.strip())
        stack.append((indent, documented))
    assert undocumented == []


def templates() -> list[str]:
    return sorted(p.name for p in (CHART / "templates").glob("*.yaml"))


def render_all(chart_values: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    renderer = Renderer(chart_values, chart)
    for path in (CHART / "templates").iterdir():
        renderer.add_file(path.name, path.read_text())
    rendered = {}
    for name in templates():
        text = renderer.render(name)
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
        rendered[name] = documents
    return rendered


def production_values() -> dict[str, Any]:
    chart_values = values()
    chart_values["secrets"]["existingSecret"] = "tap-secrets"
    return chart_values


def everything_on() -> dict[str, Any]:
    chart_values = production_values()
    chart_values["api"]["autoscaling"]["enabled"] = True
    chart_values["worker"]["autoscaling"]["enabled"] = True
    chart_values["api"]["podAnnotations"] = {"example.org/team": "tap"}
    chart_values["api"]["nodeSelector"] = {"disk": "ssd"}
    chart_values["imagePullSecrets"] = [{"name": "pull"}]
    chart_values["ingress"].update(
        enabled=True,
        host="data.example.org",
        tlsSecretName="tls",
        annotations={"nginx.ingress.kubernetes.io/proxy-read-timeout": "600"},
    )
    chart_values["ingress"]["gafaelfawr"].update(enabled=True, baseUrl="https://data.example.org")
    return chart_values


def test_chart_yaml() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "tap-service"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])


def test_default_values_render_api_worker_service_configmap_job() -> None:
    rendered = render_all(production_values())
    kinds = sorted(d["kind"] for docs in rendered.values() for d in docs)
    assert kinds == ["ConfigMap", "Deployment", "Deployment", "Job", "Service"]
    for docs in rendered.values():
        for doc in docs:
            assert {"apiVersion", "kind", "metadata"} <= set(doc)
            assert doc["metadata"]["name"].startswith("tap-tap-service")
    api = rendered["deployment-api.yaml"][0]
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert api["spec"]["replicas"] == 2
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/tap/availability"
    assert container["livenessProbe"]
    assert container["resources"]["limits"]["memory"] == "4Gi"
    assert container["image"] == "ghcr.io/example/tap-service:0.1.0"
    env = {e["name"]: e for e in container["env"]}
    assert env["TAP_CONFIG_FILE"]["value"] == "/etc/tap-service/config.yaml"
    assert env["TAP_S3__SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "tap-secrets",
        "key": "s3-secret-access-key",
    }
    worker = rendered["deployment-worker.yaml"][0]["spec"]["template"]["spec"]
    assert worker["containers"][0]["args"] == ["worker", "--concurrency", "4"]
    assert worker["terminationGracePeriodSeconds"] == 600
    # The configmap's file is the config block, readable as a Config.
    configmap = rendered["configmap.yaml"][0]
    Config.model_validate(yaml.safe_load(configmap["data"]["config.yaml"]))
    job = rendered["job-tap-schema.yaml"][0]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][0] == "load-tap-schema"
    assert "post-install" in job["metadata"]["annotations"]["helm.sh/hook"]


def test_everything_on_renders_hpa_and_gafaelfawr_ingress() -> None:
    rendered = render_all(everything_on())
    hpas = rendered["hpa.yaml"]
    assert [h["spec"]["scaleTargetRef"]["name"] for h in hpas] == [
        "tap-tap-service-api",
        "tap-tap-service-worker",
    ]
    assert "replicas" not in rendered["deployment-api.yaml"][0]["spec"]
    ingress = rendered["ingress.yaml"][0]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/auth-url"] == (
        "https://data.example.org/auth?scope=read:tap"
    )
    assert "X-Auth-Request-User" in annotations["nginx.ingress.kubernetes.io/auth-response-headers"]
    assert ingress["spec"]["rules"][0]["host"] == "data.example.org"
    assert ingress["spec"]["tls"][0]["secretName"] == "tls"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v: v["secrets"].update(existingSecret=""), "secrets.existingSecret"),
        (lambda v: v["image"].update(repository=""), "image.repository"),
        (lambda v: v["ingress"].update(host=""), "ingress.host"),
        (lambda v: v["ingress"]["gafaelfawr"].update(baseUrl=""), "gafaelfawr.baseUrl"),
    ],
)
def test_required_values(change: Any, message: str) -> None:
    chart_values = copy.deepcopy(everything_on())
    change(chart_values)
    with pytest.raises(TemplateError, match=re.escape(message)):
        render_all(chart_values)
