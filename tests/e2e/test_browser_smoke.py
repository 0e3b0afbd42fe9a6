"""Smoke test of the browser and axe-core wiring on a tiny static site.

Serves a few HTML pages with the standard library's http.server on 127.0.0.1 and checks that
Debian's Chromium loads them and that ``assert_accessible`` really passes and fails.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from e2e.axe import assert_accessible

pytestmark = pytest.mark.e2e

HEAD = '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'

PAGES = {
    "good.html": f"""<!doctype html>
<html lang="ja">
<head>{HEAD}<title>つなぐ — 確認</title></head>
<body>
  <header><a href="good.html">つなぐ ホーム</a></header>
  <main>
    <h1>台帳の確認</h1>
    <p>多摩・島しょ地域の自治体をつなぐ台帳です。</p>
    <form action="good.html">
      <label for="q">検索</label>
      <input id="q" name="q" type="search">
      <button type="submit">検索する</button>
    </form>
  </main>
</body>
</html>
""",
    # image-alt (critical), link-name (serious) and label (critical).
    "bad.html": f"""<!doctype html>
<html lang="ja">
<head>{HEAD}<title>悪い例</title></head>
<body>
  <main>
    <h1>悪い例</h1>
    <a href="good.html"><img src="logo.png"></a>
    <form><input type="text" name="q"></form>
  </main>
</body>
</html>
""",
    # Only moderate violations (content outside landmarks, no <h1>): not blocking.
    "moderate.html": f"""<!doctype html>
<html lang="ja">
<head>{HEAD}<title>ランドマークなし</title></head>
<body><p>ランドマークのない本文です。</p></body>
</html>
""",
}


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("site")
    for name, html in PAGES.items():
        (root / name).write_text(html, encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # port 0: a free port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_browser_loads_page(page, site):
    response = page.goto(f"{site}/good.html")
    assert response is not None and response.ok
    assert page.title() == "つなぐ — 確認"
    assert page.get_by_role("heading", level=1).inner_text() == "台帳の確認"
    assert page.evaluate("navigator.language") == "ja-JP"
    assert page.evaluate("window.innerWidth") == 1280
    assert page.screenshot().startswith(b"\x89PNG")


def test_phone_page_has_phone_width(phone_page, site):
    phone_page.goto(f"{site}/good.html")
    assert phone_page.evaluate("window.innerWidth") == 390
    assert phone_page.evaluate("window.innerHeight") == 844


def test_accessible_page_passes(page, site):
    page.goto(f"{site}/good.html")
    results = assert_accessible(page)
    assert results.violations_count == 0, results.generate_snapshot()


def test_serious_violations_fail(page, site):
    page.goto(f"{site}/bad.html")
    with pytest.raises(AssertionError) as excinfo:
        assert_accessible(page)
    message = str(excinfo.value)
    for rule in ("image-alt", "link-name", "label"):
        assert f"- {rule} [" in message, message
    assert "[critical]" in message
    assert "[serious]" in message
    assert 'img src="logo.png"' in message


def test_moderate_violations_do_not_fail(page, site):
    page.goto(f"{site}/moderate.html")
    results = assert_accessible(page)
    impacts = {v["impact"] for v in results.response["violations"]}
    assert impacts, "expected moderate violations on this page"
    assert impacts.isdisjoint({"serious", "critical"}), results.generate_snapshot()
    with pytest.raises(AssertionError, match="region"):
        assert_accessible(page, impacts={"moderate"})
