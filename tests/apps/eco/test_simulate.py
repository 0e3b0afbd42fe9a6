"""``tsunagu device simulate`` against real nodes over HTTP: it never locks a device out (it
numbers readings from the device's last used sequence number, and never dates one in the
future), the demo's devices take its readings at once (without ``--node``: their files name
the demo's own address), and every user mistake is one clear line and a non-zero exit, never
a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from e2e.conftest import free_port
from liveserver import serving
from tsunagu.apps.eco.simulate import provisioning, reading_payload
from tsunagu.cli import cli
from tsunagu.ledger.block import format_timestamp, parse_timestamp
from tsunagu.ledger.tx import build_tx

from .conftest import Device, EcoChain, ts


@pytest.fixture(scope="module")
def node_url(eco_chain: EcoChain) -> Iterator[str]:
    """The shared eco demo node served over real HTTP (the way ``tsunagu serve`` does)."""
    from tsunagu.platform import discover_apps
    from tsunagu.web.app import create_app

    apps = [a for a in discover_apps() if a.name == "eco"]
    with serving(create_app(eco_chain.node, eco_chain.private, apps)) as port:
        yield f"http://127.0.0.1:{port}"


def write_file(folder: Path, chain: EcoChain, d: Device, node: str) -> Path:
    baseline = {"at": ts(d.at), "a": d.a, "b": d.b}
    prov = provisioning(d.id, d.kind, 4_000, d.key.seed.hex(), chain.node.chain_id, node, baseline)
    path = folder / f"{d.id}.json"
    path.write_text(json.dumps(prov), "utf-8")
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["device", "simulate", *args])


def last_seq(chain: EcoChain, d: Device) -> int:
    return chain.node.store.state().get("ledger.seq", d.key.key_id)["seq"]


def test_a_refused_future_reading_does_not_lock_the_device_out(
    eco_chain: EcoChain, node_url: str, tmp_path: Path
) -> None:
    d = eco_chain.device(hours=6)
    path = write_file(tmp_path, eco_chain, d, node_url)
    # What the old command did with --until 3 h ahead: a reading dated in the future, its Unix
    # time as seq. The contract refuses it, and its seq is spent in its block all the same.
    future = datetime.now(UTC) + timedelta(hours=3)
    payload = reading_payload(d.id, "pv", format_timestamp(future), d.a + 100, d.b)
    locked = int(future.timestamp())
    tx = build_tx(eco_chain.node.chain_id, "eco", "reading.pv", payload, d.key, locked)
    receipt = eco_chain.node.submit(tx).future.result(timeout=30)
    assert receipt.status == "rejected" and receipt.code == "reading_in_future"
    assert last_seq(eco_chain, d) == locked

    # A later run still commits its readings: it counts up from the spent seq, and its own
    # --until 3 h ahead is moved back to now (nothing dated in the future is sent).
    until = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    result = run("--provisioning", str(path), "--until", until, "--interval-minutes", "120")
    assert result.exit_code == 0, result.output
    assert "in the future" in result.stdout
    assert "3 readings committed, 0 rejected" in result.stdout, result.output
    record = eco_chain.get("device", d.id)
    assert record["readings"] == 3
    assert parse_timestamp(record["last"]["at"]) <= datetime.now(UTC)
    assert last_seq(eco_chain, d) == locked + 3

    # And the run after that goes on from there.
    again = run("--provisioning", str(path), "--interval-minutes", "1")
    assert again.exit_code == 0, again.output
    assert "0 rejected" in again.stdout


def one_error(result: Result, *phrases: str) -> str:
    """The run failed with one line on stderr that holds ``phrases``, and no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


