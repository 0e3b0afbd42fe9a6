"""The eco demo: every municipality with demo devices has its own environment staff, who
approved those devices, and whose approval rights stop at their own municipality."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from tsunagu.apps.eco.devices import device_id
from tsunagu.demo import ACCOUNTS
from tsunagu.ledger.keys import SigningKey

from .conftest import EcoChain, ts


def env_staff() -> dict[str, str]:
    """Municipality → its first environment staff account."""
    found: dict[str, str] = {}
    for username, _name, org, roles in ACCOUNTS:
        if "env_staff" in roles:
            found.setdefault(org, username)
    return found


def test_each_demo_device_was_approved_by_its_own_municipality(eco_chain: EcoChain) -> None:
    staff = env_staff()
    devices = [v for _, v in eco_chain.node.store.state().scan("eco.device")]
    towns = Counter(d["municipality"] for d in devices)
    assert len(towns) >= 9 and set(towns) <= set(staff), towns
    for device in devices:
        approved = [h for h in device["history"] if h["action"] == "approved"]
        if not approved:
            continue  # a device another test registered and left pending
        signer = eco_chain.node.store.tx(approved[0]["tx_id"]).tx.signer
        expected = {eco_chain.key(staff[device["municipality"]]).key_id}
        expected.add(eco_chain.key("admin").key_id)  # other tests' devices
        assert signer in expected, device["id"]
    # The demo's own devices (those with a provisioning file) by the municipality's staff only.
    files = {p.stem for p in (eco_chain.node.data_dir / "eco-devices").glob("d-*.json")}
    seeded = [d for d in devices if d["id"] in files]
    assert len(seeded) == len(files) == 18
    for device in seeded:
        tx_id = next(h["tx_id"] for h in device["history"] if h["action"] == "approved")
        signer = eco_chain.node.store.tx(tx_id).tx.signer
        assert signer == eco_chain.key(staff[device["municipality"]]).key_id, device["id"]


def test_tachikawa_staff_approve_tachikawa_devices_only(eco_chain: EcoChain) -> None:
    key = SigningKey.generate()
    payload = {
        "kind": "pv",
        "rated_w": 3_000,
        "public_key": key.public_key.hex(),
        "consent": True,
        "baseline": {"at": ts(datetime.now(UTC) - timedelta(hours=1)), "a": 0, "b": 0},
    }
    eco_chain.ok("resident2", "device.register", payload)  # 立川市
    dev = device_id(key.public_key.hex())
    eco_chain.refused("envstaff1", "device.approve", {"device": dev}, "not_programme_staff")
    eco_chain.ok("envstaff2", "device.approve", {"device": dev})
    assert eco_chain.get("device", dev)["status"] == "approved"
    org = eco_chain.get("device", dev)["org"]
    add = {"public_key": key.public_key.hex(), "org": org}
    eco_chain.ok("envstaff2", "device.add", add, app="identity")
