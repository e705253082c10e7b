"""tokens mode through the app (FastAPI's test client): 401/403, ownership, quotas, logs."""

from __future__ import annotations

import base64
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tap_service.adql.dialects.embedded import setup_statements
from tap_service.config import Config
from tap_service.factory import Factory
from tap_service.main import create_app
from tap_service.services.demo_catalog import build_demo_catalog
from tap_service.services.quotas import MemoryCounters, QuotaService
from tap_service.storage.embedded import EmbeddedDatabase

BASE = "/api/tap"
QUERY = "SELECT TOP 3 objectId FROM dp02_dc2_catalogs.Object"
SYNC = {"LANG": "ADQL", "QUERY": QUERY}
NS = {"uws": "http://www.ivoa.net/xml/UWS/v1.0", "xlink": "http://www.w3.org/1999/xlink"}


class HoldingQueue:
    """A job queue that never runs anything: queued jobs stay QUEUED (they hold quota)."""

    def enqueue(self, job_id: str) -> None:
        return None

    def abort(self, job_id: str) -> None:
        return None

    def check(self) -> None:
        return None

    def close(self) -> None:
        return None


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth")
    with EmbeddedDatabase(path, setup_statements=setup_statements()) as db:
        build_demo_catalog(db, n_objects=500, n_forced_per_object=2, seed=3)
    return path


def make_client(data_dir: Path, **auth: object) -> tuple[Factory, TestClient]:
    config = Config(data_dir=data_dir, maxrec_default=50)
    config.auth.mode = "tokens"
    for name, value in auth.items():
        setattr(config.auth, name, value)
    factory = Factory(config)
    return factory, TestClient(create_app(factory=factory))


@pytest.fixture(scope="module")
def app(data_dir: Path) -> Iterator[tuple[Factory, TestClient]]:
    factory, client = make_client(data_dir)
    with client:
        yield factory, client


@pytest.fixture(scope="module")
def tokens(app: tuple[Factory, TestClient]) -> dict[str, str]:
    store = app[0].token_store
    return {
        "alice": store.create("alice", ["read:tap"])[0],
        "bob": store.create("bob", ["read:tap", "exec:notebook"])[0],
        "carol": store.create("carol", ["read:image"])[0],
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def test_no_credentials_is_401_with_basic_and_bearer_challenges(
    app: tuple[Factory, TestClient],
) -> None:
    client = app[1]
    for method, path in (("GET", "/sync"), ("GET", "/async"), ("POST", "/async")):
        response = client.request(method, f"{BASE}{path}", params=SYNC)
        assert response.status_code == 401, path
        challenges = response.headers.get_list("www-authenticate")
        assert 'Basic realm="tap"' in challenges
        assert any(c.startswith("Bearer") for c in challenges)
        assert b"Authentication required" in response.content
    assert client.get("/api/datalink/timeseries", params={"ID": "1"}).status_code == 401


def test_every_accepted_credential_form(
    app: tuple[Factory, TestClient], tokens: dict[str, str]
) -> None:
    client = app[1]
    token = tokens["alice"]
    for headers in (
        bearer(token),
        basic("x-oauth-basic", token),
        basic("alice", token),
        basic(token, ""),
    ):
        response = client.get(f"{BASE}/sync", params=SYNC, headers=headers)
        assert response.status_code == 200, (headers, response.text)
        assert b"<TABLE" in response.content


def test_bad_token_is_401_and_missing_scope_is_403(
    app: tuple[Factory, TestClient], tokens: dict[str, str]
) -> None:
    client = app[1]
    bad = tokens["alice"][:-2] + "zz"
    response = client.get(f"{BASE}/sync", params=SYNC, headers=bearer(bad))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"] + ",".join(
        response.headers.get_list("www-authenticate")
    )
    response = client.get(f"{BASE}/sync", params=SYNC, headers=bearer(tokens["carol"]))
    assert response.status_code == 403
    assert b"read:tap" in response.content


