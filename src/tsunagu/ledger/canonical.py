"""Canonical bytes (RFC 8785 JSON Canonicalization Scheme) and SHA-256 helpers."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import rfc8785

_SAFE_INT = 2**53 - 1
# Values nested deeper than this take the reference path, so that the fast path never runs
# where Python's recursion limit could make it answer differently from the reference.
_MAX_FAST_DEPTH = 64
# The C JSON encoder escapes strings exactly as RFC 8785 does when it is told not to escape
# non-ASCII (the same set: '"', '\\' and U+0000..U+001F, with \b \f \n \r \t and lowercase
# \u00xx), and with sort_keys it orders object members by code point, which is RFC 8785's
# UTF-16 order for every key made of characters up to U+FFFF.
_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False, check_circular=False
).encode
_quote = json.encoder.encode_basestring  # the same escaper, for one string (C)
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _plain(value: Any, depth: int = 0) -> bool:
    """True when ``value`` is made only of what the fast path encodes exactly as RFC 8785:
    dicts with ``str`` keys, lists, tuples, ``str``, ``bool``, ``None`` and ``int`` within
    +-(2^53-1), nested at most ``_MAX_FAST_DEPTH`` deep. Exact types only: subclasses (enums
    and the like) take the reference path."""
    t = type(value)
    if t is dict:
        if depth >= _MAX_FAST_DEPTH:
            return False
        for key, item in value.items():
            if type(key) is not str:
                return False
            t = type(item)
            if t is str or t is bool or item is None:
                continue
            if t is int:
                if not -_SAFE_INT <= item <= _SAFE_INT:
                    return False
            elif not _plain(item, depth + 1):
                return False
        return True
    if t is list or t is tuple:
        if depth >= _MAX_FAST_DEPTH:
            return False
        for item in value:
            t = type(item)
            if t is str or t is bool or item is None:
                continue
            if t is int:
                if not -_SAFE_INT <= item <= _SAFE_INT:
                    return False
            elif not _plain(item, depth + 1):
                return False
        return True
    if t is str or t is bool or value is None:
        return True
    if t is int:
        return -_SAFE_INT <= value <= _SAFE_INT
    return False


def fast_canonical(value: Any) -> bytes | None:
    """``canonical(value)`` when the fast path can give it, else ``None`` (never raises): the
    caller then asks :func:`canonical`, which defers to the reference implementation."""
    try:
        if type(value) is str:
            text = _quote(value)
        elif _plain(value):
            text = _encode(value)
        else:
            return None
        if text.isascii():
            return text.encode("ascii")
        if not _ASTRAL.search(text):
            return text.encode("utf-8")  # raises on lone surrogates: the reference decides
    except Exception:
        pass
    return None


def canonical(value: Any) -> bytes:
    """The one byte string that is hashed or signed for ``value`` (RFC 8785).

    Plain JSON values are encoded by the C JSON encoder, whose output is byte-identical to
    RFC 8785 for them; anything else (floats, integers beyond 2^53-1, non-string keys, type
    subclasses, characters beyond U+FFFF, lone surrogates, deep nesting) goes to the reference
    implementation, which also raises exactly the errors it always raised.
    """
    fast = fast_canonical(value)
    return rfc8785.dumps(value) if fast is None else fast


def loads_json(raw: bytes | str) -> Any:
    """``json.loads(raw)``, minus the encoding detection for stored JSON objects.

    For bytes starting with ``{`` whose second byte is not NUL, ``json.loads`` detects UTF-8
    and decodes with ``surrogatepass``: doing just that gives the same value (or error)."""
    if raw[:1] == b"{" and raw[1:2] != b"\x00":
        return json.loads(raw.decode("utf-8", "surrogatepass"))  # type: ignore[union-attr]
    return json.loads(raw)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_LOWER_HEX = re.compile("[0-9a-f]*")


def is_hex(value: object, length: int) -> bool:
    """True when ``value`` is a lowercase hex string of exactly ``length`` characters."""
    if not isinstance(value, str) or len(value) != length:
        return False
    return _LOWER_HEX.fullmatch(value) is not None
