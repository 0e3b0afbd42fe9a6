"""The relief contract's rules, through a real node: the demo consortium (its shelters,
coordinator, supporters and accounts, on a real SQLite chain with the real orderer).

Every rule is observed the way a client sees it: the receipt's status and code, and the state
afterwards. A refused transaction must leave every ``relief.*`` row exactly as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chainkit import submit_and_wait
from tsunagu.apps.relief import catalog
from tsunagu.apps.relief.contract import looks_personal, match_id, need_id, offer_id
from tsunagu.apps.relief.labels import new_code
from tsunagu.identity.private import PrivateStore
from tsunagu.ledger.keys import SigningKey
from tsunagu.ledger.tx import MalformedTransaction
from tsunagu.node.node import Node, Receipt

MANDATORY = list(catalog.mandatory_allergens())
# Beyond the demo accounts: staff of another shelter and the coordinator of another town.
HACHIJO_STAFF = SigningKey.from_seed(hashlib.sha256(b"relief test hachijo staff").digest())
OSHIMA_COORDINATOR = SigningKey.from_seed(hashlib.sha256(b"relief test oshima coord").digest())


@dataclass
class Chain:
    node: Node
    private: PrivateStore

    def key(self, who: str | SigningKey) -> SigningKey:
        if isinstance(who, SigningKey):
            return who
        return self.private.signing_key(self.private.user(who))

    def submit(self, who: str | SigningKey, type_: str, payload: dict[str, Any]) -> Receipt:
        return submit_and_wait(self.node, self.key(who), "relief", type_, payload)

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return self.node.store.state().get(f"relief.{kind}", key)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        state = self.node.store.state()
        return {
            f"{kind}/{key}": value
            for kind in ("need", "offer", "match", "code")
            for key, value in state.scan(f"relief.{kind}")
        }

    def ok(self, who: str | SigningKey, type_: str, payload: dict[str, Any]) -> Receipt:
        receipt = self.submit(who, type_, payload)
        assert receipt.status == "committed", receipt
        return receipt

    def refused(
        self, who: str | SigningKey, type_: str, payload: dict[str, Any], code: str
    ) -> Receipt:
        before = self.snapshot()
        receipt = self.submit(who, type_, payload)
        assert receipt.status == "rejected", receipt
        assert receipt.code == code, receipt
        # Every refusal explains itself in Japanese too, and changes nothing.
        assert receipt.reason_ja and receipt.reason_ja != receipt.reason, receipt
        assert self.snapshot() == before
        return receipt

    # -- building blocks -------------------------------------------------------------

    def need(self, who: str | SigningKey = "shelter1", **fields: Any) -> str:
        return need_id(self.ok(who, "need.post", need_payload(**fields)).tx_id)

    def offer(self, who: str | SigningKey = "supporter1", **fields: Any) -> str:
        return offer_id(self.ok(who, "offer.post", offer_payload(**fields)).tx_id)

    def confirm(self, who: str | SigningKey, *allocations: tuple[str, str, int]) -> list[str]:
        receipt = self.ok(who, "match.confirm", confirm_payload(*allocations))
        return [match_id(receipt.tx_id, i) for i in range(len(allocations))]

    def shipped_match(self, quantity: int = 10, shelter_user: str = "shelter1") -> str:
        """A match of water from 武蔵野フーズ to the user's shelter, shipped."""
        coordinator = "coordinator1" if shelter_user == "shelter1" else "admin"
        need = self.need(shelter_user, item="tokyo-1", quantity=quantity)
        offer = self.offer(item="tokyo-1", quantity=quantity, expiry=day(800))
        (match,) = self.confirm(coordinator, (need, offer, quantity))
        self.ok("supporter1", "shipment.report", {"match": match})
        return match


def day(offset: int) -> str:
    return (datetime.now(UTC) + timedelta(hours=9, days=offset)).date().isoformat()


def need_payload(**fields: Any) -> dict[str, Any]:
    item = fields.get("item", "tokyo-51")
    return {
        "item": item,
        "quantity": 30,
        "unit": catalog.items()[item].unit_ja if item in catalog.items() else "個",
        "priority": "high",
        "needed_by": day(3),
    } | fields