def test_user_mistakes_are_one_clear_line(
    eco_chain: EcoChain, node_url: str, tmp_path: Path
) -> None:
    d = eco_chain.device(hours=2)
    good = write_file(tmp_path, eco_chain, d, node_url)
    before = eco_chain.snapshot()

    one_error(run("--provisioning", str(tmp_path / "missing.json")), "No provisioning file")
    one_error(run("--provisioning", str(tmp_path)), "is a folder")
    (tmp_path / "broken.json").write_text("{not json", "utf-8")
    one_error(run("--provisioning", str(tmp_path / "broken.json")), "not JSON")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    one_error(run("--provisioning", str(tmp_path / "binary.json")), "Cannot read")
    prov = json.loads(good.read_text("utf-8"))
    (tmp_path / "nokey.json").write_text(json.dumps({**prov, "private_key_seed": "zz"}), "utf-8")
    one_error(run("--provisioning", str(tmp_path / "nokey.json")), "private_key_seed")
    one_error(run("--provisioning", str(good), "--until", "yesterday"), "--until", "ISO 8601")
    one_error(run("--provisioning", str(good), "--node", "127.0.0.1:8000"), "http://")

    # Nothing listens on that port (the provisioning file's node, no --node given).
    (tmp_path / "down").mkdir()
    nowhere = write_file(tmp_path / "down", eco_chain, d, f"http://127.0.0.1:{free_port()}")
    one_error(run("--provisioning", str(nowhere)), "Cannot reach", "provisioning file", "--node")

    # A device this chain does not know.
    stranger = Device("d-0000000000000000", d.key, "pv", d.at, 0, 0)
    (tmp_path / "other").mkdir()
    path = write_file(tmp_path / "other", eco_chain, stranger, node_url)
    one_error(run("--provisioning", str(path)), "does not know device d-0000000000000000")
    assert eco_chain.snapshot() == before

    # A device registered but not approved yet.
    pending = register(eco_chain)
    path = write_file(tmp_path, eco_chain, pending, node_url)
    one_error(run("--provisioning", str(path)), "waiting for approval")

    # Approved in the eco programme but its key is not a chain member: the node answers 403.
    eco_chain.ok("envstaff1", "device.approve", {"device": pending.id})
    line = one_error(run("--provisioning", str(path)), "does not accept the key")
    assert pending.id in line


def register(chain: EcoChain) -> Device:
    from tsunagu.apps.eco.devices import device_id
    from tsunagu.ledger.keys import SigningKey

    key = SigningKey.generate()
    start = datetime.now(UTC) - timedelta(hours=2)
    payload = {
        "kind": "pv",
        "rated_w": 4_000,
        "public_key": key.public_key.hex(),
        "consent": True,
        "baseline": {"at": ts(start), "a": 0, "b": 0},
    }
    chain.ok("resident1", "device.register", payload)
    return Device(device_id(key.public_key.hex()), key, "pv", start, 0, 0)


# -- the demo, served on a port of its own -----------------------------------------------------


def test_demo_devices_take_simulated_readings_at_once(tmp_path: Path) -> None:
    """The demo writes its devices' files with the address it is served on (``tsunagu demo``
    passes ``--port``/``--public-base-url`` to :func:`create_demo`), and their seqs are
    ordinary counters: resident1's device takes a simulate run without ``--node``."""
    from tsunagu.demo import create_demo
    from tsunagu.platform import discover_apps
    from tsunagu.web.app import create_app

    apps = [a for a in discover_apps() if a.name == "eco"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    node, private = create_demo(tmp_path / "data", None, apps, "pw", base_url=url)
    try:
        state = node.store.state()
        owner = private.signing_key(private.user("resident1")).key_id
        device = state.get("eco.device", state.get("eco.account", owner)["devices"][0])
        path = tmp_path / "data" / "eco-devices" / f"{device['id']}.json"
        prov = json.loads(path.read_text("utf-8"))
        assert prov["node"] == url  # the demo's own port, not a fixed 8000
        elapsed = datetime.now(UTC) - parse_timestamp(device["last"]["at"])
        minutes = max(int(elapsed / timedelta(minutes=1)) // 3, 1)
        with serving(create_app(node, private, apps), port):
            first = run("--provisioning", str(path), "--interval-minutes", str(minutes))
            assert first.exit_code == 0, first.output
            assert "0 rejected" in first.stdout and not first.stdout.startswith("0 readings")
            after = node.store.state().get("eco.device", device["id"])
            assert (
                after["readings"] > device["readings"] and after["last"]["a"] > device["last"]["a"]
            )

            # A future --until is moved back to now; the device keeps working after it.
            until = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
            second = run("--provisioning", str(path), "--until", until)
            assert second.exit_code == 0, second.output
            assert "in the future" in second.stdout and "0 rejected" in second.stdout
            third = run("--provisioning", str(path), "--interval-minutes", "1")
            assert third.exit_code == 0, third.output
    finally:
        node.stop()
