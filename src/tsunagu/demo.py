"""The demo consortium: Tama and island municipalities, shelters, companies, shops,
volunteer groups, one account per role, and each app's demo data."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsunagu.identity.private import PrivateStore, User
from tsunagu.ledger.keys import SigningKey
from tsunagu.ledger.tx import build_tx
from tsunagu.node.node import Node, Receipt, write_node_key
from tsunagu.places import members
from tsunagu.platform import App

CHAIN_ID = "tsunagu-tama-demo"
DEMO_PASSWORD = "tsunagu-demo"
NODE_ID = "tama-node-1"
OPERATOR = "tama-consortium"

# Organisations beyond the municipalities: (id, type, name_ja, name_en, municipality)
EXTRA_ORGS: tuple[tuple[str, str, str, str, str | None], ...] = (
    (
        OPERATOR,
        "operator",
        "多摩・島しょ自治体ブロックチェーン協議会",
        "Tama and Islands Municipal Blockchain Consortium",
        None,
    ),
    (
        "tachikawa-shelter-1",
        "shelter",
        "立川市立第一小学校 避難所",
        "Tachikawa No.1 Elementary School Shelter",
        "tachikawa",
    ),
    (
        "hachioji-shelter-4",
        "shelter",
        "八王子市立第四小学校 避難所",
        "Hachioji No.4 Elementary School Shelter",
        "hachioji",
    ),
    (
        "oshima-shelter-1",
        "shelter",
        "大島町開発総合センター 避難所",
        "Oshima Development Center Shelter",
        "oshima",
    ),
    (
        "hachijo-shelter-1",
        "shelter",
        "八丈町立富士中学校 避難所",
        "Hachijo Fuji Junior High School Shelter",
        "hachijo",
    ),
    (
        "musashino-foods",
        "company",
        "武蔵野フーズ株式会社",
        "Musashino Foods Co., Ltd.",
        "musashino",
    ),
    ("tama-logistics", "company", "多摩ロジスティクス株式会社", "Tama Logistics Co., Ltd.", "hino"),
    (
        "green-energy-tama",
        "company",
        "多摩グリーンエナジー株式会社",
        "Tama Green Energy Co., Ltd.",
        "fuchu",
    ),
    (
        "tama-audit",
        "company",
        "多摩環境認証センター",
        "Tama Environmental Verification Center",
        "tachikawa",
    ),
    ("tachikawa-bakery", "shop", "立川こむぎ堂", "Tachikawa Komugido Bakery", "tachikawa"),
    (
        "hachioji-market",
        "shop",
        "八王子ファーマーズマーケット",
        "Hachioji Farmers' Market",
        "hachioji",
    ),
    (
        "tachikawa-shakyo",
        "npo",
        "立川市社会福祉協議会",
        "Tachikawa Council of Social Welfare",
        "tachikawa",
    ),
    ("tama-volunteer-net", "npo", "多摩ボランティアネット", "Tama Volunteer Network", "hachioji"),
    (
        "machida-kodomo",
        "npo",
        "町田こども食堂ネットワーク",
        "Machida Children's Cafeteria Network",
        "machida",
    ),
    (
        "oshima-shakyo",
        "npo",
        "大島町社会福祉協議会",
        "Oshima Council of Social Welfare",
        "oshima",
    ),
)

# Demo accounts: (username, display name, org, roles). One per role, plus island staff.
ACCOUNTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("admin", "協議会 管理者", OPERATOR, ("admin",)),
    ("staff1", "八王子市 総務課 佐藤", "hachioji", ("staff",)),
    ("staff2", "大島町 総務課 鈴木", "oshima", ("staff",)),
    ("coordinator1", "立川市 災害対策本部 高橋", "tachikawa", ("coordinator", "staff")),
    ("coordinator2", "大島町 災害対策本部 清水", "oshima", ("coordinator", "staff")),
    ("shelter1", "立川第一小 避難所 田中", "tachikawa-shelter-1", ("shelter_staff",)),
    ("shelter2", "大島町 避難所 伊藤", "oshima-shelter-1", ("shelter_staff",)),
    ("shelter3", "八王子第四小 避難所 森", "hachioji-shelter-4", ("shelter_staff",)),
    ("shelter4", "八丈町 富士中 避難所 池田", "hachijo-shelter-1", ("shelter_staff",)),
    ("supporter1", "武蔵野フーズ 渡辺", "musashino-foods", ("supporter",)),
    ("envstaff1", "八王子市 環境政策課 山本", "hachioji", ("env_staff",)),
    ("verifier1", "多摩環境認証センター 中村", "tama-audit", ("verifier",)),
    ("company1", "多摩グリーンエナジー 小林", "green-energy-tama", ("company",)),
    ("shop1", "立川こむぎ堂 加藤", "tachikawa-bakery", ("shop",)),
    ("organiser1", "多摩ボランティアネット 吉田", "tama-volunteer-net", ("organiser",)),
    ("resident1", "八王子市民 山田 太郎", "hachioji", ("resident",)),
    ("resident2", "立川市民 松本 花子", "tachikawa", ("resident",)),
    # Community contribution: more volunteer groups and neighbours.
    ("organiser2", "立川市社会福祉協議会 井上", "tachikawa-shakyo", ("organiser",)),
    ("organiser3", "町田こども食堂ネットワーク 木村", "machida-kodomo", ("organiser",)),
    ("organiser4", "大島町社会福祉協議会 林", "oshima-shakyo", ("organiser",)),
    ("resident3", "八王子市民 斎藤 健", "hachioji", ("resident",)),
    ("resident4", "八王子市民 グエン・ティ・ラン", "hachioji", ("resident",)),
    ("resident5", "町田市民 岡田 美咲", "machida", ("resident",)),
    ("resident6", "大島町民 前田 誠", "oshima", ("resident",)),
    ("resident7", "立川市民 石井 由美", "tachikawa", ("resident",)),
    # Eco-points: environment staff in every municipality where the eco demo has devices, so
    # that each town's devices are approved by its own programme staff.
    ("envstaff2", "立川市 環境対策課 西村", "tachikawa", ("env_staff",)),
    ("envstaff3", "武蔵野市 環境政策課 原田", "musashino", ("env_staff",)),
    ("envstaff4", "三鷹市 環境政策課 藤田", "mitaka", ("env_staff",)),
    ("envstaff5", "府中市 環境政策課 後藤", "fuchu", ("env_staff",)),
    ("envstaff6", "町田市 環境政策課 長谷川", "machida", ("env_staff",)),
    ("envstaff7", "日野市 環境保全課 村上", "hino", ("env_staff",)),
    ("envstaff8", "国分寺市 環境対策課 近藤", "kokubunji", ("env_staff",)),
    ("envstaff9", "多摩市 環境政策課 坂本", "tama", ("env_staff",)),
)


def genesis_payload(
    node_key: SigningKey,
    keys: dict[str, SigningKey],
    extra_nodes: Iterable[tuple[str, SigningKey, str]] = (),
) -> dict[str, Any]:
    orgs = [
        {
            "id": m.id,
            "type": "municipality",
            "name_ja": m.name_ja,
            "name_en": m.name_en,
            "municipality": m.id,
        }
        for m in members()
    ]
    for ident, kind, name_ja, name_en, municipality in EXTRA_ORGS:
        org = {"id": ident, "type": kind, "name_ja": name_ja, "name_en": name_en}
        if municipality:
            org["municipality"] = municipality
        orgs.append(org)
    return {
        "consortium": {
            "name_ja": "多摩・島しょ自治体ブロックチェーン協議会",
            "name_en": "Tama and Islands Municipal Blockchain Consortium",
        },
        "orgs": orgs,
        "nodes": [{"id": NODE_ID, "public_key": node_key.public_key.hex(), "org": OPERATOR}]
        + [
            {"id": ident, "public_key": key.public_key.hex(), "org": org}
            for ident, key, org in extra_nodes
        ],
        "members": [
            {"public_key": keys[username].public_key.hex(), "org": org, "roles": list(roles)}
            for username, _, org, roles in ACCOUNTS
        ],
    }


@dataclass
class Demo:
    """What an app's demo seeding may use."""

    node: Node
    private: PrivateStore
    users: dict[str, User]
    data_dir: Path
    base_url: str | None = None  # where the demo will be served, when known

    def key(self, username: str) -> SigningKey:
        return self.private.signing_key(self.users[username])

    def submit(self, username: str, app: str, type: str, payload: dict[str, Any]) -> Receipt:
        """Submit one transaction as ``username`` and wait for its block."""
        return self.submit_many([(username, app, type, payload)])[0]

    def submit_many(
        self, items: Iterable[tuple[str, str, str, dict[str, Any]]], *, check: bool = True
    ) -> list[Receipt]:
        """Submit many transactions at once (they share blocks) and wait for all."""
        pendings = [
            self.node.submit_signed(self.key(user), app, type, payload)
            for user, app, type, payload in items
        ]
        receipts = [p.future.result(timeout=60) for p in pendings]
        if check:
            for receipt in receipts:
                if receipt.status != "committed":
                    raise RuntimeError(f"demo transaction rejected: {receipt}")
        return receipts


