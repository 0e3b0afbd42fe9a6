"""Printable labels for confirmed relief-supply matches (feature step ④).

Pure rendering: no I/O besides reading the packaged font, no ledger or web access. The web route
(``GET /api/v1/relief/matches/{id}/label.pdf``) builds :class:`LabelData` and calls
:func:`label_pdf`; pages that show a match call :func:`qr_svg`; a confirmed match gets its code
from :func:`new_code`.

Label codes
    :func:`new_code` returns :data:`CODE_LENGTH` (26) characters, each independent and uniform
    over :data:`CODE_ALPHABET`, the RFC 4648 base32 alphabet in lower case (``a-z2-7``), no
    padding, from :func:`secrets.randbits`. That is 26 × 5 = 130 bits of entropy by
    construction (:data:`CODE_BITS`), URL-safe as is. :data:`CODE_PATTERN` is a regular
    expression for validating a code in a route (e.g. FastAPI ``Path(pattern=CODE_PATTERN)``).

Labels
    One A6 label (105 × 148 mm, portrait) per page, or four A6 labels per A4 page (2 × 2) with
    dashed cut lines. Japanese first, English small. The QR code is drawn as vector rectangles
    (crisp at any printer resolution) from the module matrix segno computes, error correction
    level Q (or higher if it fits for free), at least version 4, dark modules at least 45 mm
    across, and a white quiet zone of 4 modules kept clear of everything else. Text is fitted
    into fixed boxes: it wraps (Latin words and katakana runs kept whole, other Japanese
    anywhere, basic kinsoku), then shrinks down to a minimum size, and only then is cut with
    an ellipsis, so nothing can overflow the label. The font is IPAexGothic
    (``fonts/ipaexg.ttf``, IPA Font License v1.0), embedded as a subset by fpdf2, so a label
    PDF is a few tens of kilobytes.
"""

from __future__ import annotations

import io
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Literal

import segno
from fpdf import FPDF
from fpdf.enums import TextMode

__all__ = [
    "CODE_ALPHABET",
    "CODE_BITS",
    "CODE_LENGTH",
    "CODE_PATTERN",
    "LabelData",
    "label_pdf",
    "new_code",
    "qr_svg",
]

# --------------------------------------------------------------------------------------------
# Codes
# --------------------------------------------------------------------------------------------

CODE_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lower case
CODE_LENGTH = 26
CODE_BITS = CODE_LENGTH * int(math.log2(len(CODE_ALPHABET)))  # 130
CODE_PATTERN = rf"^[a-z2-7]{{{CODE_LENGTH}}}$"


def new_code() -> str:
    """Return a fresh unguessable match code: 26 chars of lower-case base32, 130 random bits.

    :func:`secrets.randbits` draws 130 bits from the OS CSPRNG; each 5-bit group picks one
    symbol of the 32-symbol alphabet ``a-z2-7``, so every character is uniform and independent
    and the entropy is exactly 26 × 5 = 130 bits. URL-safe, no padding; use it as
    ``<public base URL>/r/<code>``.
    """
    n = secrets.randbits(CODE_BITS)
    return "".join(CODE_ALPHABET[(n >> (5 * i)) & 31] for i in range(CODE_LENGTH))


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

PRIORITIES: dict[str, tuple[str, str]] = {
    "urgent": ("至急", "URGENT"),
    "high": ("優先", "HIGH"),
    "normal": ("通常", "NORMAL"),
}
CONDITIONS: dict[str, tuple[str, str]] = {"new": ("新品", "new"), "used": ("中古", "used")}


@dataclass(frozen=True, slots=True)
class LabelData:
    """Everything printed on one label. All Japanese fields are printed as given."""

    match_id: str
    url: str  # the full URL the QR encodes, e.g. "https://node.example/r/<code>"
    item_ja: str
    item_en: str
    quantity: int
    unit_ja: str
    allergens_contained: tuple[str, ...]  # declared as contained; empty = none contained
    allergen_free: tuple[str, ...]  # declared as free of
    allergens_declared: bool  # False: nothing declared → "アレルゲン情報なし"
    size: str | None  # clothing size
    condition: str | None  # "new" | "used"
    expiry: str | None  # ISO date (賞味期限)
    destination_ja: str  # destination shelter
    destination_municipality_ja: str
    sender_ja: str  # sending organisation (never a person's name)
    ship_from_ja: str  # municipality it ships from
    priority: str | None  # "urgent" | "high" | "normal"

    def __post_init__(self) -> None:
        if not self.url.startswith(("https://", "http://")):
            raise ValueError("url must be an absolute http(s) URL")
        if not self.match_id:
            raise ValueError("match_id must not be empty")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise ValueError("quantity must be an int")
        if self.quantity < 0:
            raise ValueError("quantity must not be negative")
        if self.priority is not None and self.priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {sorted(PRIORITIES)} or None")
        if self.condition is not None and self.condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {sorted(CONDITIONS)} or None")
        if self.expiry is not None:
            date.fromisoformat(self.expiry)  # raises ValueError
        if not self.allergens_declared and (self.allergens_contained or self.allergen_free):
            raise ValueError("allergens listed although allergens_declared is False")


