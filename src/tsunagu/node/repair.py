"""``tsunagu repair``: restore a stopped node's chain from its peers.

The node's ``chain.db`` (lost, or damaged in any way) is rebuilt from nothing: blocks are
fetched from the peers' block API and each one is checked by this node's own code, exactly as
a block from etcd is (:mod:`tsunagu.node.apply`; a batch at a time, as a node catching up does:
:mod:`tsunagu.node.catchup`): proposer signature, transactions, re-execution, results, state
hash, log root. When two or more peers answer, a block is taken
only if every answering peer serves the same block at that height (compared by their block
digests), so no single peer's word decides. The node's private, off-chain data (accounts,
keys, secrets, app databases) is left as it is. The damaged file is kept beside the new one
(``chain.db.damaged-<time>``), and the result must pass ``tsunagu verify``.

The new chain is built in a scratch folder (``DATA/.repair``) and moved into place only once
it verifies. A repair that fails before that (the peers disagree or stop answering, a block
fails its checks, Ctrl-C or SIGTERM) removes the scratch folder and leaves the data folder as
it found it; one killed outright leaves the folder behind, and the next repair removes it
first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from tsunagu.contracts import Contract
from tsunagu.node.catchup import CatchUp, Range
from tsunagu.node.datalock import DataDirBusy, DataLock
from tsunagu.node.node import CHAIN_DB, NODE_KEY_FILE, Node, load_node_key
from tsunagu.node.orderer import SoloOrderer
from tsunagu.node.peers import block_digests
from tsunagu.node.state_digest import DIGEST_FILE

BATCH = 200  # blocks per request (the digests API takes up to 2,000)
SCRATCH = ".repair"  # DATA/.repair: where the new chain is built


class RepairFailed(Exception):
    pass


def _get(client: httpx.Client, url: str, path: str, **params: Any) -> Any:
    response = client.get(url.rstrip("/") + path, params=params)
    response.raise_for_status()
    return response.json()


def repair_node(
    data_dir: Path,
    urls: Sequence[str],
    contracts: Sequence[Contract],
    echo: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Rebuild ``data_dir/chain.db`` from the peers at ``urls``; see the module. Refuses
    while a node serves ``data_dir`` (and keeps any from starting until it is done)."""
    data_dir = Path(data_dir)
    node_id, _ = load_node_key(data_dir)  # the node's own identity stays
    try:
        lock = DataLock(data_dir, "tsunagu repair")
    except DataDirBusy as exc:
        raise RepairFailed(
            f"{exc}: stop the node first (a node's chain cannot be replaced while it runs)"
        ) from None
    scratch = data_dir / SCRATCH
    try:
        try:
            with _terminated_as_interrupt():
                if scratch.exists():  # an earlier repair's, killed outright
                    echo(f"  removing {scratch.name}, left by an earlier repair")
                    shutil.rmtree(scratch, ignore_errors=True)
                report = _repair(data_dir, node_id, urls, contracts, echo)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)  # never a half-built chain left behind
            raise
        # Only a verified chain gets here; the swap itself takes a few renames.
        _install(data_dir, scratch, echo)
        return report
    finally:
        lock.release()


class _Terminated(KeyboardInterrupt):
    """SIGTERM during a repair: unwinds like Ctrl-C, so the scratch folder is removed."""