def test_metadata_endpoints_stay_anonymous_and_declare_security(
    app: tuple[Factory, TestClient],
) -> None:
    client = app[1]
    for path in ("availability", "capabilities", "tables", "examples"):
        assert client.get(f"{BASE}/{path}").status_code == 200, path
    root = ET.fromstring(client.get(f"{BASE}/capabilities").content)
    methods: dict[str, list[str | None]] = {}
    for capability in root.iter("capability"):
        methods[capability.get("standardID") or ""] = [
            (sm.get("standardID") if (sm := interface.find("securityMethod")) is not None else None)
            for interface in capability.iter("interface")
        ]
    assert methods["ivo://ivoa.net/std/TAP"] == [
        "ivo://ivoa.net/sso#token",
        "ivo://ivoa.net/sso#BasicAA",
    ]
    assert methods["ivo://ivoa.net/std/VOSI#availability"] == [None]
    assert methods["ivo://ivoa.net/std/VOSI#tables-1.1"] == [None]


def test_protected_metadata_when_configured(data_dir: Path) -> None:
    factory, client = make_client(data_dir, anonymous_endpoints=["availability", "capabilities"])
    with client:
        assert client.get(f"{BASE}/availability").status_code == 200
        assert client.get(f"{BASE}/tables").status_code == 401
        token = factory.token_store.create("dave", ["read:tap"])[0]
        assert client.get(f"{BASE}/tables", headers=bearer(token)).status_code == 200
        root = ET.fromstring(client.get(f"{BASE}/capabilities").content)
        tables = next(
            c for c in root.iter("capability") if c.get("standardID", "").endswith("tables-1.1")
        )
        assert tables.find("interface/securityMethod") is not None