# --------------------------------------------------------------------------------------------
# QR
# --------------------------------------------------------------------------------------------

_MIN_PRINT_VERSION = 4  # ≥ 33 modules: keeps the printed symbol ≥ 45 mm in a fixed 57 mm box
_QUIET = 4  # quiet zone, modules


def _print_qr(url: str) -> segno.QRCode:
    qr = segno.make(url, error="q", micro=False, boost_error=True)
    if qr.version < _MIN_PRINT_VERSION:
        qr = segno.make(url, error="q", version=_MIN_PRINT_VERSION, micro=False, boost_error=True)
    return qr


def qr_svg(url: str, *, scale: int = 6) -> str:
    """SVG markup (no XML declaration, with the SVG namespace) of a QR code for ``url``.

    For web pages: embed it inline in HTML (Jinja: ``{{ svg | safe }}``) or serve it as
    ``image/svg+xml``. Error correction M, raised by segno when that costs no extra size;
    4-module quiet zone on an explicit white background (so it also scans in dark mode);
    ``scale`` CSS pixels per module (6 gives about 250 px for a ``/r/<code>`` URL) as its
    width/height, plus a viewBox so CSS may resize it. The root element has the class
    ``relief-qr`` and a ``<title>`` with the URL (its accessible name).
    """
    qr = segno.make(url, error="m", micro=False, boost_error=True)
    buf = io.BytesIO()
    qr.save(
        buf,
        kind="svg",
        xmldecl=False,
        svgns=True,
        nl=False,
        scale=scale,
        border=_QUIET,
        dark="#000",
        light="#fff",
        svgclass="relief-qr",
        title=url,
    )
    svg = buf.getvalue().decode("utf-8")
    # A viewBox as well as width/height: intrinsic size by default, scalable with CSS.
    w, h = qr.symbol_size(scale=scale, border=_QUIET)
    return svg.replace("<svg ", f'<svg viewBox="0 0 {w} {h}" ', 1)


# --------------------------------------------------------------------------------------------
# Geometry (mm) and style
# --------------------------------------------------------------------------------------------

A6 = (105.0, 148.0)
A4 = (210.0, 297.0)
_PT = 25.4 / 72  # mm per point

_FRAME = 3.0  # frame inset from the label edge
_PAD = 5.0  # content inset from the label edge
_CW = A6[0] - 2 * _PAD  # content width, 95 mm

# Vertical budget of the 138 mm content height (gaps included where the blocks are drawn).
_HEADER_H = 12.0
_DEST_H = 23.0
_QR_BOX = 57.0  # QR incl. quiet zone
_CAPTION_H = 6.5
_ALLERGEN_H = 15.0
_SENDER_H = 11.0

_BLACK = (0, 0, 0)
_INK = (20, 20, 20)
_MUTED = (95, 95, 95)
_RULE = (150, 150, 150)
_WHITE = (255, 255, 255)
_RED = (200, 16, 46)
_TINT = (238, 238, 238)

_JA = "IPAexGothic"
_MONO = "Courier"
_ASCENT = {_JA: 0.88, _MONO: 0.70}

_NO_LINE_START = set(
    "、。，．,.・：；:;？！?!ー―‐）)」』】〕〉》］]｝}”’ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ々〜～…‥"
)
_NO_LINE_END = set("（(「『【〔〈《［[｛{“‘")
# Unbreakable units: runs of blanks, of printable ASCII (Latin words, numbers, codes), of
# katakana (loanwords read badly when split), else single characters (kanji, kana, ...).
_UNIT_RE = re.compile(
    r"[ \t\u3000]+|[!-~]+|[\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff]+|.", re.DOTALL
)


