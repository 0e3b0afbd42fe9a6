"""Tests for the RFC 9162 Merkle tree module.

Oracles are independent of the module: the recursive definitions of MTH, PATH and PROOF from
RFC 9162 section 2.1, written here over hashlib directly, plus published test vectors.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tsunagu.ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Frontier,
    ProofError,
    append,
    consistency_proof,
    frontier_from_reader,
    inclusion_proof,
    leaf_hash,
    node_hash,
    range_root,
    root_at,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

SETTINGS = settings(max_examples=40, deadline=None)


# --- Independent reference, straight from RFC 9162 section 2.1 -------------------------------


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def spec_mth(hashes: list[bytes]) -> bytes:
    if not hashes:
        return _sha(b"")
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return _sha(b"\x01" + spec_mth(hashes[:k]) + spec_mth(hashes[k:]))


def spec_path(m: int, hashes: list[bytes]) -> list[bytes]:
    n = len(hashes)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*spec_path(m, hashes[:k]), spec_mth(hashes[k:])]
    return [*spec_path(m - k, hashes[k:]), spec_mth(hashes[:k])]


def spec_subproof(m: int, hashes: list[bytes], b: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if b else [spec_mth(hashes)]
    k = _split(n)
    if m <= k:
        return [*spec_subproof(m, hashes[:k], b), spec_mth(hashes[k:])]
    return [*spec_subproof(m - k, hashes[k:], False), spec_mth(hashes[:k])]


def path_shape(m: int, n: int) -> tuple[str, ...] | None:
    """Which side each PATH(m, D[n]) sibling sits on; None if m is not a leaf of D[n]."""
    if not 0 <= m < n:
        return None
    if n == 1:
        return ()
    k = _split(n)
    if m < k:
        return (*path_shape(m, k), "R")  # type: ignore[misc]
    return (*path_shape(m - k, n - k), "L")  # type: ignore[misc]


def consistency_shape(m: int, n: int, b: bool = True) -> tuple[str, ...] | None:
    """The role of each PROOF(m, D[n]) element; None if the sizes are not a valid pair."""
    if not 0 < m <= n:
        return None
    if m == n:
        return () if b else ("seed",)
    k = _split(n)
    if m <= k:
        return (*consistency_shape(m, k, b), "R")  # type: ignore[misc]
    return (*consistency_shape(m - k, n - k, False), "L")  # type: ignore[misc]


# --- A node store built by append() -----------------------------------------------------------

Reader = Callable[[int, int], bytes]


def build_store(
    hashes: list[bytes], chunk_sizes: list[int] | None = None
) -> tuple[Frontier, dict[tuple[int, int], bytes]]:
    frontier = Frontier.empty()
    store: dict[tuple[int, int], bytes] = {}
    pos = 0
    chunks = list(chunk_sizes or [])
    while pos < len(hashes):
        size = chunks.pop(0) if chunks else len(hashes) - pos
        frontier, nodes = append(frontier, hashes[pos : pos + size])
        for level, index, h in nodes:
            assert (level, index) not in store, "a node was reported twice"
            store[(level, index)] = h
        pos += size
    return frontier, store


def reader(store: dict[tuple[int, int], bytes], size: int, reads: list | None = None) -> Reader:
    """A node reader that enforces the contract: only perfect subtrees inside the tree."""

    def get(level: int, index: int) -> bytes:
        assert level >= 0 and index >= 0, (level, index)
        assert (index + 1) << level <= size, f"read ({level}, {index}) outside tree of {size}"
        if reads is not None:
            reads.append((level, index))
        return store[(level, index)]

    return get


MAX_LEAVES = 300
_rng = random.Random(9162)
LEAVES = [_rng.randbytes(_rng.randrange(0, 40)) for _ in range(MAX_LEAVES)]
HASHES = [leaf_hash(x) for x in LEAVES]
FRONTIER, STORE = build_store(HASHES, [1, 2, 3, 5, 8, 13, 21, 34, 55, 89])

sizes = st.integers(min_value=1, max_value=MAX_LEAVES)


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(sizes)
    return size, draw(st.integers(min_value=0, max_value=size - 1))


@st.composite
def size_pair(draw: st.DrawFn) -> tuple[int, int]:
    second = draw(sizes)
    return draw(st.integers(min_value=1, max_value=second)), second


# Every bit of every element is flipped for the published vectors; the property tests flip a
# spread (stride 7: every byte, every bit position within a byte) to stay fast.
SPREAD_BITS = range(0, HASH_SIZE * 8, 7)


def flipped(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    element = bytearray(proof[i])
    element[bit // 8] ^= 1 << (bit % 8)
    return [*proof[:i], bytes(element), *proof[i + 1 :]]


# --- Published vectors ------------------------------------------------------------------------
# From transparency-dev/merkle (Google's Certificate Transparency reference data):
# testonly/constants.go (LeafInputs, NodeHashes, RootHashes, CompactTrees) and
# proof/verify_test.go (inclusionProofs, consistencyProofs; leaf numbers there are 1-based,
# converted to 0-based indices here).

CT_LEAVES = [
    bytes.fromhex(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    bytes.fromhex(x)
    for x in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
CT_NODES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]
# CompactTrees: the frontier after each size, as (level, index) into CT_NODES.
CT_FRONTIERS = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]
CT_INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (0, 1, []),
]
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


def _ct_store() -> dict[tuple[int, int], bytes]:
    return build_store([leaf_hash(x) for x in CT_LEAVES], [3, 1, 4])[1]


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT == CT_ROOTS[0] == hashlib.sha256(b"").digest()
    assert HASH_SIZE == 32
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert Frontier.empty().root() == EMPTY_ROOT
    assert root_at(0, reader({}, 0)) == EMPTY_ROOT


def test_known_leaf_and_node_hashes() -> None:
    store = _ct_store()
    expected = {
        (level, index): bytes.fromhex(h)
        for level, row in enumerate(CT_NODES)
        for index, h in enumerate(row)
    }
    assert store == expected
    assert [leaf_hash(x) for x in CT_LEAVES] == [expected[(0, i)] for i in range(8)]
    assert node_hash(expected[(0, 0)], expected[(0, 1)]) == expected[(1, 0)]


@pytest.mark.parametrize("size", range(9))
def test_known_roots_and_frontiers(size: int) -> None:
    store = _ct_store()
    hashes = [leaf_hash(x) for x in CT_LEAVES[:size]]
    assert root_from_leaf_hashes(hashes) == CT_ROOTS[size]
    assert root_at(size, reader(store, size)) == CT_ROOTS[size]
    frontier, _ = append(Frontier.empty(), hashes)
    want = tuple(bytes.fromhex(CT_NODES[lv][ix]) for lv, ix in CT_FRONTIERS[size])
    assert frontier == Frontier(size, want)
    assert frontier.root() == CT_ROOTS[size]
    assert frontier_from_reader(size, reader(store, size)) == frontier


@pytest.mark.parametrize(("index", "size", "proof_hex"), CT_INCLUSION)
def test_known_inclusion_proofs(index: int, size: int, proof_hex: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in proof_hex]
    assert inclusion_proof(index, size, reader(_ct_store(), size)) == proof
    leaf = leaf_hash(CT_LEAVES[index])
    verify_inclusion(leaf, index, size, proof, CT_ROOTS[size])
    for i in range(len(proof)):
        for bit in range(HASH_SIZE * 8):
            with pytest.raises(ProofError):
                verify_inclusion(leaf, index, size, flipped(proof, i, bit), CT_ROOTS[size])


@pytest.mark.parametrize(("first", "second", "proof_hex"), CT_CONSISTENCY)
def test_known_consistency_proofs(first: int, second: int, proof_hex: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in proof_hex]
    assert consistency_proof(first, second, reader(_ct_store(), second)) == proof
    verify_consistency(first, second, CT_ROOTS[first], CT_ROOTS[second], proof)
    for i in range(len(proof)):
        for bit in range(HASH_SIZE * 8):
            with pytest.raises(ProofError):
                verify_consistency(
                    first, second, CT_ROOTS[first], CT_ROOTS[second], flipped(proof, i, bit)
                )


# --- Roots and storage ------------------------------------------------------------------------


@SETTINGS
@given(st.lists(st.binary(max_size=20), max_size=70))
def test_root_from_leaf_hashes_matches_rfc_definition(leaves: list[bytes]) -> None:
    hashes = [_sha(b"\x00" + x) for x in leaves]
    assert [leaf_hash(x) for x in leaves] == hashes
    assert root_from_leaf_hashes(hashes) == spec_mth(hashes)


@SETTINGS
@given(sizes)
@example(MAX_LEAVES)
def test_root_at_matches_reference_on_prefix(size: int) -> None:
    reads: list = []
    root = root_at(size, reader(STORE, size, reads))
    assert root == root_from_leaf_hashes(HASHES[:size]) == spec_mth(HASHES[:size])
    assert len(reads) == size.bit_count()


def test_append_reports_exactly_the_perfect_subtrees() -> None:
    expected = {
        (level, index)
        for level in range(MAX_LEAVES.bit_length())
        for index in range(MAX_LEAVES >> level)
    }
    assert set(STORE) == expected
    for (level, index), h in STORE.items():
        assert h == spec_mth(HASHES[index << level : (index + 1) << level])
    assert FRONTIER.size == MAX_LEAVES
    assert FRONTIER.root() == spec_mth(HASHES)


@SETTINGS
@given(
    st.integers(min_value=0, max_value=MAX_LEAVES),
    st.lists(st.integers(min_value=0, max_value=40), max_size=30),
)
def test_chunked_append_equals_single_append(n: int, chunk_sizes: list[int]) -> None:
    one_frontier, one_nodes = append(Frontier.empty(), HASHES[:n])
    frontier, nodes, pos = Frontier.empty(), [], 0
    for size in [*chunk_sizes, n]:  # the last chunk takes whatever is left
        size = min(size, n - pos)
        frontier, new = append(frontier, HASHES[pos : pos + size])
        nodes += new
        pos += size
    assert pos == n
    assert frontier == one_frontier
    assert nodes == one_nodes
    assert frontier.root() == spec_mth(HASHES[:n])


@SETTINGS
@given(st.integers(min_value=0, max_value=MAX_LEAVES))
def test_frontier_from_reader_reproduces_frontier(size: int) -> None:
    frontier, _ = append(Frontier.empty(), HASHES[:size])
    rebuilt = frontier_from_reader(size, reader(STORE, size))
    assert rebuilt == frontier
    # ...and can be appended to as if it had never been stored.
    more, _ = append(rebuilt, HASHES[size:])
    assert more == FRONTIER


@SETTINGS
@given(st.data())
def test_range_root_of_aligned_ranges(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=0, max_value=MAX_LEAVES))
    align = 1 << max(n.bit_length() - 1, 0)
    start = data.draw(st.integers(min_value=0, max_value=(MAX_LEAVES - n) // align)) * align
    got = range_root(start, start + n, reader(STORE, start + n))
    assert got == spec_mth(HASHES[start : start + n])


def test_range_root_rejects_misaligned_and_reversed_ranges() -> None:
    with pytest.raises(ValueError, match="not a multiple"):
        range_root(2, 7, reader(STORE, 7))
    with pytest.raises(ValueError):
        range_root(5, 4, reader(STORE, 5))
    with pytest.raises(ValueError):
        range_root(-1, 4, reader(STORE, 5))


# --- Inclusion proofs -------------------------------------------------------------------------


@SETTINGS
@given(size_and_index())
@example((1, 0))
@example((MAX_LEAVES, 0))
@example((MAX_LEAVES, MAX_LEAVES - 1))
@example((2**8, 2**7))
def test_inclusion_proofs_verify_and_resist_every_alteration(case: tuple[int, int]) -> None:
    size, index = case
    reads: list = []
    proof = inclusion_proof(index, size, reader(STORE, size, reads))
    assert proof == spec_path(index, HASHES[:size])
    assert len(reads) <= 2 * size.bit_length()
    root = root_at(size, reader(STORE, size))
    leaf = HASHES[index]
    verify_inclusion(leaf, index, size, proof, root)

    def rejected(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> None:
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, proof, root)

    for i in range(len(proof)):
        for bit in SPREAD_BITS:
            rejected(leaf, index, size, flipped(proof, i, bit), root)
        rejected(leaf, index, size, proof[:i] + proof[i + 1 :], root)
    for i in range(len(proof) + 1):
        for extra in (root, leaf, EMPTY_ROOT, bytes(HASH_SIZE)):
            rejected(leaf, index, size, [*proof[:i], extra, *proof[i:]], root)
    for other in range(size + 2):
        if other != index:
            rejected(leaf, other, size, proof, root)
    rejected(leaf, -1, size, proof, root)
    for other in (*range(max(size - 3, 0), 2 * size + 2), 0, -1):
        if other == size:
            continue
        # A proof only fixes which side each sibling is on, so sizes that give the same shape
        # are indistinguishable (RFC 9162 binds the size through the signed tree head). All
        # others, including 2n and n/2, must fail.
        if path_shape(index, other) == path_shape(index, size):
            verify_inclusion(leaf, index, other, proof, root)
        else:
            rejected(leaf, index, other, proof, root)
    rejected(leaf, index, size * 2, proof, root)
    if index < size // 2:
        rejected(leaf, index, size // 2, proof, root)
    for wrong_leaf in (HASHES[(index + 1) % MAX_LEAVES], leaf_hash(LEAVES[index] + b"x"), root):
        if wrong_leaf != leaf:
            rejected(wrong_leaf, index, size, proof, root)
    rejected(leaf, index, size, proof, EMPTY_ROOT)
    neighbour = size + 1 if size < MAX_LEAVES else size - 1
    rejected(leaf, index, size, proof, root_at(neighbour, reader(STORE, neighbour)))
    rejected(leaf, index, size, proof, flipped([root], 0, 255)[0])


def test_inclusion_proof_size_ambiguity_is_inherent() -> None:
    # Leaf 4's siblings in trees of 7 and 8 leaves sit on the same sides, so one proof (against
    # the 7-leaf root) verifies under both sizes; only a signed (size, root) pair settles it.
    proof = inclusion_proof(4, 7, reader(STORE, 7))
    root = root_at(7, reader(STORE, 7))
    verify_inclusion(HASHES[4], 4, 7, proof, root)
    verify_inclusion(HASHES[4], 4, 8, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(HASHES[4], 4, 8, proof, root_at(8, reader(STORE, 8)))


def test_inclusion_proof_rejects_index_outside_tree() -> None:
    for index, size in [(0, 0), (3, 3), (4, 3), (-1, 3)]:
        with pytest.raises(ValueError):
            inclusion_proof(index, size, reader(STORE, max(size, 0)))


def test_verify_inclusion_rejects_malformed_input() -> None:
    proof = inclusion_proof(5, 13, reader(STORE, 13))
    root = root_at(13, reader(STORE, 13))
    leaf = HASHES[5]
    verify_inclusion(leaf, 5, 13, proof, root)
    cases = [
        (leaf[:-1], 5, 13, proof, root, "leaf hash"),
        (leaf + b"\x00", 5, 13, proof, root, "leaf hash"),
        (leaf, 5, 13, proof, root[:31], "root"),
        (leaf, 5, 13, proof, b"", "root"),
        (leaf, 5, 13, [*proof[:-1], proof[-1] + b"\x00"], root, "element 3"),
        (leaf, 5, 13, [*proof[:-1], b""], root, "element 3"),
        (leaf, 5, 13, [*proof, b""], root, "expected 4"),
        (leaf, 5, 13, proof[:-1], root, "expected 4"),
        (leaf, 5, 13, [], root, "expected 4"),
        (leaf, 5, 0, proof, root, "not in a tree"),
        (leaf, 13, 13, proof, root, "not in a tree"),
        (leaf, -1, 13, proof, root, "not in a tree"),
        ("x" * 32, 5, 13, proof, root, "leaf hash"),
    ]
    for bad_leaf, index, size, bad_proof, bad_root, message in cases:
        with pytest.raises(ProofError, match=message):
            verify_inclusion(bad_leaf, index, size, bad_proof, bad_root)  # type: ignore[arg-type]
    # A one-leaf tree: the leaf hash is the root and the proof is empty.
    verify_inclusion(leaf, 0, 1, [], leaf)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, 0, 1, [], root)
    assert issubclass(ProofError, ValueError)


# --- Consistency proofs -----------------------------------------------------------------------


@SETTINGS
@given(size_pair())
@example((1, 1))
@example((1, MAX_LEAVES))
@example((MAX_LEAVES - 1, MAX_LEAVES))
@example((MAX_LEAVES, MAX_LEAVES))
@example((2**7, 2**8))
def test_consistency_proofs_verify_and_resist_every_alteration(case: tuple[int, int]) -> None:
    first, second = case
    reads: list = []
    proof = consistency_proof(first, second, reader(STORE, second, reads))
    if first == second:
        assert proof == []
    else:
        assert proof == spec_subproof(first, HASHES[:second], True)
    assert len(reads) <= 2 * second.bit_length()
    r1 = root_at(first, reader(STORE, first))
    r2 = root_at(second, reader(STORE, second))
    verify_consistency(first, second, r1, r2, proof)

    def rejected(first: int, second: int, r1: bytes, r2: bytes, proof: list[bytes]) -> None:
        with pytest.raises(ProofError):
            verify_consistency(first, second, r1, r2, proof)

    for i in range(len(proof)):
        for bit in SPREAD_BITS:
            rejected(first, second, r1, r2, flipped(proof, i, bit))
        rejected(first, second, r1, r2, proof[:i] + proof[i + 1 :])
    for i in range(len(proof) + 1):
        for extra in (r1, r2, EMPTY_ROOT, bytes(HASH_SIZE)):
            rejected(first, second, r1, r2, [*proof[:i], extra, *proof[i:]])
    want = consistency_shape(first, second)
    # As with inclusion, sizes whose proofs have the same shape cannot be told apart by the
    # proof itself; every other wrong size must fail.
    for other in (*range(0, second + 2), 2 * second, -1):
        if other == first:
            continue
        if consistency_shape(other, second) == want:
            verify_consistency(other, second, r1, r2, proof)
        else:
            rejected(other, second, r1, r2, proof)
    for other in (*range(max(first - 1, 0), 2 * second + 2), -1):
        if other == second:
            continue
        if consistency_shape(first, other) == want:
            verify_consistency(first, other, r1, r2, proof)
        else:
            rejected(first, other, r1, r2, proof)
    rejected(first, second * 2, r1, r2, proof)
    if first <= second // 2:
        rejected(first, second // 2, r1, r2, proof)
    if r1 != r2:
        rejected(first, second, r2, r1, proof)
    rejected(first, second, EMPTY_ROOT, r2, proof)
    rejected(first, second, r1, EMPTY_ROOT, proof)
    rejected(first, second, flipped([r1], 0, 7)[0], r2, proof)
    rejected(first, second, r1, flipped([r2], 0, 7)[0], proof)
    if first > 1:
        rejected(first, second, root_at(first - 1, reader(STORE, first - 1)), r2, proof)


def test_consistency_proof_argument_errors() -> None:
    get = reader(STORE, 10)
    assert consistency_proof(10, 10, get) == []
    with pytest.raises(ValueError, match="first > 0"):
        consistency_proof(0, 10, get)
    with pytest.raises(ValueError, match="larger"):
        consistency_proof(10, 9, get)
    with pytest.raises(ValueError):
        consistency_proof(-1, 10, get)


def test_verify_consistency_edge_cases() -> None:
    r5 = root_at(5, reader(STORE, 5))
    r9 = root_at(9, reader(STORE, 9))
    proof = consistency_proof(5, 9, reader(STORE, 9))
    verify_consistency(5, 5, r5, r5, [])
    cases = [
        (5, 5, r5, r9, [], "roots differ"),
        (5, 5, r5, r5, [r5], "must be empty"),
        (0, 9, EMPTY_ROOT, r9, [], "first > 0"),
        (9, 5, r9, r5, proof, "larger"),
        (5, 9, r5, r9, [], "expected"),
        (5, 9, r5, r9, [*proof, r9], "expected"),
        (5, 9, r5[:16], r9, proof, "first root"),
        (5, 9, r5, r9 + b"\x00", proof, "second root"),
        (5, 9, r5, r9, [proof[0][:31], *proof[1:]], "element 0"),
        (5, 9, r9, r9, proof, "root of size 5"),
        (5, 9, r5, r5, proof, "root of size 9"),
    ]
    for first, second, a, b, bad_proof, message in cases:
        with pytest.raises(ProofError, match=message):
            verify_consistency(first, second, a, b, bad_proof)


# --- Frontier ---------------------------------------------------------------------------------


def test_frontier_validates_its_shape() -> None:
    with pytest.raises(ValueError):
        Frontier(3, (HASHES[0],))
    with pytest.raises(ValueError):
        Frontier(1, (b"short",))
    with pytest.raises(ValueError):
        Frontier(-1, ())
    with pytest.raises(ValueError):
        append(Frontier.empty(), [HASHES[0], b"short"])
    with pytest.raises(ValueError):
        root_from_leaf_hashes([HASHES[0], HASHES[1][:-1]])
    frontier, nodes = append(FRONTIER, [])
    assert frontier == FRONTIER and nodes == []
