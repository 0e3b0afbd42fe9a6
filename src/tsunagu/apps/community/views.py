"""Read models over committed state: activities, a resident's record, the dashboard, search.

Only attested sessions count towards hours. A volunteer the chain marks as erased is shown
as erased: their sessions still count in the community's totals (they are anonymous sums),
but nothing links them to a person any more.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from typing import Any

from tsunagu.apps.community import catalog
from tsunagu.apps.community.contract import jst_day, municipality_of
from tsunagu.apps.community.service import CommunityStore
from tsunagu.places import members, municipalities

NS = "community"


class State:
    """Committed state for one request, with organisation and place names."""

    def __init__(self, node: Any) -> None:
        self.state = node.store.state()

    def all(self, kind: str, prefix: str = "") -> list[dict[str, Any]]:
        return [v for _, v in self.state.scan(f"{NS}.{kind}", prefix)]

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return self.state.get(f"{NS}.{kind}", key)

    def org(self, org_id: str) -> dict[str, Any]:
        return self.state.get("identity.org", org_id) or {"id": org_id}

    def org_name(self, org_id: str, lang: str) -> str:
        org = self.org(org_id)
        return org.get("name_ja" if lang == "ja" else "name_en", org_id)

    def home(self, org_id: str) -> str | None:
        return municipality_of(self.org(org_id))

    def volunteer(self, vid: str) -> dict[str, Any]:
        return self.get("volunteer", vid) or {"minutes": 0, "orgs": [], "helps": 0, "erased": False}


def place_name(mid: str, lang: str) -> str:
    place = municipalities().get(mid)
    if place is None:
        return mid
    return place.name_ja if lang == "ja" else place.name_en


def activities(st: State, org: str | None = None) -> list[dict[str, Any]]:
    found = [a for a in st.all("activity") if org is None or a["org"] == org]
    return sorted(found, key=lambda a: a["starts_at"], reverse=True)


def sessions_of_activity(st: State, aid: str) -> list[dict[str, Any]]:
    return st.all("session", f"{aid}/")


def sessions_of(st: State, vid: str) -> list[dict[str, Any]]:
    found = []
    for ref in st.all("vsession", f"{vid}/"):
        session = st.get("session", f"{ref['activity']}/{vid}")
        if session is not None:
            found.append(session)
    return sorted(found, key=lambda s: s["check_in"], reverse=True)


def resident(st: State, store: CommunityStore, vid: str) -> dict[str, Any]:
    """A resident's page: timeline, hours by category, milestones, credentials, skills, help."""
    record = st.volunteer(vid)
    sessions = sessions_of(st, vid)
    by_category: Counter[str] = Counter()
    timeline = []
    for s in sessions:
        activity = st.get("activity", s["activity"]) or {}
        if s["attested"]:
            by_category[s["category"]] += s["minutes"]
        timeline.append(
            {"kind": "session", "at": s["check_in"], "session": s, "activity": activity}
        )
    # The other party of a help request is named by handle, never by key id.
    helps = [
        help_for(st, store, h, vid) for h in st.all("help") if vid in (h["requester"], h["helper"])
    ]
    for h in helps:
        timeline.append({"kind": "help", "at": h.get("done_at") or h["requested_at"], "help": h})
    timeline.sort(key=lambda e: e["at"], reverse=True)
    credentials = []
    for digest, credential in store.all(vid, "credential").items():
        anchored = st.get("credential", digest) or {}
        credentials.append(
            {
                "hash": digest,
                "name": credential.get("name") if credential else None,
                "kind": anchored.get("kind"),
                "issued_at": anchored.get("issued_at"),
                "revoked": anchored.get("revoked", False),
                "org": anchored.get("org"),
            }
        )
    credentials.sort(key=lambda c: c["issued_at"] or "", reverse=True)
    reached = [m for m in catalog.MILESTONES if record["minutes"] >= m]
    upcoming = next((m for m in catalog.MILESTONES if record["minutes"] < m), None)
    return {
        "vid": vid,
        "erased": record["erased"],
        "minutes": record["minutes"],
        "helps": record["helps"],
        "by_category": dict(by_category.most_common()),
        "timeline": timeline,
        "milestones": reached,
        "next_milestone": upcoming,
        "credentials": credentials,
        "skills": st.all("skill", f"{vid}/"),
        "helps_open": [h for h in helps if h["status"] in ("open", "accepted")],
    }


SMALL_CELL = 3  # fewer volunteers than this in a municipality: its figures are withheld
SHOWN_SKILLS = ("public", "municipality")  # skills the dashboard counts as offered


def dashboard(st: State) -> dict[str, Any]:
    """Attested minutes by category and month and by municipality; skills offered and asked.

    A municipality with fewer than :data:`SMALL_CELL` volunteers is listed in ``small_places``
    without its hours or head count (one volunteer's hours would be theirs alone); the totals
    still include them. Only skills their owners show beyond their circle (public or same
    municipality) count as offered.
    """
    by_month: dict[str, Counter[str]] = defaultdict(Counter)
    by_place: Counter[str] = Counter()
    volunteers: dict[str, set[str]] = defaultdict(set)
    for s in st.all("session"):
        if not s["attested"]:
            continue
        month = jst_day(s["check_in"])[:7]
        by_month[month][s["category"]] += s["minutes"]
        by_place[s["municipality"]] += s["minutes"]
        volunteers[s["municipality"]].add(s["volunteer"])
    shown = {mid for mid, v in volunteers.items() if len(v) >= SMALL_CELL}
    offered = Counter(row["skill"] for row in st.all("skill") if row["visibility"] in SHOWN_SKILLS)
    requested = Counter(row["skill"] for row in st.all("help"))
    helps_done = sum(1 for row in st.all("help") if row["status"] == "done")
    months = sorted(by_month)
    return {
        "months": [{"month": m, "minutes": dict(by_month[m])} for m in months],
        "total_minutes": sum(by_place.values()),
        "by_place": {k: v for k, v in by_place.most_common() if k in shown},
        "volunteers_by_place": {k: len(v) for k, v in volunteers.items() if k in shown},
        "small_places": sorted(set(by_place) - shown),
        "small_cell": SMALL_CELL,
        "offered": offered.most_common(10),
        "requested": requested.most_common(10),
        "helps_done": helps_done,
    }