def offer_payload(**fields: Any) -> dict[str, Any]:
    item = fields.get("item", "tokyo-51")
    it = catalog.items().get(item)
    payload: dict[str, Any] = {
        "item": item,
        "quantity": 50,
        "unit": it.unit_ja if it else "個",
        "allergens": [] if it is None or it.kind == "food" else None,
        "ship_from": "musashino",
        "ship_by": day(2),
    }
    if it is not None and it.kind == "food":
        payload["expiry"] = day(400)
    return payload | fields


def confirm_payload(*allocations: tuple[str, str, int], code: str | None = None) -> dict:
    return {
        "allocations": [
            {"need": n, "offer": o, "quantity": q, "code": code or new_code()}
            for n, o, q in allocations
        ]
    }


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    from tsunagu.demo import create_demo
    from tsunagu.platform import discover_apps

    node, private = create_demo(tmp_path_factory.mktemp("relief-contract"), None, discover_apps())
    admin = private.signing_key(private.user("admin"))
    for key, org, role in (
        (HACHIJO_STAFF, "hachijo-shelter-1", "shelter_staff"),
        (OSHIMA_COORDINATOR, "oshima", "coordinator"),
    ):
        payload = {"public_key": key.public_key.hex(), "org": org, "roles": [role]}
        receipt = submit_and_wait(node, admin, "identity", "member.add", payload)
        assert receipt.status == "committed", receipt
    try:
        yield Chain(node, private)
    finally:
        node.stop()


# -- needs -------------------------------------------------------------------------------


def test_shelter_staff_post_a_need(chain: Chain):
    receipt = chain.ok(
        "shelter1",
        "need.post",
        need_payload(allergen_free=["milk", "egg", "egg"], note="高齢者向け"),
    )
    need = chain.get("need", need_id(receipt.tx_id))
    assert need is not None
    assert need["id"] == f"n-{receipt.tx_id[:16]}"
    assert (need["shelter"], need["municipality"]) == ("tachikawa-shelter-1", "tachikawa")
    assert (need["item"], need["unit"], need["quantity"]) == ("tokyo-51", "食", 30)
    assert (need["matched"], need["received"], need["status"]) == (0, 0, "open")
    assert need["allergen_free"] == ["egg", "milk"]  # sorted, without repeats
    block = chain.node.store.block(receipt.height)
    assert need["history"] == [
        {
            "action": "posted",
            "tx_id": receipt.tx_id,
            "height": receipt.height,
            "at": block.header.timestamp,
            "org": "tachikawa-shelter-1",
        }
    ]


def test_coordinator_posts_for_a_shelter_of_its_own_municipality_only(chain: Chain):
    need = chain.need("coordinator1", shelter="tachikawa-shelter-1")
    assert chain.get("need", need)["shelter"] == "tachikawa-shelter-1"
    chain.refused(
        "coordinator1", "need.post", need_payload(shelter="oshima-shelter-1"), "not_shelter_staff"
    )
    chain.need(OSHIMA_COORDINATOR, shelter="oshima-shelter-1")


