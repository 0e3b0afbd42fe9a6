"""Demo documents: public notices of the kind Tama and island municipalities publish.

The files are written to ``<data>/demo-documents/`` so a visitor can drop them on the
verify page and see each one proven.
"""

from __future__ import annotations

import hashlib

# (registering user, file name, title, category, body)
DOCUMENTS = (
    (
        "staff1",
        "hachioji-budget-r7.txt",
        "令和7年度 八王子市一般会計予算の概要",
        "budget",
        "八王子市 令和7年度一般会計予算の概要\n歳入歳出予算の総額 2,420億円\n"
        "重点施策: 子育て支援、防災・減災、脱炭素の推進\n",
    ),
    (
        "coordinator1",
        "tachikawa-disaster-plan-r6.txt",
        "立川市地域防災計画（令和6年修正）",
        "plan",
        "立川市地域防災計画 令和6年修正\n立川断層帯地震を想定した被害想定と応急対策\n"
        "避難所開設、備蓄物資の配分、広域応援の受入れ体制\n",
    ),
    (
        "staff2",
        "oshima-typhoon-evacuation.txt",
        "台風接近に伴う高齢者等避難の発令について",
        "disaster",
        "大島町 お知らせ\n台風の接近に伴い、町内全域に高齢者等避難を発令しました。\n"
        "開設避難所: 大島町開発総合センター ほか\n",
    ),
    (
        "staff1",
        "hachioji-council-minutes-2025-09.txt",
        "八王子市議会 令和7年第3回定例会 会議録（抜粋）",
        "minutes",
        "八王子市議会 令和7年第3回定例会 会議録（抜粋）\n"
        "議案第45号 八王子市防災備蓄倉庫整備事業について\n",
    ),
    (
        "staff2",
        "oshima-water-notice.txt",
        "断水のお知らせ（元町地区）",
        "notice",
        "大島町 断水のお知らせ\n元町地区で配水管工事のため断水します。給水所を開設します。\n",
    ),
    (
        "staff1",
        "hachioji-ordinance-draft.txt",
        "八王子市 災害時要配慮者支援条例（案）",
        "ordinance",
        "八王子市 災害時要配慮者支援条例（案）\n"
        "第1条 この条例は、災害時に支援を要する者の安全確保を目的とする。\n",
    ),
)
SUPERSEDED_BY = (
    "hachioji-ordinance-final.txt",
    "八王子市 災害時要配慮者支援条例",
    "ordinance",
    "八王子市 災害時要配慮者支援条例\n第1条 この条例は、災害時に支援を要する者の安全確保と"
    "地域の共助の推進を目的とする。\n",
)


def seed(demo) -> None:
    folder = demo.data_dir / "demo-documents"
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    hashes = {}
    for user, name, title, category, body in DOCUMENTS:
        data = body.encode("utf-8")
        (folder / name).write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        hashes[name] = sha
        items.append(
            (user, "documents", "register", {"sha256": sha, "title": title, "category": category})
        )
    demo.submit_many(items)
    name, title, category, body = SUPERSEDED_BY
    data = body.encode("utf-8")
    (folder / name).write_bytes(data)
    demo.submit(
        "staff1",
        "documents",
        "supersede",
        {
            "sha256": hashes["hachioji-ordinance-draft.txt"],
            "new_sha256": hashlib.sha256(data).hexdigest(),
            "title": title,
            "category": category,
            "reason": "議会で可決されたため確定版に差し替え",
        },
    )
    demo.submit(
        "staff2",
        "documents",
        "withdraw",
        {"sha256": hashes["oshima-water-notice.txt"], "reason": "工事完了により断水は終了しました"},
    )
