"""The document pages, server side: access, forms, errors in the user's language, filters.

The browser-side hashing and proof checks are covered by test_documents_e2e.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from html import unescape

import pytest
from babel.messages.pofile import read_po

from tsunagu.apps import documents
from tsunagu.apps.documents.contract import CATEGORIES
from tsunagu.apps.documents.pages import VERIFY_MESSAGES
from tsunagu.web import app as web_app


def unique_sha() -> str:
    return hashlib.sha256(uuid.uuid4().bytes).hexdigest()


def csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def text(html: str) -> str:
    """The visible words of a page, roughly: tags dropped, whitespace folded."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def demo_sha(demo_app, name: str) -> str:
    return hashlib.sha256((demo_app.data / "demo-documents" / name).read_bytes()).hexdigest()


def register(client, **fields: str):
    page = client.get("/documents/register")
    assert page.status_code == 200, page.text
    data = {"csrf": csrf(page.text), "title": "テスト", "category": "notice", **fields}
    return client.post("/documents/register", data=data)


def test_list_shows_documents_in_japanese(demo_app):
    page = demo_app.client().get("/documents")
    assert page.status_code == 200
    words = text(page.text)
    assert '<html lang="ja">' in page.text
    for expected in (
        "登録文書",
        "令和7年度 八王子市一般会計予算の概要",
        "八王子市",
        "大島町",
        "予算",
    ):
        assert expected in words
    for status in ("有効", "取り下げ", "差し替え済み"):
        assert status in words
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", words)


def test_list_in_english(demo_app):
    words = text(demo_app.client(lang="en").get("/documents").text)
    for expected in ("Registered documents", "Hachioji City", "Budget", "Withdrawn", "Superseded"):
        assert expected in words
    assert "doc-status:" not in words and "doc-category:" not in words


def test_list_filters(demo_app):
    client = demo_app.client()
    withdrawn = text(client.get("/documents", params={"status": "withdrawn"}).text)
    assert "断水のお知らせ（元町地区）" in withdrawn
    assert "令和7年度 八王子市一般会計予算の概要" not in withdrawn
    oshima = text(client.get("/documents", params={"org": "oshima", "category": "disaster"}).text)
    assert "台風接近に伴う高齢者等避難の発令について" in oshima
    assert "断水のお知らせ" not in oshima
    # Unknown values from old links are ignored, not refused.
    assert client.get("/documents", params={"status": "lost", "page": 99}).status_code == 200


def test_detail_shows_history_and_links(demo_app):
    draft = demo_sha(demo_app, "hachioji-ordinance-draft.txt")
    final = demo_sha(demo_app, "hachioji-ordinance-final.txt")
    page = demo_app.client().get(f"/documents/{draft}")
    assert page.status_code == 200
    words = text(page.text)
    assert "差し替え済み" in words and "議会で可決されたため確定版に差し替え" in words
    assert f'href="/documents/{final}"' in page.text
    record = demo_app.client().get(f"/api/v1/documents/{draft}").json()["document"]
    for event in record["history"]:
        assert f'href="/explorer/tx/{event["tx_id"]}"' in page.text
    newer = demo_app.client().get(f"/documents/{final}")
    assert f'href="/documents/{draft}"' in newer.text
    # Anonymous visitors get no forms.
    assert 'action="/documents/' not in page.text


def test_detail_of_unknown_or_malformed_hash(demo_app):
    client = demo_app.client()
    missing = client.get(f"/documents/{unique_sha()}")
    assert missing.status_code == 404
    assert "このSHA-256の文書は登録されていません。" in text(missing.text)
    assert client.get("/documents/not-a-hash").status_code == 404
    sha = demo_sha(demo_app, "hachioji-budget-r7.txt")
    upper = client.get(f"/documents/{sha.upper()}")
    assert (upper.status_code, upper.headers["location"]) == (301, f"/documents/{sha}")