@pytest.mark.parametrize(
    ("who", "fields", "code"),
    [
        ("supporter1", {}, "not_shelter"),  # a company is not a shelter
        ("supporter1", {"shelter": "tachikawa-shelter-1"}, "not_shelter_staff"),
        ("shelter2", {"shelter": "tachikawa-shelter-1"}, "not_shelter_staff"),
        ("resident1", {"shelter": "tachikawa-shelter-1"}, "not_shelter_staff"),
        ("coordinator1", {"shelter": "musashino-foods"}, "not_shelter"),
    ],
)
def test_only_a_shelters_people_post_its_needs(chain: Chain, who, fields, code):
    chain.refused(who, "need.post", need_payload(**fields), code)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"quantity": 0}, "invalid_payload"),
        ({"quantity": -5}, "invalid_payload"),
        ({"item": "tokyo-999", "unit": "個"}, "unknown_item"),
        ({"unit": "kg"}, "wrong_unit"),
        ({"allergen_free": ["matsutake"]}, "unknown_allergen"),
        ({"item": "bedding-blanket", "allergen_free": ["milk"]}, "allergens_not_food"),
        ({"item": "clothing-children", "size": "155"}, "bad_size"),
        ({"item": "clothing-adult", "size": "150"}, "bad_size"),
        ({"size": "M"}, "bad_size"),
        ({"needed_by": day(-1)}, "date_past"),
        ({"needed_by": "2027-02-30"}, "invalid_payload"),
        ({"priority": "soon"}, "invalid_payload"),
        ({"condition": "used"}, "invalid_payload"),
        ({"note": "連絡先 090-1234-5678 田中"}, "personal_data"),
        ({"note": "連絡は ０４２−１２３−４５６７ まで"}, "personal_data"),
        ({"note": "tanaka@example.jp まで"}, "personal_data"),
        ({"note": "x" * 201}, "invalid_payload"),
        ({"colour": "blue"}, "invalid_payload"),
    ],
)
def test_bad_needs_are_refused(chain: Chain, fields, code):
    chain.refused("shelter1", "need.post", need_payload(**fields), code)


def test_a_fractional_quantity_never_becomes_a_transaction(chain: Chain):
    before = chain.snapshot()
    with pytest.raises(MalformedTransaction, match="whole"):
        chain.submit("shelter1", "need.post", need_payload(quantity=2.5))
    assert chain.snapshot() == before


def test_personal_data_check_leaves_ordinary_notes_alone():
    for note in ("1箱（6食）不足", "2026-12-01 までに 1,200 L", "子供服 150 を 20 着", "8枚に破れ"):
        assert not looks_personal(note), note
    assert looks_personal("03-1234-5678")
    assert looks_personal("+81 90 1234 5678")


def test_a_need_is_edited_but_never_below_what_is_matched(chain: Chain):
    need = chain.need(quantity=40)
    offer = chain.offer(quantity=100)
    chain.confirm("coordinator1", (need, offer, 25))
    chain.refused("shelter1", "need.update", {"need": need, "quantity": 24}, "below_matched")
    chain.refused("shelter1", "need.update", {"need": need}, "nothing_to_change")
    chain.refused("shelter1", "need.update", {"need": need, "quantity": 0}, "invalid_payload")
    chain.refused("shelter1", "need.update", {"need": need, "needed_by": day(-2)}, "date_past")
    chain.refused("shelter2", "need.update", {"need": need, "quantity": 50}, "not_shelter_staff")
    chain.refused("shelter1", "need.update", {"need": "n-0000", "quantity": 5}, "unknown_need")

    chain.ok("shelter1", "need.update", {"need": need, "quantity": 25, "priority": "urgent"})
    record = chain.get("need", need)
    assert (record["quantity"], record["priority"], record["status"]) == (25, "urgent", "fulfilled")
    assert record["history"][-1]["changes"] == {"quantity": 25, "priority": "urgent"}
    chain.ok("coordinator1", "need.update", {"need": need, "quantity": 60, "needed_by": day(5)})
    record = chain.get("need", need)
    assert (record["quantity"], record["status"], record["needed_by"]) == (60, "open", day(5))


def test_a_cancelled_need_takes_no_more_matches_or_edits(chain: Chain):
    need = chain.need()
    offer = chain.offer()
    chain.refused("shelter2", "need.cancel", {"need": need}, "not_shelter_staff")
    chain.ok("shelter1", "need.cancel", {"need": need, "reason": "他の避難所へ統合"})
    record = chain.get("need", need)
    assert record["status"] == "cancelled"
    assert record["history"][-1]["reason"] == "他の避難所へ統合"
    chain.refused("shelter1", "need.cancel", {"need": need}, "need_cancelled")
    chain.refused("shelter1", "need.update", {"need": need, "quantity": 3}, "need_cancelled")
    chain.refused(
        "coordinator1", "match.confirm", confirm_payload((need, offer, 1)), "need_cancelled"
    )


# -- offers ------------------------------------------------------------------------------


