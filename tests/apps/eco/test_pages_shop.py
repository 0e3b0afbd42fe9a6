"""Shop preview, settlement months and Japan time on the eco pages, over the shared eco demo
node (FastAPI TestClient, the real contract): a code the redemption would refuse is refused
already by the preview, with the contract's reason in the user's language and no Redeem
button; a month that does not exist is a 422; times on pages are in Asia/Tokyo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tsunagu.apps.eco.view import make_voucher, read_voucher

from .conftest import PASSWORD, PROBLEM, Api, EcoChain

E = "/api/v1/eco"
JST = timedelta(hours=9)


def japan(at: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``at`` (UTC, as on the chain) in Japan time, computed by hand (UTC+9, no DST)."""
    moment = datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ")
    return (moment + JST).strftime(fmt)


def test_japan_time_of_a_known_timestamp() -> None:
    assert japan("2026-11-29T23:16:26.000Z", "%Y-%m-%d %H:%M:%S") == "2026-11-30 08:16:26"


def _code(eco_chain: EcoChain, who: str, reward: str, minutes_ago: float = 0) -> str:
    now = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return make_voucher(eco_chain.key(who), reward, now=now)[0]


def _redeemable(html: str) -> bool:
    return '<form method="post" action="/eco/shop">' in html


@pytest.mark.parametrize(
    ("who", "reward", "minutes_ago", "status", "code", "ja"),
    [
        ("resident2", "komugido-coffee", 10, 409, "voucher_expired", "有効期限が切れています"),
        ("resident2", "market-vegetables", 0, 403, "other_shop", "他の店舗・施設の特典"),
        ("resident2", "komugido-bread-x", 0, 409, "insufficient_points", "ポイント必要ですが"),
    ],
)
def test_preview_runs_the_redemption_checks(
    api: Api,
    eco_chain: EcoChain,
    who: str,
    reward: str,
    minutes_ago: float,
    status: int,
    code: str,
    ja: str,
) -> None:
    if reward == "komugido-bread-x" and eco_chain.get("reward", reward) is None:
        big = {
            "id": reward,
            "name_ja": "特大パン",
            "name_en": "Huge loaf",
            "kind": "product",
            "points": 900_000,
            "shop": "tachikawa-bakery",
            "settlement_yen": 0,
            "active": True,
        }
        eco_chain.ok("envstaff1", "reward.put", big)
    voucher = _code(eco_chain, who, reward, minutes_ago)
    before = eco_chain.snapshot()
    r = api.post(f"{E}/redemptions/preview", "shop1", {"code": voucher}, lang="ja")
    assert r.status_code == status and r.headers["content-type"] == PROBLEM, r.text
    assert r.json()["code"] == code and ja in r.json()["detail"]
    en = api.post(f"{E}/redemptions/preview", "shop1", {"code": voucher}, lang="en").json()
    assert en["code"] == code and ja not in en["detail"]
    # The shop's page: the reason in Japanese, and no Redeem button.
    page = api.get("/eco/shop", "shop1", lang="ja", params={"code": voucher, "lang": "ja"})
    assert page.status_code == 200
    assert f'data-refusal="{code}"' in page.text and ja in page.text
    assert "このQRコードは引き換えられません" in page.text
    assert not _redeemable(page.text)
    # Redeeming it is refused the same way; nothing changed.
    done = api.post(f"{E}/redemptions", "shop1", {"code": voucher})
    assert done.status_code == status and done.json()["code"] == code
    assert eco_chain.snapshot() == before