def test_register_page_access(demo_app):
    anonymous = demo_app.client().get("/documents/register")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=%2Fdocuments%2Fregister"
    resident = demo_app.client("resident1").get("/documents/register")
    assert resident.status_code == 403
    assert "文書を登録できるのは、自治体の職員と協議会の管理者だけです。" in text(resident.text)
    posted = demo_app.client("resident1").post("/documents/register", data={"sha256": unique_sha()})
    assert posted.status_code == 403
    for username in ("staff1", "admin", "coordinator1"):
        page = demo_app.client(username).get("/documents/register")
        assert page.status_code == 200, username
        # The file input has no name: the file itself can never be part of the post.
        assert re.search(r'<input type="file" id="sha256-file" data-hash-file', page.text)


def test_register_through_the_form(demo_app):
    client = demo_app.client("staff1")
    sha = unique_sha()
    done = register(client, sha256=f"  {sha.upper()} ", title=" 議事録 ", category="minutes")
    assert done.status_code == 200, done.text
    words = text(done.text)
    assert "文書を登録しました" in words
    record = client.get(f"/api/v1/documents/{sha}").json()["document"]
    assert (record["title"], record["category"]) == ("議事録", "minutes")
    assert f'href="/explorer/tx/{record["tx_id"]}"' in done.text
    assert f"ブロック {record['height']} に記録されました" in words
    assert re.search(rf'id="done-index">{record["log_index"]}<', done.text)


def test_register_form_errors_are_in_the_users_language(demo_app):
    client = demo_app.client("staff1")
    bad = register(client, sha256="xyz", title="", category="gossip")
    assert bad.status_code == 422
    words = text(bad.text)
    assert "SHA-256を16進数64文字（0〜9、a〜f）で入力するか、ファイルを選んでください。" in words
    assert "件名を1〜200文字で入力してください。" in words
    assert "分類を選んでください。" in words
    assert 'aria-invalid="true"' in bad.text
    english = demo_app.client("staff1", lang="en")
    words = text(register(english, sha256="xyz").text)
    assert "Enter the SHA-256 as 64 hexadecimal characters" in words


def test_contract_refusal_is_shown_in_japanese(demo_app):
    client = demo_app.client("staff2")
    existing = demo_sha(demo_app, "hachioji-budget-r7.txt")
    again = register(client, sha256=existing)
    assert again.status_code == 409
    words = text(again.text)
    assert "このSHA-256の文書は既に登録されています。" in words
    assert f'href="/documents/{existing}"' in again.text
    english = register(demo_app.client("staff2", lang="en"), sha256=existing)
    assert "A document with this SHA-256 is already registered." in text(english.text)


def test_forms_need_the_csrf_token(demo_app):
    client = demo_app.client("staff1")
    data = {"sha256": unique_sha(), "title": "t", "category": "notice"}
    for token in ("", "0" * 32):
        refused = client.post("/documents/register", data={**data, "csrf": token})
        assert refused.status_code == 403
        assert "フォームの有効期限が切れました" in text(refused.text)
    assert client.get(f"/api/v1/documents/{data['sha256']}").status_code == 404


def test_withdraw_and_supersede_forms(demo_app):
    owner = demo_app.client("staff1")
    old, new = unique_sha(), unique_sha()
    assert register(owner, sha256=old, title="旧版").status_code == 200
    page = owner.get(f"/documents/{old}")
    assert f'action="/documents/{old}/withdraw"' in page.text
    assert f'action="/documents/{old}/supersede"' in page.text
    # Another town's staff see no forms, and a forged post is refused by the contract.
    other = demo_app.client("staff2")
    other_page = other.get(f"/documents/{old}")
    assert "/withdraw" not in other_page.text
    forged = other.post(
        f"/documents/{old}/withdraw", data={"csrf": csrf(other_page.text), "reason": "x"}
    )
    assert forged.status_code == 409
    assert "この文書を変更できるのは登録した組織だけです。" in text(forged.text)
    # Field errors come back in the form, which stays open.
    empty = owner.post(f"/documents/{old}/supersede", data={"csrf": csrf(page.text)})
    assert empty.status_code == 422
    assert '<details id="supersede" open>' in empty.text
    assert "理由を1〜500文字で入力してください。" in text(empty.text)
    replaced = owner.post(
        f"/documents/{old}/supersede",
        data={
            "csrf": csrf(page.text),
            "new_sha256": new,
            "title": "新版",
            "category": "plan",
            "reason": "改訂のため",
        },
    )
    assert replaced.status_code == 200, replaced.text
    assert "新しい版を登録しました" in text(replaced.text)
    old_page = text(owner.get(f"/documents/{old}").text)
    assert "差し替え済み" in old_page and "改訂のため" in old_page
    withdrawn = owner.post(
        f"/documents/{new}/withdraw", data={"csrf": csrf(page.text), "reason": "誤り"}
    )
    assert withdrawn.status_code == 200
    assert "文書を取り下げました" in text(withdrawn.text)
    again = owner.post(f"/documents/{new}/withdraw", data={"csrf": csrf(page.text), "reason": "再"})
    assert again.status_code == 409
    assert "この文書は既に取り下げ済みか、差し替え済みです。" in text(again.text)


