"""Community contribution made visible (地域貢献の可視化と共有): shared data and proof
(c. 広域行政・共有, a. 証明).

Organisers publish activities, residents check in and out by QR, organisers attest the hours;
residents list skills with a visibility and help each other; attested participation earns an
Open Badges 3.0 credential anchored on the ledger, verifiable by anyone.
"""

from __future__ import annotations

from pathlib import Path

from tsunagu.apps.community.contract import CommunityContract
from tsunagu.platform import App, NavLink

HERE = Path(__file__).parent


def _api():
    from fastapi import APIRouter

    from tsunagu.apps.community.api import router, volunteer_router

    combined = APIRouter()
    combined.include_router(router())
    combined.include_router(volunteer_router())
    return combined


def _pages():
    from tsunagu.apps.community.pages import router

    return router()


def _seed(demo) -> None:
    from tsunagu.apps.community.demo import seed

    seed(demo)


app = App(
    name="community",
    contract=CommunityContract(),
    api=_api,
    pages=_pages,
    templates=HERE / "templates",
    locales=HERE / "locales",
    static=HERE / "static",
    nav=(NavLink("/community", "Community"),),
    seed_demo=_seed,
)