def test_preview_of_a_good_code_offers_redeem_and_shows_japan_time(
    api: Api, eco_chain: EcoChain
) -> None:
    voucher = _code(eco_chain, "resident2", "komugido-coffee")
    expires = read_voucher(voucher)["voucher"]["expires"]
    r = api.post(f"{E}/redemptions/preview", "shop1", {"code": voucher})
    assert r.status_code == 200 and r.json()["reward"]["id"] == "komugido-coffee"
    assert not r.json()["used"] and "refused" not in r.json()
    page = api.get("/eco/shop", "shop1", lang="ja", params={"code": voucher, "lang": "ja"})
    assert _redeemable(page.text) and "data-refusal" not in page.text
    assert f">{japan(expires, '%Y-%m-%d %H:%M:%S')}</time>" in page.text
    assert expires[11:19] not in page.text.replace(f'datetime="{expires}"', "")
    # Once redeemed, the preview refuses it as used (the text the shop page shows).
    assert api.post(f"{E}/redemptions", "shop1", {"code": voucher}).status_code == 201
    again = api.post(f"{E}/redemptions/preview", "shop1", {"code": voucher}, lang="ja")
    assert again.status_code == 409 and again.json()["detail"] == "このQRコードは使用済みです。"
    page = api.get("/eco/shop", "shop1", lang="ja", params={"code": voucher, "lang": "ja"})
    assert "このQRコードは使用済みです。" in page.text and not _redeemable(page.text)
    # The month's list shows the redemption in Japan time.
    record = eco_chain.get("voucher", read_voucher(voucher)["voucher"]["nonce"])
    shop = api.get("/eco/shop", "shop1", lang="ja", params={"lang": "ja"}).text
    assert f'<time datetime="{record["at"]}">{japan(record["at"])}</time>' in shop


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "2026-1", "26-01", "all", "2026-04x"])
def test_settlement_month_must_exist(api: Api, month: str) -> None:
    path = f"{E}/shops/tachikawa-bakery/settlement.csv"
    r = api.get(path, "shop1", lang="ja", params={"month": month})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
    assert r.json()["code"] == "bad_month" and "YYYY-MM" in r.json()["detail"]
    assert "正しくありません" in r.json()["detail"]
    en = api.get(path, "shop1", lang="en", params={"month": month}).json()
    assert en["detail"].startswith(f"{month} is not a month")
    assert api.get(path, "shop1", params={"month": "2026-12"}).status_code == 200


def test_public_credit_page_and_participant_page_show_japan_time(
    api: Api, eco_chain: EcoChain
) -> None:
    lots = [v for _, v in eco_chain.node.store.state().scan("eco.lot")]
    retired = next(x for x in lots if x["status"] == "retired")
    at = retired["retirement"]["at"]
    page = api.get(f"/eco/credits/{retired['id']}", params={"lang": "ja"}).text
    assert f'<time datetime="{at}">{japan(at)}</time>' in page
    for event in retired["history"]:
        assert f">{japan(event['at'])}</time>" in page
    assert at not in page.replace(f'datetime="{at}"', "")
    me = api.get("/eco/me", "resident1", lang="ja", params={"lang": "ja"}).text
    assert " UTC" not in me
    account = api.get(f"{E}/me", "resident1").json()
    for device in account["devices"]:
        last = device["last"]["at"]
        assert f'<time datetime="{last}">{japan(last)}</time>' in me


def test_voucher_page_shows_japan_time(api: Api) -> None:
    from tsunagu.web.deps import SESSION_COOKIE

    login = api.http.post("/login", data={"username": "resident2", "password": PASSWORD})
    try:
        api.http.cookies.set(SESSION_COOKIE, login.cookies[SESSION_COOKIE])
        me = api.http.get("/eco/me", params={"lang": "ja"})
        token = me.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        page = api.http.post("/eco/voucher", data={"csrf": token, "reward": "komugido-coffee"})
    finally:
        api.http.cookies.clear()
    assert page.status_code == 200, page.text[:300]
    code = page.text.split('<code class="voucher-code">', 1)[1].split("<", 1)[0]
    expires = read_voucher(code)["voucher"]["expires"]
    assert japan(expires, "%Y-%m-%d %H:%M:%S") in page.text
    assert expires.replace("T", " ")[:19] not in page.text
