"""Debian's Chromium driven by Playwright against real ``tap-service serve`` processes.

No browser is downloaded: Playwright launches /usr/bin/chromium (``make system-deps`` installs
it). The flags keep Chromium off the network (this machine has none beyond loopback).
Screenshots of each step go to test-artifacts/web/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.integration.conftest import ARTIFACTS, RunningService, start_service, stop_service

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUBIN_DATALINK = Path(__file__).resolve().parents[4] / "shared" / "rubin-sdm" / "datalink"
VIEWPORT = {"width": 1400, "height": 1000}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Debian's chromium with Playwright")


def require_chromium(path: Path = CHROMIUM) -> None:
    """Fail (not skip) without the browser: the tests are part of the suite."""
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"Chromium is missing at {path}: run `make system-deps` "
            "(it installs Debian's chromium for the browser tests)"
        )


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    require_chromium()
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    path = ARTIFACTS / "web"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def web_service(
    demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    """The demo catalog with Rubin's DataLink descriptors, so results offer light curves."""
    log_path = tmp_path_factory.mktemp("web-logs") / "serve.log"
    running = start_service(
        demo_data_dir, log_path, {"TAP_DATALINK__TEMPLATES_DIR": str(RUBIN_DATALINK)}
    )
    yield running
    stop_service(running)


def site_root(service: RunningService) -> str:
    return service.base_url.removesuffix("/api/tap")


class PageErrors(list[str]):
    """Uncaught JavaScript exceptions of a page; a test ends by asserting there were none."""


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


def open_page(browser: Browser, url: str, errors: PageErrors, *, ready: bool = True) -> Page:
    """A fresh tab (its own sessionStorage) on the web page, once its documents are read."""
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    if ready:
        page.wait_for_selector("body[data-ready=true]", state="attached")
    return page
