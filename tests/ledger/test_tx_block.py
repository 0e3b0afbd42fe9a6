"""Transactions (tx.py) and blocks (block.py): strict decoding, signatures, hashes, state hash.

Oracles are independent of the code under test where it matters: ``rfc8785`` + ``hashlib`` for
ids and hashes, ``cryptography`` for signatures, and the formula docs/protocol.md gives for the
state hash.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tsunagu.ledger.block import (
    COMMITTED,
    HEADER_FIELDS,
    ZERO_HASH,
    BlockHeader,
    TxResult,
    format_timestamp,
    next_state_hash,
    parse_timestamp,
    results_hash,
    sign_header,
    verify_header_signature,
)
from tsunagu.ledger.keys import SigningKey, key_id, verify_signature
from tsunagu.ledger.tx import (
    ENVELOPE_FIELDS,
    MAX_SEQ,
    MAX_TX_BYTES,
    BadSignature,
    MalformedTransaction,
    Transaction,
    build_tx,
    decode_leaf,
    decode_tx,
)

SETTINGS = settings(max_examples=60, deadline=None)
KEY = SigningKey.from_seed(bytes(range(32)))
OTHER = SigningKey.from_seed(bytes(range(1, 33)))
CHAIN = "tsunagu-tama-demo"
PAYLOAD = {"sha256": "ab" * 32, "title": "防災訓練のお知らせ", "category": "notice"}


def _tx(**changes: Any) -> Transaction:
    args: dict[str, Any] = {
        "chain_id": CHAIN,
        "app": "documents",
        "type": "register",
        "payload": PAYLOAD,
        "key": KEY,
        "seq": 1,
    }
    args.update(changes)
    return build_tx(**args)


def _envelope(**changes: Any) -> dict[str, Any]:
    envelope = _tx().to_json()
    envelope.update(changes)
    return envelope


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- decode_tx: the envelope's shape ---------------------------------------------------------


def test_a_built_transaction_decodes_to_itself() -> None:
    tx = _tx()
    again = decode_tx(json.loads(json.dumps(tx.to_json())))
    assert again == tx
    assert set(tx.to_json()) == ENVELOPE_FIELDS
    assert tx.leaf == rfc8785.dumps(tx.to_json())
    assert tx.id == _sha(tx.leaf)
    assert tx.signing_bytes() == rfc8785.dumps(
        {k: v for k, v in tx.to_json().items() if k != "signature"}
    )


@pytest.mark.parametrize("field", sorted(ENVELOPE_FIELDS))
def test_decode_rejects_a_missing_field(field: str) -> None:
    envelope = _envelope()
    del envelope[field]
    with pytest.raises(MalformedTransaction, match=field):
        decode_tx(envelope)


@pytest.mark.parametrize("extra", ["id", "Seq", "extra", "", "signature2"])
def test_decode_rejects_an_unknown_field(extra: str) -> None:
    with pytest.raises(MalformedTransaction, match="unknown fields"):
        decode_tx({**_envelope(), extra: 1})


@pytest.mark.parametrize("body", [None, [], "tx", 1, [["chain_id", CHAIN]]])
def test_decode_rejects_a_non_object(body: Any) -> None:
    with pytest.raises(MalformedTransaction):
        decode_tx(body)


BAD_VALUES: list[tuple[str, Any]] = [
    ("chain_id", ""),
    ("chain_id", "x" * 65),
    ("chain_id", 1),
    ("chain_id", None),
    ("app", "Documents"),
    ("app", "1app"),
    ("app", "doc-uments"),
    ("app", "a" * 33),
    ("app", ""),
    ("app", ["documents"]),
    ("type", "Register"),
    ("type", ".register"),
    ("type", "register!"),
    ("type", "r" * 65),
    ("type", 7),
    ("payload", []),
    ("payload", "{}"),
    ("payload", None),
    ("signer", KEY.key_id.upper()),
    ("signer", KEY.key_id[:-1]),
    ("signer", KEY.key_id + "0"),
    ("signer", "g" * 64),
    ("signer", 5),
    ("seq", True),
    ("seq", False),
    ("seq", 0),
    ("seq", -1),
    ("seq", MAX_SEQ + 1),
    ("seq", 1.0),
    ("seq", "1"),
    ("seq", None),
    ("signature", "A" * 128),
    ("signature", "0" * 127),
    ("signature", "0" * 129),
    ("signature", "z" * 128),
    ("signature", b"\x00" * 64),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_decode_rejects_a_bad_value(field: str, value: Any) -> None:
    with pytest.raises(MalformedTransaction, match=field):
        decode_tx(_envelope(**{field: value}))


def test_decode_rejects_uppercase_hex_even_when_the_key_matches() -> None:
    tx = _tx()
    with pytest.raises(MalformedTransaction):
        decode_tx(_envelope(signature=tx.signature.upper()))
    with pytest.raises(MalformedTransaction):
        decode_tx(_envelope(signer=tx.signer.upper()))


def test_decode_accepts_the_seq_bounds() -> None:
    assert decode_tx(_envelope(seq=1)).seq == 1
    assert decode_tx(_envelope(seq=MAX_SEQ)).seq == MAX_SEQ


@pytest.mark.parametrize(
    "payload",
    [
        {"n": float("nan")},
        {"n": float("inf")},
        {"n": 2**53},
        {"n": -(2**53)},
        {"s": "\ud800"},
        {"\udc00": 1},
    ],
)
def test_decode_rejects_a_payload_that_cannot_be_canonical(payload: dict[str, Any]) -> None:
    with pytest.raises(MalformedTransaction):
        decode_tx(_envelope(payload=payload))


@pytest.mark.parametrize(
    "payload",
    [{"n": 1.0}, {"n": 1e3}, {"n": 2.5}, {"list": [1, 2, 3.0]}, {"deep": {"er": [{"x": -0.0}]}}],
)
def test_decode_refuses_numbers_with_a_fraction_or_exponent(payload: dict[str, Any]) -> None:
    """RFC 8785 writes 1.0 as 1: the leaf would hold an integer where the envelope held a float,
    and a contract could answer the envelope differently from a replay of its leaf."""
    envelope = _envelope(payload=payload)
    assert b'"n":1}' in rfc8785.dumps({"n": 1.0})  # why: the float is gone from the leaf
    with pytest.raises(MalformedTransaction, match="whole") as caught:
        decode_tx(envelope)
    assert "整数" in caught.value.message_ja
    with pytest.raises(MalformedTransaction, match="whole"):
        build_tx(CHAIN, "documents", "register", payload, KEY, 1)


def test_a_stored_leaf_with_a_fraction_still_decodes() -> None:
    """Chains written before the rule keep verifying: a stored leaf is taken as it is."""
    body = _envelope(payload={"n": 2.5})
    body.pop("signature")
    body["signature"] = KEY.sign(rfc8785.dumps(body)).hex()
    tx = decode_leaf(rfc8785.dumps(body))
    assert tx.payload == {"n": 2.5} and tx.verify(KEY.public_key)


def _envelope_of_size(size: int) -> dict[str, Any]:
    envelope = _envelope(payload={"filler": ""})
    base = len(rfc8785.dumps(envelope))
    envelope["payload"] = {"filler": "x" * (size - base)}
    assert len(rfc8785.dumps(envelope)) == size
    return envelope


def test_the_size_limit_is_on_the_canonical_leaf() -> None:
    assert MAX_TX_BYTES == 64 * 1024
    assert len(decode_tx(_envelope_of_size(MAX_TX_BYTES)).leaf) == MAX_TX_BYTES
    with pytest.raises(MalformedTransaction, match="larger than"):
        decode_tx(_envelope_of_size(MAX_TX_BYTES + 1))
    # Multi-byte text counts in UTF-8 bytes, not characters.
    envelope = _envelope(payload={"filler": "防" * (MAX_TX_BYTES // 3)})
    with pytest.raises(MalformedTransaction, match="larger than"):
        decode_tx(envelope)


def test_malformed_errors_are_bilingual_400s() -> None:
    with pytest.raises(MalformedTransaction) as caught:
        decode_tx(_envelope(seq=True))
    error = caught.value
    assert error.status == 400
    assert error.code == "malformed_transaction"
    assert "seq" in error.message_en
    assert "seq" in error.message_ja and error.message_ja != error.message_en
    assert BadSignature.status == 400 and BadSignature.code == "bad_signature"


@SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(sorted(ENVELOPE_FIELDS)),
        st.none() | st.booleans() | st.integers() | st.text(max_size=3) | st.lists(st.none()),
    )
)
def test_decode_never_accepts_random_junk(body: dict[str, Any]) -> None:
    with pytest.raises(MalformedTransaction):
        decode_tx(body)


# --- decode_leaf ------------------------------------------------------------------------------


def test_decode_leaf_round_trips_and_insists_on_canonical_bytes() -> None:
    tx = _tx()
    assert decode_leaf(tx.leaf) == tx
    pretty = json.dumps(tx.to_json(), indent=1).encode()
    with pytest.raises(MalformedTransaction, match="canonical"):
        decode_leaf(pretty)
    reordered = json.dumps(tx.to_json(), separators=(",", ":"), ensure_ascii=False).encode()
    assert reordered != tx.leaf  # Python keeps insertion order; RFC 8785 sorts
    with pytest.raises(MalformedTransaction, match="canonical"):
        decode_leaf(reordered)


@SETTINGS
@given(
    payload=st.dictionaries(
        st.sampled_from(["signature", "signer", "type", "seq", "note", "署名"]),
        st.one_of(st.integers(-(2**53) + 1, 2**53 - 1), st.text(max_size=8), st.none()),
        max_size=4,
    ),
    seq=st.integers(min_value=1, max_value=MAX_SEQ),
)
def test_a_checked_leaf_parses_to_the_transaction_and_its_signed_bytes(
    payload: dict[str, Any], seq: int
) -> None:
    """from_checked_leaf cuts the signed bytes out of the leaf: they are what was signed,
    also when the payload has members named like the envelope's."""
    tx = build_tx(CHAIN, "documents", "register", payload, KEY, seq)
    parsed = Transaction.from_checked_leaf(tx.leaf)
    assert parsed == tx and parsed.id == tx.id
    assert parsed.signing_bytes() == rfc8785.dumps(tx.body())
    assert parsed.verify(KEY.public_key)
    moved = decode_tx({**tx.to_json(), "type": "withdraw"})  # register's signature
    assert not Transaction.from_checked_leaf(moved.leaf).verify(KEY.public_key)


