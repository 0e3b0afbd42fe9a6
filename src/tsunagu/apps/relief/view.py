"""Relief state as pages and the API read it: records enriched with the names of catalogue
items, organisations and places, so that a page needs no second lookup."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from tsunagu.apps.relief import catalog, labels
from tsunagu.apps.relief.contract import NEED_ROLES, SUPPORTER_ROLES, municipality_of, remaining
from tsunagu.identity.private import User
from tsunagu.places import municipalities
from tsunagu.web.deps import services

PREFIX = "/api/v1/relief"  # the relief API's routes
# The roles that act in relief: those who post offers and ship (supporter, staff), post needs
# and receive (shelter_staff) or review and confirm (coordinator). Administrators always.
RELIEF_ROLES = (*SUPPORTER_ROLES, *NEED_ROLES)


def in_relief(user: User | None, roles: tuple[str, ...] = RELIEF_ROLES) -> bool:
    """``user`` holds one of ``roles`` (a relief role by default; admin always). A resident or
    an environment officer of a municipality belongs to its organisation but does not act for
    it in relief: no packages, labels or notifications of the municipality."""
    return user is not None and user.has_role(*roles)


def acts_for(user: User | None, org: str, roles: tuple[str, ...] = RELIEF_ROLES) -> bool:
    """``user`` acts for ``org`` in relief: a member of ``org`` holding one of ``roles``.
    The one rule for labels, the inbox, the hub, the packages list and the ship/receive forms."""
    return in_relief(user, roles) and user is not None and user.org == org


def involved(user: User | None, match: dict[str, Any]) -> bool:
    """``user`` acts for the package's sender or its destination shelter."""
    return acts_for(user, match["sender"]) or acts_for(user, match["shelter"])