def _font_path() -> str:
    # The package is installed from a directory (setuptools, editable or not), so the resource
    # is a real file; fpdf2 needs a filesystem path.
    return str(resources.files(__package__).joinpath("fonts", "ipaexg.ttf"))


def _fmt_expiry(iso: str) -> str:
    d = date.fromisoformat(iso)
    return f"{d.year}年{d.month}月{d.day}日"


# --------------------------------------------------------------------------------------------
# Text layout
# --------------------------------------------------------------------------------------------


class _Canvas:
    """A thin layer over FPDF with mm coordinates, top-left text placement and text fitting."""

    def __init__(self, page: tuple[float, float], title: str) -> None:
        pdf = FPDF(orientation="P", unit="mm", format=page)
        pdf.set_auto_page_break(False)
        pdf.set_margins(0, 0, 0)
        pdf.c_margin = 0
        pdf.add_font(_JA, "", _font_path())
        pdf.set_title(title)
        pdf.set_creator("Tsunagu")
        pdf.set_lang("ja")
        self.pdf = pdf

    # -- measuring ---------------------------------------------------------------------------

    def _use(self, font: str, pt: float) -> None:
        if self.pdf.font_family != font.lower() or self.pdf.font_size_pt != pt:
            self.pdf.set_font(font, size=pt)

    def width(self, text: str, font: str, pt: float) -> float:
        self._use(font, pt)
        return self.pdf.get_string_width(text)

    def wrap(self, text: str, width: float, font: str, pt: float) -> list[str]:
        """Greedy line breaking: Latin at spaces, Japanese between any characters (kinsoku)."""
        self._use(font, pt)
        sw = self.pdf.get_string_width
        units: list[str] = []
        for m in _UNIT_RE.finditer(" ".join(text.split("\n"))):
            u = m.group()
            glue = units and not units[-1].isspace() and not u.isspace()
            if glue and (u[0] in _NO_LINE_START or units[-1][-1] in _NO_LINE_END):
                units[-1] += u
                continue
            units.append(u)
        lines: list[str] = []
        cur = ""
        for u in units:
            if sw(cur + u) <= width:
                cur += u
                continue
            if u.isspace():
                lines.append(cur.rstrip())
                cur = ""
                continue
            if cur.strip():
                lines.append(cur.rstrip())
            cur = ""
            if sw(u) <= width:
                cur = u
                continue
            for ch in u:  # a unit wider than the line: break it anywhere
                if cur and sw(cur + ch) > width:
                    lines.append(cur)
                    cur = ""
                cur += ch
        if cur.strip() or not lines:
            lines.append(cur.rstrip())
        return lines

    def fit(
        self,
        text: str,
        width: float,
        *,
        max_lines: int,
        max_pt: float,
        min_pt: float,
        font: str = _JA,
        height: float | None = None,
        leading: float = 1.25,
        prefer: tuple[tuple[int, float], ...] = (),
    ) -> tuple[float, list[str]]:
        """Largest size in [min_pt, max_pt] at which ``text`` wraps into the box; else cut.

        ``prefer`` lists ``(lines, floor_pt)`` layouts tried first, e.g. ``((1, 14),)`` keeps a
        name on one line by shrinking it down to 14 pt before letting it wrap.
        """
        for n, floor in (*prefer, (max_lines, min_pt)):
            pt = max_pt
            while True:
                lines = self.wrap(text, width, font, pt)
                tall = height is not None and len(lines) * pt * _PT * leading > height + 1e-6
                if len(lines) <= min(n, max_lines) and not tall:
                    return pt, lines
                if pt - 0.5 < floor - 1e-9:
                    break
                pt -= 0.5
        if height is not None:
            max_lines = max(1, min(max_lines, int(height / (pt * _PT * leading) + 1e-6)))
        lines = lines[:max_lines]
        ell = "..." if font == _MONO else "…"
        last = lines[-1]
        while last and self.width(last + ell, font, pt) > width:
            last = last[:-1]
        lines[-1] = last.rstrip() + ell
        return pt, lines

    # -- drawing -----------------------------------------------------------------------------

    def text(
        self,
        x: float,
        top: float,
        s: str,
        pt: float,
        *,
        font: str = _JA,
        color: tuple[int, int, int] = _INK,
        bold: bool = False,
    ) -> None:
        """Draw one line with its em box's top at ``top``."""
        pdf = self.pdf
        self._use(font, pt)
        baseline = top + _ASCENT[font] * pt * _PT
        with pdf.local_context():
            pdf.set_text_color(*color)
            if bold:  # IPAexGothic has one weight: embolden by stroking the outline too
                pdf.set_draw_color(*color)
                pdf.text_mode = TextMode.FILL_STROKE
                # fpdf2 writes the text stroke width as is, i.e. in points
                pdf.set_line_width(round(pt * (0.028 if pt >= 10 else 0.02), 2))
            pdf.text(x, baseline, s)

    def lines(
        self,
        x: float,
        top: float,
        lines: list[str],
        pt: float,
        *,
        leading: float = 1.25,
        align: Literal["left", "center", "right"] = "left",
        width: float = 0.0,
        **kw: object,
    ) -> float:
        """Draw wrapped lines; return the height used."""
        step = pt * _PT * leading
        font = str(kw.get("font", _JA))
        for i, line in enumerate(lines):
            lx = x
            if align != "left":
                w = self.width(line, font, pt)
                lx = x + (width - w) / (2 if align == "center" else 1)
            self.text(lx, top + i * step, line, pt, **kw)  # type: ignore[arg-type]
        return len(lines) * step - (leading - 1) * pt * _PT

    def field_label(self, x: float, top: float, ja: str, en: str) -> float:
        """Small grey caption "品名 Contents"; returns its height."""
        self.text(x, top, ja, 6.5, color=_MUTED)
        self.text(x + self.width(ja, _JA, 6.5) + 1.2, top + 0.55, en, 5.0, color=_MUTED)
        return 6.5 * _PT + 1.0

    def rect(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        *,
        fill: tuple[int, int, int] | None = None,
        stroke: tuple[int, int, int] | None = None,
        lw: float = 0.3,
        r: float = 0.0,
        corners: tuple[str, ...] | None = None,
    ) -> None:
        pdf = self.pdf
        style = ("F" if fill else "") + ("D" if stroke else "")
        rounded: bool | tuple[str, ...] = (corners or True) if r > 0 else False
        with pdf.local_context():
            if fill:
                pdf.set_fill_color(*fill)
            if stroke:
                pdf.set_draw_color(*stroke)
                pdf.set_line_width(lw)
            pdf.rect(x, y, w, h, style=style, round_corners=rounded, corner_radius=r)

    def line(
        self, x1: float, y1: float, x2: float, y2: float, color=_RULE, lw: float = 0.25
    ) -> None:
        with self.pdf.local_context():
            self.pdf.set_draw_color(*color)
            self.pdf.set_line_width(lw)
            self.pdf.line(x1, y1, x2, y2)

    def hline(self, x1: float, x2: float, y: float, **kw) -> None:
        self.line(x1, y, x2, y, **kw)

    def vline(self, x: float, y1: float, y2: float, **kw) -> None:
        self.line(x, y1, x, y2, **kw)

    def qr(self, x: float, y: float, size: float, url: str) -> float:
        """Draw the QR (with its white quiet zone) in a ``size`` mm square; return module mm."""
        qr = _print_qr(url)
        n = qr.symbol_size(border=0)[0]
        module = size / (n + 2 * _QUIET)
        x0 = x + _QUIET * module
        y0 = y + _QUIET * module
        self.rect(x, y, size, size, fill=_WHITE)
        pdf = self.pdf
        # One path, one fill: adjacent modules merge without hairline seams when rasterised.
        with pdf.new_path() as path:
            path.style.fill_color = "#000000"
            path.style.stroke_color = None
            path.style.fill_opacity = None
            for r, row in enumerate(qr.matrix_iter(border=0)):
                c = 0
                while c < n:
                    if row[c]:
                        start = c
                        while c < n and row[c]:
                            c += 1
                        path.rectangle(
                            x0 + start * module, y0 + r * module, (c - start) * module, module
                        )
                    else:
                        c += 1
        return module


