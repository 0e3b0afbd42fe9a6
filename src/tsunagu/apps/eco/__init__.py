"""Regional eco-points and J-Credits (地域エコポイント と J-クレジット): d. 経済付加価値.

Residents and local businesses register home PV and EVs; each device signs its own meter
readings; reductions earn eco-points (spent at local shops by one-time QR) and, gathered in
monitoring reports a verifier approves, become J-Credit lots the municipality sells to
companies, who retire them with a certificate anyone can verify.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tsunagu.apps.eco.contract import EcoContract
from tsunagu.platform import App, NavLink

HERE = Path(__file__).parent


def _api():
    from tsunagu.apps.eco.api import router

    return router()


def _pages():
    from tsunagu.apps.eco.pages import router

    return router()


def _seed(demo: Any) -> None:
    from tsunagu.apps.eco.demo import seed

    seed(demo)


def _cli(root: Any) -> None:
    from tsunagu.apps.eco.simulate import add_commands

    add_commands(root)


app = App(
    name="eco",
    contract=EcoContract(),
    api=_api,
    pages=_pages,
    templates=HERE / "templates",
    locales=HERE / "locales",
    static=HERE / "static",
    nav=(NavLink("/eco", "Eco-points"),),
    seed_demo=_seed,
    cli=_cli,
)
