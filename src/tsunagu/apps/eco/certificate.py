"""The retirement certificate (無効化証明書): an A4 PDF in Japanese with a QR code to the
public verification page. The font is the IPAexGothic the relief labels package (reused, not
copied); the QR is drawn as filled rectangles from segno's module matrix."""

from __future__ import annotations

from importlib import resources
from typing import Any

import segno
from fpdf import FPDF

from tsunagu.apps.eco import rules

FONT = "ipaexg"
QUIET = 4


def _font_path() -> str:
    return str(resources.files("tsunagu.apps.relief").joinpath("fonts", "ipaexg.ttf"))


def _jst(timestamp: str) -> str:
    return rules.jst(timestamp).strftime("%Y年%m月%d日 %H:%M")


def _qr(pdf: FPDF, x: float, y: float, size: float, url: str) -> None:
    qr = segno.make(url, error="q", micro=False)
    n = qr.symbol_size(border=0)[0]
    module = size / (n + 2 * QUIET)
    pdf.set_fill_color(255, 255, 255)
    pdf.rect(x, y, size, size, style="F")
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(qr.matrix_iter(border=0)):
        c = 0
        while c < n:
            if row[c]:
                start = c
                while c < n and row[c]:
                    c += 1
                pdf.rect(
                    x + (QUIET + start) * module,
                    y + (QUIET + r) * module,
                    (c - start) * module,
                    module,
                    style="F",
                )
            else:
                c += 1


def certificate_pdf(lot: dict[str, Any], url: str) -> bytes:
    """The certificate of a retired lot (as :meth:`EcoView.lot` shows it)."""
    retirement = lot["retirement"]
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.add_font(FONT, "", _font_path())
    pdf.set_title(f"J-クレジット無効化証明書 {lot['id']}")
    pdf.set_font(FONT, size=22)
    pdf.set_xy(20, 24)
    pdf.cell(170, 12, "J-クレジット 無効化証明書", align="C")
    pdf.set_font(FONT, size=10)
    pdf.set_xy(20, 37)
    pdf.cell(170, 6, "多摩地域エコポイント・プログラム型プロジェクト", align="C")
    rows = (
        ("証明書番号", lot["id"]),
        ("無効化した者", lot["holder_name"]["ja"]),
        ("無効化量", f"{lot['tco2']:,} t-CO2"),
        (
            "シリアル番号",
            f"{rules.format_serial(lot['serial_start'])} 〜 "
            f"{rules.format_serial(lot['serial_end'])}",
        ),
        ("無効化日時", _jst(retirement["at"]) + "（日本時間）"),
        ("無効化の目的", retirement["purpose"]),
        ("発行者", lot["issuer_name"]["ja"]),
        ("モニタリング報告", lot["report"]),
        ("台帳上の取引ID", retirement["tx_id"]),
    )
    y = 55.0
    for label, value in rows:
        pdf.set_font(FONT, size=10)
        pdf.set_xy(20, y)
        pdf.cell(42, 8, label)
        pdf.set_font(FONT, size=10 if len(value) < 60 else 8)
        pdf.set_xy(62, y)
        pdf.multi_cell(128, 8 if len(value) < 60 else 5, value)
        y = max(pdf.get_y(), y + 8) + 2
        pdf.set_draw_color(200, 200, 200)
        pdf.line(20, y - 1, 190, y - 1)
    pdf.set_font(FONT, size=9)
    pdf.set_xy(20, y + 6)
    pdf.multi_cell(
        120,
        5,
        "このクレジットは、多摩・島しょ自治体ブロックチェーン協議会の台帳上で無効化されました。"
        "無効化は取り消すことができず、同じシリアル番号のクレジットが再び移転・売却されることは"
        "ありません。右のQRコードから、台帳に記録された内容を誰でも確認できます。",
    )
    _qr(pdf, 145, y + 4, 45, url)
    pdf.set_font(FONT, size=7)
    pdf.set_xy(20, 280)
    pdf.cell(170, 5, url, align="C")
    return bytes(pdf.output())
