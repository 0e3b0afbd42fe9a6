"""Writes through every node of a real consortium: every node reaches the same chain."""

from __future__ import annotations

import json
import threading

import pytest

from consortium.conftest import PASSWORD, WRITERS, Consortium
from e2e.axe import assert_accessible


def test_cluster_file_records_every_process(consortium: Consortium) -> None:
    info = json.loads((consortium.root / "cluster.json").read_text())
    assert [n["role"] for n in info["nodes"]] == ["voting", "voting", "voting", "following"]
    for node in info["nodes"]:
        assert set(node) == {"id", "url", "pid", "data_dir", "argv", "role"}
        assert node["argv"][1:4] == ["-m", "tsunagu.cli", "serve"]
    assert len(info["etcd"]) == 3
    for member in info["etcd"]:
        assert set(member) == {"name", "client_url", "pid", "data_dir", "argv"}
        assert "--auto-compaction-mode" in member["argv"]


def test_demo_accounts_log_in_on_every_node(consortium: Consortium) -> None:
    for i, url in enumerate(consortium.urls):
        response = consortium.http.post(
            url + "/api/v1/auth/token", data={"username": "admin", "password": PASSWORD}
        )
        assert response.status_code == 200, (i, response.text)


def test_writes_through_every_node_agree(consortium: Consortium) -> None:
    acked: list[str] = []
    errors: list[str] = []

    def write(index: int) -> None:
        for n in range(6):
            response = consortium.register(index, WRITERS[index], f"agreement {index} {n}")
            if response.status_code == 201:
                acked.append(response.json()["tx_id"])
            else:
                errors.append(response.text)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(acked) == 24
    head = consortium.wait_agree()
    # Every acknowledged transaction is on every node, the follower included, at one place.
    for tx_id in acked:
        places = set()
        for url in consortium.urls:
            response = consortium.http.get(f"{url}/api/v1/tx/{tx_id}")
            assert response.status_code == 200, url
            places.add((response.json()["height"], response.json()["index"]))
        assert len(places) == 1
    # The other nodes forwarded their writes to the proposer (the voting node with the
    # lowest id), which built the blocks; signed tree heads agree.
    proposers = {
        consortium.http.get(f"{consortium.urls[0]}/api/v1/blocks/{h}").json()["header"]["proposer"]
        for h in range(head["height"] - 5, head["height"] + 1)
    }
    assert proposers == {min(n["id"] for n in consortium.nodes if n["role"] == "voting")}
    for url in consortium.urls[1:]:
        orderer = consortium.http.get(url + "/api/v1/consortium/self").json()["orderer"]
        assert orderer["forwarded"] >= 6 and orderer["handed_back"] == 0, (url, orderer)
    sths = [consortium.http.get(u + "/api/v1/log/sth").json() for u in consortium.urls]
    assert len({(s["tree_size"], s["root_hash"]) for s in sths}) == 1
    assert len({s["node_id"] for s in sths}) == 4


def test_peers_api_and_page_list_every_node(consortium: Consortium) -> None:
    head = consortium.wait_agree()
    ids = {n["id"] for n in consortium.nodes}
    for url in consortium.urls:
        deadline_ok = False
        for _ in range(50):
            view = consortium.http.get(url + "/api/v1/peers").json()
            rows = {row["node_id"]: row for row in view["nodes"]}
            if set(rows) >= ids and all(
                rows[i]["reachable"] and rows[i]["agrees"] and rows[i]["height"] >= head["height"]
                for i in ids
            ):
                deadline_ok = True
                break
            threading.Event().wait(0.3)
        assert deadline_ok, view
        assert all(not row["diverging"] for row in rows.values())
        assert all(row["sth_ok"] for row in rows.values())
        assert {rows[i]["role"] for i in ids} == {"voting", "following"}
    page = consortium.http.get(consortium.urls[3] + "/consortium")
    assert page.status_code == 200
    assert "コンソーシアムのノード" in page.text
    for node_id in ids:
        assert node_id in page.text
    english = consortium.http.get(consortium.urls[0] + "/consortium?lang=en")
    assert "Every reachable node&#39;s copy agrees." in english.text


@pytest.mark.e2e
def test_consortium_page_in_a_phone_browser_is_accessible(
    consortium: Consortium, phone_page
) -> None:
    phone_page.goto(consortium.urls[0] + "/consortium")
    assert phone_page.locator("h1").inner_text() == "コンソーシアムのノード"
    assert phone_page.locator("tr[data-node]").count() == 4
    # Nothing overflows the phone's width except inside the scrollable table region.
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    assert_accessible(phone_page)