# --- build_tx and signatures -----------------------------------------------------------------


def test_build_tx_signature_verifies_with_an_independent_ed25519() -> None:
    tx = _tx()
    assert tx.signer == KEY.key_id == _sha(KEY.public_key)
    assert key_id(KEY.public_key) == KEY.key_id
    Ed25519PublicKey.from_public_bytes(KEY.public_key).verify(
        bytes.fromhex(tx.signature), tx.signing_bytes()
    )
    assert tx.verify(KEY.public_key)
    assert not tx.verify(OTHER.public_key)


def test_ed25519_is_deterministic_and_the_fixed_key_is_known() -> None:
    assert KEY.public_key.hex() == (
        "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    )
    assert _tx().signature == _tx().signature
    assert _tx(seq=2).signature != _tx().signature


def test_verify_signature_refuses_wrong_lengths() -> None:
    tx = _tx()
    sig = bytes.fromhex(tx.signature)
    assert verify_signature(KEY.public_key, sig, tx.signing_bytes())
    assert not verify_signature(KEY.public_key, sig[:-1], tx.signing_bytes())
    assert not verify_signature(KEY.public_key[:-1], sig, tx.signing_bytes())
    assert not verify_signature(bytes(32), sig, tx.signing_bytes())


def _flip_char(text: str, position: int) -> str:
    """Change one character, keeping the value valid for its field where possible."""
    i = position % len(text)
    c = text[i]
    if c in "0123456789abcdef":
        new = "0123456789abcdef"[("0123456789abcdef".index(c) + 1) % 16]
    elif c.isalpha() and c.islower():
        new = "a" if c != "a" else "b"
    else:
        new = "z" if c != "z" else "y"
    return text[:i] + new + text[i + 1 :]


@SETTINGS
@given(
    field=st.sampled_from(["chain_id", "app", "type", "payload", "signer", "seq", "signature"]),
    position=st.integers(min_value=0, max_value=10_000),
)
def test_any_changed_field_fails_verification(field: str, position: int) -> None:
    tx = _tx(seq=12345)
    envelope = copy.deepcopy(tx.to_json())
    if field == "seq":
        envelope["seq"] = tx.seq + 1 + position
    elif field == "payload":
        key = sorted(PAYLOAD)[position % len(PAYLOAD)]
        envelope["payload"][key] = _flip_char(envelope["payload"][key], position // 3)
    else:
        envelope[field] = _flip_char(envelope[field], position)
    changed = decode_tx(envelope)
    assert changed.leaf != tx.leaf
    assert changed.id != tx.id
    assert not changed.verify(KEY.public_key)


@SETTINGS
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_changed_byte_of_the_signed_bytes_fails(position: int, bit: int) -> None:
    tx = _tx()
    message = bytearray(tx.signing_bytes())
    message[position % len(message)] ^= 1 << bit
    assert not verify_signature(KEY.public_key, bytes.fromhex(tx.signature), bytes(message))


@SETTINGS
@given(
    payload=st.dictionaries(
        st.text(max_size=8),
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
        | st.text(max_size=20),
        max_size=6,
    ),
    seq=st.integers(min_value=1, max_value=MAX_SEQ),
)
def test_built_transactions_round_trip_and_verify(payload: dict[str, Any], seq: int) -> None:
    tx = _tx(payload=payload, seq=seq)
    assert tx.verify(KEY.public_key)
    assert tx.id == _sha(rfc8785.dumps(tx.to_json()))
    assert decode_leaf(tx.leaf) == tx
    # Reordering the members on the wire changes nothing: the form is canonical.
    reversed_envelope = dict(reversed(list(tx.to_json().items())))
    assert decode_tx(reversed_envelope).id == tx.id


# --- Block headers ----------------------------------------------------------------------------


def _header(**changes: Any) -> BlockHeader:
    values: dict[str, Any] = {
        "chain_id": CHAIN,
        "height": 7,
        "prev_hash": _sha(b"prev"),
        "timestamp": "2025-04-01T00:00:00.000Z",
        "tx_count": 3,
        "results_hash": _sha(b"results"),
        "tree_size": 42,
        "tree_root": _sha(b"root"),
        "state_hash": _sha(b"state"),
        "proposer": "tama-node-1",
    }
    values.update(changes)
    return BlockHeader(**values)


def test_header_round_trips_and_hashes_its_canonical_json() -> None:
    header = _header()
    data = header.to_json()
    assert tuple(data) == HEADER_FIELDS
    assert BlockHeader.from_json(json.loads(json.dumps(data))) == header
    assert header.canonical() == rfc8785.dumps(data)
    assert header.hash == _sha(rfc8785.dumps(data))


@SETTINGS
@given(
    height=st.integers(min_value=0, max_value=2**40),
    tx_count=st.integers(min_value=0, max_value=10_000),
    tree_size=st.integers(min_value=0, max_value=2**40),
    hashes=st.lists(st.binary(min_size=32, max_size=32), min_size=4, max_size=4),
    proposer=st.text(min_size=1, max_size=30),
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
)
def test_any_header_round_trips(
    height: int,
    tx_count: int,
    tree_size: int,
    hashes: list[bytes],
    proposer: str,
    moment: datetime,
) -> None:
    header = _header(
        height=height,
        tx_count=tx_count,
        tree_size=tree_size,
        prev_hash=hashes[0].hex(),
        results_hash=hashes[1].hex(),
        tree_root=hashes[2].hex(),
        state_hash=hashes[3].hex(),
        proposer=proposer,
        timestamp=format_timestamp(moment),
    )
    assert BlockHeader.from_json(json.loads(header.canonical())) == header


@pytest.mark.parametrize(
    "changes",
    [
        {"height": -1},
        {"height": True},
        {"height": 1.0},
        {"height": "1"},
        {"tx_count": -1},
        {"tx_count": False},
        {"tree_size": None},
        {"prev_hash": "A" * 64},
        {"prev_hash": "0" * 63},
        {"results_hash": None},
        {"tree_root": _sha(b"root").upper()},
        {"state_hash": "g" * 64},
        {"timestamp": "2025-04-01T00:00:00Z"},
        {"timestamp": "2025-04-01T00:00:00.000+00:00"},
        {"timestamp": "2025-04-01 00:00:00.000Z"},
        {"timestamp": "2025-04-01T00:00:00.0000Z"},
    ],
)
def test_header_from_json_rejects_bad_values(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        BlockHeader.from_json({**_header().to_json(), **changes})


@pytest.mark.parametrize("field", HEADER_FIELDS)
def test_header_from_json_rejects_missing_and_extra_fields(field: str) -> None:
    data = _header().to_json()
    del data[field]
    with pytest.raises(ValueError, match="exactly the fields"):
        BlockHeader.from_json(data)
    with pytest.raises(ValueError, match="exactly the fields"):
        BlockHeader.from_json({**_header().to_json(), "signature": "00"})
    with pytest.raises(ValueError):
        BlockHeader.from_json([])  # type: ignore[arg-type]


def test_sign_and_verify_header() -> None:
    header = _header()
    signature = sign_header(header, KEY)
    assert verify_header_signature(header, signature, KEY.public_key)
    Ed25519PublicKey.from_public_bytes(KEY.public_key).verify(
        bytes.fromhex(signature), rfc8785.dumps(header.to_json())
    )
    assert not verify_header_signature(header, signature, OTHER.public_key)
    assert not verify_header_signature(header, signature.upper(), KEY.public_key)
    assert not verify_header_signature(header, signature[:-2], KEY.public_key)
    assert not verify_header_signature(header, "zz" * 64, KEY.public_key)


@SETTINGS
@given(field=st.sampled_from(HEADER_FIELDS), position=st.integers(min_value=0, max_value=1000))
def test_any_changed_header_field_fails_verification(field: str, position: int) -> None:
    header = _header()
    signature = sign_header(header, KEY)
    value = getattr(header, field)
    if isinstance(value, int):
        new: Any = value + 1 + position
    elif field == "timestamp":
        new = format_timestamp(parse_timestamp(value) + timedelta(milliseconds=1 + position))
    else:
        new = _flip_char(value, position)
    changed = _header(**{field: new})
    assert changed.hash != header.hash
    assert not verify_header_signature(changed, signature, KEY.public_key)


# --- Timestamps -------------------------------------------------------------------------------


def test_timestamps_are_utc_milliseconds_with_z() -> None:
    moment = datetime(2025, 4, 1, 9, 30, 0, 123456, tzinfo=timezone(timedelta(hours=9)))
    assert format_timestamp(moment) == "2025-04-01T00:30:00.123Z"
    assert parse_timestamp("2025-04-01T00:30:00.123Z") == datetime(
        2025, 4, 1, 0, 30, 0, 123000, tzinfo=UTC
    )
    for bad in ("2025-04-01T00:30:00.123", "2025-04-01T00:30:00.123z", "20250401T003000.123Z"):
        with pytest.raises(ValueError):
            parse_timestamp(bad)


@SETTINGS
@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1)))
def test_timestamp_round_trip(moment: datetime) -> None:
    moment = moment.replace(tzinfo=UTC, microsecond=moment.microsecond // 1000 * 1000)
    assert parse_timestamp(format_timestamp(moment)) == moment


# --- Results ----------------------------------------------------------------------------------


def test_results_json_and_hash() -> None:
    rejected = TxResult("rejected", "already_registered", "A document …")
    assert COMMITTED.to_json() == {"status": "committed"}
    assert rejected.to_json() == {
        "status": "rejected",
        "code": "already_registered",
        "reason": "A document …",
    }
    assert TxResult.from_json(rejected.to_json()) == rejected
    assert TxResult.from_json(COMMITTED.to_json()) == COMMITTED
    expected = _sha(rfc8785.dumps([{"status": "committed"}, rejected.to_json()]))
    assert results_hash([COMMITTED, rejected]) == expected
    assert results_hash([rejected, COMMITTED]) != expected
    assert results_hash([]) == _sha(b"[]")


# --- next_state_hash --------------------------------------------------------------------------

NS = st.sampled_from(["documents.doc", "identity.member", "ledger.seq", "eco.points"])
WRITE_VALUE = st.none() | st.dictionaries(
    st.text(max_size=5), st.integers(-1000, 1000) | st.text(max_size=5), max_size=3
).map(rfc8785.dumps)
WRITES = st.dictionaries(st.tuples(NS, st.text(max_size=8)), WRITE_VALUE, max_size=6).map(
    lambda d: sorted((ns, key, value) for (ns, key), value in d.items())
)
HASH = st.binary(min_size=32, max_size=32).map(bytes.hex)


def _documented_state_hash(prev: str, writes: list[tuple[str, str, bytes | None]]) -> str:
    """docs/protocol.md 4.4, written out with rfc8785 + hashlib."""
    array = [[ns, key, None if value is None else json.loads(value)] for ns, key, value in writes]
    delta = hashlib.sha256(rfc8785.dumps(array)).digest()
    return hashlib.sha256(bytes.fromhex(prev) + delta).hexdigest()


@SETTINGS
@given(prev=HASH, writes=WRITES)
def test_state_hash_follows_the_documented_formula(prev: str, writes: list) -> None:
    assert next_state_hash(prev, writes) == _documented_state_hash(prev, writes)


def test_state_hash_of_no_writes() -> None:
    expected = _sha(bytes(32) + hashlib.sha256(b"[]").digest())
    assert next_state_hash(ZERO_HASH, []) == expected


@SETTINGS
@given(prev=HASH, writes=WRITES.filter(bool), data=st.data())
def test_state_hash_depends_on_every_write(prev: str, writes: list, data: st.DataObject) -> None:
    base = next_state_hash(prev, writes)
    i = data.draw(st.integers(0, len(writes) - 1))
    ns, key, value = writes[i]
    variants = [
        (ns + "x", key, value),
        (ns, key + "x", value),
        (ns, key, None) if value is not None else (ns, key, b"{}"),
    ]
    if value is not None:
        variants.append((ns, key, rfc8785.dumps({"changed": value.decode()})))
    for variant in variants:
        changed = list(writes)
        changed[i] = variant
        assert next_state_hash(prev, changed) != base, variant
    assert next_state_hash(prev, writes[:i] + writes[i + 1 :]) != base  # a dropped write
    assert next_state_hash(prev, [*writes, ("zz", "extra", b"{}")]) != base  # an added one
    other = data.draw(HASH)
    assume(other != prev)
    assert next_state_hash(other, writes) != base  # and the chain before


@SETTINGS
@given(prev=HASH, writes=WRITES.filter(lambda w: len(w) >= 2), data=st.data())
def test_state_hash_depends_on_write_order(prev: str, writes: list, data: st.DataObject) -> None:
    i, j = data.draw(
        st.tuples(st.integers(0, len(writes) - 1), st.integers(0, len(writes) - 1)).filter(
            lambda ij: ij[0] != ij[1]
        )
    )
    swapped = list(writes)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    assert next_state_hash(prev, swapped) != next_state_hash(prev, writes)


def test_state_hash_chains() -> None:
    writes = [("ledger.seq", KEY.key_id, b'{"seq":1}')]
    first = next_state_hash(ZERO_HASH, writes)
    second = next_state_hash(first, writes)
    assert second != first
    assert second == _documented_state_hash(first, writes)


def test_payloads_nested_deeper_than_the_limit_are_refused() -> None:
    from tsunagu.ledger.tx import MAX_DEPTH, MalformedTransaction, decode_tx

    def nested(levels: int) -> dict:
        payload: dict = {}
        inner = payload
        for _ in range(levels - 1):
            inner["a"] = [{}]
            inner = inner["a"][0]
        return payload

    envelope = {
        "chain_id": "c",
        "app": "a",
        "type": "t",
        "signer": "0" * 64,
        "seq": 1,
        "signature": "0" * 128,
    }
    decode_tx({**envelope, "payload": nested(MAX_DEPTH // 2)})  # arrays count as levels too
    with pytest.raises(MalformedTransaction, match="nests deeper"):
        decode_tx({**envelope, "payload": nested(MAX_DEPTH)})
