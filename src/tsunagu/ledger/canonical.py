"""Canonical bytes (RFC 8785 JSON Canonicalization Scheme) and SHA-256 helpers."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785


def canonical(value: Any) -> bytes:
    """The one byte string that is hashed or signed for ``value`` (RFC 8785)."""
    return rfc8785.dumps(value)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_hex(value: object, length: int) -> bool:
    """True when ``value`` is a lowercase hex string of exactly ``length`` characters."""
    if not isinstance(value, str) or len(value) != length:
        return False
    return all(c in "0123456789abcdef" for c in value)
