"""Pydantic validation errors as short messages in English and Japanese.

Pydantic words its errors in English only ("Input should be 'public', …"). Users of Tsunagu
read Japanese first, so the API's validation handler and the contracts' payload check both
turn pydantic's error list into one short message per field, in each language, from the
error's ``type`` and ``ctx`` (never from its English ``msg``, except as the English fallback).

Standard library only: the contracts (which must not import web code) and the web layer both
use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

INVALID_EN = "The input is not valid"
INVALID_JA = "入力内容が正しくありません"
GENERIC_EN = "is not valid"
GENERIC_JA = "形式が正しくありません"
SHOWN = 10  # at most this many fields are listed in a summary; the rest are counted
# Where FastAPI found a request's bad value: the first part of its ``loc``, not a field name.
REQUEST_PARTS = ("body", "query", "path", "header", "cookie")

_JAPANESE = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uff00-\uffef]")
# One alternative of pydantic's "expected" list: "'a', 'b' or 3" (quoted with repr()).
_EXPECTED = re.compile(r"""\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|.+?)\s*(?:,|\bor\b|$)""")


class InputValueError(ValueError):
    """A ``ValueError`` for our own validators that carries both languages: pydantic reports
    it as ``value_error`` and :func:`explain` shows ``en`` or ``ja`` as the field's message."""

    def __init__(self, en: str, ja: str) -> None:
        super().__init__(en)
        self.en = en
        self.ja = ja


@dataclass(frozen=True, slots=True)
class FieldMessage:
    """What is wrong with one field: ``field`` is its dotted path (``items.0.qty``; empty for
    the input as a whole), ``en`` and ``ja`` say what it must be."""

    field: str
    en: str
    ja: str


def field_path(loc: Sequence[Any], drop: Sequence[str] = ()) -> str:
    """``loc`` as a dotted path, without a leading part named in ``drop`` (for a request,
    :data:`REQUEST_PARTS`: FastAPI puts ``body`` in front of every request-body field)."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in drop:
        parts = parts[1:]
    return ".".join(parts)


def _has_japanese(text: str) -> bool:
    return bool(_JAPANESE.search(text))


def _number(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _items(n: Any) -> str:
    return "1 item" if n == 1 else f"{_number(n)} items"


def _choices(expected: str) -> list[str]:
    """The alternatives in pydantic's ``expected`` text, without their quotes."""
    found = [m.group(1) for m in _EXPECTED.finditer(expected) if m.group(1)]
    return [c[1:-1] if len(c) > 1 and c[0] == c[-1] and c[0] in "'\"" else c for c in found]


def _one_of(ctx: Mapping[str, Any]) -> tuple[str, str]:
    expected = str(ctx.get("expected", ""))
    choices = _choices(expected)
    if not choices:
        return "is not one of the accepted values", "指定できない値です"
    quoted = "".join(f"「{c}」" for c in choices)
    if len(choices) == 1:
        return f"must be {expected}", f"{quoted}を指定してください"
    return f"must be one of {expected}", f"{quoted}のいずれかを指定してください"


def _value_error(ctx: Mapping[str, Any]) -> tuple[str, str]:
    error = ctx.get("error")
    if isinstance(error, InputValueError):
        return error.en, error.ja
    text = str(error or "").strip()
    if not text:
        return GENERIC_EN, GENERIC_JA
    if _has_japanese(text):  # a validator of ours that already speaks Japanese
        return GENERIC_EN, text
    return text, GENERIC_JA


def _min_text(n: Any) -> tuple[str, str]:
    if n == 1:
        return "must not be empty", "入力してください"
    return f"must have at least {_number(n)} characters", f"{_number(n)}文字以上で入力してください"


_Text = Callable[[Mapping[str, Any]], tuple[str, str]]
_WHOLE = ("must be a whole number", "整数で指定してください")
_NUMBER = ("must be a number", "数値で指定してください")
_BOOL = ("must be true or false", "true または false で指定してください")
_TEXT = ("must be text", "文字列で指定してください")
_LIST = ("must be a list", "リスト（配列）で指定してください")
_OBJECT = ("must be a JSON object", "JSONオブジェクトで指定してください")
_DATE = ("must be a real date (YYYY-MM-DD)", "正しい日付（YYYY-MM-DD）で指定してください")
_DATETIME = (
    "must be a real date and time (ISO 8601)",
    "正しい日時（ISO 8601形式）で指定してください",
)

