"""What an application plugs into the ledger: a contract of transaction types and a
deterministic ``apply``.

Rules (DESIGN.md): a contract decides only from the transaction, the block header and the
current state. No wall clock, no randomness, no floats. It raises :class:`Rejected` to
refuse a transaction; its writes are then discarded and the reason is kept in the block.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn

from pydantic import BaseModel, ConfigDict, ValidationError

from tsunagu.errors import Forbidden, Rejected
from tsunagu.ledger.canonical import canonical
from tsunagu.validation_text import explain_all, summary


class Payload(BaseModel):
    """Base for transaction payload models: strict, closed, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


@dataclass(frozen=True, slots=True)
class Member:
    """A key registered on the chain: a user, a node or a device, in one organisation."""

    key_id: str
    public_key: bytes
    org: str
    roles: tuple[str, ...]
    kind: str
    active: bool = True

    @classmethod
    def from_state(cls, key_id: str, value: dict[str, Any]) -> Member:
        return cls(
            key_id=key_id,
            public_key=bytes.fromhex(value["public_key"]),
            org=value["org"],
            roles=tuple(value["roles"]),
            kind=value["kind"],
            active=value.get("active", True),
        )


class StateReader:
    """Read access to committed state (plus, inside a block, the writes before this tx)."""

    def get(self, ns: str, key: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def scan(self, ns: str, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        raise NotImplementedError


@dataclass
class TxContext:
    """Everything a contract may decide from."""

    app: str
    tx_id: str
    tx_type: str
    signer: Member
    height: int
    timestamp: str
    log_index: int
    _state: Any = field(repr=False)
    writes: dict[tuple[str, str], bytes | None] = field(default_factory=dict)

    def _ns(self, kind: str) -> str:
        return f"{self.app}.{kind}"

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """Read ``key`` of this app's ``kind`` namespace."""
        return self.read(self._ns(kind), key)

    def read(self, ns: str, key: str) -> dict[str, Any] | None:
        """Read any namespace (other apps' and identity state are readable, not writable)."""
        if (ns, key) in self.writes:
            value = self.writes[(ns, key)]
            return None if value is None else json.loads(value)
        return self._state.get(ns, key)

    def scan(self, kind: str, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        ns = self._ns(kind)
        seen: dict[str, bytes | None] = {
            k: v for (n, k), v in self.writes.items() if n == ns and k.startswith(prefix)
        }
        for key, value in self._state.scan(ns, prefix):
            if key in seen:
                continue
            yield key, value
        for key in sorted(seen):
            if seen[key] is not None:
                yield key, json.loads(seen[key])  # type: ignore[arg-type]

    def put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        self.writes[(self._ns(kind), key)] = canonical(value)

    def delete(self, kind: str, key: str) -> None:
        self.writes[(self._ns(kind), key)] = None

    def org(self, org_id: str) -> dict[str, Any] | None:
        return self.read("identity.org", org_id)

    def require_role(self, *roles: str) -> None:
        """Reject unless the signer holds one of ``roles`` (``admin`` always may)."""
        if "admin" in self.signer.roles or any(r in self.signer.roles for r in roles):
            return
        raise Rejected(
            f"Only {' or '.join(roles)} may do this.",
            "この操作を行う権限がありません。",
            code="forbidden_role",
        )

    def reject(self, code: str, message_en: str, message_ja: str) -> NoReturn:
        raise Rejected(message_en, message_ja, code=code)


class Contract:
    """An application's rules. Subclasses set ``app`` and ``types`` and define
    ``on_<type>`` methods (dots in the type name become underscores)."""

    app: ClassVar[str]
    types: ClassVar[dict[str, type[Payload]]]

    def parse(self, tx_type: str, payload: dict[str, Any]) -> Payload:
        model = self.types.get(tx_type)
        if model is None:
            raise Rejected(
                f"Unknown transaction type {self.app}/{tx_type}.",
                f"不明な取引種別です: {self.app}/{tx_type}",
                code="unknown_type",
            )
        try:
            return model.model_validate_json(json.dumps(payload, ensure_ascii=False))
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            # The English reason goes into the block's results (and so its results_hash): it
            # keeps exactly the wording chains already hold. Japanese is the node's own.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in errors
            )
            raise Rejected(
                f"Invalid payload: {problems}",
                summary(explain_all(errors), "ja"),
                code="invalid_payload",
            ) from None

    def apply(self, ctx: TxContext, payload: Payload) -> None:
        handler = getattr(self, "on_" + ctx.tx_type.replace(".", "_"))
        handler(ctx, payload)

    def prefetch(self, tx_type: str, payload: dict[str, Any]) -> list[tuple[str, str]]:
        """State a transaction of ``tx_type`` with ``payload`` (not validated yet) will
        probably read, as ``(namespace, key)`` pairs: a node reads them for a whole run of
        transactions in a few queries before executing it. Only a hint: execution reads what
        it reads, a key named here need not exist, and a wrong hint costs a read. None by
        default."""
        return []


def require_member_role(member: Member | None, *roles: str) -> Member:
    """For routes: the same role rule as :meth:`TxContext.require_role`, as an HTTP error."""
    if member is None or not ("admin" in member.roles or any(r in member.roles for r in roles)):
        raise Forbidden()
    return member
