"""etcd faults: a minority member killed under load, then the majority lost and regained."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from consortium.conftest import WRITERS, Consortium
from consortium.load import Load


def test_kill_one_etcd_member_under_load(consortium: Consortium) -> None:
    member = consortium.entry("etcd-2")
    with Load(consortium, [0, 1, 2], "etcd-minority") as load:
        time.sleep(1.5)
        consortium.kill("etcd-2")
        killed_at = time.monotonic()
        time.sleep(3.0)
        after = load.acked_after(killed_at)
        assert after > 0, load.failed[-5:]
        # tama-node-2 talked to etcd-2 first: it moved on to the other members.
        assert any(i == 1 and when > killed_at for i, _, when in load.acked)
        consortium.start("etcd-2")
        time.sleep(2.0)
    head = consortium.wait_agree()
    # The restarted member rejoined: it serves the newest block key from its own copy.
    key = f"/tsunagu/{head['chain_id']}/blocks/{head['height']:020d}".encode()
    import base64

    deadline = time.monotonic() + 20
    while True:
        response = httpx.post(
            member["client_url"] + "/v3/kv/range",
            json={"key": base64.b64encode(key).decode(), "serializable": True},
            timeout=5,
        )
        if response.status_code == 200 and response.json().get("kvs"):
            break
        assert time.monotonic() < deadline, response.text
        time.sleep(0.3)


def test_majority_down_writes_fail_fast_reads_work_then_resume(consortium: Consortium) -> None:
    before = consortium.wait_agree()
    consortium.token(0, WRITERS[0])
    assert _quorum(consortium, 0) is True
    consortium.kill("etcd-1")
    consortium.kill("etcd-3")
    try:
        # Every node's peers view says so before anyone tries to write.
        _wait_quorum(consortium, False)
        started = time.monotonic()
        first = consortium.register(0, WRITERS[0], "no quorum 1", timeout=30)
        first_took = time.monotonic() - started
        assert first.status_code == 503, first.text
        assert first.headers["content-type"].startswith("application/problem+json")
        assert first_took < 8
        started = time.monotonic()
        again = consortium.register(0, WRITERS[0], "no quorum 2", timeout=30)
        assert again.status_code == 503
        assert time.monotonic() - started < 1.0  # refused at once while the quorum is lost
        assert again.json()["code"] == "no_quorum"
        # Reads and verification still work, and nothing was half-written.
        for i in range(4):
            assert consortium.status(i)["height"] == before["height"]
        assert consortium.http.get(consortium.urls[2] + "/api/v1/log/sth").status_code == 200
        result = consortium.verify(2)
        assert result.returncode == 0, result.stdout
    finally:
        consortium.start("etcd-1")
        consortium.start("etcd-3")
    deadline = time.monotonic() + 30
    while True:
        response = consortium.register(0, WRITERS[0], f"quorum back {time.monotonic()}")
        if response.status_code == 201:
            break
        assert time.monotonic() < deadline, response.text
        time.sleep(0.5)
    head = consortium.wait_agree()
    assert head["height"] >= before["height"] + 1
    _wait_quorum(consortium, True)


def _quorum(consortium: Consortium, index: int) -> bool | None:
    """What ``GET /api/v1/peers`` of node ``index`` says of its own orderer's quorum."""
    view = consortium.http.get(consortium.urls[index] + "/api/v1/peers").json()
    return next(row for row in view["nodes"] if row["self"])["orderer"]["quorum"]


def _wait_quorum(consortium: Consortium, expected: bool) -> None:
    """Wait (at most ten seconds) until every node's peers view says ``expected``."""
    deadline = time.monotonic() + 10

    def wait(index: int) -> None:
        while (found := _quorum(consortium, index)) is not expected:
            assert time.monotonic() < deadline, (index, found)
            time.sleep(0.1)

    with ThreadPoolExecutor(len(consortium.nodes)) as pool:
        list(pool.map(wait, range(len(consortium.nodes))))
