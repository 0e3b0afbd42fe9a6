"""Community contribution made visible (地域貢献の可視化と共有)."""

from __future__ import annotations

from tsunagu.contracts import Contract
from tsunagu.platform import App


class CommunityContract(Contract):
    app = "community"
    types = {}  # noqa: RUF012


app = App(name="community", contract=CommunityContract())
