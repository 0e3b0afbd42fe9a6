"""Demo data: four volunteer groups (Hachioji, Tachikawa, Machida, Oshima) with six months of
activities, residents who check in and out and get attested, skills with every visibility,
and help given between neighbours. ``resident1`` ends with several credentials, every milestone
they reached, a corrected session (its first credential revoked, a new one issued) and one more
revoked credential.

Everything goes through the contract (Demo.submit_many, a few batches); times are relative to
today so the dashboard always shows the last months.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from tsunagu.apps.community import issuing
from tsunagu.apps.community.contract import format_time
from tsunagu.apps.community.credentials import credential_hash
from tsunagu.apps.community.service import store_for

APP = "community"
# group organiser, municipality, category, title, place, weekday offset, start hour (JST)
GROUPS: tuple[tuple[str, str, str, str, str, int, int], ...] = (
    (
        "organiser1",
        "hachioji",
        "dementia-cafe",
        "オレンジカフェ八王子",
        "八王子市 元本郷公民館",
        0,
        13,
    ),
    ("organiser1", "hachioji", "story-time", "図書館おはなし会", "八王子市 中央図書館", 3, 10),
    ("organiser2", "tachikawa", "flower-beds", "昭和記念公園通り 花壇づくり", "立川市 緑町", 1, 9),
    ("organiser2", "tachikawa", "food-bank", "たちかわフードバンク仕分け", "立川市 錦町", 4, 14),
    ("organiser3", "machida", "kids-cafeteria", "まちだ子ども食堂", "町田市 原町田", 2, 16),
    ("organiser4", "oshima", "litter-picking", "元町海岸 ごみ拾い", "大島町 元町", 5, 8),
)
# Who goes where: group index -> volunteers.
ATTENDANCE: dict[int, tuple[str, ...]] = {
    0: ("resident1", "resident3", "resident4"),
    1: ("resident1", "resident4"),
    2: ("resident2", "resident7", "resident1"),
    3: ("resident2", "resident7"),
    4: ("resident5",),
    5: ("resident6",),
}
WEEKS = 26
SKILLS: tuple[tuple[str, str, str], ...] = (
    ("resident1", "smartphone-pc", "public"),
    ("resident1", "light-bulbs", "municipality"),
    ("resident3", "light-bulbs", "public"),
    ("resident3", "furniture", "helped"),
    ("resident4", "vietnamese", "municipality"),
    ("resident4", "tv-wiring", "private"),
    ("resident2", "english", "public"),
    ("resident7", "shopping", "municipality"),
    ("resident5", "smartphone-pc", "municipality"),
    ("resident6", "gardening", "public"),
)
# requester, helper, skill, confirmed by both
HELP: tuple[tuple[str, str, str, bool], ...] = (
    ("resident1", "resident3", "light-bulbs", True),
    ("resident4", "resident1", "smartphone-pc", True),
    ("resident7", "resident2", "english", True),
    ("resident1", "resident4", "vietnamese", True),
    ("resident2", "resident7", "shopping", False),
)
NICKNAMES = {
    "resident1": "やまだ",
    "resident2": "まつもと",
    "resident3": "けん",
    "resident4": "ラン",
    "resident5": "みさき",
    "resident6": "まこと",
    "resident7": "ゆみ",
}


def _at(day: date, hour: int, minute: int = 0) -> str:
    moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - timedelta(hours=9)
    return format_time(moment)


def seed(demo: Any) -> None:
    store = store_for(demo.data_dir, demo.private.web_secret)
    today = (datetime.now(UTC) + timedelta(hours=9)).date()
    start = today - timedelta(weeks=WEEKS)
    start -= timedelta(days=start.weekday())
    for username, nickname in NICKNAMES.items():
        store.put(demo.users[username].key_id, "profile", "me", {"nickname": nickname})

    publish = []
    plan: list[tuple[int, date]] = []
    for week in range(WEEKS + 2):
        for index, (user, place, category, title, venue, weekday, hour) in enumerate(GROUPS):
            if week % 2 and index in (1, 3):
                continue  # fortnightly
            day = start + timedelta(weeks=week, days=weekday)
            payload = {
                "category": category,
                "title": title,
                "municipality": place,
                "place": venue,
                "starts_at": _at(day, hour),
                "ends_at": _at(day, hour + 2),
                "capacity": 12,
            }
            publish.append((user, APP, "activity.publish", payload))
            plan.append((index, day))
    receipts = demo.submit_many(publish)
    activities = []
    for (index, day), receipt, item in zip(plan, receipts, publish, strict=True):
        activities.append((index, day, f"a-{receipt.tx_id[:16]}", item[3]))

    checks, sessions = [], []
    for n, (index, day, aid, payload) in enumerate(activities):
        hour = GROUPS[index][6]
        for k, volunteer in enumerate(ATTENDANCE[index]):
            if (n + k) % 4 == 3:
                continue  # not everyone comes every time
            if day >= today:
                continue  # upcoming: sign-ups only, below
            arrive = _at(day, hour, (n * 7 + k * 3) % 15)
            leave = _at(day, hour + 2, (n * 11 + k * 5) % 30)
            sessions.append((index, aid, payload, volunteer, arrive, leave))
    sessions.sort(key=lambda s: s[4])
    for _, aid, _, volunteer, arrive, leave in sessions:
        checks.append((volunteer, APP, "session.checkin", {"activity": aid, "at": arrive}))
        checks.append((volunteer, APP, "session.checkout", {"activity": aid, "at": leave}))
    demo.submit_many(checks)  # each volunteer's in and out follow each other (seq order)

    upcoming = [(a, i) for i, day, a, _ in activities if day >= today]
    demo.submit_many(
        [(ATTENDANCE[i][0], APP, "activity.signup", {"activity": a}) for a, i in upcoming[:4]]
    )

    _attest(demo, store, sessions)
    _skills_and_help(demo)


def _attest(demo: Any, store: Any, sessions: list) -> None:
    """Attest all but the latest week; credentials for resident1 and resident2; a correction
    (re-attested with a new credential) and a revocation for resident1; every milestone
    reached."""
    node = demo.node
    attests, kept = [], []
    last = sessions[-1][4][:10] if sessions else ""
    for index, aid, activity_payload, volunteer, arrive, leave in sessions:
        if arrive[:10] >= last:
            continue  # the most recent sessions still wait for the organiser
        organiser = GROUPS[index][0]
        vid = demo.users[volunteer].key_id
        payload: dict[str, Any] = {"activity": aid, "volunteer": vid}
        if volunteer in ("resident1", "resident2"):
            activity = {**activity_payload, "id": aid}
            session = {"volunteer": vid, "check_in": arrive, "check_out": leave}
            session["minutes"] = _minutes(arrive, leave)
            org = demo.users[organiser].org
            credential = issuing.participation(
                node, store, demo.key(organiser), org, activity, session
            )
            digest = credential_hash(credential)
            payload["credential"] = {"hash": digest}
            kept.append((vid, digest, credential, organiser))
        attests.append((organiser, APP, "session.attest", payload))
    demo.submit_many(attests)
    for vid, digest, credential, _ in kept:
        store.put(vid, "credential", digest, credential)

    resident1 = demo.users["resident1"].key_id
    # organiser1 corrects resident1's first session: its credential is revoked and the session
    # attested again, with a new credential stating the corrected hours.
    first = next(s for s in sessions if s[3] == "resident1" and GROUPS[s[0]][0] == "organiser1")
    index, aid, activity_payload, _, arrive, leave = first
    corrected = {"volunteer": resident1, "check_in": arrive, "check_out": _shift(leave, 30)}
    corrected["minutes"] = _minutes(arrive, corrected["check_out"])
    org = demo.users["organiser1"].org
    activity = {**activity_payload, "id": aid}
    reissued = issuing.participation(node, store, demo.key("organiser1"), org, activity, corrected)
    digest = credential_hash(reissued)
    extra = [
        (
            "organiser1",
            APP,
            "session.correct",
            {
                "activity": aid,
                "volunteer": resident1,
                "check_in": arrive,
                "check_out": corrected["check_out"],
                "reason": "片付けまで手伝っていただいたため終了時刻を訂正",
            },
        ),
        (
            "organiser1",
            APP,
            "session.attest",
            {"activity": aid, "volunteer": resident1, "credential": {"hash": digest}},
        ),
    ]
    revoked = next(k for k in kept if k[0] == resident1 and k[3] == "organiser2")
    extra.append(
        (
            "organiser2",
            APP,
            "credential.revoke",
            {"hash": revoked[1], "reason": "活動日の誤りのため取り消し、再発行予定"},
        )
    )
    demo.submit_many(extra)
    store.put(resident1, "credential", digest, reissued)
    _milestones(demo, store)


def _milestones(demo: Any, store: Any) -> None:
    """Every milestone each resident has reached (the list the resident's page shows), issued
    by an organiser of a group that attested them."""
    node = demo.node
    state = node.store.state()
    organisers = {demo.users[g[0]].org: g[0] for g in GROUPS}
    items, badges = [], []
    for username in NICKNAMES:
        vid = demo.users[username].key_id
        record = state.get("community.volunteer", vid)
        if record is None:
            continue
        issued = {int(k.split("/")[1]) for k, _ in state.scan("community.milestone", f"{vid}/")}
        by = next((organisers[o] for o in record["orgs"] if o in organisers), None)
        if by is None:
            continue
        org = demo.users[by].org
        for minutes in issuing.milestones_due(record, issued):
            badge = issuing.milestone(node, store, demo.key(by), org, vid, minutes)
            digest = credential_hash(badge)
            badges.append((vid, digest, badge))
            payload = {"hash": digest, "recipient": vid, "minutes": minutes}
            items.append((by, APP, "credential.milestone", payload))
    demo.submit_many(items)
    for vid, digest, badge in badges:
        store.put(vid, "credential", digest, badge)


def _minutes(start: str, end: str) -> int:
    from tsunagu.apps.community.contract import minutes_between

    return minutes_between(start, end)


def _shift(value: str, minutes: int) -> str:
    from tsunagu.apps.community.contract import parse_time

    return format_time(parse_time(value) + timedelta(minutes=minutes))


def _skills_and_help(demo: Any) -> None:
    vid = {u: demo.users[u].key_id for u in NICKNAMES}
    demo.submit_many([(u, APP, "skill.set", {"skill": s, "visibility": v}) for u, s, v in SKILLS])
    receipts = demo.submit_many(
        [(r, APP, "help.request", {"skill": s, "helper": vid[h]}) for r, h, s, _ in HELP]
    )
    ids = [f"h-{r.tx_id[:16]}" for r in receipts]
    demo.submit_many(
        [(h, APP, "help.accept", {"help": i}) for (_, h, _, _), i in zip(HELP, ids, strict=True)]
    )
    confirms = []
    for (requester, helper, _, both), hid in zip(HELP, ids, strict=True):
        confirms.append((helper, APP, "help.confirm", {"help": hid}))
        if both:
            confirms.append((requester, APP, "help.confirm", {"help": hid}))
    demo.submit_many(confirms)
    # Open requests neighbours can pick up.
    demo.submit_many(
        [
            ("resident6", APP, "help.request", {"skill": "smartphone-pc"}),
            ("resident3", APP, "help.request", {"skill": "tv-wiring"}),
        ]
    )
