"""The fast canonical encoder is byte-identical to the reference ``rfc8785.dumps`` (and raises
the same errors) on arbitrary JSON-like values, and ``decode_tx`` builds the same leaf and
signed bytes as encoding the whole envelope with ``rfc8785`` would.

The node encodes plain values with the C JSON encoder for speed and falls back to ``rfc8785``
for anything else (floats, big integers, non-string keys, subclasses, astral characters, lone
surrogates, deep nesting); these properties are what allow that. The reference is the
``rfc8785`` package itself, independent of the code under test.
"""

from __future__ import annotations

import enum

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsunagu.ledger.canonical import canonical
from tsunagu.ledger.tx import MAX_TX_BYTES, _check, _fail, decode_tx


class Colour(enum.IntEnum):
    RED = 1


class Name(str, enum.Enum):  # noqa: UP042 - a str subclass, on purpose
    A = "a"


# Characters that matter: ASCII, controls, escapes, BMP (incl. U+E000..U+FFFF, which sorts
# above surrogate pairs in UTF-16), astral characters and lone surrogates.
chars = st.one_of(
    st.characters(max_codepoint=0x7F),
    st.sampled_from(
        [
            '"',
            "\\",
            "\b",
            "\f",
            "\n",
            "\r",
            "\t",
            "\x00",
            "\x1f",
            "\x7f",
            "\u2028",
            "\u2029",
            "\ufeff",
            "\ue000",
            "\uffff",
            "\U0001f600",
            "\U00010000",
            "\ud800",
            "\udfff",
            "あ",
            "漢",
        ]
    ),
    st.characters(),
)
text = st.text(chars, max_size=12)
ints = st.one_of(
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.sampled_from([2**53 - 1, 2**53, -(2**53) + 1, -(2**53), 0, -1, 10**30]),
    st.integers(),
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1.0, 1e21, 1e-7])
)
scalars = st.one_of(
    st.none(), st.booleans(), ints, text, floats, st.just(Colour.RED), st.just(Name.A)
)
keys = st.one_of(text, text, text, st.integers(max_value=5, min_value=0), st.just(Name.A))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(keys, inner, max_size=5),
        st.dictionaries(text, inner, max_size=5),
    ),
    max_leaves=30,
)


def nested(depth: int):
    value: object = "x"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def reference(value):
    """What canonical() was before the fast path: one frame around rfc8785.dumps."""
    return rfc8785.dumps(value)


def _any_float(value) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_any_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_any_float(v) for v in value)
    return False


def reference_decode(body):
    """decode_tx by its definition: the envelope checked, a payload number with a fraction or
    exponent refused (RFC 8785 would write 1.0 as 1), the whole envelope through rfc8785."""
    _check(body)
    if _any_float(body["payload"]):
        raise _fail(
            "numbers must be whole (no fraction or exponent, not even 1.0)",
            "数値は整数で書いてください（小数や指数表記は使えません。1.0 も不可）",
        )
    try:
        leaf = reference(body)
    except Exception as exc:
        raise _fail(f"not canonicalizable ({exc})", "正規化できない値を含みます") from exc
    if len(leaf) > MAX_TX_BYTES:
        raise _fail(f"larger than {MAX_TX_BYTES} bytes", f"{MAX_TX_BYTES} バイトを超えています")
    return leaf


def decoded(body):
    tx = decode_tx(body)
    unsigned = {k: v for k, v in body.items() if k != "signature"}
    assert tx.signing_bytes() == reference(unsigned), body
    return tx.leaf


envelopes = st.fixed_dictionaries(
    {
        "chain_id": st.one_of(text.filter(lambda t: 1 <= len(t) <= 64), st.just("tsunagu-tama")),
        "app": st.sampled_from(["documents", "identity", "a", "x_1"]),
        "type": st.sampled_from(["register", "member.add", "z.9_"]),
        "payload": st.dictionaries(keys, values, max_size=5),
        "signer": st.just("ab" * 32),
        "seq": st.integers(min_value=1, max_value=2**53 - 1),
        "signature": st.just("cd" * 64),
    }
)


def outcome(fn, value):
    try:
        return ("ok", fn(value))
    except Exception as exc:  # the exact error is part of the behaviour
        return ("error", type(exc), str(exc))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_canonical_is_rfc8785_on_any_value(value) -> None:
    assert outcome(canonical, value) == outcome(reference, value)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes)
def test_decode_tx_leaf_and_signed_bytes_are_rfc8785_of_the_envelope(body) -> None:
    assert outcome(decoded, body) == outcome(reference_decode, body)


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [1, 2, {"d": None, "c": True}], "é": "\u00e9", "\ue000": 1, "\U0001f600": 2},
        {"chain_id": "x", "seq": 2**53 - 1, "payload": {}, "s": '\x00\x1f"\\/\u2028'},
        "identity.member",
        0,
        -(2**53) + 1,
        [],
        {},
        True,
        None,
        nested(63),
        nested(64),
        nested(65),
        nested(2000),
        {"a": nested(300)},
    ],
    ids=[
        "mixed keys",
        "escapes",
        "string",
        "zero",
        "smallest int",
        "empty list",
        "empty object",
        "true",
        "null",
        "nested 63",
        "nested 64",
        "nested 65",
        "nested 2000",
        "nested 300 inside",
    ],
)
def test_canonical_is_rfc8785_on_values_the_node_meets(value) -> None:
    assert outcome(canonical, value) == outcome(reference, value)


@pytest.mark.parametrize(
    "payload",
    [nested(60), nested(300), {"f": 1.5}, {"big": 2**60}, {"s": "\ud800"}, {"k": "x" * 70000}],
    ids=["nested 60", "nested 300", "float", "big int", "lone surrogate", "too large"],
)
def test_decode_tx_takes_the_reference_path_for_what_the_fast_path_refuses(payload) -> None:
    body = {
        "chain_id": "c",
        "app": "a",
        "type": "t",
        "payload": payload,
        "signer": "ab" * 32,
        "seq": 1,
        "signature": "cd" * 64,
    }
    assert outcome(decoded, body) == outcome(reference_decode, body)
