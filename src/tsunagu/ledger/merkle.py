"""RFC 9162 (Certificate Transparency v2) Merkle trees over SHA-256.

Pure functions over ``bytes``: nothing here does I/O. Hashes of the tree's stored nodes come from a
*node reader*, ``get(level, index)``, which returns the hash of the perfect subtree of
``2**level`` leaves covering leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0 holds
the leaf hashes. A store that keeps every perfect subtree node (which :func:`append` reports) can
answer every read made here, because only perfect subtrees lying wholly inside the tree are read.

Hashing (RFC 9162 section 2.1.1)::

    leaf hash  = SHA-256(0x00 || leaf)
    node hash  = SHA-256(0x01 || left || right)
    empty root = SHA-256("")

The tree of ``n`` leaves splits at the largest power of two strictly smaller than ``n``. Such a
tree is exactly the perfect subtrees named by the set bits of ``n``, largest (leftmost) first,
folded together from the right; every root computation below relies on that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from hashlib import sha256 as _sha256

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "NodeReader",
    "ProofError",
    "append",
    "consistency_proof",
    "frontier_from_reader",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "range_root",
    "root_at",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT: bytes = _sha256(b"").digest()

NodeReader = Callable[[int, int], bytes]
"""``get(level, index)``: hash of the perfect subtree of ``2**level`` leaves starting at leaf
``index * 2**level``."""

# The node prefix is inlined as this literal in the hot loops below, rather than calling
# node_hash(), because a Python-level call costs about as much as the SHA-256 of 65 bytes.
_NODE = b"\x01"
_LEAF = b"\x00"


class ProofError(ValueError):
    """A proof, or the hashes and sizes given with it, failed verification."""


def leaf_hash(leaf: bytes) -> bytes:
    """Return the RFC 9162 hash of one leaf: ``SHA-256(0x00 || leaf)``."""
    return _sha256(_LEAF + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 hash of an interior node: ``SHA-256(0x01 || left || right)``."""
    return _sha256(_NODE + left + right).digest()


def _check_hashes(hashes: Sequence[bytes], what: str) -> None:
    # map/set run in C, so validating a 500-leaf block costs a few microseconds; a wrong-length
    # hash would otherwise silently produce a well-formed but meaningless root.
    bad = set(map(len, hashes)) - {HASH_SIZE}
    if bad:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes each; got lengths {sorted(bad)}")


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash (RFC 9162 section 2.1.1) of the given leaf hashes.

    O(n) hashing; needs no stored nodes. Used for blocks and as the reference the
    storage-backed functions are checked against.

    Raises:
        ValueError: if any leaf hash is not ``HASH_SIZE`` bytes.
    """
    _check_hashes(leaf_hashes, "leaf hashes")
    if not leaf_hashes:
        return EMPTY_ROOT
    sha = _sha256
    level = list(leaf_hashes)
    # Pairing neighbours level by level and carrying an odd last node up unchanged builds exactly
    # the RFC tree (split at the largest power of two below n), with no recursion or slicing.
    while len(level) > 1:
        nxt = [sha(_NODE + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def range_root(start: int, end: int, get: NodeReader) -> bytes:
    """Return the Merkle Tree Hash of leaves ``[start, end)`` from O(log n) stored nodes.

    ``start`` must be a multiple of the largest power of two not exceeding ``end - start``, as it
    is for every subtree in the RFC 9162 recursion (and always for ``start == 0``); otherwise the
    range does not decompose into stored perfect subtrees. An empty range gives ``EMPTY_ROOT``.

    Raises:
        ValueError: if the range is negative, reversed, or ``start`` is not aligned.
    """
    if start < 0 or end < start:
        raise ValueError(f"invalid leaf range [{start}, {end})")
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    top = n.bit_length() - 1
    if start & ((1 << top) - 1):
        raise ValueError(
            f"range start {start} is not a multiple of {1 << top}, so [{start}, {end}) is not "
            "made of stored perfect subtrees"
        )
    if n == 1 << top:
        return get(top, start >> top)
    # One perfect subtree per set bit of n, left to right; each starts aligned to its own size
    # because all the (larger) subtrees before it are multiples of that size.
    hashes = []
    pos = start
    for level in range(top, -1, -1):
        if n >> level & 1:
            hashes.append(get(level, pos >> level))
            pos += 1 << level
    sha = _sha256
    root = hashes.pop()
    while hashes:
        root = sha(_NODE + hashes.pop() + root).digest()
    return root


def root_at(size: int, get: NodeReader) -> bytes:
    """Return the root of the tree made of the first ``size`` leaves (O(log n) reads).

    Raises:
        ValueError: if ``size`` is negative.
    """
    return range_root(0, size, get)


def inclusion_proof(index: int, size: int, get: NodeReader) -> list[bytes]:
    """Return the RFC 9162 inclusion proof ``PATH(index, D[size])`` (section 2.1.3.1).

    Hashes are ordered from the leaf's sibling up to the child of the root. O(log n) reads.

    Raises:
        ValueError: unless ``0 <= index < size``.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    upper: list[bytes] = []
    start, end = 0, size
    # Descend while the current subtree is not perfect. Going left always lands in a perfect
    # subtree and ends this loop, so at most one sibling needs a multi-read range_root(): the
    # whole walk stays O(log n) reads.
    n = end - start
    while n & (n - 1):
        k = 1 << ((n - 1).bit_length() - 1)
        mid = start + k
        if index < mid:
            upper.append(range_root(mid, end, get))
            end = mid
        else:
            level = k.bit_length() - 1
            upper.append(get(level, start >> level))
            start = mid
        n = end - start
    # Inside a perfect subtree the siblings are stored nodes addressed by the index bits.
    proof = [get(level, (index >> level) ^ 1) for level in range(n.bit_length() - 1)]
    upper.reverse()
    proof.extend(upper)
    return proof


