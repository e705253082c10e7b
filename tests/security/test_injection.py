"""SQL injection battery: hostile text in every place a request can put it, on both backends.

The whole app runs in-process over a real database: the embedded DuckDB demo catalog, and the
Qserv backend over the local MariaDB stand-in (scisql stored functions, per-process databases).
Each backend is wrapped (DuckDB) or observed (MariaDB: ``MySQLBackend(observer=...)``) so the
test sees exactly the SQL it received, and asserts:

* a rejected request (400 DALI error) sent the catalog database nothing at all;
* an accepted query reached it as ONE statement in which the hostile text sits only inside
  string literals that decode (by the backend's own escaping rules, MariaDB's backslashes
  included) to exactly the ADQL value, or inside quoted identifiers that are either names from
  TAP_SCHEMA or aliases the query itself declared; outside quotes there is no ``;``, comment or
  second keyword;
* the rows are the ones the literal means (a successful ``' OR 1=1`` would return rows);
* the database is unchanged: the canary table still holds its row.

Request parameters (LANG, FORMAT, MAXREC, REQUEST, RUNID, job ids, parameter names) are
covered at the end; UPLOAD table and column names are in ``test_upload_names`` (to enable when
TAP_UPLOAD is merged).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import duckdb
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from tap_service.config import Config
from tap_service.factory import Factory, open_backend
from tap_service.main import create_app
from tap_service.services.standin import CPOLY_VERTICES, build_standin
from tap_service.storage.mysql_tap_schema import MySQLTapSchema
from tap_service.storage.qserv import MySQLBackend, RoutingBackend
from tests.fixtures.demo_app import build_demo, dali_error
from tests.fixtures.services import mariadb_admin
from tests.security import sqltext

SYNC = "/api/tap/sync"
DB = f"tap_test_inject_{os.getpid()}"
TS_DB = f"tap_test_inject_ts_{os.getpid()}"
URL = f"mysql+pymysql://root@127.0.0.1:3306/{DB}"
TS_URL = f"mysql+pymysql://root@127.0.0.1:3306/{TS_DB}"
CANARY = "canary_do_not_drop"

# The payloads: closing quotes of every kind, statement separators, comments, MariaDB's
# backslash escape, NUL, and Unicode look-alikes.
DROP = f"DROP TABLE {CANARY}"
PAYLOADS = [
    f"x'; {DROP}; --",
    "x' OR '1'='1",
    f"\\'; {DROP}; -- ",  # MariaDB reads \' as a quote unless the backslash is escaped
    "\\",
    f"\\\\'; {DROP}; #",
    f'x"; {DROP}; --',
    f"x`; {DROP}; /*",
    f"*/ ; {DROP}; /*",
    f"a\x00b'; {DROP}",
    f"\u02bc; {DROP}; \uff07 \u2028 \U0001f600",
]


class Recording:
    """The real embedded backend, remembering every SQL text it is asked to run."""

    def __init__(self, inner: Any, sent: list[str]) -> None:
        self._inner = inner
        self.dialect = inner.dialect
        self.sent = sent

    def stream(self, sql: str, **kwargs: Any) -> Any:
        self.sent.append(sql)
        return self._inner.stream(sql, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@dataclass
class Service:
    dialect: str
    client: TestClient
    backend: Any
    sent: list[str] = field(default_factory=list)
    names: set[str] = field(default_factory=set)  # everything TAP_SCHEMA may make a name of

    def canary_rows(self) -> int:
        table = CANARY if self.dialect == "embedded" else f"`{DB}`.`{CANARY}`"
        inner = self.backend.catalog if self.dialect == "qserv" else self.backend
        batches = list(inner.stream(f"SELECT COUNT(*) AS n FROM {table}"))
        return int(pa.Table.from_batches(batches).column("n")[0].as_py())


def _names(factory: Factory) -> set[str]:
    model = factory.tap_schema.model
    names = {"dp02_dc2_catalogs", "TAP_SCHEMA", "tap_schema", DB, TS_DB}
    for table in model.tables():
        names.update({table.schema, table.name, table.sql_schema, table.sql_name})
        for column in table.columns:
            names.update({column.name, column.physical_name or column.name})
    return names


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data_dir = build_demo(tmp_path_factory.mktemp("inject"))
    con = duckdb.connect(str(data_dir / "catalog.duckdb"))
    con.execute(f"CREATE TABLE {CANARY} (x INTEGER)")
    con.execute(f"INSERT INTO {CANARY} VALUES (1)")
    con.close()
    config = Config(data_dir=data_dir, maxrec_default=20)
    sent: list[str] = []
    backend = Recording(open_backend(config), sent)
    factory = Factory(config, backend=backend)  # type: ignore[arg-type]
    with TestClient(create_app(config, factory), raise_server_exceptions=False) as client:
        yield Service("embedded", client, backend, sent, _names(factory))


@pytest.fixture(scope="module")
def qserv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    admin = mariadb_admin()
    build_standin(URL, TS_URL, n_objects=300, n_forced_per_object=2, seed=11)
    with admin.cursor() as cur:
        cur.execute(f"CREATE TABLE `{DB}`.`{CANARY}` (x INT)")
        cur.execute(f"INSERT INTO `{DB}`.`{CANARY}` VALUES (1)")
    config = Config(
        data_dir=tmp_path_factory.mktemp("inject-qserv"),
        backend="qserv",
        maxrec_default=20,
        qserv={
            "url": URL,
            "tap_schema_url": TS_URL,
            "standin_cpoly_vertices": CPOLY_VERTICES,
            "databases": {"dp02_dc2_catalogs": DB},
        },
    )
    sent: list[str] = []
    backend = RoutingBackend(
        MySQLBackend(URL, cpoly_vertices=CPOLY_VERTICES, observer=sent.append),
        MySQLBackend(TS_URL, observer=sent.append),
        databases={"dp02_dc2_catalogs": DB},
    )
    factory = Factory(config, backend=backend)
    try:
        with TestClient(create_app(config, factory), raise_server_exceptions=False) as client:
            yield Service("qserv", client, backend, sent, _names(factory))
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{DB}`")
        MySQLTapSchema(TS_URL).drop()
        admin.close()


@pytest.fixture(params=["embedded", pytest.param("qserv", marks=pytest.mark.mariadb)])
def service(request: pytest.FixtureRequest) -> Service:
    svc: Service = request.getfixturevalue(request.param)
    return svc


def run(svc: Service, query: str, **params: str) -> tuple[int, bytes, list[str]]:
    """POST /sync; the status, the body and the SQL statements the database received."""
    before = len(svc.sent)
    data = {"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv", **params}
    response = svc.client.post(SYNC, data=data)
    assert response.status_code < 500, response.content[:500]
    return response.status_code, response.content, svc.sent[before:]


def assert_safe(
    svc: Service, sql: str, *, aliases: tuple[str, ...] = (), check_names: bool = True
) -> None:
    """One statement; hostile text only in literals and in quoted, legitimate identifiers."""
    code = sqltext.outside_quotes(sql, svc.dialect)  # raises on an unterminated quote
    for marker in (";", "--", "/*", "*/", "#", "DROP", CANARY, "\x00"):
        assert marker not in code, (marker, sql)
    names = sqltext.identifiers(sql, svc.dialect) if check_names else []
    for name in names:
        assert name in svc.names or name in aliases or name.startswith("col_"), (name, sql)
    if svc.dialect == "embedded":
        assert len(duckdb.extract_statements(sql)) == 1, sql


def csv_rows(body: bytes) -> list[list[str]]:
    """The data rows of a CSV result (RFC 4180: quoted fields may hold any character)."""
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))[1:]


# --------------------------------------------------------------------------- identifiers

BAD_NAMES = [
    *PAYLOADS,
    "objectId ",  # trailing blank: not the column
    "objectid",  # delimited identifiers are case-sensitive
    "object\u0399d",  # Greek capital iota for I
    "objectId\x00",
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=range(len(BAD_NAMES)))
def test_unknown_delimited_names_never_reach_the_database(service: Service, name: str) -> None:
    quoted = '"' + name.replace('"', '""') + '"'
    for query in (
        f"SELECT {quoted} FROM dp02_dc2_catalogs.Object",
        f"SELECT objectId FROM dp02_dc2_catalogs.{quoted}",
        f"SELECT objectId FROM {quoted}.Object",
        f"SELECT objectId FROM dp02_dc2_catalogs.Object WHERE {quoted} > 0",
        f"SELECT {quoted}(objectId) FROM dp02_dc2_catalogs.Object",
    ):
        status, body, sent = run(service, query)
        assert status == 400, (query, body[:300])
        dali_error(body)
        assert sent == [], sent


@pytest.mark.parametrize(
    "query",
    [
        f"SELECT objectId FROM dp02_dc2_catalogs.Object; {DROP}",
        f"SELECT objectId FROM dp02_dc2_catalogs.Object /* */ ; {DROP}",
        f"SELECT objectId FROM dp02_dc2_catalogs.Object WHERE 1 = 1 # ; {DROP}",
        f"SELECT objectId FROM dp02_dc2_catalogs.Object WHERE objectId = 1 `; {DROP}`",
        f"{DROP}",
        f"SELECT objectId FROM dp02_dc2_catalogs.Object UNION {DROP}",
    ],
)
def test_second_statements_and_foreign_syntax_are_refused(service: Service, query: str) -> None:
    status, body, sent = run(service, query)
    assert status == 400
    dali_error(body)
    assert sent == []


def test_adql_comment_does_not_reach_sql(service: Service) -> None:
    status, body, sent = run(
        service, f"SELECT TOP 1 objectId FROM dp02_dc2_catalogs.Object -- ; {DROP}\n"
    )
    assert status == 200, body[:300]
    assert len(sent) == 1
    assert_safe(service, sent[0])
    assert DROP not in sent[0]


ALIASES = [*PAYLOADS, "a" * 300, "trailing "]


@pytest.mark.parametrize("alias", ALIASES, ids=range(len(ALIASES)))
def test_hostile_aliases_are_quoted_identifiers(service: Service, alias: str) -> None:
    quoted = '"' + alias.replace('"', '""') + '"'
    query = (
        f"SELECT TOP 2 {quoted}.objectId AS {quoted} FROM dp02_dc2_catalogs.Object AS {quoted} "
        f"ORDER BY {quoted}"
    )
    status, body, sent = run(service, query)
    if status == 400:  # refused (e.g. a name the backend cannot hold): nothing was sent
        message, _ = dali_error(body)
        assert sent == [], (message, sent)
        return
    assert len(sent) == 1, sent
    assert_safe(service, sent[0], aliases=(alias,))
    assert alias in sqltext.identifiers(sent[0], service.dialect)
    assert len(csv_rows(body)) == 2


# --------------------------------------------------------------------------- literals


@pytest.mark.parametrize("value", PAYLOADS, ids=range(len(PAYLOADS)))
def test_hostile_strings_are_exact_literals(service: Service, value: str) -> None:
    literal = "'" + value.replace("'", "''") + "'"
    for query, like in (
        (f"SELECT band FROM dp02_dc2_catalogs.CcdVisit WHERE band = {literal}", False),
        (f"SELECT band FROM dp02_dc2_catalogs.CcdVisit WHERE band IN ('q', {literal})", False),
        (f"SELECT band FROM dp02_dc2_catalogs.CcdVisit WHERE band LIKE {literal}", True),
        (f"SELECT band FROM dp02_dc2_catalogs.CcdVisit WHERE LOWER(band) = {literal}", False),
        (f"SELECT TOP 1 {literal} AS s FROM dp02_dc2_catalogs.CcdVisit", False),
    ):
        status, body, sent = run(service, query)
        assert status == 200, (query, body[:300])
        assert len(sent) == 1, sent
        assert_safe(service, sent[0], aliases=("s",))
        decoded = sqltext.strings(sent[0], service.dialect)
        # MariaDB's LIKE reads backslash as its escape: the dialect doubles it, on purpose.
        expected = value.replace("\\", "\\\\") if like and service.dialect == "qserv" else value
        assert expected in decoded, (decoded, sent[0])
        rows = csv_rows(body)
        if "AS s" in query:
            assert len(rows) == 1
        else:
            assert rows == [], (query, rows[:3])  # no band holds the payload: no rows


def test_backslash_is_an_ordinary_character(service: Service) -> None:
    # ADQL strings have no escapes: '\' is one backslash (MariaDB would read \' as a quote).
    status, body, sent = run(
        service,
        "SELECT TOP 1 '\\' AS a, 'x\\''y' AS b, LENGTH('\\') AS n FROM dp02_dc2_catalogs.CcdVisit",
    )
    if status == 400:
        # LENGTH is not ADQL 2.1 on every backend; fall back to the literals alone.
        status, body, sent = run(
            service, "SELECT TOP 1 '\\' AS a, 'x\\''y' AS b FROM dp02_dc2_catalogs.CcdVisit"
        )
    assert status == 200, body[:300]
    assert_safe(service, sent[0], aliases=("a", "b", "n"))
    row = csv_rows(body)[0]
    assert row[:2] == ["\\", "x\\'y"], row


# --------------------------------------------------------------------------- values

VALUE_ERRORS = [
    "SELECT TOP 2 CAST('abc' AS INTEGER) AS a FROM dp02_dc2_catalogs.CcdVisit",
    "SELECT TOP 2 CAST(1e30 AS INTEGER) AS a FROM dp02_dc2_catalogs.CcdVisit",
    "SELECT TOP 2 CAST(ccdVisitId AS SMALLINT) AS a FROM dp02_dc2_catalogs.CcdVisit",
    "SELECT TOP 2 CAST('2020-13-45' AS TIMESTAMP) AS a FROM dp02_dc2_catalogs.CcdVisit",
    "SELECT TOP 2 ccdVisitId + 9223372036854775807 AS a FROM dp02_dc2_catalogs.CcdVisit",
    "SELECT TOP 2 9999999999999999999999999999999999999999 AS a FROM dp02_dc2_catalogs.CcdVisit",
    "SELECT TOP 2 99999999999999999999 * 99999999999999999999 AS a FROM dp02_dc2_catalogs.CcdVisit",
]


@pytest.mark.parametrize("query", VALUE_ERRORS, ids=range(len(VALUE_ERRORS)))
def test_values_the_database_refuses_are_client_errors(service: Service, query: str) -> None:
    # A valid query whose values the database cannot hold: a 400 naming the value (it comes
    # from the data, so there is no position), never a 500 or an error after the rows.
    status, body, _ = run(service, query)
    if "ccdVisitId + 9223372036854775807" in query:  # BIGINT overflow on both databases
        assert status == 400
        assert dali_error(body)[0].startswith("The query failed on a value"), body[-300:]
    if status == 400:
        message, infos = dali_error(body)
        # Refused before running (e.g. CAST on Qserv) names a position; a value cannot.
        assert message.startswith("The query failed on a value") or "LINE" in infos, message
    else:
        assert status == 200, body[:300]
        assert b"QUERY_STATUS=ERROR" not in body, body[-300:]
        assert len(csv_rows(body)) == 2


# --------------------------------------------------------------------------- state


def test_database_unchanged(service: Service) -> None:
    # Runs last in the module for each backend (pytest keeps file order).
    assert service.canary_rows() == 1


# --------------------------------------------------------------------------- parameters

HOSTILE_VALUES = [*PAYLOADS, "0 OR 1=1", "-1", "1e99", "nan", "99999999999999999999999"]


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=range(len(HOSTILE_VALUES)))
def test_hostile_parameter_values(embedded: Service, value: str) -> None:
    query = "SELECT TOP 3 band FROM dp02_dc2_catalogs.CcdVisit"
    for name in ("LANG", "RESPONSEFORMAT", "FORMAT", "MAXREC", "REQUEST"):
        params = {"LANG": "ADQL", "QUERY": query, name: value}
        before = len(embedded.sent)
        response = embedded.client.post(SYNC, data=params)
        sent = embedded.sent[before:]
        assert response.status_code in (200, 400), (name, response.content[:300])
        if response.status_code == 400:
            dali_error(response.content)
            assert sent == [], (name, sent)
        else:  # the value was ignored or capped: the query is the query
            assert len(sent) == 1
            assert value not in sent[0]
        # The parameter name itself, and the value under an unknown name, are ignored.
        params = {"LANG": "ADQL", "QUERY": query, value or "x": value}
        assert embedded.client.post(SYNC, data=params).status_code == 200


@pytest.mark.parametrize("value", PAYLOADS, ids=range(len(PAYLOADS)))
def test_runid_and_job_ids(embedded: Service, value: str) -> None:
    client = embedded.client
    created = client.post(
        "/api/tap/async",
        data={"LANG": "ADQL", "QUERY": "SELECT TOP 1 band FROM dp02_dc2_catalogs.CcdVisit",
              "RUNID": value},
        follow_redirects=False,
    )  # fmt: skip
    assert created.status_code == 303, created.content[:300]
    job_url = created.headers["location"]
    document = client.get(job_url)
    assert document.status_code == 200
    # The job store kept the value verbatim (a bound parameter, never SQL text); XML escapes it.
    from xml.etree import ElementTree as ET

    root = ET.fromstring(document.content)
    runid = root.find("{http://www.ivoa.net/xml/UWS/v1.0}runId")
    expected = value.replace("\x00", "\ufffd")
    assert runid is not None
    assert runid.text in (value, expected, value.replace("\x00", "")), runid.text
    # Hostile job ids name no job, and leave the store as it was.
    job_id = quote(value, safe="")
    for path in (f"/api/tap/async/{job_id}", f"/api/tap/async/{job_id}/phase"):
        response = client.get(path)
        assert response.status_code in (400, 404), (path, response.status_code)
    assert client.get(job_url).status_code == 200
    deleted = client.post(job_url, data={"ACTION": "DELETE"}, follow_redirects=False)
    assert deleted.status_code == 303


@pytest.mark.parametrize("value", PAYLOADS, ids=range(len(PAYLOADS)))
def test_datalink_parameters(embedded: Service, value: str) -> None:
    # DataLink builds ADQL itself: the ID must be an integer, names must be TAP_SCHEMA's.
    before = len(embedded.sent)
    plain = embedded.client.get("/api/datalink/timeseries", params={"ID": "1249537790362800271"})
    assert plain.status_code == 200, plain.content[:300]
    assert len(embedded.sent) > before  # the light curve did reach the database
    for name in ("ID", "table", "id_column", "join_time_column", "band", "detail"):
        params = {"ID": "1249537790362800271", name: value}
        for path in ("/api/datalink/timeseries", "/api/datalink/links"):
            before = len(embedded.sent)
            response = embedded.client.get(path, params=params)
            sent = embedded.sent[before:]
            assert response.status_code in (200, 400, 404), (path, name, response.content[:300])
            for sql in sent:
                assert_safe(embedded, sql, aliases=("t", "v", "mjd"), check_names=False)
                assert value not in sql, (name, sql)


# --------------------------------------------------------------------------- uploads

UPLOAD_NAMES = [
    *PAYLOADS,
    "TAP_SCHEMA",
    "a.b",
    '"quoted"',
    "1starts_with_digit",
    "",
]


def _votable(column: str) -> bytes:
    from xml.sax.saxutils import quoteattr

    return (
        '<?xml version="1.0"?><VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
        f'<RESOURCE><TABLE><FIELD name={quoteattr(column)} datatype="int"/>'
        "<DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
    ).encode()


# The cases assume only what TAP 1.1 says: UPLOAD=name,param:part with the VOTable in a multipart
# part; a hostile table or column name is refused with a 400 DALI error, or quoted as a name.
@pytest.mark.parametrize("name", UPLOAD_NAMES, ids=range(len(UPLOAD_NAMES)))
def test_upload_names(embedded: Service, name: str) -> None:
    for table, column in ((name, "c"), ("t", name)):
        before = len(embedded.sent)
        response = embedded.client.post(
            SYNC,
            data={
                "LANG": "ADQL",
                "QUERY": f'SELECT * FROM TAP_UPLOAD."{table.replace(chr(34), chr(34) * 2)}"',
                "UPLOAD": f"{table},param:t1",
            },
            files={"t1": ("t.xml", _votable(column), "application/x-votable+xml")},
        )
        sent = embedded.sent[before:]
        assert response.status_code in (200, 400), response.content[:300]
        if response.status_code == 400:
            dali_error(response.content)
            if name:
                assert all(name not in sql for sql in sent), sent
        else:
            # How uploads are named in SQL is the upload code's choice: check the structure.
            for sql in sent:
                assert_safe(embedded, sql, check_names=False)
    assert embedded.canary_rows() == 1


def test_canary_survives_everything(embedded: Service) -> None:
    assert embedded.canary_rows() == 1