def test_verify_page_carries_its_words(demo_app):
    page = demo_app.client().get("/documents/verify", params={"sha256": "AB" * 32})
    assert page.status_code == 200
    assert 'value="' + "ab" * 32 + '"' in page.text
    assert '<script type="module" src="/static/documents/verify.js">' in page.text
    words = re.search(
        r'<script type="application/json" id="verify-messages">(.*?)</script>', page.text
    )
    assert words, "the script's words are missing"
    messages = json.loads(words.group(1))
    assert messages["not_registered"] == "登録されていません"
    assert messages["status:withdrawn"] == "取り下げ"
    untranslated = [k for k, msgid in VERIFY_MESSAGES.items() if messages[k] == msgid]
    assert not untranslated
    junk = demo_app.client().get("/documents/verify", params={"sha256": "<script>"})
    assert "&lt;script&gt;" not in junk.text and 'value=""' in junk.text


def test_static_files_are_served(demo_app):
    client = demo_app.client()
    for name in (
        "verify.js",
        "proof.js",
        "sha256.js",
        "sha512.js",
        "hashfield.js",
        "documents.css",
    ):
        assert client.get(f"/static/documents/{name}").status_code == 200, name


def _catalog(path) -> dict[str, str]:
    with path.open("rb") as fh:
        return {str(m.id): str(m.string) for m in read_po(fh) if m.id and m.string}


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_translations_do_not_override_the_platform(lang):
    # Catalogues are merged into one table, so a msgid the platform already translates
    # must be translated the same way here, or the platform's pages would change.
    ours = _catalog(documents.HERE / "locales" / lang / "LC_MESSAGES" / "messages.po")
    platform_po = web_app.WEB / "locales" / lang / "LC_MESSAGES" / "messages.po"
    platform = _catalog(platform_po) if platform_po.exists() else {}
    clashes = {k: (platform[k], v) for k, v in ours.items() if k in platform and platform[k] != v}
    assert not clashes


def test_every_enumeration_is_translated():
    ja = _catalog(documents.HERE / "locales" / "ja" / "LC_MESSAGES" / "messages.po")
    en = _catalog(documents.HERE / "locales" / "en" / "LC_MESSAGES" / "messages.po")
    keys = [f"doc-category:{c}" for c in CATEGORIES]
    keys += [f"doc-status:{s}" for s in ("active", "withdrawn", "superseded")]
    keys += [f"doc-event:{e}" for e in ("registered", "withdrawn", "superseded")]
    for key in keys:
        assert ja.get(key) and en.get(key), key


def test_list_pages(demo_app, monkeypatch):
    from tsunagu.apps.documents import pages

    monkeypatch.setattr(pages, "PAGE_SIZE", 3)
    client = demo_app.client()
    first = client.get("/documents", params={"org": "hachioji"})
    links = re.findall(r'href="(/documents\?[^"]+)" rel="(prev|next)"', first.text)
    assert links == [("/documents?org=hachioji&amp;page=2", "next")]
    titles = re.findall(
        r'<td role="cell" class="title"><a href="/documents/([0-9a-f]{64})"', first.text
    )
    second = client.get("/documents", params={"org": "hachioji", "page": "2"})
    more = re.findall(
        r'<td role="cell" class="title"><a href="/documents/([0-9a-f]{64})"', second.text
    )
    assert len(titles) == 3 and more and not set(titles) & set(more)
    assert 'rel="prev"' in second.text
    for page in ("0", "-1", "x", "9" * 5000):
        assert client.get("/documents", params={"page": page}).status_code == 200
