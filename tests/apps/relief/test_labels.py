"""Relief labels: codes, QR (decoded with zxing-cpp from rasterised pages), layout, text."""

from __future__ import annotations

import io
import math
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import replace

import pypdfium2 as pdfium
import pytest
import zxingcpp
from fpdf import FPDF
from PIL import Image

from tsunagu.apps.relief.labels import (
    CODE_ALPHABET,
    CODE_BITS,
    CODE_LENGTH,
    CODE_PATTERN,
    LabelData,
    _print_qr,
    label_pdf,
    new_code,
    qr_svg,
)

DPI = 200
PT_PER_MM = 72 / 25.4
A6_PT = (105 * PT_PER_MM, 148 * PT_PER_MM)
A4_PT = (210 * PT_PER_MM, 297 * PT_PER_MM)
BASE = "https://node.example/r/"
EIGHT = ("えび", "かに", "くるみ", "小麦", "そば", "卵", "乳", "落花生")  # 特定原材料8品目


def _label(**kw: object) -> LabelData:
    fields: dict[str, object] = {
        "match_id": "m-0001",
        "url": BASE + new_code(),
        "item_ja": "おかゆ",
        "item_en": "Rice porridge",
        "quantity": 200,
        "unit_ja": "食",
        "allergens_contained": (),
        "allergen_free": (),
        "allergens_declared": False,
        "size": None,
        "condition": None,
        "expiry": None,
        "destination_ja": "立川市立第一小学校 避難所",
        "destination_municipality_ja": "立川市",
        "sender_ja": "NPO法人 多摩フードバンク",
        "ship_from_ja": "八王子市",
        "priority": None,
    }
    fields.update(kw)
    return LabelData(**fields)  # type: ignore[arg-type]


OKAYU = _label(
    match_id="m-2025-000123",
    item_ja="おかゆ（レトルト）",
    item_en="Rice porridge (retort pouch)",
    expiry="2026-03-31",
    priority="urgent",
)
CANNED = _label(
    match_id="8f14e45f-ceea-467f-a0e6-5b5f2c1c9d3e",
    item_ja="アレルギー対応缶詰",
    item_en="Allergy-friendly canned food",
    quantity=48,
    unit_ja="缶",
    allergen_free=EIGHT,
    allergens_declared=True,
    expiry="2027-10-01",
    destination_ja="大島町開発総合センター 避難所",
    destination_municipality_ja="大島町",
    sender_ja="生活協同組合 多摩地区本部",
    ship_from_ja="府中市",
    priority="high",
)
CLOTHES = _label(
    match_id="m-2025-000125",
    item_ja="子供服",
    item_en="Children's clothing",
    quantity=150,
    unit_ja="着",
    allergens_declared=True,
    size="150",
    condition="new",
    destination_ja="八王子市立第五中学校 避難所",
    destination_municipality_ja="八王子市",
    sender_ja="株式会社 多摩衣料",
    ship_from_ja="町田市",
    priority="normal",
)
# Everything too long: must wrap/shrink/cut, never leave its label.
STRESS = _label(
    match_id="m-" + "0123456789abcdef" * 9,
    item_ja="パン（小麦・卵・乳を含む）長い長い長い長い長い名前の食品セット詰め合わせ大容量版",
    item_en="Bread assortment containing wheat, egg and milk, with a very long English name",
    quantity=123_456_789,
    unit_ja="個（段ボール箱入り）",
    allergens_contained=(
        *("小麦", "卵", "乳", "大豆", "アーモンド", "ごま", "カシューナッツ"),
        *("キウイフルーツ", "バナナ", "りんご", "ゼラチン", "さば", "いか", "いくら"),
    ),
    allergen_free=EIGHT[:2],
    allergens_declared=True,
    size="LL（身長170〜180cm）",
    condition="used",
    expiry="2025-12-24",
    destination_ja=(
        "東京都西多摩郡檜原村 やすらぎの里 第二臨時避難所（高齢者・要配慮者優先スペース）" * 2
    ),
    destination_municipality_ja="西多摩郡檜原村" * 6,
    sender_ja=(
        "一般社団法人 東京多摩地域災害時相互支援ネットワーク協議会 事務局 物流センター 第三倉庫"
    ),
    ship_from_ja="東久留米市" * 5,
    priority="urgent",
)
REALISTIC = (OKAYU, CANNED, CLOTHES)


# ---------------------------------------------------------------------------------------------
# helpers