def visible(st: State, row: dict[str, Any], viewer: str | None, viewer_home: str | None) -> bool:
    """Whether ``viewer`` may see the skill ``row`` (its owner always may)."""
    owner = row["volunteer"]
    if viewer == owner:
        return True
    mode = row["visibility"]
    if mode == "public":
        return True
    if mode == "municipality":
        return viewer_home is not None and viewer_home == row["municipality"]
    if mode == "helped":
        return viewer is not None and st.get("helped", f"{owner}/{viewer}") is not None
    return False


def distance_km(a: str, b: str) -> int:
    places = municipalities()
    pa, pb = places.get(a), places.get(b)
    if pa is None or pb is None:
        return 9999
    lat = math.radians((pa.lat + pb.lat) / 2)
    dx = (pa.lon - pb.lon) * 111.32 * math.cos(lat)
    dy = (pa.lat - pb.lat) * 110.57
    return round(math.hypot(dx, dy))


def search(
    st: State, store: CommunityStore, skill: str, viewer: str | None, viewer_home: str | None
) -> list[dict[str, Any]]:
    """Neighbours who can help with ``skill`` and let the viewer see it, nearest first.

    Each is named by its opaque handle, never by the key id that signs their transactions:
    the public log would link that id to every activity they attended.
    """
    found = []
    for row in st.all("skill"):
        if row["skill"] != skill or row["volunteer"] == viewer:
            continue
        if not visible(st, row, viewer, viewer_home) or st.volunteer(row["volunteer"])["erased"]:
            continue
        profile = store.profile(row["volunteer"])
        found.append(
            {
                "handle": store.handle(row["volunteer"]),
                "skill": row["skill"],
                "municipality": row["municipality"],
                "nickname": profile.get("nickname"),
                "distance_km": distance_km(viewer_home, row["municipality"]) if viewer_home else 0,
                "helps": st.volunteer(row["volunteer"])["helps"],
            }
        )
    found.sort(key=lambda r: (r["distance_km"], -r["helps"]))
    return found


HANDLE_PATTERN = r"n-[0-9a-f]{24}"


def helper_by_handle(st: State, store: CommunityStore, handle: str) -> str | None:
    """The resident behind a handle from the search: someone who lists a skill, not erased."""
    if not re.fullmatch(HANDLE_PATTERN, handle):
        return None
    candidates = {row["volunteer"] for row in st.all("skill")}
    vid = store.vid_of(handle, sorted(candidates))
    return None if vid is None or st.volunteer(vid)["erased"] else vid


def help_for(st: State, store: CommunityStore, h: dict[str, Any], me: str) -> dict[str, Any]:
    """A help request as ``me`` may see it: the other party by handle, and once the help is
    accepted, their nickname and contact (each side sees the other's, nobody else does)."""
    other = h["helper"] if h["requester"] == me else h["requester"]
    hidden = ("requester", "helper", "confirmed", "history")
    shown = {k: v for k, v in h.items() if k not in hidden}
    # The history's events name their signers and tx ids: keep only what and when.
    shown["history"] = [
        {"action": e["action"], "at": e["at"], "by_me": e.get("by") == me}
        for e in h.get("history", [])
    ]
    shown["mine"] = h["requester"] == me
    shown["i_help"] = h["helper"] == me
    shown["i_confirmed"] = me in h.get("confirmed", [])
    shown["other"] = None if other is None else store.handle(other)
    party = me in (h["requester"], h["helper"])
    if other is not None and party and h["status"] in ("accepted", "done"):
        profile = store.profile(other)
        shown["other_nickname"] = profile.get("nickname")
        shown["other_contact"] = profile.get("contact")
    return shown


def map_points() -> list[dict[str, Any]]:
    """Member municipalities projected for the dashboard's SVG map (Tama, and an island inset)."""
    points = []
    for m in members():
        points.append({"id": m.id, "name_ja": m.name_ja, "name_en": m.name_en, "region": m.region})
        points[-1].update(_project(m.lat, m.lon, m.region))
    return points


# Tama (lon 139.05–139.62, lat 35.52–35.84) fills a 560×260 box; the islands, which reach
# Ogasawara (lat 27, lon 142), sit in a 140×260 inset on the right.
def _project(lat: float, lon: float, region: str) -> dict[str, int]:
    if region == "tama":
        x = 20 + (lon - 139.05) / 0.57 * 560
        y = 20 + (35.84 - lat) / 0.32 * 260
    else:
        x = 625 + (lon - 139.0) / 3.3 * 140
        y = 20 + (34.9 - lat) / 7.9 * 260
    return {"x": round(x), "y": round(y)}