def test_supporters_and_supporting_municipalities_offer(chain: Chain):
    offer = chain.offer(
        item="clothing-children",
        quantity=30,
        size="150",
        allergens=None,
        note="新品",
    )
    record = chain.get("offer", offer)
    assert (record["org"], record["size"], record["condition"]) == ("musashino-foods", "150", "new")
    assert record["allergens"] is None and record["expiry"] is None
    assert (record["matched"], record["status"], record["ship_from"]) == (0, "open", "musashino")
    # Staff of a municipality supporting another one may offer too.
    from_city = chain.offer("staff1", item="bedding-blanket", ship_from="hachioji")
    assert chain.get("offer", from_city)["org"] == "hachioji"
    # Food keeps the declaration: a list (maybe empty), or null for "not declared".
    undeclared = chain.offer(item="food-allergy-canned", allergens=None)
    assert chain.get("offer", undeclared)["allergens"] is None
    declared = chain.offer(item="food-allergy-canned", allergens=["soybean", "chicken"])
    assert chain.get("offer", declared)["allergens"] == ["chicken", "soybean"]


@pytest.mark.parametrize(
    ("who", "fields", "code"),
    [
        ("shelter1", {}, "forbidden_role"),
        ("resident1", {}, "forbidden_role"),
        ("supporter1", {"quantity": 0}, "invalid_payload"),
        ("supporter1", {"quantity": -1}, "invalid_payload"),
        ("supporter1", {"expiry": None}, "expiry_required"),
        ("supporter1", {"expiry": day(-1)}, "date_past"),
        ("supporter1", {"ship_by": day(-1)}, "date_past"),
        ("supporter1", {"condition": "used"}, "must_be_new"),
        ("supporter1", {"item": "medical-otc-cold", "condition": "used"}, "must_be_new"),
        ("supporter1", {"item": "clothing-children", "allergens": None}, "size_required"),
        ("supporter1", {"item": "clothing-adult", "size": "XXL"}, "bad_size"),
        ("supporter1", {"item": "bedding-blanket", "allergens": ["wheat"]}, "allergens_not_food"),
        ("supporter1", {"allergens": ["pistachio"]}, "unknown_allergen"),
        ("supporter1", {"ship_from": "atlantis"}, "unknown_place"),
        ("supporter1", {"unit": "箱"}, "wrong_unit"),
        ("supporter1", {"note": "担当 080-9876-5432"}, "personal_data"),
    ],
)
def test_bad_offers_are_refused(chain: Chain, who, fields, code):
    chain.refused(who, "offer.post", offer_payload(**fields), code)


def test_used_clothing_may_be_offered(chain: Chain):
    offer = chain.offer(item="clothing-adult", size="M", condition="used", allergens=None)
    assert chain.get("offer", offer)["condition"] == "used"


def test_only_the_offering_organisation_withdraws(chain: Chain):
    offer = chain.offer()
    chain.refused("staff1", "offer.withdraw", {"offer": offer}, "not_owner")
    chain.ok("supporter1", "offer.withdraw", {"offer": offer, "reason": "在庫切れ"})
    assert chain.get("offer", offer)["status"] == "withdrawn"
    chain.refused("supporter1", "offer.withdraw", {"offer": offer}, "offer_withdrawn")
    # A meter of the same company (an eco-points device key) may not withdraw its offers.
    meter = SigningKey.from_seed(hashlib.sha256(b"relief test musashino meter").digest())
    payload = {"public_key": meter.public_key.hex(), "org": "musashino-foods"}
    admin = chain.key("admin")
    added = submit_and_wait(chain.node, admin, "identity", "device.add", payload)
    assert added.status == "committed", added
    second = chain.offer()
    chain.refused(meter, "offer.withdraw", {"offer": second}, "forbidden_role")
    need = chain.need()
    chain.refused(
        "coordinator1", "match.confirm", confirm_payload((need, offer, 1)), "offer_withdrawn"
    )


# -- confirming matches ----------------------------------------------------------------------


