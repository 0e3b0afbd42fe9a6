"""The consortium's membership on the chain: organisations, node keys and member keys.

Only pseudonymous key ids, organisation ids and roles live here. Usernames, names and
passwords stay in each node's private store.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from tsunagu.contracts import Contract, Payload, TxContext
from tsunagu.ledger.keys import key_id

OrgType = Literal["municipality", "shelter", "company", "shop", "npo", "operator"]
Role = Literal[
    "admin",
    "staff",
    "coordinator",
    "shelter_staff",
    "supporter",
    "env_staff",
    "verifier",
    "company",
    "shop",
    "organiser",
    "resident",
    "node",
    "device",
]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Name = Annotated[str, Field(min_length=1, max_length=120)]


class Org(Payload):
    id: Slug
    type: OrgType
    name_ja: Name
    name_en: Name
    municipality: Slug | None = None


class NodeEntry(Payload):
    id: Slug
    public_key: Hex64
    org: Slug


class MemberEntry(Payload):
    public_key: Hex64
    org: Slug
    roles: Annotated[list[Role], Field(min_length=1, max_length=8)]
    kind: Literal["user", "device"] = "user"


class Consortium(Payload):
    name_ja: Name
    name_en: Name


class Genesis(Payload):
    consortium: Consortium
    orgs: Annotated[list[Org], Field(min_length=1)]
    nodes: Annotated[list[NodeEntry], Field(min_length=1)]
    members: Annotated[list[MemberEntry], Field(min_length=1)]


class MemberRoles(Payload):
    key_id: Hex64
    roles: Annotated[list[Role], Field(min_length=1, max_length=8)]


class MemberRevoke(Payload):
    key_id: Hex64


class DeviceAdd(Payload):
    """A metering device's own key (eco-points readings), added by environment staff."""

    public_key: Hex64
    org: Slug


class IdentityContract(Contract):
    app = "identity"
    types: ClassVar[dict[str, type[Payload]]] = {
        "genesis": Genesis,
        "org.add": Org,
        "node.add": NodeEntry,
        "member.add": MemberEntry,
        "member.roles": MemberRoles,
        "member.revoke": MemberRevoke,
        "device.add": DeviceAdd,
    }

    def on_genesis(self, ctx: TxContext, p: Genesis) -> None:
        if ctx.read("identity.consortium", "consortium") is not None:
            ctx.reject(
                "genesis_again", "The chain already has a genesis.", "ジェネシスは既にあります。"
            )
        ctx.put("consortium", "consortium", p.consortium.model_dump())
        for org in p.orgs:
            self.on_org_add(ctx, org, check=False)
        for node in p.nodes:
            self.on_node_add(ctx, node, check=False)
        for member in p.members:
            self.on_member_add(ctx, member, check=False)

    def on_org_add(self, ctx: TxContext, p: Org, check: bool = True) -> None:
        if check:
            ctx.require_role("admin")
        if ctx.get("org", p.id) is not None:
            ctx.reject(
                "duplicate_org", f"Organisation {p.id} exists.", f"組織 {p.id} は既にあります。"
            )
        ctx.put("org", p.id, p.model_dump())

    def on_node_add(self, ctx: TxContext, p: NodeEntry, check: bool = True) -> None:
        if check:
            ctx.require_role("admin")
        self._known_org(ctx, p.org)
        if ctx.get("node", p.id) is not None:
            ctx.reject("duplicate_node", f"Node {p.id} exists.", f"ノード {p.id} は既にあります。")
        ctx.put("node", p.id, p.model_dump())
        ctx.put(
            "member",
            key_id(bytes.fromhex(p.public_key)),
            {"public_key": p.public_key, "org": p.org, "roles": ["node"], "kind": "node"},
        )

    def on_member_add(self, ctx: TxContext, p: MemberEntry, check: bool = True) -> None:
        if check:
            ctx.require_role("admin")
        self._known_org(ctx, p.org)
        kid = key_id(bytes.fromhex(p.public_key))
        if ctx.get("member", kid) is not None:
            ctx.reject(
                "duplicate_member", "This key is registered.", "この鍵は既に登録されています。"
            )
        ctx.put("member", kid, {**p.model_dump(), "active": True, "since": ctx.timestamp})

    def on_member_roles(self, ctx: TxContext, p: MemberRoles) -> None:
        ctx.require_role("admin")
        member = self._member(ctx, p.key_id)
        ctx.put("member", p.key_id, {**member, "roles": list(p.roles)})

    def on_member_revoke(self, ctx: TxContext, p: MemberRevoke) -> None:
        ctx.require_role("admin")
        member = self._member(ctx, p.key_id)
        ctx.put("member", p.key_id, {**member, "active": False, "revoked_at": ctx.timestamp})

    def on_device_add(self, ctx: TxContext, p: DeviceAdd) -> None:
        """A device key may sign only as a device (role ``device``); environment staff add
        one for an organisation of their own municipality when they approve the device."""
        ctx.require_role("env_staff")
        self._known_org(ctx, p.org)
        if "admin" not in ctx.signer.roles:
            mine, theirs = ctx.get("org", ctx.signer.org), ctx.get("org", p.org)
            if (mine or {}).get("municipality") != (theirs or {}).get("municipality"):
                ctx.reject(
                    "other_municipality",
                    "Devices are added by the staff of their own municipality.",
                    "機器の鍵を登録できるのは、その自治体の職員だけです。",
                )
        kid = key_id(bytes.fromhex(p.public_key))
        if ctx.get("member", kid) is not None:
            ctx.reject(
                "duplicate_member", "This key is registered.", "この鍵は既に登録されています。"
            )
        ctx.put(
            "member",
            kid,
            {
                "public_key": p.public_key,
                "org": p.org,
                "roles": ["device"],
                "kind": "device",
                "active": True,
                "since": ctx.timestamp,
            },
        )

    @staticmethod
    def _known_org(ctx: TxContext, org: str) -> None:
        if ctx.get("org", org) is None:
            ctx.reject("unknown_org", f"Unknown organisation {org}.", f"不明な組織です: {org}")

    @staticmethod
    def _member(ctx: TxContext, kid: str) -> dict:
        member = ctx.get("member", kid)
        if member is None or member.get("kind") == "node":
            ctx.reject("unknown_member", "Unknown member key.", "不明なメンバー鍵です。")
        return member  # type: ignore[return-value]
