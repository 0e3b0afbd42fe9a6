"""Ed25519 keys, key ids and signatures."""

from __future__ import annotations

import functools
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw
_RAW_PRIV = serialization.PrivateFormat.Raw
_NOENC = serialization.NoEncryption()


def key_id(public_key: bytes) -> str:
    """A key's id: lowercase hex SHA-256 of its 32 raw public key bytes."""
    return hashlib.sha256(public_key).hexdigest()


class SigningKey:
    """An Ed25519 private key with its public half and id."""

    __slots__ = ("_key", "key_id", "public_key")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._key = private
        self.public_key: bytes = private.public_key().public_bytes(_RAW, _RAW_PUB)
        self.key_id: str = key_id(self.public_key)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def seed(self) -> bytes:
        return self._key.private_bytes(_RAW, _RAW_PRIV, _NOENC)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


@functools.lru_cache(maxsize=65536)
def _public(public_key: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(public_key)


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``message``."""
    if len(signature) != 64 or len(public_key) != 32:
        return False
    try:
        _public(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
