"""The web page at / in a real browser (Debian's Chromium through Playwright).

Each test opens a fresh tab on a running ``tap-service serve`` and checks what the page shows
against the service's own documents read independently here (examples, capabilities, CSV
results). Screenshots of every step land in test-artifacts/web/.
"""

from __future__ import annotations

import csv
import io
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from tests.integration.conftest import RunningService, cli, start_service, stop_service
from tests.integration.web.conftest import (
    RUBIN_DATALINK,
    PageErrors,
    open_page,
    require_chromium,
    site_root,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]

XHTML = "{http://www.w3.org/1999/xhtml}"
BRIGHT = "Bright point sources in a box"
BAD_QUERY = "SELECT TOP 5 objectId,\n  coord_ra FRM dp02_dc2_catalogs.Object"
ASYNC_QUERY = (
    "SELECT TOP 7 objectId, coord_ra, coord_dec FROM dp02_dc2_catalogs.Object ORDER BY objectId"
)


def examples(tap_url: str) -> dict[str, str]:
    """Example name → query, read from the DALI examples document with ElementTree."""
    root = ET.fromstring(requests.get(f"{tap_url}/examples", timeout=30).content)
    found = {}
    for node in root.iter():
        if node.get("typeof") == "example":
            name = next(n for n in node.iter() if n.get("property") == "name")
            query = next(n for n in node.iter() if n.get("property") == "query")
            found["".join(name.itertext()).strip()] = "".join(query.itertext()).strip()
    return found


def declared_formats(tap_url: str) -> list[str]:
    """The first alias (else the MIME type) of every outputFormat in /capabilities."""
    root = ET.fromstring(requests.get(f"{tap_url}/capabilities", timeout=30).content)
    values = []
    for output in root.iter("outputFormat"):
        aliases = [alias.text or "" for alias in output.iter("alias")]
        values.append(aliases[0] if aliases else output.findtext("mime", ""))
    return values


def csv_rows(tap_url: str, query: str, headers: dict[str, str] | None = None) -> list[list[str]]:
    response = requests.post(
        f"{tap_url}/sync",
        data={"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv"},
        headers=headers,
        timeout=60,
    )
    response.raise_for_status()
    return list(csv.reader(io.StringIO(response.text)))[1:]


def shown_rows(page: Page) -> list[list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        "#results-table tbody tr",
        "rows => rows.map(r => Array.from(r.querySelectorAll('td:not(:has(button))'))"
        ".map(td => td.textContent))",
    )
    return rows


def choose_example(page: Page, name: str) -> None:
    page.select_option("#example-select", label=name)
    page.click("#example-load")


def screenshot(page: Page, path: Path, *, full_page: bool = False) -> None:
    """From the top of the page, so the sticky table list sits where a reader expects it."""
    if full_page:
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=full_page)


def wait_for_plot(page: Page) -> int:
    page.wait_for_function(
        "() => { const img = document.getElementById('lightcurve-img');"
        " return !img.hidden && img.complete && img.naturalWidth > 0; }"
    )
    width: int = page.eval_on_selector("#lightcurve-img", "img => img.naturalWidth")
    return width


@pytest.fixture
def page(browser: Browser, web_service: RunningService, page_errors: PageErrors) -> Iterator[Page]:
    tab = open_page(browser, f"{site_root(web_service)}/", page_errors)
    yield tab
    tab.context.close()
    assert not page_errors, f"JavaScript errors on the page: {page_errors}"


def test_a_missing_chromium_fails_naming_make_system_deps(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"run `make system-deps`"):
        require_chromium(tmp_path / "chromium")