def _pages(pdf: bytes) -> list[tuple[tuple[float, float], Image.Image, str, pdfium.PdfPage]]:
    doc = pdfium.PdfDocument(pdf)
    out = []
    for page in doc:
        image = page.render(scale=DPI / 72, grayscale=True).to_pil()
        text = page.get_textpage().get_text_range()
        out.append((page.get_size(), image, text, page))
    return out


def _qrs(image: Image.Image) -> list[zxingcpp.Barcode]:
    return zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)


def _char_boxes(page: pdfium.PdfPage) -> list[tuple[str, tuple[float, float, float, float]]]:
    tp = page.get_textpage()
    out = []
    for i in range(tp.count_chars()):
        ch = tp.get_text_range(i, 1)
        box = tp.get_charbox(i)
        if ch.strip() and box[2] > box[0] and box[3] > box[1]:
            out.append((ch, box))
    return out


def _assert_size(size: tuple[float, float], expected: tuple[float, float]) -> None:
    assert size[0] == pytest.approx(expected[0], abs=0.5)
    assert size[1] == pytest.approx(expected[1], abs=0.5)


def _assert_qr_geometry(image: Image.Image, qr: zxingcpp.Barcode, url: str) -> None:
    """Symbol ≥ 45 mm wide and a clear (white) quiet zone of 4 modules around it."""
    xs = [p.x for p in (qr.position.top_left, qr.position.bottom_right)]
    ys = [p.y for p in (qr.position.top_left, qr.position.bottom_right)]
    width_px = xs[1] - xs[0]
    assert width_px / DPI * 25.4 >= 45.0
    modules = _print_qr(url).symbol_size(border=0)[0]
    mod_px = width_px / modules
    qz = math.floor(4 * mod_px) - 2
    l, t, r, b = xs[0] - 1, ys[0] - 1, xs[1] + 2, ys[1] + 2  # noqa: E741
    for box in ((l - qz, t - qz, r + qz, t), (l - qz, b, r + qz, b + qz)):  # above, below
        assert image.crop(box).getextrema()[0] > 200, "quiet zone not clear"
    for box in ((l - qz, t, l, b), (r, t, r + qz, b)):  # left, right
        assert image.crop(box).getextrema()[0] > 200, "quiet zone not clear"


# ---------------------------------------------------------------------------------------------
# codes


def test_new_code_has_at_least_128_bits_and_is_unique_and_url_safe() -> None:
    assert len(CODE_ALPHABET) == len(set(CODE_ALPHABET)) == 32
    assert re.fullmatch(r"[a-z2-7]+", CODE_ALPHABET)  # URL-safe, no padding
    bits = CODE_LENGTH * math.log2(len(CODE_ALPHABET))  # uniform independent draws
    assert bits == CODE_BITS >= 128
    codes = [new_code() for _ in range(10_000)]
    assert len(set(codes)) == len(codes)
    assert all(len(c) == CODE_LENGTH and re.fullmatch(CODE_PATTERN, c) for c in codes)
    # every symbol in use, roughly uniformly (expected 8125 each; ±6% is > 5 sigma)
    counts = Counter("".join(codes))
    assert set(counts) == set(CODE_ALPHABET)
    expected = len(codes) * CODE_LENGTH / 32
    assert all(abs(n - expected) < 0.06 * expected for n in counts.values())


# ---------------------------------------------------------------------------------------------
# qr_svg


def test_qr_svg_is_valid_svg_that_decodes_to_the_url() -> None:
    url = BASE + new_code()
    svg = qr_svg(url)
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "relief-qr" in root.get("class", "")
    assert root.find("{http://www.w3.org/2000/svg}title").text == url
    # Render the very SVG string (fpdf2's SVG renderer → PDF → pdfium) and decode it.
    doc = FPDF(unit="pt", format=(400, 400))
    doc.add_page()
    doc.image(io.BytesIO(svg.encode()), x=20, y=20, w=360)
    image = pdfium.PdfDocument(bytes(doc.output()))[0].render(scale=2, grayscale=True).to_pil()
    found = _qrs(image)
    assert [q.text for q in found] == [url]
    assert found[0].ec_level in {"M", "Q", "H"}


# ---------------------------------------------------------------------------------------------
# A6


@pytest.fixture(scope="module")
def a6_pdf() -> bytes:
    return label_pdf(REALISTIC)


def test_a6_one_label_per_page_and_each_qr_decodes_to_its_url(a6_pdf: bytes) -> None:
    pages = _pages(a6_pdf)
    assert len(pages) == len(REALISTIC)
    for (size, image, _, _), label in zip(pages, REALISTIC, strict=True):
        _assert_size(size, A6_PT)
        found = _qrs(image)
        assert [q.text for q in found] == [label.url]
        assert found[0].ec_level in {"Q", "H"}  # printed labels get ≥ Q
        _assert_qr_geometry(image, found[0], label.url)