def create_demo(
    data_dir: Path,
    node: Node | None,
    apps: list[App],
    password: str = DEMO_PASSWORD,
    extra_nodes: Iterable[tuple[str, SigningKey, str]] = (),
    base_url: str | None = None,
) -> tuple[Node, PrivateStore]:
    """Create the demo consortium in ``data_dir`` (which must hold no chain yet).

    ``extra_nodes`` (id, key, organisation) are registered in the genesis beside this node,
    for a local consortium (``tsunagu cluster up``). ``base_url`` is where the demo will be
    served (written into files such as the eco devices' provisioning files)."""
    from tsunagu.platform import platform_contracts

    node_key = SigningKey.generate()
    write_node_key(data_dir, NODE_ID, node_key)
    private = PrivateStore(data_dir)
    keys = {username: SigningKey.generate() for username, *_ in ACCOUNTS}
    users = {}
    shared_hash = private.hash_password(password)
    for username, display_name, org, roles in ACCOUNTS:
        user, _ = private.create_user(
            username,
            password,
            display_name,
            org,
            list(roles),
            key=keys[username],
            password_hash=shared_hash,
        )
        users[username] = user
    node = Node(data_dir, platform_contracts(apps))
    admin = keys["admin"]
    genesis = build_tx(
        CHAIN_ID, "identity", "genesis", genesis_payload(node_key, keys, extra_nodes), admin, 1
    )
    node.create_chain(CHAIN_ID, genesis)
    node.start()
    demo = Demo(node, private, users, data_dir, base_url)
    for app in apps:
        if app.seed_demo:
            app.seed_demo(demo)
    return node, private