@contextlib.contextmanager
def _terminated_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def stop(signum: int, frame: Any) -> None:
        raise _Terminated(f"stopped by signal {signum}")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _repair(
    data_dir: Path,
    node_id: str,
    urls: Sequence[str],
    contracts: Sequence[Contract],
    echo: Callable[[str], Any],
) -> dict[str, Any]:
    from tsunagu.node.verify import verify_chain

    client = httpx.Client(timeout=30)
    heads: dict[str, dict[str, Any]] = {}
    for url in urls:
        try:
            heads[url] = _get(client, url, "/api/v1/status")
        except (httpx.HTTPError, ValueError) as exc:
            echo(f"  {url}: no answer ({type(exc).__name__})")
    if not heads:
        raise RepairFailed("no peer answered")
    chains = {h["chain_id"] for h in heads.values()}
    if len(chains) != 1:
        raise RepairFailed(f"the peers serve different chains: {sorted(chains)}")
    chain_id = chains.pop()
    sources = list(heads)
    # The height every answering peer holds: beyond it, fewer peers could vouch for a block.
    top = min(h["height"] for h in heads.values())
    echo(f"  peers: {', '.join(sources)}; restoring blocks 0 to {top}")

    scratch = data_dir / SCRATCH  # the new chain is built here, then moved into place
    scratch.mkdir()
    shutil.copy2(data_dir / NODE_KEY_FILE, scratch / NODE_KEY_FILE)
    node = Node(scratch, contracts, SoloOrderer())
    node._chain_id = chain_id
    catchup = CatchUp(node)

    def fetch(start: int) -> Range:
        """Blocks ``start`` to at most ``start + BATCH - 1`` (no further than ``top``) from
        the first peer, with the digests every peer agrees on."""
        end = min(top, start + BATCH - 1)
        agreed = _agreed_digests(client, sources, start, end)
        raw = _get(client, sources[0], "/api/v1/consortium/blocks", start=start, limit=BATCH)
        blocks = raw["blocks"][: end - start + 1]
        if len(blocks) != end - start + 1:
            raise RepairFailed(f"{sources[0]} did not serve blocks {start} to {end}")
        return Range(start, blocks, end < top, agreed)

    try:
        # Each batch is checked and written as one run (see tsunagu.node.catchup) while the
        # next one is fetched.
        for fetched in catchup.ranges(fetch, 0):
            catchup.apply(fetched.prepared or [])
            start, end = fetched.start, fetched.start + len(fetched.raws) - 1
            mine = block_digests(node.store.reader(), start, end)
            agreed = fetched.info
            if agreed is not None and mine != agreed:
                first = next(i for i, (a, b) in enumerate(zip(mine, agreed, strict=True)) if a != b)
                raise RepairFailed(f"block {start + first} differs from what the peers hold")
            echo(f"  {end + 1}/{top + 1} blocks")
    except RepairFailed:
        raise
    except Exception as exc:
        raise RepairFailed(f"{type(exc).__name__}: {exc}") from exc
    finally:
        catchup.close()
        node.store.close()

    report = verify_chain(scratch, contracts)  # the whole check, before anything is replaced
    if not report.ok:
        raise RepairFailed(f"the restored chain does not verify: {report.problem}")
    return {
        "node_id": node_id,
        "blocks": top + 1,
        "sources": sources,
        "verify_seconds": report.seconds,
    }


def _install(data_dir: Path, scratch: Path, echo: Callable[[str], Any]) -> None:
    """Put the verified chain built in ``scratch`` in the place of the node's chain."""
    target = data_dir / CHAIN_DB
    if target.exists():
        kept = data_dir / f"{CHAIN_DB}.damaged-{time.strftime('%Y%m%dT%H%M%S')}"
        wal = Path(str(target) + "-wal")
        if wal.exists():  # the old file's last commits may still be in its WAL: keep them
            os.replace(wal, Path(str(kept) + "-wal"))
        os.replace(target, kept)
        echo(f"  the old chain is kept as {kept.name}")
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    for suffix in ("-wal", ""):  # a WAL left behind belongs with its database
        built = Path(str(scratch / CHAIN_DB) + suffix)
        if built.exists():
            os.replace(built, Path(str(target) + suffix))
    shutil.rmtree(scratch)
    # The last state digest described the old table (see tsunagu.node.state_digest).
    (data_dir / DIGEST_FILE).unlink(missing_ok=True)


def _agreed_digests(
    client: httpx.Client, sources: list[str], start: int, end: int
) -> list[str | None] | None:
    """The digests of blocks start..end that every peer serves, or ``None`` with one peer."""
    if len(sources) < 2:
        return None
    merged = [
        _get(client, url, "/api/v1/consortium/digests", start=start, end=end)["digests"]
        for url in sources
    ]
    if any(m != merged[0] for m in merged[1:]):
        raise RepairFailed(f"the peers disagree about blocks {start} to {end}")
    return merged[0]
