"""Executes ordered transactions against state: the deterministic heart of a node.

The same code runs when a node builds a block, when it applies a peer's block, and when
``tsunagu verify`` replays the chain, so all three reach the same results and state hash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from tsunagu.contracts import Contract, Member, TxContext
from tsunagu.errors import Rejected
from tsunagu.ledger.block import COMMITTED, TxResult
from tsunagu.ledger.canonical import canonical
from tsunagu.ledger.keys import key_id
from tsunagu.ledger.tx import Transaction
from tsunagu.node.store import loads

SEQ_NS = "ledger.seq"
MEMBER_NS = "identity.member"
GENESIS = ("identity", "genesis")


_MISSING: Any = object()


class BlockState:
    """Committed state seen through the writes of the block so far."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.overlay: dict[tuple[str, str], bytes | None] = {}
        self.has_raw = hasattr(base, "get_raw")  # whether get_raw may be used

    def get(self, ns: str, key: str) -> dict[str, Any] | None:
        value = self.overlay.get((ns, key), _MISSING)
        if value is _MISSING:
            return self.base.get(ns, key)
        return None if value is None else loads(value)

    def get_raw(self, ns: str, key: str) -> bytes | None:
        """The stored bytes of a value (the base state must offer ``get_raw`` too)."""
        value = self.overlay.get((ns, key), _MISSING)
        if value is _MISSING:
            return self.base.get_raw(ns, key)
        return value

    def scan(self, ns: str, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        mine = {k: v for (n, k), v in self.overlay.items() if n == ns and k.startswith(prefix)}
        merged: dict[str, Any] = {}
        for key, value in self.base.scan(ns, prefix):
            merged[key] = value
        for key, raw in mine.items():
            if raw is None:
                merged.pop(key, None)
            else:
                merged[key] = json.loads(raw)
        for key in sorted(merged):
            yield key, merged[key]


@dataclass(frozen=True, slots=True)
class Execution:
    results: list[TxResult]
    reasons_ja: list[str | None]  # for this node's own receipts; not part of the chain
    writes: list[tuple[str, str, bytes | None]]
    state_hash: str


def _rejected(code: str, reason: str) -> TxResult:
    return TxResult("rejected", code, reason)


_quote = json.encoder.encode_basestring  # the escaper canonical() uses for one string (C)
_NAMESPACES: dict[str, bytes] = {}  # canonical bytes of the namespaces seen (there are few)


def _canonical_text(value: Any) -> bytes:
    """``canonical(value)``, faster for an ASCII ``str``: the same escaper, and bytes that
    :func:`~tsunagu.ledger.canonical.canonical` would return the same way."""
    if type(value) is str and value.isascii():
        return _quote(value).encode("ascii")
    return canonical(value)


def state_hash(prev_state_hash: str, writes: list[tuple[str, str, bytes | None]]) -> str:
    """Exactly :func:`tsunagu.ledger.block.next_state_hash` (the definition of the state hash),
    with the namespaces' canonical bytes remembered and ASCII keys encoded without the general
    canonicalizer: one block writes about a thousand rows, each hashed with its ns and key."""
    names = _NAMESPACES
    parts = []
    for ns, key, value in writes:
        name = names.get(ns) if type(ns) is str else None
        if name is None:
            name = _canonical_text(ns)
            if type(ns) is str and len(names) < 10_000:
                names[ns] = name
        parts.append(b"[" + name + b"," + _canonical_text(key) + b"," + (value or b"null") + b"]")
    delta = sha256(b"[" + b",".join(parts) + b"]").digest()
    return sha256(bytes.fromhex(prev_state_hash) + delta).hexdigest()


MEMBER_CACHE_ENTRIES = 50_000
_SEQ_VALUE = re.compile(rb'\{"seq":(0|[1-9][0-9]{0,15})\}')


class Executor:
    def __init__(self, contracts: Sequence[Contract]) -> None:
        self.contracts = {c.app: c for c in contracts}
        # Decoded member records by (key id, stored bytes): the same bytes always decode to
        # the same (immutable) Member, so a signer's record is parsed once, not once per tx.
        self._members: dict[tuple[str, bytes], Member] = {}

    @staticmethod
    def _last_seq(state: BlockState, signer: str) -> dict[str, Any] | None:
        """``state.get(SEQ_NS, signer)``: the value this executor writes, ``{"seq":N}``, is
        read without a JSON parser."""
        if not state.has_raw:
            return state.get(SEQ_NS, signer)
        raw = state.get_raw(SEQ_NS, signer)
        if raw is None:
            return None
        match = _SEQ_VALUE.fullmatch(raw) if type(raw) is bytes else None
        if match is not None:
            return {"seq": int(match.group(1))}
        return loads(raw)

    def _member(self, state: BlockState, signer: str) -> Member | bool | None:
        """The signer's member record, ``None`` if there is none, or ``False`` when the base
        state cannot give raw bytes (the caller then decodes as it always did)."""
        if not state.has_raw:
            return False
        raw = state.get_raw(MEMBER_NS, signer)
        if raw is None:
            return None
        cache_key = (signer, raw)
        member = self._members.get(cache_key)
        if member is None:
            member = Member.from_state(signer, loads(raw))
            if len(self._members) >= MEMBER_CACHE_ENTRIES:
                self._members.clear()
            self._members[cache_key] = member
        return member

    def prefetch_keys(self, txs: Sequence[Transaction]) -> list[tuple[str, str]]:
        """The state ``txs`` will probably read (see :meth:`Contract.prefetch`): each signer's
        member record and last sequence number, and what its application names."""
        keys: list[tuple[str, str]] = []
        for tx in txs:
            keys += ((MEMBER_NS, tx.signer), (SEQ_NS, tx.signer))
            contract = self.contracts.get(tx.app)
            if contract is not None and type(tx.payload) is dict:
                try:
                    hints = [k for k in contract.prefetch(tx.type, tx.payload) if len(k) == 2]
                except Exception:  # only a hint: execution decides what a bad payload does
                    continue
                keys += hints
        return keys

    def execute(
        self,
        base_state: Any,
        txs: Sequence[Transaction],
        *,
        chain_id: str,
        height: int,
        timestamp: str,
        first_index: int,
        prev_state_hash: str,
        check_signatures: bool,
        signer_keys: list[bytes | None] | None = None,
    ) -> Execution:
        """Execute ``txs`` in order on ``base_state`` (which is not changed: the writes are in
        the returned :class:`Execution`).

        When ``signer_keys`` is a list, the raw public key each transaction's signature must
        verify under is appended to it, one per transaction (see :meth:`signer_key`): this is
        how a replay that checks signatures elsewhere (``tsunagu verify``) learns them.
        """
        state = BlockState(base_state)
        results: list[TxResult] = []
        reasons_ja: list[str | None] = []
        for i, tx in enumerate(txs):
            keyed = -1 if signer_keys is None else len(signer_keys)
            try:
                results.append(
                    self._one(
                        state,
                        tx,
                        chain_id,
                        height,
                        timestamp,
                        first_index + i,
                        check_signatures,
                        signer_keys,
                    )
                )
                reasons_ja.append(None)
            except Rejected as exc:
                results.append(_rejected(exc.code, exc.message_en))
                reasons_ja.append(exc.message_ja)
            except Exception as exc:  # a contract bug refuses the tx the same way on every node
                results.append(_rejected("contract_error", f"{type(exc).__name__}: {exc}"))
                reasons_ja.append(None)
            if signer_keys is not None and len(signer_keys) == keyed:
                # _one stopped before it knew the signer (a chain or genesis mismatch, or a
                # member record it could not decode): look the key up on its own.
                signer_keys.append(self.signer_key(state, tx, height))
        writes = sorted((ns, key, value) for (ns, key), value in state.overlay.items())
        return Execution(results, reasons_ja, writes, state_hash(prev_state_hash, writes))

    def signer_key(self, state: Any, tx: Transaction, height: int) -> bytes | None:
        """The raw public key ``tx``'s signature must verify under, in ``state`` as it is just
        before ``tx``: the signer's member key (active or revoked), for the genesis transaction
        of block 0 the key of its own payload, ``None`` when there is no such key."""
        try:
            if (tx.app, tx.type) == GENESIS and height == 0:
                member = genesis_signer(tx)
                return None if member is None else member.public_key
            value = state.get(MEMBER_NS, tx.signer)
            return None if value is None else bytes.fromhex(value["public_key"])
        except Exception:  # a value no contract writes: there is no key to check against
            return None

    def _one(
        self,
        state: BlockState,
        tx: Transaction,
        chain_id: str,
        height: int,
        timestamp: str,
        log_index: int,
        check_signatures: bool,
        signer_keys: list[bytes | None] | None = None,
    ) -> TxResult:
        if tx.chain_id != chain_id:
            return _rejected("wrong_chain", f"chain_id {tx.chain_id!r} is not this chain")
        is_genesis = (tx.app, tx.type) == GENESIS
        if is_genesis:
            if height != 0:
                return _rejected("genesis_again", "genesis is only valid in block 0")
            member = genesis_signer(tx)
            if signer_keys is not None:
                signer_keys.append(None if member is None else member.public_key)
            if member is None:
                return _rejected("unknown_signer", "the genesis signer is not among its members")
        else:
            found = self._member(state, tx.signer)
            if found is False:
                raw = state.get(MEMBER_NS, tx.signer)
                found = None if raw is None else Member.from_state(tx.signer, raw)
            if signer_keys is not None:
                signer_keys.append(None if found is None else found.public_key)
            if found is None:
                return _rejected("unknown_signer", "the signer's key is not registered")
            member = found
            if not member.active:
                return _rejected("revoked_signer", "the signer's key has been revoked")
        if check_signatures and not tx.verify(member.public_key):
            return _rejected("bad_signature", "the signature does not verify")
        last = self._last_seq(state, tx.signer)
        if last is not None and tx.seq <= last["seq"]:
            return _rejected("replayed_seq", f"seq {tx.seq} is not above {last['seq']}")
        # The sequence number is spent even when the contract refuses the transaction, so
        # that a refused transaction can never be replayed later into a state that accepts it.
        state.overlay[(SEQ_NS, tx.signer)] = b'{"seq":%d}' % tx.seq
        contract = self.contracts.get(tx.app)
        if contract is None:
            return _rejected("unknown_app", f"no application {tx.app!r} on this chain")
        ctx = TxContext(
            app=tx.app,
            tx_id=tx.id,
            tx_type=tx.type,
            signer=member,
            height=height,
            timestamp=timestamp,
            log_index=log_index,
            _state=state,
        )
        contract.apply(ctx, contract.parse(tx.type, tx.payload))
        for (ns, key), value in ctx.writes.items():
            if not ns.startswith(tx.app + "."):
                return _rejected("foreign_write", f"{tx.app} may not write {ns}")
            state.overlay[(ns, key)] = value
        return COMMITTED


def genesis_signer(tx: Transaction) -> Member | None:
    """The member of a genesis transaction's payload whose key id is its signer, if any."""
    for member in tx.payload.get("members", []):
        if not isinstance(member, dict):
            continue
        try:
            candidate = Member(
                key_id=tx.signer,
                public_key=bytes.fromhex(member["public_key"]),
                org=member["org"],
                roles=tuple(member["roles"]),
                kind=member.get("kind", "user"),
            )
        except (KeyError, ValueError, TypeError):
            continue
        if key_id(candidate.public_key) == tx.signer:
            return candidate
    return None


_genesis_signer = genesis_signer  # the earlier private name
