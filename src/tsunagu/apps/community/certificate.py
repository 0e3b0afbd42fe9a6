"""The printable certificate (A4 landscape PDF) for a credential, with a QR code of the public
page that verifies it. Pure rendering: fpdf2 with the IPAexGothic font the relief app
packages (read from there, not copied), segno for the QR modules drawn as vector squares.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import segno
from fpdf import FPDF

_JA = "ipaexg"
JST = ZoneInfo("Asia/Tokyo")


def _font_path() -> str:
    return str(resources.files("tsunagu.apps.relief").joinpath("fonts", "ipaexg.ttf"))


def _date(value: str) -> str:
    """The Japanese calendar date (Asia/Tokyo) of a UTC time such as ``2026-11-29T23:30:00Z``."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    day = moment.astimezone(JST)
    return f"{day.year}年{day.month}月{day.day}日"


def certificate_pdf(credential: dict[str, Any], verify_url: str, *, revoked: bool = False) -> bytes:
    subject = credential["credentialSubject"]
    achievement = subject["achievement"]
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.add_font(_JA, "", _font_path())
    pdf.set_title(str(credential.get("name", "Certificate")))
    pdf.set_creator("Tsunagu")
    pdf.set_lang("ja")
    pdf.add_page()
    pdf.set_draw_color(10, 61, 115)
    pdf.set_line_width(1.2)
    pdf.rect(10, 10, 277, 190)
    pdf.set_font(_JA, size=30)
    pdf.set_xy(20, 28)
    pdf.cell(257, 14, "地域貢献 活動証明書", align="C")
    pdf.set_font(_JA, size=12)
    pdf.set_xy(20, 44)
    pdf.cell(257, 8, "Certificate of Community Service", align="C")
    pdf.set_font(_JA, size=18)
    pdf.set_xy(25, 64)
    pdf.multi_cell(180, 10, str(achievement["name"]))
    pdf.set_font(_JA, size=11)
    pdf.set_xy(25, 92)
    pdf.multi_cell(180, 7, str(achievement["description"]))
    lines = [f"発行団体 Issuer: {credential['issuer'].get('name', '')}"]
    lines.append(f"発行日 Issued: {_date(credential['validFrom'])}")
    if subject.get("activityStartDate"):
        lines.append(f"活動日 Activity date: {_date(subject['activityStartDate'])}")
    lines.append("受領者は氏名ではなくハッシュ化された識別子で示されています。")
    lines.append("The recipient is identified by a salted hash, never by name.")
    pdf.set_xy(25, 126)
    pdf.multi_cell(180, 7, "\n".join(lines))
    if revoked:
        pdf.set_text_color(164, 38, 44)
        pdf.set_font(_JA, size=16)
        pdf.set_xy(25, 180)
        pdf.cell(180, 10, "この証明書は取り消されています / REVOKED")
        pdf.set_text_color(0, 0, 0)
    _qr(pdf, verify_url, x=212, y=70, size=60)
    pdf.set_font(_JA, size=9)
    pdf.set_xy(205, 134)
    pdf.multi_cell(74, 5, "QRコードで台帳の記録を確認できます。\nScan to verify on the ledger.")
    return bytes(pdf.output())


def _qr(pdf: FPDF, url: str, *, x: float, y: float, size: float) -> None:
    qr = segno.make(url, error="m", micro=False)
    matrix = list(qr.matrix_iter(scale=1, border=4))
    module = size / len(matrix)
    pdf.set_fill_color(0, 0, 0)
    for row, bits in enumerate(matrix):
        for col, bit in enumerate(bits):
            if bit:
                pdf.rect(x + col * module, y + row * module, module, module, style="F")