def test_base_url_sends_browsers_to_the_page_and_clients_keep_the_landing(
    web_service: RunningService,
) -> None:
    browser_like = requests.get(
        web_service.base_url, headers={"Accept": "text/html"}, allow_redirects=False, timeout=10
    )
    assert browser_like.status_code == 303
    assert browser_like.headers["location"].endswith("/")
    client = requests.get(web_service.base_url, timeout=10)
    assert client.status_code == 200
    assert "Point TOPCAT or pyvo at this URL" in client.text
    assert 'href="/"' in client.text
    root = site_root(web_service)
    page = requests.get(f"{root}/", timeout=10)
    assert 'meta name="tap-base" content="/api/tap"' in page.text
    script = requests.get(f"{root}/web/app.js", timeout=10)
    assert script.headers["content-type"].startswith("text/javascript")
    assert requests.get(f"{root}/web/index.py", timeout=10).status_code == 404


def test_example_runs_shows_rows_units_downloads_and_a_light_curve(
    page: Page, web_service: RunningService, shots: Path
) -> None:
    tap_url = web_service.base_url
    known = examples(tap_url)
    names = page.eval_on_selector_all(
        "#example-select option:not([value=''])", "options => options.map(o => o.textContent)"
    )
    assert names == list(known)

    choose_example(page, BRIGHT)
    assert page.input_value("#editor") == known[BRIGHT]
    expect(page.locator("#gutter > div")).to_have_count(known[BRIGHT].count("\n") + 1)
    page.click("#run-sync")
    page.wait_for_selector("#results-table tbody tr")

    expected = csv_rows(tap_url, known[BRIGHT])
    assert expected, "the example should select rows from the demo catalog"
    assert shown_rows(page) == expected
    expect(page.locator("#results-status")).to_contain_text(f"{len(expected)} rows")
    headers = page.eval_on_selector_all("#results-table th", "ths => ths.map(t => t.innerText)")
    assert headers[0] == "Light curve"
    assert any(h.startswith("coord_ra") and "[deg]" in h for h in headers)
    assert any(h.startswith("r_psfFlux") and "[nJy]" in h for h in headers)

    links = page.eval_on_selector_all(
        "#downloads a", "links => links.map(a => [a.textContent, a.href])"
    )
    assert [label for label, _ in links] == declared_formats(tap_url)
    csv_link = dict(links)["csv"]
    downloaded = list(csv.reader(io.StringIO(requests.get(csv_link, timeout=60).text)))[1:]
    assert downloaded == expected
    screenshot(page, shots / "01-example-results.png", full_page=True)

    first_id = expected[0][0]
    page.click(f"button[aria-label='Plot the light curve of {first_id}']")
    assert wait_for_plot(page) == 800  # the service's PNG is 800×450
    expect(page.locator("#lightcurve-heading")).to_have_text(f"Light curve of {first_id}")
    page.select_option("#lightcurve-band", "r")
    page.wait_for_function(
        "document.getElementById('lightcurve-status').textContent.includes('band r')"
    )
    assert wait_for_plot(page) == 800
    screenshot(page, shots / "02-light-curve.png", full_page=True)


