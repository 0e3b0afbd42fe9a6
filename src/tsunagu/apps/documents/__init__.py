"""Document attestation: the "a. 証明" function — prove a municipality published a file."""

from __future__ import annotations

from pathlib import Path

from tsunagu.apps.documents.contract import DocumentsContract
from tsunagu.platform import App, NavLink

HERE = Path(__file__).parent


def _api():
    from tsunagu.apps.documents.api import router

    return router()


def _pages():
    from tsunagu.apps.documents.pages import router

    return router()


def _seed(demo) -> None:
    from tsunagu.apps.documents.demo import seed

    seed(demo)


app = App(
    name="documents",
    contract=DocumentsContract(),
    api=_api,
    pages=_pages,
    templates=HERE / "templates",
    locales=HERE / "locales",
    static=HERE / "static",
    nav=(
        NavLink("/documents/verify", "Verify a document"),
        NavLink("/documents", "Documents"),
        NavLink("/documents/register", "Register a document", roles=("staff",)),
    ),
    seed_demo=_seed,
)
