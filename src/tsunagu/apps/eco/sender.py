"""Sending a device's readings to a node, for ``tsunagu device simulate``: the provisioning
file and options checked (one clear line for each mistake, never a traceback), the node asked
where the device left off, and each reading signed with the device's next sequence number.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tsunagu.apps.eco.simulate import reading_payload
from tsunagu.ledger.block import format_timestamp, parse_timestamp

FORMAT = "tsunagu-eco-device/1"
DEMO_NODE = "http://127.0.0.1:8000"  # where ``tsunagu demo`` listens by default
SEQ_RETRIES = 5
_HEX64 = frozenset("0123456789abcdefABCDEF")


class SimulateError(Exception):
    """Something the user can fix (file, option, node, device): one line for the terminal."""


def load_provisioning(path: Path) -> dict[str, Any]:
    """The provisioning file at ``path``, checked; :class:`SimulateError` says what is wrong."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise SimulateError(f"No provisioning file at {path}.") from None
    except IsADirectoryError:
        raise SimulateError(f"{path} is a folder, not a provisioning file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SimulateError(f"Cannot read the provisioning file {path}: {reason}.") from None
    try:
        prov = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SimulateError(
            f"{path} is not a provisioning file: it is not JSON ({exc.msg}, line {exc.lineno})."
        ) from None
    problem = _invalid(prov)
    if problem is not None:
        raise SimulateError(f"{path} is not a valid device provisioning file: {problem}.")
    return prov


def _invalid(prov: Any) -> str | None:
    if not isinstance(prov, dict) or prov.get("format") != FORMAT:
        return f'"format" must be "{FORMAT}"'
    for name in ("device", "chain_id"):
        if not isinstance(prov.get(name), str) or not prov[name]:
            return f'"{name}" is missing'
    if prov.get("kind") not in ("pv", "ev"):
        return '"kind" must be "pv" or "ev"'
    rated = prov.get("rated_w")
    if not isinstance(rated, int) or isinstance(rated, bool) or rated <= 0:
        return '"rated_w" must be a positive whole number of watts'
    seed = prov.get("private_key_seed")
    if not isinstance(seed, str) or len(seed) != 64 or not set(seed) <= _HEX64:
        return '"private_key_seed" must be 64 hexadecimal digits'
    if prov.get("node") is not None and not isinstance(prov["node"], str):
        return '"node" must be a URL'
    base = prov.get("baseline")
    if not isinstance(base, dict) or not all(
        isinstance(base.get(k), int) and not isinstance(base[k], bool) for k in ("a", "b")
    ):
        return '"baseline" must hold the counters "a" and "b"'
    try:
        parse_timestamp(base.get("at"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return '"baseline" must hold the time "at"'
    return None


def parse_until(text: str | None, now: datetime) -> tuple[datetime, str | None]:
    """``--until`` as a UTC time, never after ``now`` (the node refuses readings dated in the
    future); with a note when it was moved back to now."""
    if text is None:
        return now, None
    try:
        end = datetime.fromisoformat(text)
    except ValueError:
        raise SimulateError(
            f"--until {text!r} is not an ISO 8601 time (for example 2026-11-29T12:00:00+09:00)."
        ) from None
    end = (end if end.tzinfo is not None else end.replace(tzinfo=UTC)).astimezone(UTC)
    if end > now:
        return now, (
            f"--until {text} is in the future: the last reading is sent at now "
            f"({format_timestamp(now)}), as the node refuses readings dated in the future."
        )
    return end, None


def _problem(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class DeviceSender:
    """One device talking to one node: where it left off, and its next sequence number.

    The node tells a signer its last used sequence number only when refusing a number that
    is not above it (``409 replayed_seq`` at admission, with ``last_seq``; nothing is
    written). So the first reading is sent with seq 1: a device that never signed anything
    gets it, any other learns its last seq and signs again with the next one. Every later
    reading takes the next number, so a refused reading (whose seq is spent in its block)
    never blocks the ones after it."""

    def __init__(
        self, client: Any, node: str, prov: dict[str, Any], echo: Any, from_file: bool = False
    ) -> None:
        from tsunagu.ledger.keys import SigningKey

        self.client, self.node, self.prov, self.echo = client, node, prov, echo
        self.from_file = from_file  # the address is the provisioning file's (no --node)
        self.key = SigningKey.from_seed(bytes.fromhex(prov["private_key_seed"]))
        self.seq = 0  # the last seq known to be used (0: unknown yet)

    def request(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            return self.client.request(method, path, **kw)
        except httpx.TimeoutException:
            raise SimulateError(
                f"The node at {self.node} did not answer in time; run the command again "
                "later (it resumes from the last accepted reading)."
            ) from None
        except httpx.HTTPError as exc:
            named = " (the address in the provisioning file)" if self.from_file else ""
            raise SimulateError(
                f"Cannot reach the node at {self.node}{named} ({type(exc).__name__}): is it "
                "running? Give its address with --node URL."
            ) from None

    def last(self) -> dict[str, Any]:
        """The device's last accepted counters; refuses a device that cannot send."""
        dev = self.prov["device"]
        response = self.request("GET", f"/api/v1/eco/devices/{dev}/last")
        body = _problem(response)
        if response.status_code == 404:
            raise SimulateError(
                f"The node at {self.node} does not know device {dev}: it is not registered "
                "on this chain (check --node and the provisioning file)."
            )
        if response.status_code != 200 or not {"at", "a", "b", "status"} <= body.keys():
            raise SimulateError(
                f"The node at {self.node} answered HTTP {response.status_code} for device "
                f"{dev}: is it a Tsunagu node with the eco app?"
            )
        if body["status"] == "pending":
            raise SimulateError(
                f"Device {dev} is waiting for approval: the environment staff of its "
                "municipality must approve it before it can send readings."
            )
        if body["status"] != "approved":
            raise SimulateError(
                f"Device {dev} is {body['status']}: its readings are refused until the "
                "programme staff reinstate it."
            )
        return body

    def send(self, at: str, a: int, b: int) -> bool:
        """Sign and send one reading: True once committed, False if the contract refused it
        (its reason is printed). Raises :class:`SimulateError` when the node will not take
        readings at all."""
        from tsunagu.ledger.tx import build_tx

        prov = self.prov
        payload = reading_payload(prov["device"], prov["kind"], at, a, b)
        for _ in range(SEQ_RETRIES):
            self.seq += 1
            tx = build_tx(
                prov["chain_id"], "eco", f"reading.{prov['kind']}", payload, self.key, self.seq
            )
            response = self.request("POST", "/api/v1/tx", json=tx.to_json())
            problem = _problem(response)
            if response.status_code == 201:
                return True
            if problem.get("code") == "replayed_seq":  # learn the last seq, sign again
                last = problem.get("last_seq")
                if isinstance(last, int) and last > self.seq:
                    self.seq = last
                continue
            if "tx_id" in problem:  # recorded in a block, refused by the contract
                self.echo(f"{at}: {problem.get('code')}: {problem.get('detail')}")
                return False
            raise SimulateError(self._refusal(response.status_code, problem))
        raise SimulateError(
            f"The node at {self.node} kept refusing the device's sequence numbers: is another "
            "copy of this device sending readings at the same time?"
        )

    def _refusal(self, status: int, problem: dict[str, Any]) -> str:
        code = problem.get("code")
        dev = self.prov["device"]
        if code == "unknown_signer":
            return (
                f"The node at {self.node} does not accept the key of device {dev}: it is not "
                "approved (or was removed) on this chain."
            )
        if code == "wrong_chain":
            return (
                f"The provisioning file is for chain {self.prov['chain_id']!r}, which the "
                f"node at {self.node} does not run."
            )
        if code == "bad_signature":
            return f"The node refused the signature: the file's key is not device {dev}'s."
        if status == 503:
            return (
                f"The node at {self.node} cannot commit now ({problem.get('detail')}); run "
                "the command again later."
            )
        return f"The node at {self.node} refused the reading (HTTP {status}): {code}: " + str(
            problem.get("detail")
        )
