"""The document contract's rules, through a real node (real SQLite chain, real orderer).

Every rule is observed the way a client sees it: the receipt's status and code, and the
committed state afterwards. Rejected transactions must leave the state exactly as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from chainkit import MUNICIPALITY, OPERATOR, STAFF_KEY, make_node, submit_and_wait
from tsunagu.apps.documents.contract import DocumentsContract
from tsunagu.identity.contract import IdentityContract
from tsunagu.ledger.keys import SigningKey
from tsunagu.node.node import Node, Receipt

OTHER_TOWN = "oshima"


def _key(label: str) -> SigningKey:
    return SigningKey.from_seed(hashlib.sha256(f"documents test {label}".encode()).digest())


OTHER_TOWN_STAFF = _key("oshima staff")
OPERATOR_STAFF = _key("operator staff")
RESIDENT = _key("hachioji resident")


def sha(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    node, admin = make_node(
        tmp_path_factory.mktemp("documents-contract"), [IdentityContract(), DocumentsContract()]
    )
    setup = [
        (
            "org.add",
            {"id": OTHER_TOWN, "type": "municipality", "name_ja": "大島町", "name_en": "Oshima"},
        ),
        (
            "member.add",
            {
                "public_key": OTHER_TOWN_STAFF.public_key.hex(),
                "org": OTHER_TOWN,
                "roles": ["staff"],
            },
        ),
        (
            "member.add",
            {"public_key": OPERATOR_STAFF.public_key.hex(), "org": OPERATOR, "roles": ["staff"]},
        ),
        (
            "member.add",
            {"public_key": RESIDENT.public_key.hex(), "org": MUNICIPALITY, "roles": ["resident"]},
        ),
    ]
    for type_, payload in setup:
        receipt = submit_and_wait(node, admin, "identity", type_, payload)
        assert receipt.status == "committed", receipt
    try:
        yield {"node": node, "admin": admin}
    finally:
        node.stop()


def submit(node: Node, key: SigningKey, type_: str, payload: dict[str, Any]) -> Receipt:
    return submit_and_wait(node, key, "documents", type_, payload)


def register(node: Node, key: SigningKey, digest: str, title: str = "お知らせ") -> Receipt:
    return submit(node, key, "register", {"sha256": digest, "title": title, "category": "notice"})


def doc(node: Node, digest: str) -> dict[str, Any] | None:
    return node.store.state().get("documents.doc", digest)


def block_time(node: Node, height: int) -> str:
    block = node.store.block(height)
    assert block is not None
    return block.header.timestamp


def assert_rejected(receipt: Receipt, code: str) -> None:
    assert receipt.status == "rejected", receipt
    assert receipt.code == code, receipt
    # Every refusal explains itself in Japanese too (pages show it as is).
    assert receipt.reason_ja and receipt.reason_ja != receipt.reason, receipt


def test_register_records_the_document(chain):
    node = chain["node"]
    digest = sha("register records")
    receipt = register(node, STAFF_KEY, digest, "令和7年度 予算の概要")
    assert receipt.status == "committed", receipt
    record = doc(node, digest)
    assert record is not None
    assert record["org"] == MUNICIPALITY
    assert record["status"] == "active"
    assert record["registered_by"] == STAFF_KEY.key_id
    assert (record["tx_id"], record["height"], record["log_index"]) == (
        receipt.tx_id,
        receipt.height,
        receipt.index,
    )
    assert record["registered_at"] == block_time(node, receipt.height)
    assert record["history"] == [
        {
            "action": "registered",
            "tx_id": receipt.tx_id,
            "at": record["registered_at"],
            "height": receipt.height,
        }
    ]


def test_registering_twice_is_rejected(chain):
    node = chain["node"]
    digest = sha("registered twice")
    assert register(node, STAFF_KEY, digest, "first").status == "committed"
    before = doc(node, digest)
    assert_rejected(register(node, STAFF_KEY, digest, "second"), "already_registered")
    assert_rejected(register(node, OTHER_TOWN_STAFF, digest, "third"), "already_registered")
    assert doc(node, digest) == before


def test_only_municipality_staff_or_admin_register(chain):
    node = chain["node"]
    assert_rejected(register(node, OPERATOR_STAFF, sha("operator staff")), "not_municipality")
    assert doc(node, sha("operator staff")) is None
    resident = register(node, RESIDENT, sha("resident"))
    assert resident.status == "rejected", resident
    assert doc(node, sha("resident")) is None
    # The consortium admin belongs to the operator, yet may register.
    admin = register(node, chain["admin"], sha("admin"))
    assert admin.status == "committed", admin
    assert doc(node, sha("admin"))["org"] == OPERATOR


def test_withdraw_by_another_organisation_is_rejected(chain):
    node = chain["node"]
    digest = sha("withdraw other org")
    assert register(node, STAFF_KEY, digest).status == "committed"
    before = doc(node, digest)
    receipt = submit(node, OTHER_TOWN_STAFF, "withdraw", {"sha256": digest, "reason": "誤り"})
    assert_rejected(receipt, "other_org")
    assert doc(node, digest) == before
    # The admin may act for any organisation.
    receipt = submit(node, chain["admin"], "withdraw", {"sha256": digest, "reason": "誤登録"})
    assert receipt.status == "committed", receipt
    assert doc(node, digest)["status"] == "withdrawn"


def test_withdrawn_document_cannot_be_withdrawn_again(chain):
    node = chain["node"]
    digest = sha("withdrawn twice")
    registered = register(node, STAFF_KEY, digest)
    first = submit(node, STAFF_KEY, "withdraw", {"sha256": digest, "reason": "工事が完了したため"})
    assert first.status == "committed", first
    after_first = doc(node, digest)
    again = submit(node, STAFF_KEY, "withdraw", {"sha256": digest, "reason": "もう一度"})
    assert_rejected(again, "not_active")
    record = doc(node, digest)
    assert record == after_first
    assert record["status"] == "withdrawn"
    assert [(e["action"], e["tx_id"], e.get("reason")) for e in record["history"]] == [
        ("registered", registered.tx_id, None),
        ("withdrawn", first.tx_id, "工事が完了したため"),
    ]
    # Nor can it be superseded.
    receipt = submit(
        node,
        STAFF_KEY,
        "supersede",
        {
            "sha256": digest,
            "new_sha256": sha("withdrawn then superseded"),
            "title": "新版",
            "category": "notice",
            "reason": "改訂",
        },
    )
    assert_rejected(receipt, "not_active")
    assert doc(node, sha("withdrawn then superseded")) is None


def test_supersede_links_both_versions_and_keeps_history(chain):
    node = chain["node"]
    old, new = sha("ordinance draft"), sha("ordinance final")
    registered = register(node, STAFF_KEY, old, "条例（案）")
    replaced = submit(
        node,
        STAFF_KEY,
        "supersede",
        {
            "sha256": old,
            "new_sha256": new,
            "title": "条例",
            "category": "ordinance",
            "reason": "議会で可決",
        },
    )
    assert replaced.status == "committed", replaced
    old_doc, new_doc = doc(node, old), doc(node, new)
    assert old_doc["status"] == "superseded"
    assert old_doc["superseded_by"] == new
    assert old_doc["title"] == "条例（案）"
    assert old_doc["tx_id"] == registered.tx_id
    assert [(e["action"], e["tx_id"], e["height"]) for e in old_doc["history"]] == [
        ("registered", registered.tx_id, registered.height),
        ("superseded", replaced.tx_id, replaced.height),
    ]
    assert old_doc["history"][1]["reason"] == "議会で可決"
    assert new_doc["status"] == "active"
    assert new_doc["supersedes"] == old
    assert (new_doc["title"], new_doc["category"]) == ("条例", "ordinance")
    assert (new_doc["tx_id"], new_doc["log_index"]) == (replaced.tx_id, replaced.index)
    assert [e["action"] for e in new_doc["history"]] == ["registered"]
    # The new version can itself be superseded; the old one no longer can.
    again = submit(
        node,
        STAFF_KEY,
        "supersede",
        {
            "sha256": old,
            "new_sha256": sha("ordinance final 2"),
            "title": "条例",
            "category": "ordinance",
            "reason": "再改訂",
        },
    )
    assert_rejected(again, "not_active")


def test_supersede_rejections_change_nothing(chain):
    node = chain["node"]
    old, taken = sha("supersede old"), sha("supersede taken")
    assert register(node, STAFF_KEY, old).status == "committed"
    assert register(node, OTHER_TOWN_STAFF, taken).status == "committed"
    before = (doc(node, old), doc(node, taken))

    def supersede(key: SigningKey, new: str) -> Receipt:
        payload = {
            "sha256": old,
            "new_sha256": new,
            "title": "改訂版",
            "category": "notice",
            "reason": "改訂",
        }
        return submit(node, key, "supersede", payload)

    assert_rejected(supersede(STAFF_KEY, old), "same_document")
    # The old version must stay active when the new SHA-256 is already someone's document.
    assert_rejected(supersede(STAFF_KEY, taken), "already_registered")
    assert_rejected(supersede(OTHER_TOWN_STAFF, sha("other town version")), "other_org")
    assert (doc(node, old), doc(node, taken)) == before
    assert doc(node, sha("other town version")) is None


def test_unknown_document_cannot_be_changed(chain):
    node = chain["node"]
    receipt = submit(node, STAFF_KEY, "withdraw", {"sha256": sha("never"), "reason": "なし"})
    assert_rejected(receipt, "unknown_document")


def test_malformed_payloads_are_rejected(chain):
    node = chain["node"]
    bad = [
        {"sha256": "ABC", "title": "x", "category": "notice"},
        {"sha256": sha("upper").upper(), "title": "x", "category": "notice"},
        {"sha256": sha("empty title"), "title": "", "category": "notice"},
        {"sha256": sha("bad category"), "title": "x", "category": "gossip"},
        {"sha256": sha("extra field"), "title": "x", "category": "notice", "file": "a.pdf"},
    ]
    for payload in bad:
        receipt = submit(node, STAFF_KEY, "register", payload)
        assert receipt.status == "rejected", (payload, receipt)
        assert doc(node, payload["sha256"]) is None


class _Recording:
    """State that remembers which keys were read (the contract's reads, seen from below)."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.read: set[tuple[str, str]] = set()

    def get(self, ns: str, key: str) -> Any:
        self.read.add((ns, key))
        return self.base.get(ns, key)

    def get_raw(self, ns: str, key: str) -> Any:
        self.read.add((ns, key))
        return self.base.get_raw(ns, key)

    def scan(self, ns: str, prefix: str = "") -> Any:
        self.read.add((ns, prefix + "*"))
        return self.base.scan(ns, prefix)


def test_prefetch_names_every_document_a_transaction_reads(chain):
    """A catching-up node reads the keys the contract names before executing a run of
    blocks: every document read must be among them (else each costs a query of its own)."""
    from tsunagu.ledger.tx import build_tx

    node = chain["node"]
    old = sha("prefetch old")
    assert register(node, STAFF_KEY, old).status == "committed"
    contract = DocumentsContract()
    common = {"title": "改訂版", "category": "notice"}
    cases = [
        ("register", {"sha256": sha("prefetch new"), **common}),
        (
            "supersede",
            {"sha256": old, "new_sha256": sha("prefetch newer"), **common, "reason": "改訂"},
        ),
        ("withdraw", {"sha256": old, "reason": "誤りがありました"}),
    ]
    head = node.head
    for n, (type_, payload) in enumerate(cases):
        tx = build_tx(node.chain_id, "documents", type_, payload, STAFF_KEY, 10_000 + n)
        state = _Recording(node.store.state())
        execution = node.executor.execute(
            state,
            [tx],
            chain_id=node.chain_id,
            height=head.height + 1,
            timestamp=head.timestamp,
            first_index=head.tree_size,
            prev_state_hash=head.state_hash,
            check_signatures=False,
        )
        assert execution.results[0].status == "committed", (type_, execution.results)
        documents = {read for read in state.read if read[0].startswith("documents.")}
        assert documents, type_
        assert documents <= set(contract.prefetch(type_, payload)), type_
        assert set(node.executor.prefetch_keys([tx])) >= documents
