"""Accessibility assertions for browser tests, using axe-core.

axe-core comes bundled in the PyPI package ``axe-playwright-python``. Usage::

    from e2e.axe import assert_accessible

    @pytest.mark.e2e
    def test_home_is_accessible(page):
        page.goto(url)
        assert_accessible(page)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from axe_playwright_python.sync_playwright import Axe, AxeResults

if TYPE_CHECKING:
    from playwright.sync_api import Page

BLOCKING_IMPACTS = frozenset({"serious", "critical"})

_axe = Axe()


def _describe_target(target: Any) -> str:
    # A node's target is a list of selectors; an entry is itself a list when the node is
    # inside an iframe or shadow root.
    if isinstance(target, list):
        return " >> ".join(_describe_target(part) for part in target)
    return str(target)


def _describe_node(node: dict[str, Any]) -> str:
    html = " ".join(str(node.get("html", "")).split())
    if len(html) > 160:
        html = html[:157] + "..."
    return f"    at {_describe_target(node.get('target', []))}: {html}"


def format_violations(violations: Iterable[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} [{violation.get('impact')}]: {violation.get('help', '')}"
            f" ({violation.get('helpUrl', '')})"
        )
        lines.extend(_describe_node(node) for node in violation.get("nodes", []))
    return "\n".join(lines)


def run_axe(
    page: Page, *, context: str | list | dict | None = None, options: dict | None = None
) -> AxeResults:
    """Run axe-core on the page as it is now and return its results (violations only).

    ``context`` is axe's context (usually a CSS selector string); ``options`` are axe run
    options, merged over ``{"resultTypes": ["violations"]}``.
    """
    run_options = {"resultTypes": ["violations"], **(options or {})}
    return _axe.run(page, context=context, options=run_options)


def assert_accessible(
    page: Page,
    *,
    context: str | list | dict | None = None,
    options: dict | None = None,
    impacts: Iterable[str] = BLOCKING_IMPACTS,
) -> AxeResults:
    """Fail if axe-core finds a violation of a blocking impact (serious or critical).

    The assertion message lists every such violation: rule id, impact, help text and the
    target of each offending node. Returns the full results, so a test can look at the
    minor and moderate violations too.
    """
    results = run_axe(page, context=context, options=options)
    wanted = set(impacts)
    blocking = [v for v in results.response["violations"] if v.get("impact") in wanted]
    if blocking:
        raise AssertionError(
            f"{len(blocking)} accessibility violation(s) of impact {sorted(wanted)} "
            f"on {page.url}:\n{format_violations(blocking)}"
        )
    return results
