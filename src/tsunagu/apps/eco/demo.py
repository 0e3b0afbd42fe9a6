"""Demo eco-points programme: households and businesses in nine Tama municipalities with home
PV and EVs, months of daily signed readings, shops and rewards, redemptions, one monitoring
report verified and issued as a lot, part of it sold to 多摩グリーンエナジー and retired.

Dates are relative to the day the demo is created: readings run from the first day of the
month six months ago to yesterday evening; the report covers the first five of those
months, so last month is still open for a new report.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from tsunagu.apps.eco import rules
from tsunagu.apps.eco.devices import device_id, voucher_bytes
from tsunagu.apps.eco.sender import DEMO_NODE
from tsunagu.apps.eco.simulate import DeviceModel, provisioning, reading_payload, readings
from tsunagu.demo import ACCOUNTS
from tsunagu.ledger.block import format_timestamp
from tsunagu.ledger.keys import SigningKey

GRID_FACTORS = (
    (
        2024,
        423_000,
        "環境省・経済産業省「電気事業者別排出係数」全国平均係数 0.000423 t-CO2/kWh（2024年度）",
        "MoE/METI electricity emission factors, national average 0.000423 t-CO2/kWh (FY2024)",
    ),
)
CAR_FACTORS = (
    (
        2024,
        170_600,
        "ガソリン 2.32 kg-CO2/L（算定・報告・公表制度）÷ 置き換えたガソリン車の実燃費 13.6 km/L",
        "Petrol 2.32 kg-CO2/L (GHG reporting scheme) / 13.6 km/L real-world economy of the "
        "replaced petrol car",
    ),
)
# (participant: a demo username or a new household's municipality, kind, rated W, seed)
DEVICES: tuple[tuple[str, str, int, int], ...] = (
    ("resident1", "pv", 4_500, 1),
    ("resident2", "pv", 3_800, 2),
    ("resident2", "ev", 6_000, 3),
    ("shop1", "pv", 10_000, 4),
    ("@hachioji", "pv", 5_200, 5),
    ("@hachioji", "ev", 6_000, 6),
    ("@tachikawa", "pv", 4_000, 7),
    ("@musashino", "pv", 3_500, 8),
    ("@mitaka", "pv", 4_800, 9),
    ("@mitaka", "ev", 3_000, 10),
    ("@fuchu", "pv", 6_000, 11),
    ("@machida", "pv", 5_500, 12),
    ("@machida", "ev", 6_000, 13),
    ("@hino", "pv", 4_200, 14),
    ("@kokubunji", "pv", 3_200, 15),
    ("@tama", "pv", 4_600, 16),
    ("@tama", "ev", 6_000, 17),
    ("@hachioji-market", "pv", 12_000, 18),
)
REWARDS: tuple[dict[str, Any], ...] = (
    {
        "id": "komugido-bread",
        "name_ja": "立川こむぎ堂 季節のパン詰め合わせ",
        "name_en": "Komugido seasonal bread box",
        "kind": "product",
        "points": 300,
        "shop": "tachikawa-bakery",
        "settlement_yen": 800,
    },
    {
        "id": "komugido-coffee",
        "name_ja": "立川こむぎ堂 コーヒー1杯無料",
        "name_en": "Komugido free coffee",
        "kind": "perk",
        "points": 80,
        "shop": "tachikawa-bakery",
        "settlement_yen": 250,
    },
    {
        "id": "market-vegetables",
        "name_ja": "八王子産 旬の野菜セット",
        "name_en": "Hachioji seasonal vegetable box",
        "kind": "product",
        "points": 500,
        "shop": "hachioji-market",
        "settlement_yen": 1_200,
    },
    {
        "id": "hachioji-museum",
        "name_ja": "八王子市夢美術館 観覧券",
        "name_en": "Hachioji Yumebi Museum ticket",
        "kind": "facility",
        "points": 200,
        "shop": "hachioji",
        "settlement_yen": 0,
    },
    {
        "id": "eco-festa",
        "name_ja": "多摩エコフェスタ 招待券（ペア）",
        "name_en": "Tama Eco Festa invitation (pair)",
        "kind": "event",
        "points": 100,
        "shop": "hachioji",
        "settlement_yen": 0,
    },
)
PRICE_YEN_PER_T = 3_300
RETIRE_PURPOSE = "2026年度 温対法に基づく排出量報告での調整（本社ビル）"


def _month_start(moment: datetime, back: int) -> datetime:
    jst = moment + rules.JST
    year, month = jst.year, jst.month - back
    while month < 1:
        year, month = year - 1, month + 12
    return datetime(year, month, 1, tzinfo=UTC) - rules.JST


def _send(demo: Any, items: list[tuple[SigningKey, str, str, dict[str, Any]]]) -> list[Any]:
    pendings = [demo.node.submit_signed(k, app, t, p) for k, app, t, p in items]
    receipts = [p.future.result(timeout=120) for p in pendings]
    for receipt in receipts:
        if receipt.status != "committed":
            raise RuntimeError(f"eco demo transaction rejected: {receipt}")
    return receipts


def seed(demo: Any, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    start = _month_start(now, 6)
    key = demo.key
    admin, env = key("admin"), key("envstaff1")
    env_staff: dict[str, str] = {}  # municipality -> its first environment staff account
    for username, _name, org, roles in ACCOUNTS:
        if "env_staff" in roles and username in demo.users:
            env_staff.setdefault(org, username)
    factors = [
        (
            env,
            "eco",
            "factor.publish",
            {"kind": kind, "fiscal_year": y, "value": v, "source_ja": ja, "source_en": en},
        )
        for kind, table in (("grid", GRID_FACTORS), ("car", CAR_FACTORS))
        for y, v, ja, en in table
    ]
    rewards = [(env, "eco", "reward.put", r) for r in REWARDS]
    # New households and businesses: keys on the chain (no login; names stay nowhere).
    owners: dict[str, SigningKey] = {}
    members = []
    for who, *_ in DEVICES:
        if who.startswith("@") and who not in owners:
            owners[who] = SigningKey.generate()
            org = who[1:]
            role = "shop" if org == "hachioji-market" else "resident"
            members.append(
                (
                    admin,
                    "identity",
                    "member.add",
                    {"public_key": owners[who].public_key.hex(), "org": org, "roles": [role]},
                )
            )
    _send(demo, factors + rewards + members)

    devices = []
    registrations = []
    for who, kind, rated, seed_no in DEVICES:
        owner = owners[who] if who.startswith("@") else key(who)
        device_key = SigningKey.generate()
        baseline = {"at": format_timestamp(start), "a": 1_000 * seed_no, "b": 400 * seed_no}
        if kind == "ev":
            baseline = {"at": format_timestamp(start), "a": 50_000, "b": 1_200_000 * seed_no}
        payload = {
            "kind": kind,
            "rated_w": rated,
            "public_key": device_key.public_key.hex(),
            "consent": True,
            "baseline": baseline,
        }
        registrations.append((owner, "eco", "device.register", payload))
        devices.append((who, kind, rated, seed_no, device_key, baseline))
    _send(demo, registrations)

    state = demo.node.store.state()
    approvals = []
    folder = demo.data_dir / "eco-devices"
    folder.mkdir(exist_ok=True)
    node_url = getattr(demo, "base_url", None) or DEMO_NODE
    for _who, kind, rated, _seed, device_key, baseline in devices:
        dev = device_id(device_key.public_key.hex())
        record = state.get("eco.device", dev)
        # Each device is approved by the environment staff of its own municipality.
        staff = key(env_staff.get(record["municipality"], "admin"))
        approvals.append((staff, "eco", "device.approve", {"device": dev}))
        approvals.append(
            (
                staff,
                "identity",
                "device.add",
                {"public_key": device_key.public_key.hex(), "org": record["org"]},
            )
        )
        prov = provisioning(
            dev,
            kind,
            rated,
            device_key.seed.hex(),
            demo.node.chain_id,
            node_url,
            baseline,
        )
        (folder / f"{dev}.json").write_text(json.dumps(prov, indent=2), "utf-8")
    _send(demo, approvals)

    # Daily readings at 20:00 JST, oldest first for every device.
    day_step = timedelta(days=1)
    first = start + timedelta(hours=20) - day_step
    last = now - timedelta(minutes=5)
    txs = []
    for _who, kind, rated, seed_no, device_key, baseline in devices:
        model = DeviceModel(kind, rated, seed_no, self_share=0.8 if rated >= 10_000 else 0.35)
        dev = device_id(device_key.public_key.hex())
        for at, a, b in readings(model, baseline, first, last, day_step):
            txs.append((device_key, "eco", f"reading.{kind}", reading_payload(dev, kind, at, a, b)))
    _send(demo, txs)

    # Redemptions at shops (vouchers signed by the participants, redeemed by the shops).
    redeem = []
    for owner, reward, shop in (
        (key("resident2"), "komugido-bread", key("shop1")),
        (owners["@tachikawa"], "komugido-coffee", key("shop1")),
        (key("resident1"), "eco-festa", key("staff1")),
    ):
        voucher = {
            "v": 1,
            "account": owner.key_id,
            "reward": reward,
            "nonce": secrets.token_hex(16),
            "expires": format_timestamp(now + timedelta(minutes=5)),
        }
        signature = owner.sign(voucher_bytes(voucher)).hex()
        redeem.append((shop, "eco", "points.redeem", {"voucher": voucher, "signature": signature}))
    _send(demo, redeem)

    # One report over six closed months; verified, issued, listed, partly sold and retired.
    months = rules.month_of(format_timestamp(start))
    to = rules.month_of(format_timestamp(_month_start(now, 2)))
    _send(demo, [(env, "eco", "report.compile", {"period_from": months, "period_to": to})])
    report = demo.node.store.state().get("eco.programme", "main")["pending"]
    _send(demo, [(key("verifier1"), "eco", "report.approve", {"report": report})])
    _send(demo, [(env, "eco", "credit.issue", {"report": report})])
    lot = demo.node.store.state().get("eco.report", report)["lot"]
    tco2 = demo.node.store.state().get("eco.lot", lot)["tco2"]
    _send(demo, [(env, "eco", "credit.list", {"lot": lot, "price_yen_per_t": PRICE_YEN_PER_T})])
    bought = max(min(4, tco2 - 1), 1)
    _send(demo, [(key("company1"), "eco", "credit.buy", {"lot": lot, "tco2": bought})])
    held = [
        k for k, v in demo.node.store.state().scan("eco.lot") if v["holder"] == "green-energy-tama"
    ]
    retire = max(bought - 1, 1)
    _send(
        demo,
        [
            (
                key("company1"),
                "eco",
                "credit.retire",
                {"lot": held[0], "tco2": retire, "purpose": RETIRE_PURPOSE},
            )
        ],
    )