class View:
    """State and names for one request."""

    def __init__(self, request: Request) -> None:
        self.state = services(request).node.store.state()
        self._orgs: dict[str, dict[str, Any]] = {}

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [v for _, v in self.state.scan(f"relief.{kind}")]

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return self.state.get(f"relief.{kind}", key)

    def org(self, org_id: str) -> dict[str, Any]:
        if org_id not in self._orgs:
            self._orgs[org_id] = self.state.get("identity.org", org_id) or {"id": org_id}
        return self._orgs[org_id]

    def org_name(self, org_id: str) -> dict[str, str]:
        org = self.org(org_id)
        return {"ja": org.get("name_ja", org_id), "en": org.get("name_en", org_id)}

    def municipality(self, user: User) -> str | None:
        return municipality_of(self.org(user.org))

    @staticmethod
    def place_name(place: str) -> dict[str, str]:
        m = municipalities().get(place)
        return {"ja": m.name_ja, "en": m.name_en} if m else {"ja": place, "en": place}

    @staticmethod
    def item_names(item_id: str) -> tuple[dict[str, str], dict[str, str]]:
        it = catalog.item(item_id)
        if it is None:
            return {"ja": item_id, "en": item_id}, {"ja": "", "en": ""}
        return {"ja": it.name_ja, "en": it.name_en}, {"ja": it.unit_ja, "en": it.unit_en}

    @staticmethod
    def allergen_names(ids: list[str] | None) -> list[dict[str, str]] | None:
        if ids is None:
            return None
        known = catalog.allergens()
        order = {a: i for i, a in enumerate(known)}  # the Agency's order: mandatory ones first
        return [
            known[a].to_json() if a in known else {"id": a, "ja": a, "en": a}
            for a in sorted(ids, key=lambda a: (order.get(a, len(order)), a))
        ]

    def need(self, need: dict[str, Any]) -> dict[str, Any]:
        item, unit = self.item_names(need["item"])
        return {
            **{k: v for k, v in need.items() if k != "posted_by"},
            "remaining": remaining(need),
            "item_name": item,
            "unit_name": unit,
            "shelter_name": self.org_name(need["shelter"]),
            "municipality_name": self.place_name(need["municipality"]),
            "allergen_free_names": self.allergen_names(need["allergen_free"]),
        }

    def offer(self, offer: dict[str, Any]) -> dict[str, Any]:
        item, unit = self.item_names(offer["item"])
        return {
            **{k: v for k, v in offer.items() if k != "posted_by"},
            "remaining": remaining(offer),
            "item_name": item,
            "unit_name": unit,
            "org_name": self.org_name(offer["org"]),
            "ship_from_name": self.place_name(offer["ship_from"]),
            "allergens_declared": offer["allergens"] is not None,
            "allergen_names": self.allergen_names(offer["allergens"]),
        }

    def contents(self, match: dict[str, Any]) -> dict[str, Any]:
        """What is in the package, as the need and the offer say."""
        need = self.get("need", match["need"]) or {}
        offer = self.get("offer", match["offer"]) or {}
        item = catalog.item(match["item"])
        declared = offer.get("allergens") is not None or (item is not None and item.kind != "food")
        return {
            # Allergens concern food: clothing, bedding and the like show no allergen box.
            "food": item is None or item.kind == "food",
            "allergens_declared": declared,
            "allergens": self.allergen_names(offer.get("allergens") or [] if declared else None),
            "allergen_free": self.allergen_names(need.get("allergen_free", [])),
            "size": offer.get("size"),
            "condition": offer.get("condition"),
            "expiry": offer.get("expiry"),
            "priority": need.get("priority"),
            "needed_by": need.get("needed_by"),
        }

    def match(self, match: dict[str, Any]) -> dict[str, Any]:
        item, unit = self.item_names(match["item"])
        return {
            **match,
            "timeline": [
                {**e, "verify_url": f"/api/v1/tx/{e['tx_id']}"} for e in match["timeline"]
            ],
            "item_name": item,
            "unit_name": unit,
            "shelter_name": self.org_name(match["shelter"]),
            "municipality_name": self.place_name(match["municipality"]),
            "sender_name": self.org_name(match["sender"]),
            "ship_from_name": self.place_name(match["ship_from"]),
            "contents": self.contents(match),
            "page_url": f"/r/{match['code']}",
            "label_url": f"{PREFIX}/matches/{match['id']}/label.pdf",
        }

    def public(self, match: dict[str, Any]) -> dict[str, Any]:
        """What anyone holding the package's QR code may see: no notes, no tracking, no keys."""
        item, unit = self.item_names(match["item"])
        receipt = match["receipt"]
        return {
            "match_id": match["id"],
            "status": match["status"],
            "item": match["item"],
            "item_name": item,
            "quantity": match["quantity"],
            "unit": match["unit"],
            "unit_name": unit,
            "contents": self.contents(match),
            "sender": {"id": match["sender"], "name": self.org_name(match["sender"])},
            "destination": {
                "id": match["shelter"],
                "name": self.org_name(match["shelter"]),
                "municipality": match["municipality"],
                "municipality_name": self.place_name(match["municipality"]),
            },
            "ship_from": {"id": match["ship_from"], "name": self.place_name(match["ship_from"])},
            "receipt": None
            if receipt is None
            else {"outcome": receipt["outcome"], "quantity": receipt["quantity"]},
            "timeline": [
                {k: e[k] for k in ("action", "tx_id", "height", "at")}
                | {"verify_url": f"/api/v1/tx/{e['tx_id']}"}
                for e in match["timeline"]
            ],
        }

    def may_print(self, user: User, match: dict[str, Any]) -> bool:
        """Labels: the sender's users, the destination shelter's staff, the coordinator of the
        shelter's municipality, and administrators."""
        if "admin" in user.roles or involved(user, match):
            return True
        return "coordinator" in user.roles and self.municipality(user) == match["municipality"]

    def may_see(self, user: User | None, match: dict[str, Any]) -> bool:
        """A match's own record (its page, ``GET /matches/{id}``, the packages lists): those who
        may print its label, and the relief staff of the shelter's municipality. Anyone else
        is answered "not found", which tells nothing of the match. The package's QR page
        (``/r/{code}``) is for whoever holds the label, and shows no tracking or notes."""
        if user is None:
            return False
        return self.may_print(user, match) or acts_for(user, match["municipality"])

    def label(self, match: dict[str, Any], base_url: str) -> labels.LabelData:
        c = self.contents(match)
        item, _ = self.item_names(match["item"])
        declared = c["allergens_declared"]
        return labels.LabelData(
            match_id=match["id"],
            url=f"{base_url}/r/{match['code']}",
            item_ja=item["ja"],
            item_en=item["en"],
            quantity=match["quantity"],
            unit_ja=match["unit"],
            allergens_contained=tuple(a["ja"] for a in c["allergens"] or []),
            allergen_free=tuple(a["ja"] for a in c["allergen_free"]) if declared else (),
            allergens_declared=declared,
            size=c["size"],
            condition=c["condition"],
            expiry=c["expiry"],
            destination_ja=self.org_name(match["shelter"])["ja"],
            destination_municipality_ja=self.place_name(match["municipality"])["ja"],
            sender_ja=self.org_name(match["sender"])["ja"],
            ship_from_ja=self.place_name(match["ship_from"])["ja"],
            priority=c["priority"],
        )