_BY_TYPE: dict[str, _Text] = {
    "missing": lambda c: ("is required", "必須項目です"),
    "extra_forbidden": lambda c: ("is not an accepted field", "この項目は指定できません"),
    "string_too_short": lambda c: _min_text(c.get("min_length")),
    "string_too_long": lambda c: (
        f"must have at most {_number(c.get('max_length'))} characters",
        f"{_number(c.get('max_length'))}文字以内で入力してください",
    ),
    "string_pattern_mismatch": lambda c: ("is not in the expected format", GENERIC_JA),
    "string_type": lambda c: _TEXT,
    "literal_error": _one_of,
    "enum": _one_of,
    "int_parsing": lambda c: _WHOLE,
    "int_type": lambda c: _WHOLE,
    "int_from_float": lambda c: _WHOLE,
    "int_parsing_size": lambda c: ("is too large a number", "数値が大きすぎます"),
    "float_parsing": lambda c: _NUMBER,
    "float_type": lambda c: _NUMBER,
    "decimal_parsing": lambda c: _NUMBER,
    "decimal_type": lambda c: _NUMBER,
    "finite_number": lambda c: ("must be a finite number", "有限の数値で指定してください"),
    "greater_than": lambda c: (
        f"must be greater than {_number(c.get('gt'))}",
        f"{_number(c.get('gt'))}より大きい値を指定してください",
    ),
    "greater_than_equal": lambda c: (
        f"must be at least {_number(c.get('ge'))}",
        f"{_number(c.get('ge'))}以上の値を指定してください",
    ),
    "less_than": lambda c: (
        f"must be less than {_number(c.get('lt'))}",
        f"{_number(c.get('lt'))}未満の値を指定してください",
    ),
    "less_than_equal": lambda c: (
        f"must be at most {_number(c.get('le'))}",
        f"{_number(c.get('le'))}以下の値を指定してください",
    ),
    "multiple_of": lambda c: (
        f"must be a multiple of {_number(c.get('multiple_of'))}",
        f"{_number(c.get('multiple_of'))}の倍数で指定してください",
    ),
    "bool_parsing": lambda c: _BOOL,
    "bool_type": lambda c: _BOOL,
    "json_invalid": lambda c: ("is not valid JSON", "正しいJSONではありません"),
    "json_type": lambda c: ("must be JSON text", "JSONの文字列で指定してください"),
    "date_parsing": lambda c: _DATE,
    "date_type": lambda c: _DATE,
    "date_from_datetime_parsing": lambda c: _DATE,
    "date_from_datetime_inexact": lambda c: _DATE,
    "date_past": lambda c: ("must be in the past", "過去の日付を指定してください"),
    "date_future": lambda c: ("must be in the future", "未来の日付を指定してください"),
    "datetime_parsing": lambda c: _DATETIME,
    "datetime_type": lambda c: _DATETIME,
    "datetime_from_date_parsing": lambda c: _DATETIME,
    "datetime_object_invalid": lambda c: _DATETIME,
    "datetime_past": lambda c: ("must be in the past", "過去の日時を指定してください"),
    "datetime_future": lambda c: ("must be in the future", "未来の日時を指定してください"),
    "timezone_aware": lambda c: (
        "must include a time zone",
        "タイムゾーン付きの日時で指定してください",
    ),
    "timezone_naive": lambda c: (
        "must not include a time zone",
        "タイムゾーンなしの日時で指定してください",
    ),
    "time_parsing": lambda c: ("must be a time (HH:MM)", "正しい時刻（HH:MM）で指定してください"),
    "time_type": lambda c: ("must be a time (HH:MM)", "正しい時刻（HH:MM）で指定してください"),
    "list_type": lambda c: _LIST,
    "tuple_type": lambda c: _LIST,
    "set_type": lambda c: _LIST,
    "frozen_set_type": lambda c: _LIST,
    "too_short": lambda c: (
        f"must have at least {_items(c.get('min_length'))}",
        f"{_number(c.get('min_length'))}件以上指定してください",
    ),
    "too_long": lambda c: (
        f"must have at most {_items(c.get('max_length'))}",
        f"{_number(c.get('max_length'))}件以内で指定してください",
    ),
    "dict_type": lambda c: _OBJECT,
    "model_type": lambda c: _OBJECT,
    "model_attributes_type": lambda c: _OBJECT,
    "uuid_parsing": lambda c: ("must be a UUID", "UUIDの形式で指定してください"),
    "uuid_type": lambda c: ("must be a UUID", "UUIDの形式で指定してください"),
    "url_parsing": lambda c: ("must be a URL", "URLの形式で指定してください"),
    "url_type": lambda c: ("must be a URL", "URLの形式で指定してください"),
    "url_scheme": lambda c: ("has a scheme that is not allowed", "このURLの形式は使えません"),
    "value_error": _value_error,
    "assertion_error": _value_error,
}


def explain(error: Mapping[str, Any], drop: Sequence[str] = ()) -> FieldMessage:
    """One pydantic error (an item of ``ValidationError.errors()``) in both languages; the
    field's path leaves out a leading part named in ``drop`` (see :func:`field_path`)."""
    ctx = error.get("ctx") or {}
    kind = str(error.get("type", ""))
    text = _BY_TYPE.get(kind)
    if text is not None:
        en, ja = text(ctx)
    else:  # pydantic's own English is fine in English; Japanese gets a plain generic message
        en = str(error.get("msg") or GENERIC_EN)
        ja = GENERIC_JA
    return FieldMessage(field_path(error.get("loc", ()), drop), en, ja)


def explain_all(
    errors: Iterable[Mapping[str, Any]], drop: Sequence[str] = ()
) -> list[FieldMessage]:
    return [explain(e, drop) for e in errors]


def summary(messages: Sequence[FieldMessage], lang: str) -> str:
    """A one-line detail: ``The input is not valid: title: must not be empty; …`` or
    ``入力内容が正しくありません。title：入力してください。…``."""
    shown = messages[:SHOWN]
    more = len(messages) - len(shown)
    if lang == "ja":
        parts = [f"{m.field}：{m.ja}。" if m.field else f"{m.ja}。" for m in shown]
        tail = f"ほか{more}件。" if more else ""
        return f"{INVALID_JA}。" + "".join(parts) + tail
    items = [f"{m.field}: {m.en}" if m.field else m.en for m in shown]
    if more:
        items.append(f"and {more} more")
    return f"{INVALID_EN}: " + "; ".join(items) + "."
