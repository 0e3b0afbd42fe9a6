"""Shared pytest fixtures for browser (end-to-end) tests.

Browser tests drive Debian's Chromium (``/usr/bin/chromium``, installed by
``scripts/setup --dev``) through sync Playwright; Playwright's own browser download is not
used. Mark browser tests with ``@pytest.mark.e2e``.

Fixtures:

* ``browser``: one Chromium for the whole session (started only if a test asks for it).
* ``page``: a fresh context and page, locale ``ja-JP``, time zone ``Asia/Tokyo``,
  viewport 1280x800.
* ``phone_page``: the same at phone width, viewport 390x844 (touch, mobile meta viewport).

Accessibility checks live in ``tests/e2e/axe.py`` (``from e2e.axe import assert_accessible``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

CHROMIUM_PATH = os.environ.get("TSUNAGU_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP_VIEWPORT = {"width": 1280, "height": 800}
PHONE_VIEWPORT = {"width": 390, "height": 844}
CONTEXT_DEFAULTS: dict[str, Any] = {"locale": "ja-JP", "timezone_id": "Asia/Tokyo"}


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM_PATH):
        pytest.fail(f"{CHROMIUM_PATH} not found: run scripts/setup --dev (installs chromium)")
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM_PATH, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


def _open_page(browser: Browser, **context_options: Any) -> Iterator[Page]:
    context = browser.new_context(**{**CONTEXT_DEFAULTS, **context_options})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    yield from _open_page(browser, viewport=DESKTOP_VIEWPORT)


@pytest.fixture
def phone_page(browser: Browser) -> Iterator[Page]:
    yield from _open_page(browser, viewport=PHONE_VIEWPORT, is_mobile=True, has_touch=True)
