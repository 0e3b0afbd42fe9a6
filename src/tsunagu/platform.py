"""How applications plug into the platform.

An application is a vertical slice (contract, routes, templates, translations, demo data)
described by an :class:`App` and published under the ``tsunagu.apps`` entry point group.
The platform discovers apps through that group and never imports one by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsunagu.contracts import Contract

if TYPE_CHECKING:
    from fastapi import APIRouter


@dataclass(frozen=True)
class NavLink:
    path: str
    label: str  # an English msgid, translated at render time
    roles: tuple[str, ...] = ()  # empty: everyone, including the public


@dataclass(frozen=True)
class App:
    name: str
    contract: Contract
    api: Callable[[], APIRouter] | None = None
    pages: Callable[[], APIRouter] | None = None
    templates: Path | None = None
    locales: Path | None = None
    static: Path | None = None  # served at /static/<name>/
    nav: tuple[NavLink, ...] = ()
    seed_demo: Callable[[Any], None] | None = None
    on_start: Callable[[Any], None] | None = None  # called with the web Services at start-up
    # Adds the app's commands to the root `tsunagu` typer (e.g. `tsunagu device simulate`).
    cli: Callable[[Any], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def discover_apps() -> list[App]:
    """Every installed application, in a stable order."""
    apps = [ep.load() for ep in entry_points(group="tsunagu.apps")]
    return sorted(apps, key=lambda a: a.name)


def platform_contracts(apps: list[App]) -> list[Contract]:
    from tsunagu.identity.contract import IdentityContract

    contracts = [IdentityContract(), *(a.contract for a in apps)]
    names = [c.app for c in contracts]
    # "ledger" holds the platform's own rows (sequence numbers): no app may write there.
    if "ledger" in names or len(set(names)) != len(names):
        raise ValueError(f"application names must be unique and not 'ledger': {names}")
    return contracts
