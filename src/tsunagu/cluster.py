"""A local consortium on one machine: ``tsunagu cluster up`` / ``cluster down``.

``up`` starts N etcd members and N voting nodes (and K following nodes) on 127.0.0.1, all
from the same demo consortium: the demo is created once, with every node's key registered in
its genesis, and its data folder is copied to each node (chain, accounts, keys), each node
then getting its own node key. Processes are started detached (their own session, logs in the
cluster folder), so they outlive the command; ``DIR/cluster.json`` records each one's pid and
the exact ``argv`` that restarts it.

Ports, from the base port P: node i (1-based) serves on P+i-1; etcd member i listens for
clients on P+100+i-1 and for its peers on P+200+i-1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

CLUSTER_FILE = "cluster.json"
NODE_ORGS = ("hachioji", "tachikawa", "musashino", "fuchu", "machida", "oshima", "hachijo")
ETCD_FLAGS = (
    "--auto-compaction-mode",
    "revision",
    "--auto-compaction-retention",
    "1000",
    "--quota-backend-bytes",
    str(2 * 1024**3),
    "--max-request-bytes",
    str(8 * 1024**2),
    "--heartbeat-interval",
    "50",
    "--election-timeout",
    "500",
    "--log-level",
    "warn",
)


def node_ids(voting: int, following: int) -> list[tuple[str, str]]:
    """(node id, role) of every node: the demo's own node first."""
    from tsunagu.demo import NODE_ID

    ids = [(NODE_ID, "voting")]
    ids += [(f"tama-node-{i}", "voting") for i in range(2, voting + 1)]
    ids += [(f"tama-follower-{i}", "following") for i in range(1, following + 1)]
    return ids


