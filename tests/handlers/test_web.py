"""The web page's routes in-process: the page, its assets, and the base URL's answer to browsers."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tap_service.config import Config
from tap_service.main import create_app

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def client(tmp_path: Path, **settings: str) -> TestClient:
    # No lifespan: these routes read only package files and the configuration.
    return TestClient(create_app(Config(data_dir=tmp_path, **settings)))  # type: ignore[arg-type]


def test_page_names_the_configured_prefix_and_escapes_the_title(tmp_path: Path) -> None:
    web = client(tmp_path, path_prefix="/tap", service_title="Demo <TAP> & co")
    page = web.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<meta name="tap-base" content="/tap">' in page.text
    assert '<a href="/tap/capabilities">' in page.text
    assert "<title>Demo &lt;TAP&gt; &amp; co</title>" in page.text
    assert "{{" not in page.text
    for name, media_type in (("app.js", "text/javascript"), ("app.css", "text/css")):
        asset = web.get(f"/web/{name}")
        assert asset.status_code == 200
        assert asset.headers["content-type"].startswith(media_type)
        assert asset.text.strip()
    assert web.get("/web/index.html").status_code == 404
    assert web.get("/web/..%2F..%2Fconfig.py").status_code == 404


def test_base_url_sends_browsers_to_the_page_and_keeps_the_landing_for_clients(
    tmp_path: Path,
) -> None:
    web = client(tmp_path)
    browser = web.get("/api/tap", headers=BROWSER, follow_redirects=False)
    assert browser.status_code == 303
    assert browser.headers["location"] == "/"
    landing = web.get("/api/tap", headers={"Accept": "*/*"})
    assert landing.status_code == 200
    assert "Point TOPCAT or pyvo at this URL" in landing.text
    assert '<a href="/">query it in the browser</a>' in landing.text


def test_without_a_prefix_the_page_is_the_root(tmp_path: Path) -> None:
    web = client(tmp_path, path_prefix="")
    page = web.get("/", headers=BROWSER)
    assert page.status_code == 200
    assert '<meta name="tap-base" content="">' in page.text