# --------------------------------------------------------------------------------------------
# One label
# --------------------------------------------------------------------------------------------


def _draw_label(cv: _Canvas, d: LabelData, ox: float, oy: float) -> None:
    x0, x1 = ox + _PAD, ox + A6[0] - _PAD
    y = oy + _PAD

    cv.rect(
        ox + _FRAME, oy + _FRAME, A6[0] - 2 * _FRAME, A6[1] - 2 * _FRAME, stroke=_INK, lw=0.4, r=2.5
    )

    # Header band with priority badge -------------------------------------------------------
    cv.rect(x0, y, _CW, _HEADER_H, fill=_INK, r=1.5)
    title_pt = 18.0
    title_top = y + (_HEADER_H - title_pt * _PT) / 2
    cv.text(x0 + 3, title_top, "救援物資", title_pt, color=_WHITE, bold=True)
    tx = x0 + 3 + cv.width("救援物資", _JA, title_pt) + 2.2
    cv.text(tx, title_top + (title_pt - 8.0) * _PT * 0.88, "Relief supplies", 8.0, color=_WHITE)
    if d.priority is not None:
        ja, en = PRIORITIES[d.priority]
        jpt, ept = 13.0, 6.0
        bw = cv.width(ja, _JA, jpt) + 1.5 + cv.width(en, _JA, ept) + 5
        bh = _HEADER_H - 3.2
        bx, by = x1 - 1.6 - bw, y + 1.6
        if d.priority == "urgent":
            cv.rect(bx, by, bw, bh, fill=_RED, stroke=_WHITE, lw=0.5, r=1.2)
            fg = _WHITE
        elif d.priority == "high":
            cv.rect(bx, by, bw, bh, fill=_WHITE, r=1.2)
            fg = _INK
        else:
            cv.rect(bx, by, bw, bh, stroke=_WHITE, lw=0.4, r=1.2)
            fg = _WHITE
        jt = by + (bh - jpt * _PT) / 2
        cv.text(bx + 2.5, jt, ja, jpt, color=fg, bold=True)
        ex = bx + 2.5 + cv.width(ja, _JA, jpt) + 1.5
        cv.text(ex, jt + (jpt - ept) * _PT * 0.88, en, ept, color=fg)
    y += _HEADER_H + 2.0

    # Destination ---------------------------------------------------------------------------
    top = y
    y += cv.field_label(x0, y, "届け先", "Deliver to")
    mpt, mlines = cv.fit(d.destination_municipality_ja, _CW, max_lines=1, max_pt=9.5, min_pt=7)
    y += cv.lines(x0, y, mlines, mpt, bold=True) + 0.8
    room = top + _DEST_H - y
    npt, nlines = cv.fit(
        d.destination_ja,
        _CW,
        max_lines=2,
        max_pt=20,
        min_pt=9,
        height=room,
        leading=1.2,
        prefer=((1, 15),),
    )
    nh = len(nlines) * npt * _PT * 1.2 - 0.2 * npt * _PT
    cv.lines(x0, y + max(0.0, (room - nh) / 2 - 0.5), nlines, npt, bold=True, leading=1.2)
    y = top + _DEST_H
    cv.hline(x0, x1, y + 1.0)
    y += 2.0

    # QR (right) and contents (left) --------------------------------------------------------
    qx = x1 - _QR_BOX
    cv.qr(qx, y, _QR_BOX, d.url)
    cap_top = y + _QR_BOX + 0.2  # below the quiet zone, never in it
    cv.lines(
        qx, cap_top, ["スマホで読み取ると中身を確認できます"], 7.0, align="center", width=_QR_BOX
    )
    cv.lines(
        qx,
        cap_top + 3.3,
        ["Scan with a phone to see the contents"],
        5.5,
        color=_MUTED,
        align="center",
        width=_QR_BOX,
    )

    lw = qx - x0 + 1.5  # the QR's own quiet zone is the gutter
    row_bottom = y + _QR_BOX + _CAPTION_H
    ly = y + 2.5

    # Quantity and the extras (size/condition, expiry) always get their room; the item name
    # takes what is left.
    extras: list[tuple[str, str, str]] = []
    if d.size or d.condition:
        cond = CONDITIONS[d.condition][0] if d.condition else None
        value = "・".join(p for p in (d.size, cond) if p)
        ja_lbl = "サイズ・状態" if d.size and d.condition else ("サイズ" if d.size else "状態")
        extras.append((ja_lbl, "Size / condition", value))
    if d.expiry:
        extras.append(("賞味期限", "Best before", _fmt_expiry(d.expiry)))
    qty = f"{d.quantity:,}"
    qpt = 26.0
    while qpt > 8 and cv.width(qty, _JA, qpt) + 1 + cv.width(d.unit_ja, _JA, qpt * 0.5) > lw:
        qpt -= 1
    cap_h = 6.5 * _PT + 1.0  # a field label
    extra_pt, extra_gap = 11.0, 2.6
    reserved = (cap_h + qpt * _PT + 3.0) + len(extras) * (cap_h + extra_pt * _PT + extra_gap)
    en_h = 2 * 7.0 * _PT * 1.25 if d.item_en else 0.0
    item_room = row_bottom - ly - reserved - cap_h - 0.8 - en_h - 3.0

    ly += cv.field_label(x0, ly, "品名", "Contents")
    ipt, ilines = cv.fit(
        d.item_ja,
        lw,
        max_lines=3,
        max_pt=14,
        min_pt=7,
        leading=1.2,
        height=item_room,
        prefer=((1, 12), (2, 10.5)),
    )
    ly += cv.lines(x0, ly, ilines, ipt, bold=True, leading=1.2) + 0.8
    if d.item_en:
        ept, elines = cv.fit(d.item_en, lw, max_lines=2, max_pt=7, min_pt=5.5)
        ly += cv.lines(x0, ly, elines, ept, color=_MUTED)
    ly += 3.0

    ly += cv.field_label(x0, ly, "数量", "Quantity")
    qw = cv.width(qty, _JA, qpt)
    upt, ulines = cv.fit(d.unit_ja, max(lw - qw - 1, 3.0), max_lines=1, max_pt=qpt * 0.5, min_pt=6)
    cv.text(x0, ly, qty, qpt, bold=True)
    cv.text(x0 + qw + 1, ly + (qpt - upt) * _PT * 0.88, ulines[0], upt)
    ly += qpt * _PT + 3.0

    for ja_lbl, en_lbl, value in extras:
        ly += cv.field_label(x0, ly, ja_lbl, en_lbl)
        vpt, vlines = cv.fit(value, lw, max_lines=1, max_pt=extra_pt, min_pt=6)
        ly += cv.lines(x0, ly, vlines, vpt, bold=True) + extra_gap
    y = row_bottom + 1.5

    # Allergens -----------------------------------------------------------------------------
    box_h = _ALLERGEN_H
    label_w = 17.0
    cv.rect(x0, y, label_w, box_h, fill=_TINT, r=1.2, corners=("TOP_LEFT", "BOTTOM_LEFT"))
    cv.rect(x0, y, _CW, box_h, stroke=_INK, lw=0.35, r=1.2)
    cv.vline(x0 + label_w, y, y + box_h, color=_INK, lw=0.35)
    cv.text(x0 + 1.8, y + box_h / 2 - 3.0, "アレルゲン", 7.0, bold=True)
    cv.text(x0 + 1.8, y + box_h / 2 + 0.4, "Allergens", 5.5, color=_MUTED)
    ax = x0 + label_w + 2.0
    aw = x1 - ax - 1.5
    if not d.allergens_declared:
        cv.rect(ax, y + 2.0, aw, box_h - 4.0, fill=_INK, r=1.0)
        ty = y + 2.0 + (box_h - 4.0 - (11.0 + 5.5) * _PT - 0.7) / 2
        cv.text(ax + 2.5, ty, "アレルゲン情報なし", 11.0, color=_WHITE, bold=True)
        cv.text(
            ax + 2.5,
            ty + 11 * _PT + 0.7,
            "No allergen information — check before serving",
            5.5,
            color=_WHITE,
        )
    else:
        rows = [("含む", "、".join(d.allergens_contained) or "なし", True)]
        if d.allergen_free:
            rows.append(("不使用", "、".join(d.allergen_free), False))
        tag_w = 10.5
        row_h = (box_h - 2.0) / len(rows)
        for i, (tag, value, strong) in enumerate(rows):
            ry = y + 1.0 + i * row_h
            th = 4.6
            tt = ry + (row_h - th) / 2
            if strong:
                cv.rect(ax, tt, tag_w, th, fill=_INK, r=0.8)
            else:
                cv.rect(ax, tt, tag_w, th, stroke=_INK, lw=0.3, r=0.8)
            tpt = 7.5
            cv.lines(
                ax,
                tt + (th - tpt * _PT) / 2,
                [tag],
                tpt,
                align="center",
                width=tag_w,
                color=_WHITE if strong else _INK,
                bold=True,
            )
            vx = ax + tag_w + 2.0
            vw = x1 - 1.5 - vx
            vpt, vlines = cv.fit(
                value,
                vw,
                max_lines=2,
                max_pt=10 if strong else 9,
                min_pt=5.5,
                height=row_h - 0.6,
                leading=1.15,
            )
            vh = len(vlines) * vpt * _PT * 1.15 - 0.15 * vpt * _PT
            cv.lines(vx, ry + (row_h - vh) / 2, vlines, vpt, bold=strong, leading=1.15)
    y += box_h + 2.0

    # Sender (left) and ship-from municipality (right) --------------------------------------
    top = y
    fpt = 9.0
    fw = min(max(cv.width(d.ship_from_ja, _JA, fpt), cv.width("発送元", _JA, 6.5) + 12), 30.0)
    fx = x1 - fw
    cv.field_label(fx, y, "発送元", "Ships from")
    sw = fx - 3.0 - x0
    y += cv.field_label(x0, y, "差出人", "From")
    room = top + _SENDER_H - 1.2 - y
    fpt, flines = cv.fit(d.ship_from_ja, fw, max_lines=1, max_pt=fpt, min_pt=6)
    cv.lines(fx, y, flines, fpt)
    spt, slines = cv.fit(
        d.sender_ja, sw, max_lines=2, max_pt=10, min_pt=6, height=room, leading=1.15
    )
    cv.lines(x0, y, slines, spt, bold=True, leading=1.15)
    y = top + _SENDER_H
    cv.hline(x0, x1, y - 0.6)

    # Match id ------------------------------------------------------------------------------
    mid_label_w = cv.width("マッチID", _JA, 6.5) + cv.width("Match ID", _JA, 5.0) + 4.0
    cv.field_label(x0, y + 0.6, "マッチID", "Match ID")
    try:
        d.match_id.encode("latin-1")
        id_font = _MONO
    except UnicodeEncodeError:
        id_font = _JA
    iw = _CW - mid_label_w
    idpt, idlines = cv.fit(
        d.match_id,
        iw,
        max_lines=2,
        max_pt=8,
        min_pt=5,
        font=id_font,
        height=oy + A6[1] - _PAD - y,
        leading=1.15,
    )
    cv.lines(x0 + mid_label_w, y + 0.3, idlines, idpt, font=id_font, leading=1.15)


