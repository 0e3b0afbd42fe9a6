"""Disaster relief supply matching (災害時支援物資マッチング): recording and tracking movement
(b. 移動履歴の記録・追跡).

Shelters post needs, supporters post offers, the affected municipality's coordinator confirms
matches, packages carry QR labels, and shipment and receipt are recorded on the ledger.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tsunagu.apps.relief.contract import ReliefContract
from tsunagu.platform import App, NavLink

HERE = Path(__file__).parent


def _api():
    from tsunagu.apps.relief.api import router

    return router()


def _pages():
    from tsunagu.apps.relief.pages import router

    return router()


def _seed(demo) -> None:
    from tsunagu.apps.relief.demo import seed

    seed(demo)


def _on_start(services: Any) -> None:
    """Start the notification inbox for this node (the web app calls it once at startup)."""
    from tsunagu.apps.relief.service import service_for

    service_for(services.node)


app = App(
    name="relief",
    contract=ReliefContract(),
    api=_api,
    pages=_pages,
    templates=HERE / "templates",
    locales=HERE / "locales",
    static=HERE / "static",
    nav=(NavLink("/relief", "Relief supplies"), NavLink("/relief/scan", "Scan a label")),
    seed_demo=_seed,
    on_start=_on_start,
)