def test_a6_japanese_text_is_in_the_pdf(a6_pdf: bytes) -> None:
    texts = [text for _, _, text, _ in _pages(a6_pdf)]
    for text, label in zip(texts, REALISTIC, strict=True):
        for needle in (
            "救援物資",
            "Relief supplies",
            "スマホで読み取ると中身を確認できます",
            "品名",
            "数量",
            "届け先",
            "差出人",
            "マッチID",
            label.item_ja,
            label.destination_ja,
            label.destination_municipality_ja,
            label.sender_ja,
            label.ship_from_ja,
            label.match_id,
            label.unit_ja,
        ):
            assert needle in text, needle
    okayu, canned, clothes = texts
    assert "至急" in okayu and "優先" in canned and "通常" in clothes
    assert "アレルゲン情報なし" in okayu
    assert "200" in okayu and "賞味期限" in okayu and "2026年3月31日" in okayu
    assert "不使用" in canned and all(a in canned for a in EIGHT)
    assert "アレルゲン情報なし" not in canned
    assert "150" in clothes and "新品" in clothes and "アレルゲン情報なし" not in clothes


def test_pdf_is_small_and_embeds_a_font_subset(a6_pdf: bytes) -> None:
    assert a6_pdf.startswith(b"%PDF-")
    assert len(a6_pdf) < 200_000  # the full font alone is 6 MB
    assert re.search(rb"/FontName /[A-Z]{6}\+IPAexGothic", a6_pdf)
    assert len(label_pdf([OKAYU])) < 100_000


def test_text_never_leaves_the_label_and_qr_keeps_its_quiet_zone() -> None:
    pdf = label_pdf([STRESS])
    ((size, image, text, page),) = _pages(pdf)
    _assert_size(size, A6_PT)
    (qr,) = _qrs(image)
    assert qr.text == STRESS.url
    _assert_qr_geometry(image, qr, STRESS.url)
    inner = 3 * PT_PER_MM  # the frame
    for ch, (left, bottom, right, top) in _char_boxes(page):
        assert inner <= left and right <= A6_PT[0] - inner, ch
        assert inner <= bottom and top <= A6_PT[1] - inner, ch
    assert "…" in text  # something had to be cut
    assert "救援物資" in text and "至急" in text


# ---------------------------------------------------------------------------------------------
# A4 sheets


@pytest.mark.parametrize("count", [4, 5])
def test_a4_sheet_four_labels_per_page(count: int) -> None:
    labels = [replace(lbl, url=BASE + new_code()) for lbl in (*REALISTIC, STRESS, OKAYU)][:count]
    pages = _pages(label_pdf(labels, sheet="a4"))
    assert len(pages) == math.ceil(count / 4)
    for i, (size, image, text, page) in enumerate(pages):
        _assert_size(size, A4_PT)
        on_page = labels[4 * i : 4 * i + 4]
        found = _qrs(image)
        assert sorted(q.text for q in found) == sorted(lbl.url for lbl in on_page)
        for q in found:
            _assert_qr_geometry(image, q, q.text)
        for lbl in on_page:
            assert lbl.match_id[:20] in text
        # each glyph stays inside one A6 cell's frame (no text across the cut lines)
        inner = 3 * PT_PER_MM
        for ch, (left, bottom, right, top) in _char_boxes(page):
            col = int(left // A6_PT[0])
            row = int((A4_PT[1] - top) // A6_PT[1])
            cx, cy = col * A6_PT[0], A4_PT[1] - row * A6_PT[1]  # cell's top-left, PDF coords
            assert cx + inner <= left and right <= cx + A6_PT[0] - inner, ch
            assert cy - A6_PT[1] + inner <= bottom and top <= cy - inner, ch


# ---------------------------------------------------------------------------------------------
# validation


@pytest.mark.parametrize(
    "change",
    [
        {"priority": "critical"},
        {"condition": "broken"},
        {"expiry": "2026-13-01"},
        {"url": "ftp://node.example/r/x"},
        {"quantity": -1},
        {"match_id": ""},
        {"allergens_declared": False, "allergen_free": ("卵",)},
    ],
)
def test_invalid_label_data_is_rejected(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _label(**change)


def test_label_pdf_rejects_nothing_and_unknown_sheets() -> None:
    with pytest.raises(ValueError):
        label_pdf([])
    with pytest.raises(ValueError):
        label_pdf([OKAYU], sheet="a5")  # type: ignore[arg-type]