def _copy_db(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite database (WAL included)."""
    source = sqlite3.connect(src)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def seed_nodes(root: Path, voting: int, following: int, password: str) -> list[Path]:
    """Create the demo once and give each node a copy with its own node key."""
    from tsunagu.demo import create_demo
    from tsunagu.ledger.keys import SigningKey
    from tsunagu.node.node import NODE_KEY_FILE, write_node_key
    from tsunagu.platform import discover_apps

    ids = node_ids(voting, following)
    keys = {ident: SigningKey.generate() for ident, _ in ids[1:]}
    extra = [
        (ident, keys[ident], NODE_ORGS[i % len(NODE_ORGS)]) for i, (ident, _) in enumerate(ids[1:])
    ]
    seed = root / "seed"
    if seed.exists():
        shutil.rmtree(seed)
    node, _ = create_demo(seed, None, discover_apps(), password, extra_nodes=extra)
    node.stop()
    dirs = []
    for i, (ident, _) in enumerate(ids):
        target = root / f"node-{i + 1}"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for entry in seed.iterdir():
            if entry.name.endswith(("-wal", "-shm")):
                continue
            if entry.suffix == ".db":
                _copy_db(entry, target / entry.name)
            elif entry.is_dir():
                shutil.copytree(entry, target / entry.name)
            elif entry.name != NODE_KEY_FILE:
                shutil.copy2(entry, target / entry.name)
        if i == 0:
            shutil.copy2(seed / NODE_KEY_FILE, target / NODE_KEY_FILE)
            os.chmod(target / NODE_KEY_FILE, 0o600)
        else:
            write_node_key(target, ident, keys[ident])
        dirs.append(target)
    shutil.rmtree(seed)
    return dirs


def _spawn(argv: list[str], log: Path) -> int:
    with open(log, "ab") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives `cluster up`, and a Ctrl-C in its terminal
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return process.pid


def etcd_argv(root: Path, index: int, members: int, base_port: int) -> tuple[str, str, list[str]]:
    name = f"etcd-{index}"
    client = f"http://127.0.0.1:{base_port + 100 + index - 1}"
    peer = f"http://127.0.0.1:{base_port + 200 + index - 1}"
    initial = ",".join(
        f"etcd-{i}=http://127.0.0.1:{base_port + 200 + i - 1}" for i in range(1, members + 1)
    )
    argv = [
        shutil.which("etcd") or "/usr/bin/etcd",
        "--name",
        name,
        "--data-dir",
        str(root / name),
        "--listen-client-urls",
        client,
        "--advertise-client-urls",
        client,
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        initial,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        f"tsunagu-{base_port}",
        *ETCD_FLAGS,
    ]
    return name, client, argv


def node_argv(
    data: Path,
    port: int,
    endpoints: list[str],
    peers: list[str],
    role: str,
    extra: list[str] | None = None,
) -> list[str]:
    url = f"http://127.0.0.1:{port}"
    return [
        sys.executable,
        "-m",
        "tsunagu.cli",
        "serve",
        "--data",
        str(data),
        "--port",
        str(port),
        "--orderer",
        "etcd",
        "--etcd-endpoints",
        ",".join(endpoints),
        "--peers",
        ",".join(p for p in peers if p != url),
        "--advertise-url",
        url,
        "--role",
        role,
        "--audit-interval",
        "10",
        *(extra or []),
    ]


def wait_until_up(nodes: list[dict[str, Any]], timeout: float = 90.0) -> None:
    """Wait until every node answers ``/api/v1/status``; raise if one exits or times out."""
    deadline = time.monotonic() + timeout
    waiting = list(nodes)
    # One client for every poll: httpx.get() builds a client (and its TLS context) per call,
    # about 30 ms of CPU that the starting nodes need.
    with httpx.Client(timeout=2) as client:
        while waiting:
            if time.monotonic() > deadline:
                names = ", ".join(n["url"] for n in waiting)
                raise RuntimeError(f"not answering after {timeout:.0f} s: {names}")
            if not running(waiting[0]["pid"], waiting[0]["argv"]):
                raise RuntimeError(f"node {waiting[0]['id']} exited: see its log")
            url = waiting[0]["url"]
            try:
                if client.get(url + "/api/v1/status").status_code == 200:
                    waiting.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            time.sleep(0.2)


def up(
    root: Path,
    voting: int,
    base_port: int,
    following: int = 0,
    password: str = "tsunagu-demo",
    node_extra: list[str] | None = None,
) -> dict[str, Any]:
    """Start the consortium in ``root`` and return what ``cluster.json`` records."""
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    if (root / CLUSTER_FILE).exists():
        live = cluster_processes(load(root))
        if live:
            names = ", ".join(f"{e.get('id') or e.get('name')} (pid {pid})" for e, pid in live)
            raise RuntimeError(
                f"a consortium still runs in {root}: {names}; "
                f"run `tsunagu cluster down --dir {root}` first"
            )
    dirs = seed_nodes(root, voting, following, password)
    return launch(root, dirs, node_ids(voting, following), base_port, node_extra)


def launch(
    root: Path,
    dirs: list[Path],
    ids: list[tuple[str, str]],
    base_port: int,
    node_extra: list[str] | None = None,
) -> dict[str, Any]:
    """Start one etcd member per voting node and every node on its data folder (already
    holding the same chain); write ``cluster.json``; wait until every node answers."""
    voting = sum(1 for _, role in ids if role == "voting")
    etcd = []
    for i in range(1, voting + 1):
        name, client, argv = etcd_argv(root, i, voting, base_port)
        shutil.rmtree(root / name, ignore_errors=True)
        pid = _spawn(argv, root / f"{name}.log")
        etcd.append(
            {
                "name": name,
                "client_url": client,
                "pid": pid,
                "data_dir": str(root / name),
                "argv": argv,
            }
        )
    endpoints = [e["client_url"] for e in etcd]
    urls = [f"http://127.0.0.1:{base_port + i}" for i in range(len(dirs))]
    nodes = []
    for i, ((ident, role), data) in enumerate(zip(ids, dirs, strict=True)):
        # Each voting node talks to its own etcd member first.
        mine = endpoints[i:] + endpoints[:i] if role == "voting" else endpoints
        argv = node_argv(data, base_port + i, mine, urls, role, node_extra)
        pid = _spawn(argv, root / f"node-{i + 1}.log")
        nodes.append(
            {
                "id": ident,
                "url": urls[i],
                "pid": pid,
                "data_dir": str(data),
                "argv": argv,
                "role": role,
            }
        )
    cluster = {"nodes": nodes, "etcd": etcd}
    write(root, cluster)
    try:
        wait_until_up(nodes)
    except RuntimeError:
        down(root)
        raise
    return cluster


def write(root: Path, cluster: dict[str, Any]) -> None:
    path = root / CLUSTER_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cluster, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)


def load(root: Path) -> dict[str, Any]:
    return json.loads((root / CLUSTER_FILE).read_text())


def running(pid: int | None, argv: list[str]) -> bool:
    """Is ``pid`` alive and still the process started with ``argv`` (not a reused pid)?"""
    if pid is None:
        return False
    return _cmdline(pid) == argv


def _cmdline(pid: int) -> list[str] | None:
    """The command line of ``pid``; ``None`` when it is gone or a zombie (empty cmdline)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:
        return None
    return [c.decode(errors="replace") for c in raw.split(b"\0")[:-1]]


def _option(cmdline: list[str], name: str) -> str | None:
    for i, arg in enumerate(cmdline):
        if arg == name and i + 1 < len(cmdline):
            return cmdline[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1 :]
    return None


def _is_instance(pid: int, cmdline: list[str], entry: dict[str, Any]) -> bool:
    """Is this process the cluster's ``entry``: its exact recorded ``argv``, or the same kind
    of program (a ``tsunagu serve`` or an etcd) on the entry's own data folder (a restart by
    hand with other options, or a relative path)?"""
    if cmdline == entry["argv"]:
        return True
    is_node = "url" in entry
    if is_node:
        if "serve" not in cmdline or not any("tsunagu" in c for c in cmdline[:3]):
            return False
        value = _option(cmdline, "--data")
    else:
        if not cmdline or Path(cmdline[0]).name != "etcd":
            return False
        value = _option(cmdline, "--data-dir")
    if value is None:
        return False
    path = Path(value)
    if not path.is_absolute():
        try:
            path = Path(os.readlink(f"/proc/{pid}/cwd")) / path
        except OSError:
            return False
    return os.path.normpath(path) == os.path.normpath(entry["data_dir"])


def cluster_processes(cluster: dict[str, Any]) -> list[tuple[dict[str, Any], int]]:
    """Every live process of the consortium, whatever started it: (its entry, its pid).
    Found by scanning ``/proc``, not from the recorded pids, which are stale once a process
    has been restarted with its ``argv``."""
    entries = cluster["nodes"] + cluster["etcd"]
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        pid = int(proc.name)
        cmdline = _cmdline(pid)
        if not cmdline:
            continue
        for entry in entries:
            if _is_instance(pid, cmdline, entry):
                found.append((entry, pid))
                break
    return found


def _alive(pid: int, cmdline: list[str]) -> bool:
    # Our own child (tests): reap it, or it stays a zombie.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return _cmdline(pid) == cmdline


def stop_pids(pids: list[int], wait: float = 15.0) -> None:
    """SIGTERM every pid, wait up to ``wait`` seconds for all to exit, then SIGKILL the rest
    and wait for them too. A pid is followed by its command line, never signalled once it
    belongs to another program."""
    live = {pid: cmd for pid in pids if (cmd := _cmdline(pid))}
    for pid in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for sig in (signal.SIGKILL, None):
        deadline = time.monotonic() + wait
        while live and time.monotonic() < deadline:
            live = {pid: cmd for pid, cmd in live.items() if _alive(pid, cmd)}
            if live:
                time.sleep(0.05)
        if sig is None or not live:
            break
        for pid in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        wait = 5.0
    if live:
        raise RuntimeError(f"processes still running after SIGKILL: {sorted(live)}")


def start_process(root: Path, entry: dict[str, Any], log_name: str) -> int:
    entry["pid"] = _spawn(entry["argv"], root / log_name)
    return entry["pid"]


def down(root: Path, wait: float = 15.0) -> list[int]:
    """Stop every process of the consortium in ``root`` (nodes first, then etcd): the ones
    recorded in ``cluster.json`` and any restarted since with their ``argv`` (or on their data
    folder). Waits until they have exited (SIGKILL after ``wait`` seconds), then records
    ``"pid": null`` for each. Returns the pids stopped."""
    root = root.resolve()
    cluster = load(root)
    found = cluster_processes(cluster)
    stopped = []
    for group in (cluster["nodes"], cluster["etcd"]):
        ids = {id(entry) for entry in group}
        pids = [pid for entry, pid in found if id(entry) in ids]
        stop_pids(pids, wait)
        stopped += pids
    for entry in cluster["nodes"] + cluster["etcd"]:
        entry["pid"] = None
    write(root, cluster)
    return stopped