def test_confirming_matches_records_them_and_the_tallies(chain: Chain):
    okayu = chain.need(quantity=40)
    allergy_free = chain.need(item="food-allergy-friendly", quantity=60, allergen_free=MANDATORY)
    offer_okayu = chain.offer(quantity=100)
    offer_allergy = chain.offer(item="food-allergy-friendly", quantity=50, allergens=[])
    codes = [new_code(), new_code(), new_code()]
    payload = {
        "allocations": [
            {"need": okayu, "offer": offer_okayu, "quantity": 40, "code": codes[0]},
            {"need": allergy_free, "offer": offer_allergy, "quantity": 30, "code": codes[1]},
            {"need": allergy_free, "offer": offer_allergy, "quantity": 20, "code": codes[2]},
        ]
    }
    receipt = chain.ok("coordinator1", "match.confirm", payload)
    ids = [match_id(receipt.tx_id, i) for i in range(3)]
    assert ids[0] == f"m-{receipt.tx_id[:16]}-0"
    first = chain.get("match", ids[0])
    assert first == {
        "id": ids[0],
        "code": codes[0],
        "need": okayu,
        "offer": offer_okayu,
        "shelter": "tachikawa-shelter-1",
        "municipality": "tachikawa",
        "sender": "musashino-foods",
        "ship_from": "musashino",
        "item": "tokyo-51",
        "unit": "食",
        "quantity": 40,
        "status": "confirmed",
        "shipment": None,
        "receipt": None,
        "timeline": [
            {
                "action": "matched",
                "tx_id": receipt.tx_id,
                "height": receipt.height,
                "at": chain.node.store.block(receipt.height).header.timestamp,
                "org": "tachikawa",
            }
        ],
    }
    for ident, code in zip(ids, codes, strict=True):
        assert chain.get("code", code) == {"match": ident}
    assert chain.get("need", okayu)["matched"] == 40
    assert chain.get("need", okayu)["status"] == "fulfilled"
    assert chain.get("need", allergy_free)["matched"] == 50
    assert chain.get("need", allergy_free)["status"] == "open"
    assert chain.get("offer", offer_allergy)["status"] == "exhausted"
    assert chain.get("offer", offer_okayu)["matched"] == 40


def test_an_administrator_confirms_anywhere_a_coordinator_only_at_home(chain: Chain):
    island = chain.need("shelter2", item="tokyo-1", quantity=10)
    offer = chain.offer(item="tokyo-1", quantity=30)
    chain.refused(
        "coordinator1", "match.confirm", confirm_payload((island, offer, 5)), "other_municipality"
    )
    chain.refused(
        "supporter1", "match.confirm", confirm_payload((island, offer, 5)), "forbidden_role"
    )
    chain.refused(
        "shelter2", "match.confirm", confirm_payload((island, offer, 5)), "forbidden_role"
    )
    chain.confirm("admin", (island, offer, 5))
    chain.confirm(OSHIMA_COORDINATOR, (island, offer, 5))
    assert chain.get("need", island)["matched"] == 10


def test_codes_are_long_and_unique(chain: Chain):
    need = chain.need(quantity=10)
    offer = chain.offer(quantity=10)
    short = confirm_payload((need, offer, 1), code="a" * 25)
    chain.refused("coordinator1", "match.confirm", short, "code_too_short")
    code = new_code()
    twice = confirm_payload((need, offer, 1), (need, offer, 1), code=code)
    chain.refused("coordinator1", "match.confirm", twice, "duplicate_code")
    chain.ok("coordinator1", "match.confirm", confirm_payload((need, offer, 1), code=code))
    again = confirm_payload((need, offer, 1), code=code)
    chain.refused("coordinator1", "match.confirm", again, "duplicate_code")
    bad = confirm_payload((need, offer, 1), code="x" * 30 + "/")
    chain.refused("coordinator1", "match.confirm", bad, "invalid_payload")