def consistency_proof(first: int, second: int, get: NodeReader) -> list[bytes]:
    """Return the RFC 9162 consistency proof ``PROOF(first, D[second])`` (section 2.1.4.1).

    ``first == second`` gives ``[]`` (a tree is trivially consistent with itself). A proof from
    the empty tree is deliberately refused rather than returned as ``[]``: it would prove nothing,
    and a caller asking for it almost certainly has a bug. O(log n) reads.

    Raises:
        ValueError: unless ``0 < first <= second``.
    """
    if first <= 0:
        raise ValueError(f"consistency proofs need first > 0, got {first}")
    if first > second:
        raise ValueError(f"first size {first} is larger than second size {second}")
    if first == second:
        return []
    # Iterative SUBPROOF(m, D[start:end], b); each step's hash goes *after* the deeper ones, so
    # collect top-down and reverse once.
    proof: list[bytes] = []
    start, end = 0, second
    complete = True  # the RFC's flag b: is [start, first) still the whole old tree?
    while first != end:
        n = end - start
        k = 1 << ((n - 1).bit_length() - 1)
        mid = start + k
        if first <= mid:
            proof.append(range_root(mid, end, get))
            end = mid
        else:
            level = k.bit_length() - 1
            proof.append(get(level, start >> level))
            start = mid
            complete = False
    if not complete:
        # The old tree's last perfect subtree; the verifier cannot derive it from first_root.
        proof.append(range_root(start, end, get))
    proof.reverse()
    return proof


def _inclusion_proof_length(index: int, size: int) -> int:
    # Levels where the paths to index and to the last leaf still differ contribute one sibling
    # each; above that, the path follows the right edge and takes a left sibling per set bit.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


_BYTES_LIKE = (bytes, bytearray, memoryview)


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, _BYTES_LIKE) or len(value) != HASH_SIZE:
        raise ProofError(f"{what} is not a {HASH_SIZE}-byte hash")