def test_adql_error_position_is_marked_in_the_editor(page: Page, shots: Path) -> None:
    page.fill("#editor", BAD_QUERY)
    page.focus("#editor")
    page.keyboard.press("Control+Enter")
    error = page.locator("#query-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("line 2, column 16")
    # The offending token is selected, its line number flagged, and a marker drawn under it.
    selected = page.evaluate(
        "() => { const e = document.getElementById('editor');"
        " return [e.value.slice(e.selectionStart, e.selectionEnd), document.activeElement.id]; }"
    )
    assert selected == ["dp02_dc2_catalogs", "editor"]
    expect(page.locator("#gutter .error-line")).to_have_text("2")
    mark = page.locator("#backdrop mark.error-mark")
    expect(mark).to_have_text("dp02_dc2_catalogs")
    box, editor = mark.bounding_box(), page.locator("#editor").bounding_box()
    assert box
    assert editor
    assert box["width"] > 50
    assert editor["y"] < box["y"] < editor["y"] + editor["height"]
    expect(page.locator("#editor-position")).to_have_text("Line 2, column 16")
    screenshot(page, shots / "03-adql-error.png")

    # Editing the query clears the marker.
    page.keyboard.type("FROM ")
    expect(mark).to_have_count(0)
    expect(error).to_be_hidden()


def test_async_job_is_listed_polled_and_its_result_shown(
    page: Page, web_service: RunningService, shots: Path
) -> None:
    page.fill("#editor", ASYNC_QUERY)
    page.click("#run-async")
    phase = page.locator("#jobs-table tbody tr").first.locator(".phase")
    expect(phase).to_have_text("COMPLETED", timeout=30_000)
    expect(page.locator("#results-status")).to_contain_text("7 rows from async job")
    assert shown_rows(page) == csv_rows(web_service.base_url, ASYNC_QUERY)
    job_url = page.get_attribute("#jobs-table tbody tr a", "href")
    assert job_url
    job = requests.get(f"{site_root(web_service)}{job_url}/phase", timeout=10)
    assert job.text.strip() == "COMPLETED"
    screenshot(page, shots / "04-async-job.png", full_page=True)

    # A job failing on an ADQL error: ERROR in the list, the position marked in the editor.
    page.fill("#editor", BAD_QUERY)
    page.click("#run-async")
    failed = page.locator("#jobs-table tbody tr").first
    expect(failed.locator(".phase")).to_have_text("ERROR", timeout=30_000)
    expect(failed).to_contain_text("Syntax error at line 2, column 16")
    expect(page.locator("#backdrop mark.error-mark")).to_have_text("dp02_dc2_catalogs")
    expect(page.locator("#jobs-table tbody tr")).to_have_count(2)


def test_results_are_paged_and_an_overflow_is_reported(
    page: Page, web_service: RunningService
) -> None:
    query = "SELECT objectId, coord_ra FROM dp02_dc2_catalogs.Object ORDER BY objectId"
    page.fill("#editor", query)
    page.fill("#maxrec", "120")
    page.click("#run-sync")
    expect(page.locator("#results-status")).to_contain_text("120 rows")
    expect(page.locator("#results-status")).to_contain_text("cut at MAXREC=120")
    expected = csv_rows(web_service.base_url, query.replace("SELECT", "SELECT TOP 120"))
    assert shown_rows(page) == expected[:50]
    expect(page.locator("#page-info")).to_have_text("Rows 1–50 of 120 (page 1 of 3)")
    expect(page.locator("#page-prev")).to_be_disabled()
    page.click("#page-next")
    assert shown_rows(page) == expected[50:100]
    page.click("#page-next")
    assert shown_rows(page) == expected[100:]
    expect(page.locator("#page-next")).to_be_disabled()
    page.select_option("#page-size", "100")
    assert shown_rows(page) == expected[:100]
    expect(page.locator("#page-info")).to_have_text("Rows 1–100 of 120 (page 1 of 2)")


def test_schema_browser_shows_columns_and_writes_a_query(page: Page, shots: Path) -> None:
    button = page.locator("button[aria-label='Write a query on dp02_dc2_catalogs.Object']")
    table = page.locator(".table-node", has=button)
    table.locator("details.columns > summary").click()
    column = table.locator(".column", has=page.locator("code", has_text=re.compile("^coord_ra$")))
    expect(column.locator(".column-unit")).to_have_text("deg")
    expect(column.locator(".column-ucd")).to_have_text("pos.eq.ra;meta.main")
    expect(column.locator(".column-description")).to_contain_text("Right Ascension")
    screenshot(page, shots / "05-schema-browser.png")
    table.locator("button.table-button").click()
    assert page.input_value("#editor") == "SELECT TOP 100 *\nFROM dp02_dc2_catalogs.Object"
    page.fill("#schema-filter", "forced")
    expect(page.locator(".table-node:visible")).to_have_count(1)


def focused(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate(
        """() => {
            const el = document.activeElement;
            // The editor's ring is drawn on its box (the textarea sits over the error marker).
            const ringed = el.id === 'editor' ? document.getElementById('editor-box') : el;
            const style = getComputedStyle(ringed);
            return {id: el.id, tag: el.tagName, inResults: !!el.closest('#results'),
                    outline: style.outlineStyle, width: parseFloat(style.outlineWidth),
                    label: el.getAttribute('aria-label') || el.textContent.trim()};
        }"""
    )
    return state


def tab_until(page: Page, done: Any, limit: int = 25) -> list[dict[str, Any]]:
    path = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        state = focused(page)
        path.append(state)
        # Every stop shows where the focus is.
        assert state["outline"] != "none", state
        assert state["width"] >= 2, state
        if done(state):
            return path
    raise AssertionError(f"Tab never reached the target; went through {path}")


def test_keyboard_only_main_flow(page: Page, web_service: RunningService, shots: Path) -> None:
    # Tab to the skip link, follow it, then Tab to the example picker.
    first = tab_until(page, lambda s: s["tag"] == "A", limit=1)
    assert first[0]["label"] == "Skip to the ADQL query"
    page.keyboard.press("Enter")
    tab_until(page, lambda s: s["id"] == "example-select", limit=1)
    known = examples(web_service.base_url)
    for _ in range(list(known).index(BRIGHT) + 1):
        page.keyboard.press("ArrowDown")
    assert page.eval_on_selector("#example-select", "s => s.selectedOptions[0].text") == BRIGHT
    tab_until(page, lambda s: s["id"] == "example-load", limit=1)
    page.keyboard.press("Space")
    assert focused(page)["id"] == "editor"
    assert page.input_value("#editor") == known[BRIGHT]
    # Shift+Tab and Tab again: the editor is reached by Tab too.
    page.keyboard.press("Shift+Tab")
    tab_until(page, lambda s: s["id"] == "editor", limit=1)

    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#results-table tbody tr")
    path = tab_until(page, lambda s: s["inResults"])
    assert [s["id"] for s in path[:3]] == ["maxrec", "run-sync", "run-async"]
    assert path[-1]["label"].startswith("Download as")
    tab_until(page, lambda s: s["label"].startswith("Plot the light curve"))
    screenshot(page, shots / "06-keyboard-focus.png")
    page.keyboard.press("Enter")
    assert wait_for_plot(page) == 800
    assert focused(page)["id"] == "lightcurve-heading"


ROLES = {"button", "textbox", "searchbox", "combobox", "spinbutton", "checkbox", "link", "radio"}


def unnamed_controls(page: Page) -> tuple[int, list[dict[str, Any]]]:
    """Chromium's own accessibility tree: every control role and whether it has a name."""
    session = page.context.new_cdp_session(page)
    nodes = session.send("Accessibility.getFullAXTree")["nodes"]
    controls = [
        node
        for node in nodes
        if not node.get("ignored") and node.get("role", {}).get("value") in ROLES
    ]
    unnamed = [node for node in controls if not str(node.get("name", {}).get("value", "")).strip()]
    return len(controls), unnamed


def visible_controls(page: Page) -> int:
    count: int = page.evaluate(
        """() => Array.from(document.querySelectorAll('input, select, button, textarea, a[href]'))
            .filter(el => el.checkVisibility()).length"""
    )
    return count


def test_every_control_has_an_accessible_name(page: Page) -> None:
    choose_example(page, BRIGHT)
    page.click("#run-sync")
    page.wait_for_selector("#results-table button.plot")
    page.click("#results-table button.plot")
    wait_for_plot(page)
    page.locator("details.columns > summary").first.click()
    count, unnamed = unnamed_controls(page)
    assert not unnamed, unnamed
    # The tree holds every visible control of the DOM (none skipped by the check).
    assert count >= visible_controls(page) > 20
    labels = page.evaluate(
        """() => Array.from(document.querySelectorAll('input, select, textarea'))
            .filter(el => !(el.labels.length || el.getAttribute('aria-label')))
            .map(el => el.id)"""
    )
    assert labels == []


# --- tokens mode ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    state = tmp_path_factory.mktemp("web-auth-state")
    return {
        "TAP_AUTH__MODE": "tokens",
        "TAP_AUTH__DATABASE_URL": f"sqlite:///{state / 'tokens.sqlite3'}",
        "TAP_UWS__DATABASE_URL": f"sqlite:///{state / 'jobs.sqlite3'}",
        "TAP_DATALINK__TEMPLATES_DIR": str(RUBIN_DATALINK),
    }


@pytest.fixture(scope="module")
def auth_service(
    demo_data_dir: Path, auth_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    log_path = tmp_path_factory.mktemp("web-auth-logs") / "serve.log"
    running = start_service(demo_data_dir, log_path, auth_env)
    yield running
    stop_service(running)


@pytest.fixture(scope="module")
def token(demo_data_dir: Path, auth_env: dict[str, str], auth_service: RunningService) -> str:
    env = {**os.environ, "TAP_DATA_DIR": str(demo_data_dir), **auth_env}
    result = cli("token", "create", "--user", "webuser", "--scope", "read:tap", env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_token_is_asked_once_and_sent_as_bearer(
    browser: Browser,
    auth_service: RunningService,
    token: str,
    page_errors: PageErrors,
    shots: Path,
) -> None:
    page = open_page(browser, f"{site_root(auth_service)}/", page_errors, ready=False)
    sent: list[tuple[str, str | None]] = []
    page.on("request", lambda r: sent.append((r.url, r.headers.get("authorization"))))
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    assert focused(page)["id"] == "token-input"
    _, unnamed = unnamed_controls(page)
    assert not unnamed, unnamed
    # A wrong token first: the query's 401 brings the prompt back, saying so.
    page.keyboard.type("tap-0000000000000000.wrong")
    screenshot(page, shots / "07-token-prompt.png")
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    page.wait_for_selector("body[data-ready=true]", state="attached")
    page.fill("#editor", ASYNC_QUERY)
    page.keyboard.press("Control+Enter")
    expect(dialog).to_be_visible()
    expect(page.locator("#token-error")).to_contain_text("refused this token")
    page.fill("#token-input", token)
    page.keyboard.press("Enter")
    page.wait_for_selector("#results-table tbody tr")
    expected = csv_rows(auth_service.base_url, ASYNC_QUERY, {"Authorization": f"Bearer {token}"})
    assert shown_rows(page) == expected

    # Downloads are fetched with the token and handed over as files.
    with page.expect_download() as download:
        page.click("#downloads a[aria-label^='Download as csv']")
    saved = Path(download.value.path()).read_text()
    assert list(csv.reader(io.StringIO(saved)))[1:] == expected
    assert download.value.suggested_filename == "result.csv"

    # The light curve (DataLink, behind auth) loads with the token too.
    page.click("#results-table button.plot")
    assert wait_for_plot(page) == 800
    screenshot(page, shots / "08-token-results.png", full_page=True)
    api_requests = [(url, auth) for url, auth in sent if "/api/" in url]
    assert any("/sync" in url for url, _ in api_requests)
    assert any("/api/datalink/timeseries" in url for url, _ in api_requests)
    assert api_requests[-1][1] == f"Bearer {token}"
    assert all(auth == f"Bearer {token}" for url, auth in api_requests if "/timeseries" in url)

    # Asked once: a reload in the same tab keeps the token (sessionStorage) and asks nothing.
    sent.clear()
    page.reload()
    page.wait_for_selector("body[data-ready=true]", state="attached")
    expect(dialog).to_be_hidden()
    expect(page.locator("#auth-text")).to_have_text("Token set for this tab")
    page.fill("#editor", ASYNC_QUERY)
    page.click("#run-sync")
    page.wait_for_selector("#results-table tbody tr")
    assert all(auth == f"Bearer {token}" for url, auth in sent if "/api/tap/" in url)
    page.context.close()
    assert not page_errors, page_errors