@pytest.mark.parametrize(
    ("need_fields", "offer_fields"),
    [
        ({"item": "tokyo-51"}, {"item": "tokyo-1"}),  # another item
        (  # the need must be free of milk; the offer contains it
            {"item": "food-allergy-canned", "allergen_free": ["milk"]},
            {"item": "food-allergy-canned", "allergens": ["milk", "soybean"]},
        ),
        (  # allergens not declared cannot meet an allergy-free need
            {"item": "food-allergy-canned", "allergen_free": MANDATORY},
            {"item": "food-allergy-canned", "allergens": None},
        ),
        (  # size 150 wanted, 140 offered
            {"item": "clothing-children", "size": "150"},
            {"item": "clothing-children", "size": "140", "allergens": None},
        ),
        (  # new wanted, used offered
            {"item": "clothing-adult", "condition": "new"},
            {"item": "clothing-adult", "size": "L", "condition": "used", "allergens": None},
        ),
        (  # the food expires before it is needed
            {"needed_by": day(20)},
            {"expiry": day(10)},
        ),
    ],
)
def test_incompatible_goods_are_not_matched(chain: Chain, need_fields, offer_fields):
    need = chain.need(**need_fields)
    offer = chain.offer(**offer_fields)
    chain.refused(
        "coordinator1", "match.confirm", confirm_payload((need, offer, 1)), "incompatible"
    )


def test_compatible_attributes_match(chain: Chain):
    need = chain.need(item="clothing-children", size="150", quantity=20)
    offer = chain.offer(item="clothing-children", size="150", quantity=30, allergens=None)
    any_size = chain.need(item="clothing-children", quantity=5)
    canned = chain.need(item="food-allergy-canned", allergen_free=["egg", "milk", "wheat"])
    soy = chain.offer(item="food-allergy-canned", allergens=["soybean"])
    chain.confirm("coordinator1", (need, offer, 20), (any_size, offer, 5), (canned, soy, 30))


def test_quantities_stay_within_what_is_left(chain: Chain):
    need = chain.need(quantity=10)
    offer = chain.offer(quantity=8)
    other = chain.need(quantity=50)
    chain.refused(
        "coordinator1", "match.confirm", confirm_payload((other, offer, 9)), "exceeds_offer"
    )
    big = chain.offer(quantity=100)
    chain.refused("coordinator1", "match.confirm", confirm_payload((need, big, 11)), "exceeds_need")
    chain.refused(
        "coordinator1", "match.confirm", confirm_payload((need, big, 0)), "invalid_payload"
    )
    # Two allocations of one offer count together.
    both = confirm_payload((need, offer, 5), (other, offer, 4))
    receipt = chain.refused("coordinator1", "match.confirm", both, "exceeds_offer")
    assert receipt.reason.startswith("Allocation 2:") and "2件目" in receipt.reason_ja
    chain.confirm("coordinator1", (need, offer, 5), (other, offer, 3))
    assert chain.get("offer", offer)["status"] == "exhausted"


def test_one_bad_allocation_refuses_the_whole_confirmation(chain: Chain):
    need = chain.need(quantity=10)
    offer = chain.offer(quantity=10)
    payload = confirm_payload((need, offer, 5), (need, "o-0000000000000000", 1))
    chain.refused("coordinator1", "match.confirm", payload, "unknown_offer")
    payload = confirm_payload((need, offer, 5), ("n-0000000000000000", offer, 1))
    chain.refused("coordinator1", "match.confirm", payload, "unknown_need")
    assert chain.get("need", need)["matched"] == 0


def test_expired_offers_are_not_matched(chain: Chain):
    # An offer can only be posted unexpired, so expiry is checked again at confirmation time
    # from the block's date: goods expiring today still go, which this test can observe.
    need = chain.need(needed_by=day(0))
    offer = chain.offer(expiry=day(0))
    chain.confirm("coordinator1", (need, offer, 1))


# -- shipment, receipt, cancellation ---------------------------------------------------------


