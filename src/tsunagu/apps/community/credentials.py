"""Open Badges 3.0 credentials (W3C Verifiable Credentials data model v2), pure functions.

An :func:`open_badge` is an ``OpenBadgeCredential`` whose ``credentialSubject`` names the
recipient only by a salted hash (``IdentityObject`` with ``hashed: true``). :func:`sign` adds a
``DataIntegrityProof`` with the ``eddsa-jcs-2022`` cryptosuite (W3C vc-di-eddsa): the bytes
signed are ``SHA-256(JCS(proof config)) || SHA-256(JCS(document))``, where JCS is RFC 8785,
the canonical JSON the ledger already uses. The verification method is the organiser's key as
a ``did:key``. :func:`credential_hash` is what the ledger anchors: SHA-256 of the canonical
signed credential, so changing any field of it changes the hash.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tsunagu.ledger.canonical import canonical
from tsunagu.ledger.keys import SigningKey, verify_signature

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
CRYPTOSUITE = "eddsa-jcs-2022"
ACHIEVEMENT_TYPE = "CommunityService"  # OB 3.0 AchievementType enumeration
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ED25519_PUB = b"\xed\x01"  # multicodec prefix of an Ed25519 public key


class CredentialError(ValueError):
    """A credential that cannot even be checked (missing or malformed parts)."""


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rest = divmod(number, 58)
        out = _B58[rest] + out
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + out


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        index = _B58.find(char)
        if index < 0:
            raise CredentialError(f"not base58: {char!r}")
        number = number * 58 + index
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + body


def did_key(public_key: bytes) -> str:
    return "did:key:z" + b58encode(_ED25519_PUB + public_key)


def verification_method(public_key: bytes) -> str:
    did = did_key(public_key)
    return f"{did}#{did[len('did:key:') :]}"


def public_key_of(method: str) -> bytes:
    """The Ed25519 public key named by a ``did:key`` verification method."""
    if not isinstance(method, str) or not method.startswith("did:key:z"):
        raise CredentialError("the verification method is not a did:key")
    did, _, fragment = method.partition("#")
    encoded = did[len("did:key:") :]
    if fragment and fragment != encoded:
        raise CredentialError("the did:key fragment does not match the key")
    raw = b58decode(encoded[1:])
    if len(raw) != 34 or raw[:2] != _ED25519_PUB:
        raise CredentialError("the did:key is not an Ed25519 key")
    return raw[2:]


def identity_hash(identity: str, salt: str) -> str:
    """OB's ``identityHash``: ``sha256$`` and the hex SHA-256 of the identity and the salt."""
    return "sha256$" + hashlib.sha256((identity + salt).encode()).hexdigest()


def open_badge(
    *,
    credential_id: str,
    issuer_key: bytes,
    issuer_name: str,
    recipient: str,
    salt: str,
    valid_from: str,
    achievement_id: str,
    name: str,
    description: str,
    criteria: str,
    activity_start: str | None = None,
    activity_end: str | None = None,
) -> dict[str, Any]:
    """An unsigned ``OpenBadgeCredential`` (``recipient`` is hashed with ``salt``)."""
    subject: dict[str, Any] = {
        "type": ["AchievementSubject"],
        "identifier": [
            {
                "type": "IdentityObject",
                "identityType": "systemId",
                "hashed": True,
                "identityHash": identity_hash(recipient, salt),
                "salt": salt,
            }
        ],
        "achievement": {
            "id": achievement_id,
            "type": ["Achievement"],
            "achievementType": ACHIEVEMENT_TYPE,
            "name": name,
            "description": description,
            "criteria": {"narrative": criteria},
        },
    }
    if activity_start:
        subject["activityStartDate"] = activity_start
    if activity_end:
        subject["activityEndDate"] = activity_end
    return {
        "@context": [VC_CONTEXT, OB_CONTEXT],
        "id": credential_id,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": {"id": did_key(issuer_key), "type": ["Profile"], "name": issuer_name},
        "validFrom": valid_from,
        "name": name,
        "credentialSubject": subject,
    }


def _hash_data(document: dict[str, Any], proof_config: dict[str, Any]) -> bytes:
    config = {k: v for k, v in proof_config.items() if k != "proofValue"}
    config["@context"] = document["@context"]
    return hashlib.sha256(canonical(config)).digest() + hashlib.sha256(canonical(document)).digest()


def sign(document: dict[str, Any], key: SigningKey, created: str) -> dict[str, Any]:
    """The document with an ``eddsa-jcs-2022`` DataIntegrityProof by ``key``."""
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    proof = {
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "created": created,
        "verificationMethod": verification_method(key.public_key),
        "proofPurpose": "assertionMethod",
    }
    signature = key.sign(_hash_data(unsecured, proof))
    return {**unsecured, "proof": {**proof, "proofValue": "z" + b58encode(signature)}}


def signer_key(credential: dict[str, Any]) -> bytes:
    """The public key the credential's proof names (raises on a malformed proof)."""
    proof = credential.get("proof")
    if not isinstance(proof, dict):
        raise CredentialError("the credential has no proof")
    return public_key_of(proof.get("verificationMethod", ""))


def check_signature(credential: dict[str, Any]) -> bool:
    """Whether the ``eddsa-jcs-2022`` proof verifies against the key it names.

    Raises :class:`CredentialError` when the credential is not shaped like one at all.
    """
    if not isinstance(credential, dict) or "@context" not in credential:
        raise CredentialError("not a verifiable credential")
    proof = credential.get("proof")
    if not isinstance(proof, dict):
        raise CredentialError("the credential has no proof")
    if proof.get("type") != "DataIntegrityProof" or proof.get("cryptosuite") != CRYPTOSUITE:
        raise CredentialError(f"the proof is not a DataIntegrityProof with {CRYPTOSUITE}")
    if proof.get("proofPurpose") != "assertionMethod":
        return False
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("z"):
        return False
    try:
        signature = b58decode(value[1:])
    except CredentialError:
        return False
    public = public_key_of(proof.get("verificationMethod", ""))
    issuer = credential.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    if issuer_id != did_key(public):
        return False  # the key that signed is not the issuer's
    unsecured = {k: v for k, v in credential.items() if k != "proof"}
    return verify_signature(public, signature, _hash_data(unsecured, proof))


def credential_hash(credential: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(credential)).hexdigest()