def _cut_lines(cv: _Canvas) -> None:
    pdf = cv.pdf
    with pdf.local_context():
        pdf.set_draw_color(*_RULE)
        pdf.set_line_width(0.2)
        pdf.set_dash_pattern(dash=2.0, gap=1.5)
        pdf.line(A6[0], 0, A6[0], A4[1])
        pdf.line(0, A6[1], A4[0], A6[1])
    with pdf.local_context():  # solid crop ticks where the cuts meet the paper edges
        pdf.set_draw_color(*_INK)
        pdf.set_line_width(0.25)
        for x1, y1, x2, y2 in (
            (A6[0], 0, A6[0], 2.5),
            (A6[0], A4[1] - 2.5, A6[0], A4[1]),
            (0, A6[1], 2.5, A6[1]),
            (A4[0] - 2.5, A6[1], A4[0], A6[1]),
            (A6[0] - 2.5, A6[1], A6[0] + 2.5, A6[1]),
            (A6[0], A6[1] - 2.5, A6[0], A6[1] + 2.5),
        ):
            pdf.line(x1, y1, x2, y2)


# --------------------------------------------------------------------------------------------
# Document
# --------------------------------------------------------------------------------------------


def label_pdf(labels: Sequence[LabelData], sheet: Literal["a6", "a4"] = "a6") -> bytes:
    """Render labels to PDF bytes.

    ``sheet="a6"``: one label per A6 page (105 × 148 mm portrait). ``sheet="a4"``: four A6
    labels per A4 portrait page in a 2 × 2 grid, left to right then top to bottom, with dashed
    cut lines; the last page may be partly empty.
    """
    if not labels:
        raise ValueError("no labels to render")
    if sheet not in ("a6", "a4"):
        raise ValueError('sheet must be "a6" or "a4"')
    title = "救援物資ラベル" + (f" {labels[0].match_id}" if len(labels) == 1 else "")
    cv = _Canvas(A6 if sheet == "a6" else A4, title)
    if sheet == "a6":
        for d in labels:
            cv.pdf.add_page()
            _draw_label(cv, d, 0.0, 0.0)
    else:
        for i, d in enumerate(labels):
            slot = i % 4
            if slot == 0:
                cv.pdf.add_page()
                _cut_lines(cv)
            _draw_label(cv, d, (slot % 2) * A6[0], (slot // 2) * A6[1])
    return bytes(cv.pdf.output())
