"""Regional eco-points and J-Credits (地域エコポイント と J-クレジット)."""

from __future__ import annotations

from tsunagu.contracts import Contract
from tsunagu.platform import App


class EcoContract(Contract):
    app = "eco"
    types = {}  # noqa: RUF012


app = App(name="eco", contract=EcoContract())