def test_the_sender_reports_the_shipment_once(chain: Chain):
    need = chain.need(quantity=10)
    offer = chain.offer(quantity=10)
    (match,) = chain.confirm("coordinator1", (need, offer, 10))
    chain.refused("staff1", "shipment.report", {"match": match}, "not_sender")
    chain.refused("shelter1", "shipment.report", {"match": match}, "forbidden_role")
    chain.refused(
        "supporter1", "shipment.report", {"match": "m-0000000000000000-0"}, "unknown_match"
    )
    chain.refused(
        "supporter1", "shipment.report", {"match": match, "tracking": "12 34"}, "invalid_payload"
    )
    receipt = chain.ok(
        "supporter1",
        "shipment.report",
        {"match": match, "carrier": "ヤマト運輸", "tracking": "1234-5678-9012"},
    )
    record = chain.get("match", match)
    assert record["status"] == "shipped"
    assert record["shipment"] == {
        "carrier": "ヤマト運輸",
        "tracking": "1234-5678-9012",
        "org": "musashino-foods",
    }
    assert [e["action"] for e in record["timeline"]] == ["matched", "shipped"]
    assert record["timeline"][1]["tx_id"] == receipt.tx_id
    chain.refused("supporter1", "shipment.report", {"match": match}, "already_shipped")


def test_receipts_come_from_the_destination_shelter_after_shipment(chain: Chain):
    need = chain.need(item="tokyo-1", quantity=10)
    offer = chain.offer(item="tokyo-1", quantity=10)
    (match,) = chain.confirm("coordinator1", (need, offer, 10))
    full = {"match": match, "outcome": "full", "client_ref": "dev-1"}
    chain.refused("shelter1", "receipt.report", full, "not_shipped")
    chain.ok("supporter1", "shipment.report", {"match": match})
    chain.refused("shelter2", "receipt.report", full, "not_destination")
    chain.refused(HACHIJO_STAFF, "receipt.report", full, "not_destination")
    chain.refused("supporter1", "receipt.report", full, "not_destination")
    chain.refused("coordinator1", "receipt.report", full, "not_destination")
    chain.refused("admin", "receipt.report", full, "not_destination")
    receipt = chain.ok("shelter1", "receipt.report", full)
    record = chain.get("match", match)
    assert record["status"] == "received"
    assert record["receipt"] == {
        "outcome": "full",
        "quantity": 10,
        "note": None,
        "client_ref": "dev-1",
        "org": "tachikawa-shelter-1",
    }
    assert [e["action"] for e in record["timeline"]] == ["matched", "shipped", "received"]
    assert record["timeline"][2]["tx_id"] == receipt.tx_id
    assert chain.get("need", need)["received"] == 10
    # A second receipt is refused, whatever it says (the API answers resends of the same one).
    chain.refused("shelter1", "receipt.report", full, "already_received")
    chain.refused(
        "shelter1",
        "receipt.report",
        {"match": match, "outcome": "partial", "quantity": 3, "client_ref": "dev-2"},
        "already_received",
    )


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"outcome": "full", "quantity": 11}, "more_than_shipped"),
        ({"outcome": "partial", "quantity": 11}, "more_than_shipped"),
        ({"outcome": "damaged", "quantity": 11, "note": "濡れ"}, "more_than_shipped"),
        ({"outcome": "full", "quantity": 9}, "quantity_mismatch"),
        ({"outcome": "partial"}, "bad_partial"),
        ({"outcome": "partial", "quantity": 0}, "bad_partial"),
        ({"outcome": "partial", "quantity": 10}, "bad_partial"),
        ({"outcome": "partial", "quantity": -1}, "invalid_payload"),
        ({"outcome": "damaged", "quantity": 4}, "note_required"),
        ({"outcome": "lost"}, "invalid_payload"),
        ({"outcome": "damaged", "note": "x" * 201}, "invalid_payload"),
        ({"outcome": "damaged", "note": "運送会社 0120-111-222 に連絡"}, "personal_data"),
        ({"outcome": "full", "client_ref": ""}, "invalid_payload"),
        ({"outcome": "full", "client_ref": "x" * 65}, "invalid_payload"),
    ],
)
def test_bad_receipts_are_refused(chain: Chain, fields, code):
    match = chain.shipped_match(quantity=10)
    chain.refused("shelter1", "receipt.report", {"match": match, "client_ref": "r"} | fields, code)
    assert chain.get("match", match)["status"] == "shipped"


