"""What the programme page lists for whom, on the shared eco demo chain: environment staff see
the devices of their own municipality (the contract refuses them the others), an
administrator every device."""

from __future__ import annotations

from tsunagu.apps.eco.devices import municipality_of
from tsunagu.apps.eco.pages_staff import _managed
from tsunagu.apps.eco.view import EcoView

from .conftest import EcoChain


def test_staff_see_the_devices_they_may_act_on(eco_chain: EcoChain) -> None:
    v = EcoView(eco_chain.node)
    private = eco_chain.private
    staff = private.user("envstaff1")
    admin = private.user("admin")
    mine = municipality_of(v.state.get("identity.org", staff.org))
    approved = [d for d in v.all("device") if d["status"] == "approved"]
    assert mine and {d["municipality"] for d in approved} - {mine}  # others exist to leave out

    listed = [d for d in _managed(v, staff) if d["status"] == "approved"]
    assert listed and {d["municipality"] for d in listed} == {mine}
    assert {d["id"] for d in listed} == {d["id"] for d in approved if d["municipality"] == mine}
    everything = _managed(v, admin)
    assert {d["id"] for d in everything if d["status"] == "approved"} == {d["id"] for d in approved}
    assert {d["id"] for d in everything} == {d["id"] for d in v.all("device")}