def _check_proof(proof: Sequence[bytes], expected: int, what: str) -> None:
    if len(proof) != expected:
        raise ProofError(f"{what} has {len(proof)} hashes; expected {expected}")
    # Checked in one pass without building per-element messages: verification is on the hot path
    # and proofs are almost always well formed.
    for i, p in enumerate(proof):
        if not isinstance(p, _BYTES_LIKE) or len(p) != HASH_SIZE:
            raise ProofError(f"{what} element {i} is not a {HASH_SIZE}-byte hash")


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    Implements RFC 9162 section 2.1.3.2, after first checking every hash's length and the
    proof's exact expected length so that malformed input fails with a precise message.

    Raises:
        ProofError: on any failure, saying what failed.
    """
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root")
    if index < 0 or size <= 0 or index >= size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_proof(proof, _inclusion_proof_length(index, size), "inclusion proof")

    sha = _sha256
    fn, sn = index, size - 1
    r = bytes(leaf_hash)
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = sha(_NODE + p + r).digest()
            # Skip levels where this node is the right edge with no sibling.
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = sha(_NODE + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    if r != root:
        raise ProofError(
            f"inclusion proof for leaf {index} does not lead to the given root of tree size {size}"
        )


def _consistency_proof_length(first: int, second: int) -> int:
    # The proof is the inclusion proof, at level `shift`, of the old tree's last perfect subtree
    # in the new tree, preceded by that subtree's hash unless it is the whole old tree.
    shift = (first & -first).bit_length() - 1
    seed = 0 if first == 1 << shift else 1
    return seed + _inclusion_proof_length((first - 1) >> shift, ((second - 1) >> shift) + 1)


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``second`` leaves with ``second_root`` extends the tree of ``first``.

    Implements RFC 9162 section 2.1.4.2. When ``first == second`` the proof must be empty and the
    roots equal. As with :func:`consistency_proof`, ``first == 0`` is refused: the empty tree's
    consistency needs no proof and is treated as a caller error.

    Raises:
        ProofError: on any failure (including ``first == 0`` or ``first > second``), saying what
            failed.
    """
    _check_hash(first_root, "first root")
    _check_hash(second_root, "second root")
    if first <= 0:
        raise ProofError(f"consistency proofs need first > 0, got {first}")
    if first > second:
        raise ProofError(f"first size {first} is larger than second size {second}")
    if first == second:
        if proof:
            raise ProofError(
                f"consistency proof between equal sizes must be empty; has {len(proof)}"
            )
        if first_root != second_root:
            raise ProofError(f"roots differ for the same tree size {first}")
        return
    _check_proof(proof, _consistency_proof_length(first, second), "consistency proof")

    sha = _sha256
    path = list(proof)
    if first & (first - 1) == 0:
        # The old tree is itself a perfect subtree of the new one, so the proof leaves it out.
        path.insert(0, bytes(first_root))
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = sha(_NODE + c + fr).digest()
            sr = sha(_NODE + c + sr).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = sha(_NODE + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != first_root:
        raise ProofError(f"consistency proof does not lead to the given root of size {first}")
    if sr != second_root:
        raise ProofError(f"consistency proof does not lead to the given root of size {second}")


@dataclass(frozen=True, slots=True)
class Frontier:
    """The right edge of a tree: the roots of its perfect subtrees, largest (leftmost) first.

    There is one hash per set bit of ``size``; that is all :func:`append` needs to extend the
    tree and all :meth:`root` needs to compute its root.
    """

    size: int
    hashes: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"frontier size must be >= 0, got {self.size}")
        # Coerce so a list passed in cannot be mutated behind the frozen object's back.
        object.__setattr__(self, "hashes", tuple(self.hashes))
        if len(self.hashes) != self.size.bit_count():
            raise ValueError(
                f"a frontier of size {self.size} has {self.size.bit_count()} hashes, "
                f"got {len(self.hashes)}"
            )
        _check_hashes(self.hashes, "frontier hashes")

    @classmethod
    def empty(cls) -> Frontier:
        """Return the frontier of the empty tree."""
        return cls(0, ())

    def root(self) -> bytes:
        """Return the Merkle Tree Hash of the whole tree, from the frontier alone."""
        if not self.hashes:
            return EMPTY_ROOT
        sha = _sha256
        hashes = self.hashes
        root = hashes[-1]
        for i in range(len(hashes) - 2, -1, -1):
            root = sha(_NODE + hashes[i] + root).digest()
        return root


def append(
    frontier: Frontier, leaf_hashes: Sequence[bytes]
) -> tuple[Frontier, list[tuple[int, int, bytes]]]:
    """Append leaf hashes to a tree given by its frontier.

    Returns the new frontier and every perfect-subtree node completed by this append, as
    ``(level, index, hash)``, including the level-0 leaf nodes, in the order they were completed,
    so a store can persist them and later serve them through a :data:`NodeReader`.

    Raises:
        ValueError: if any leaf hash is not ``HASH_SIZE`` bytes.
    """
    _check_hashes(leaf_hashes, "leaf hashes")
    sha = _sha256
    stack = list(frontier.hashes)
    size = frontier.size
    nodes: list[tuple[int, int, bytes]] = []
    add = nodes.append
    push = stack.append
    pop = stack.pop
    # A binary counter: the new leaf merges with one stack entry per trailing set bit of the old
    # size, and each merge completes a perfect subtree one level up.
    for h in leaf_hashes:
        add((0, size, h))
        s = size
        level = 0
        while s & 1:
            h = sha(_NODE + pop() + h).digest()
            s >>= 1
            level += 1
            add((level, s, h))
        push(h)
        size += 1
    return Frontier(size, tuple(stack)), nodes


def frontier_from_reader(size: int, get: NodeReader) -> Frontier:
    """Rebuild the frontier of the stored tree of ``size`` leaves (one read per set bit).

    Raises:
        ValueError: if ``size`` is negative.
    """
    if size < 0:
        raise ValueError(f"tree size must be >= 0, got {size}")
    hashes = []
    pos = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            hashes.append(get(level, pos >> level))
            pos += 1 << level
    return Frontier(size, tuple(hashes))