def run_job(client: TestClient, headers: dict[str, str]) -> str:
    response = client.post(
        f"{BASE}/async",
        data={"LANG": "ADQL", "QUERY": QUERY, "PHASE": "RUN"},
        headers=headers,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    job_id = str(response.headers["location"]).rsplit("/", 1)[1]
    for _ in range(20):  # WAIT returns at each phase change
        phase = client.get(f"{BASE}/async/{job_id}/phase", headers=headers).text
        if phase not in ("QUEUED", "EXECUTING"):
            break
        client.get(f"{BASE}/async/{job_id}", params={"WAIT": "5"}, headers=headers)
    assert phase == "COMPLETED"
    return job_id


def test_other_users_jobs_are_not_found_on_every_sub_resource(
    app: tuple[Factory, TestClient], tokens: dict[str, str]
) -> None:
    client = app[1]
    alice, bob = bearer(tokens["alice"]), bearer(tokens["bob"])
    job_id = run_job(client, alice)
    pending = (
        client.post(f"{BASE}/async", data=SYNC, headers=alice, follow_redirects=False)
        .headers["location"]
        .rsplit("/", 1)[1]
    )
    results = ET.fromstring(client.get(f"{BASE}/async/{job_id}/results", headers=alice).content)
    result = results.find("uws:result", NS)
    assert result is not None
    href = result.get(f"{{{NS['xlink']}}}href")
    assert href is not None
    result_path = href.split("testserver", 1)[1]
    assert client.get(result_path, headers=alice).status_code == 200
    assert client.get(f"{BASE}/async/{job_id}/owner", headers=alice).text == "alice"

    job = f"{BASE}/async/{job_id}"
    reads = [
        job,
        f"{job}?WAIT=1",
        f"{job}/phase",
        f"{job}/executionduration",
        f"{job}/destruction",
        f"{job}/quote",
        f"{job}/owner",
        f"{job}/parameters",
        f"{job}/results",
        result_path,
        f"{job}/error",
    ]
    for path in reads:
        response = client.get(path, headers=bob)
        assert response.status_code == 404, (path, response.status_code)
        assert job_id.encode() in response.content or b"nothing" in response.content
    other = f"{BASE}/async/{pending}"
    writes = [
        (other, {"QUERY": "SELECT 1"}),
        (other, {"PHASE": "RUN"}),
        (f"{other}/phase", {"PHASE": "RUN"}),
        (f"{job}/phase", {"PHASE": "ABORT"}),
        (f"{other}/parameters", {"MAXREC": "1"}),
        (f"{other}/executionduration", {"EXECUTIONDURATION": "5"}),
        (f"{job}/destruction", {"DESTRUCTION": "2030-01-01T00:00:00Z"}),
        (job, {"ACTION": "DELETE"}),
    ]
    for path, data in writes:
        response = client.post(path, data=data, headers=bob, follow_redirects=False)
        assert response.status_code == 404, (path, data, response.status_code)
    for path in (job, other):
        assert client.delete(path, headers=bob, follow_redirects=False).status_code == 404
    listing = client.get(f"{BASE}/async", headers=bob).text
    assert job_id not in listing
    assert pending not in listing
    # Nothing bob tried changed alice's jobs.
    assert client.get(f"{job}/phase", headers=alice).text == "COMPLETED"
    assert client.get(f"{other}/phase", headers=alice).text == "PENDING"
    assert "SELECT 1" not in client.get(f"{other}/parameters", headers=alice).text
    listing = client.get(f"{BASE}/async", headers=alice).text
    assert job_id in listing
    assert pending in listing
    # Basic with the same token is the same user.
    assert client.get(f"{job}/phase", headers=basic("x-oauth-basic", tokens["alice"])).text == (
        "COMPLETED"
    )


def test_tokens_never_reach_the_log(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    factory, client = make_client(data_dir)
    caplog.set_level(logging.DEBUG)
    with client:
        token = factory.token_store.create("erin", ["read:tap"])[0]
        wrong = token[:-3] + "abc"
        for headers in (bearer(token), bearer(wrong), basic("x-oauth-basic", wrong), {}):
            client.get(f"{BASE}/sync", params=SYNC, headers=headers)
        client.get(f"{BASE}/sync", params={"QUERY": "SELEC broken"}, headers=bearer(token))
    text = "\n".join(r.getMessage() for r in caplog.records)
    secret = token.split(".", 1)[1]
    assert secret not in text
    assert wrong.split(".", 1)[1] not in text


# -- quotas -------------------------------------------------------------------------------------


def quota_client(data_dir: Path, **quotas: object) -> tuple[Factory, TestClient]:
    factory, client = make_client(data_dir)
    factory.config.quotas.enabled = True
    for name, value in quotas.items():
        setattr(factory.config.quotas, name, value)
    return factory, client


def test_thirteenth_concurrent_query_is_refused_while_another_user_runs(data_dir: Path) -> None:
    factory, client = quota_client(data_dir, concurrent_queries=12, requests_per_minute=0)
    factory._job_queue = HoldingQueue()  # jobs stay QUEUED: each holds one of 12 slots
    with client:
        alice = bearer(factory.token_store.create("alice", ["read:tap"])[0])
        bob = bearer(factory.token_store.create("bob", ["read:tap"])[0])
        ids = []
        for _ in range(12):
            response = client.post(
                f"{BASE}/async",
                data={"LANG": "ADQL", "QUERY": QUERY, "PHASE": "RUN"},
                headers=alice,
                follow_redirects=False,
            )
            assert response.status_code == 303, response.text
            ids.append(response.headers["location"].rsplit("/", 1)[1])
        assert all(
            client.get(f"{BASE}/async/{i}/phase", headers=alice).text == "QUEUED" for i in ids
        )
        # The 13th: a PENDING job asked to run stays PENDING, with 429 and Retry-After.
        thirteenth = (
            client.post(f"{BASE}/async", data=SYNC, headers=alice, follow_redirects=False)
            .headers["location"]
            .rsplit("/", 1)[1]
        )
        response = client.post(
            f"{BASE}/async/{thirteenth}/phase",
            data={"PHASE": "RUN"},
            headers=alice,
            follow_redirects=False,
        )
        assert response.status_code == 429, response.text
        assert int(response.headers["retry-after"]) > 0
        assert b"12 queries at once" in response.content
        assert client.get(f"{BASE}/async/{thirteenth}/phase", headers=alice).text == "PENDING"
        # Created with PHASE=RUN over the limit: refused, and no job is kept.
        before = client.get(f"{BASE}/async", headers=alice).text.count("<uws:jobref")
        response = client.post(
            f"{BASE}/async",
            data={"LANG": "ADQL", "QUERY": QUERY, "PHASE": "RUN"},
            headers=alice,
            follow_redirects=False,
        )
        assert response.status_code == 429
        assert client.get(f"{BASE}/async", headers=alice).text.count("<uws:jobref") == before
        # A sync query of alice is over the limit too; bob is not affected.
        response = client.get(f"{BASE}/sync", params=SYNC, headers=alice)
        assert response.status_code == 429
        assert "retry-after" in response.headers
        assert client.get(f"{BASE}/sync", params=SYNC, headers=bob).status_code == 200
        response = client.post(
            f"{BASE}/async",
            data={"LANG": "ADQL", "QUERY": QUERY, "PHASE": "RUN"},
            headers=bob,
            follow_redirects=False,
        )
        assert response.status_code == 303
        # One of alice's jobs ends: the 13th may run.
        assert client.delete(f"{BASE}/async/{ids[0]}", headers=alice).status_code == 200
        response = client.post(
            f"{BASE}/async/{thirteenth}/phase",
            data={"PHASE": "RUN"},
            headers=alice,
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert client.get(f"{BASE}/async/{thirteenth}/phase", headers=alice).text == "QUEUED"


def test_request_rate_limit_answers_429_with_retry_after(data_dir: Path) -> None:
    factory, client = quota_client(data_dir, requests_per_minute=5, concurrent_queries=0)
    # A fixed clock 20 s into a minute: the window cannot turn over during the test.
    factory._quota_service = QuotaService(
        factory.config.quotas, MemoryCounters(), clock=lambda: 60.0 * 29_000_000 + 20
    )
    with client:
        alice = bearer(factory.token_store.create("alice", ["read:tap"])[0])
        bob = bearer(factory.token_store.create("bob", ["read:tap"])[0])
        for _ in range(5):
            response = client.get(f"{BASE}/sync", params=SYNC, headers=alice)
            assert response.status_code == 200
        response = client.get(f"{BASE}/async", headers=alice)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "41"
        assert b"requests this minute" in response.content
        assert client.get(f"{BASE}/sync", params=SYNC, headers=bob).status_code == 200


def test_mode_none_keeps_jobs_shared_and_anonymous(data_dir: Path) -> None:
    factory = Factory(Config(data_dir=data_dir))
    with TestClient(create_app(factory=factory)) as client:
        assert client.get(f"{BASE}/sync", params=SYNC).status_code == 200
        root = ET.fromstring(client.get(f"{BASE}/capabilities").content)
        assert root.find(".//securityMethod") is None


# -- trusted-header mode --------------------------------------------------------------------------


def test_trusted_header_mode_through_the_app(data_dir: Path) -> None:
    config = Config(data_dir=data_dir, maxrec_default=50)
    config.auth.mode = "trusted-header"
    config.auth.trusted_proxies = ["10.0.0.0/8"]
    app = create_app(factory=Factory(config))
    user = {"X-Auth-Request-User": "alice"}
    with TestClient(app, client=("10.0.0.7", 40000)) as ingress:
        response = ingress.get(f"{BASE}/sync", params=SYNC, headers=user)
        assert response.status_code == 200
        created = ingress.post(
            f"{BASE}/async", data=SYNC, headers=user, follow_redirects=False
        ).headers["location"]
        assert ingress.get(f"{created}/owner", headers=user).text == "alice"
        other = {"X-Auth-Request-User": "bob"}
        assert ingress.get(f"{created}/owner", headers=other).status_code == 404
        assert ingress.get(f"{BASE}/sync", params=SYNC).status_code == 401
        root = ET.fromstring(ingress.get(f"{BASE}/capabilities").content)
        assert root.find(".//securityMethod") is not None
    # The same header from any other peer is not believed.
    with TestClient(app, client=("192.168.1.9", 40000)) as outsider:
        response = outsider.get(f"{BASE}/sync", params=SYNC, headers=user)
        assert response.status_code == 401