@pytest.mark.parametrize(
    ("fields", "received"),
    [
        ({"outcome": "full", "quantity": 10}, 10),
        ({"outcome": "partial", "quantity": 7, "note": "1箱不足"}, 7),
        ({"outcome": "damaged", "note": "3本破損"}, 0),
        ({"outcome": "damaged", "quantity": 7, "note": "3本破損"}, 7),
    ],
)
def test_receipt_outcomes(chain: Chain, fields, received):
    match = chain.shipped_match(quantity=10)
    chain.ok("shelter1", "receipt.report", {"match": match, "client_ref": "c"} | fields)
    record = chain.get("match", match)
    assert record["receipt"]["quantity"] == received
    assert record["receipt"]["outcome"] == fields["outcome"]
    assert chain.get("need", record["need"])["received"] == received


def test_island_shelters_receive_too(chain: Chain):
    match = chain.shipped_match(quantity=12, shelter_user="shelter2")
    chain.refused(
        "shelter1",
        "receipt.report",
        {"match": match, "outcome": "full", "client_ref": "x"},
        "not_destination",
    )
    chain.ok("shelter2", "receipt.report", {"match": match, "outcome": "full", "client_ref": "x"})


def test_a_confirmed_match_can_be_cancelled_before_shipment(chain: Chain):
    need = chain.need(quantity=10)
    offer = chain.offer(quantity=10)
    (match,) = chain.confirm("coordinator1", (need, offer, 10))
    assert chain.get("need", need)["status"] == "fulfilled"
    chain.refused("shelter1", "match.cancel", {"match": match}, "not_allowed")
    chain.refused("staff1", "match.cancel", {"match": match}, "not_allowed")
    chain.refused(OSHIMA_COORDINATOR, "match.cancel", {"match": match}, "not_allowed")
    chain.ok("supporter1", "match.cancel", {"match": match, "reason": "トラック手配不可"})
    record = chain.get("match", match)
    assert record["status"] == "cancelled"
    assert record["timeline"][-1]["action"] == "cancelled"
    assert (chain.get("need", need)["matched"], chain.get("need", need)["status"]) == (0, "open")
    assert (chain.get("offer", offer)["matched"], chain.get("offer", offer)["status"]) == (
        0,
        "open",
    )
    chain.refused("supporter1", "shipment.report", {"match": match}, "match_cancelled")
    chain.refused("coordinator1", "match.cancel", {"match": match}, "not_cancellable")
    receipt = {"match": match, "outcome": "full", "client_ref": "z"}
    chain.refused("shelter1", "receipt.report", receipt, "match_cancelled")
    # What the cancellation released can be matched again.
    chain.confirm("coordinator1", (need, offer, 10))


def test_shipped_matches_cannot_be_cancelled(chain: Chain):
    match = chain.shipped_match(quantity=4)
    chain.refused("coordinator1", "match.cancel", {"match": match}, "not_cancellable")
    chain.refused("admin", "match.cancel", {"match": match}, "not_cancellable")


def test_unknown_transaction_types_are_refused(chain: Chain):
    chain.refused("shelter1", "need.delete", {"need": "n-1"}, "unknown_type")


def test_the_demo_seeded_every_stage(chain: Chain):
    matches = [v for _, v in chain.node.store.state().scan("relief.match")]
    statuses = {m["status"] for m in matches}
    assert {"confirmed", "shipped", "received"} <= statuses
    outcomes = {m["receipt"]["outcome"] for m in matches if m["receipt"]}
    assert {"full", "partial", "damaged"} <= outcomes
    shelters = {v["shelter"] for _, v in chain.node.store.state().scan("relief.need")}
    assert {
        "tachikawa-shelter-1",
        "hachioji-shelter-4",
        "oshima-shelter-1",
        "hachijo-shelter-1",
    } <= shelters


def test_replaying_the_chain_reaches_the_same_relief_state(chain: Chain):
    """Determinism: an independent replay of every block (``tsunagu verify``) reproduces the
    state hashes, including every relief row written above and every refusal."""
    from tsunagu.node.verify import verify_chain
    from tsunagu.platform import discover_apps, platform_contracts

    report = verify_chain(chain.node.data_dir, platform_contracts(discover_apps()), workers=0)
    assert report.ok, report
