"""What volunteering and everyday help are about: activity categories, skills, milestones.

Ids are stable English slugs (they are on the chain); names are shown in both languages.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Term:
    id: str
    name_ja: str
    name_en: str
    colour: str = "#0a3d73"

    def name(self, lang: str) -> str:
        return self.name_ja if lang == "ja" else self.name_en


CATEGORIES: dict[str, Term] = {
    t.id: t
    for t in (
        Term("dementia-cafe", "認知症カフェ", "Dementia café", "#8a3b12"),
        Term("kids-cafeteria", "子供食堂", "Children's cafeteria", "#a4262c"),
        Term("flower-beds", "花壇づくり", "Park flower beds", "#1f6f43"),
        Term("litter-picking", "ごみ拾い", "Litter picking", "#4b5a0f"),
        Term("story-time", "読み聞かせ", "Story time", "#5b2a86"),
        Term("food-bank", "フードバンク", "Food bank", "#0a5c7a"),
        Term("other", "その他の活動", "Other activity", "#444444"),
    )
}

SKILLS: dict[str, Term] = {
    t.id: t
    for t in (
        Term("light-bulbs", "電球の取り換え", "Changing light bulbs"),
        Term("tv-wiring", "テレビ配線", "TV wiring"),
        Term("vietnamese", "ベトナム語", "Vietnamese"),
        Term("smartphone-pc", "スマートフォン・パソコン操作支援", "Smartphone and PC help"),
        Term("english", "英語", "English"),
        Term("chinese", "中国語", "Chinese"),
        Term("shopping", "買い物の付き添い", "Going shopping together"),
        Term("gardening", "庭の手入れ", "Gardening"),
        Term("furniture", "家具の組み立て", "Assembling furniture"),
        Term("paperwork", "書類の記入の手伝い", "Help with forms"),
    )
}

VISIBILITIES = ("public", "municipality", "helped", "private")

# Attested hours that earn a milestone credential (minutes).
MILESTONES = (600, 3000, 6000)


def category(cid: str) -> Term | None:
    return CATEGORIES.get(cid)


def skill(sid: str) -> Term | None:
    return SKILLS.get(sid)
