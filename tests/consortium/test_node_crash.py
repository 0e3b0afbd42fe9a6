"""kill -9 of a node under write load, then restart: nothing acknowledged is lost, and the
node catches up and agrees."""

from __future__ import annotations

import time

from consortium.conftest import ETCD_WINDOW, Consortium
from consortium.load import Load


def test_kill_node_under_load_then_restart(consortium: Consortium) -> None:
    # The victim is the proposer, which the other nodes forward their writes to: they must
    # go on by proposing themselves (tsunagu.node.forward).
    victim = consortium.nodes[0]["id"]
    with Load(consortium, [0, 1, 2], "crash") as load:
        time.sleep(2.0)
        consortium.kill(victim)  # SIGKILL: no chance to finish anything
        killed_at = time.monotonic()
        down_at = consortium.status(2)["height"]
        while consortium.status(2)["height"] < down_at + 3 * ETCD_WINDOW:
            time.sleep(0.2)  # long enough that etcd no longer holds all it missed
        assert load.acked_after(killed_at) > 0  # the others kept writing
        consortium.start(victim)
        time.sleep(1.0)
    acked_by_victim = [tx for i, tx, _ in load.acked if i == 0]
    assert acked_by_victim, "the victim acknowledged nothing before it was killed"
    consortium.wait_agree(timeout=60)
    for url in consortium.urls:
        for _, tx_id, _ in load.acked:
            response = consortium.http.get(f"{url}/api/v1/tx/{tx_id}")
            assert response.status_code == 200, (url, tx_id)
            assert response.json()["result"]["status"] == "committed"
    self_report = consortium.http.get(consortium.urls[0] + "/api/v1/consortium/self").json()
    assert self_report["orderer"]["from_peers"] > 0  # older blocks came from the peers
    assert self_report["orderer"]["from_etcd"] > 0  # the newest from etcd
    for url in consortium.urls[1:3]:  # while it was down, the others proposed themselves
        orderer = consortium.http.get(url + "/api/v1/consortium/self").json()["orderer"]
        assert orderer["proposed"] > 0 and orderer["handed_back"] > 0, (url, orderer)
    result = consortium.verify(0)
    assert result.returncode == 0, result.stdout + result.stderr
