"""Who is using a node's data folder: ``serve`` (and ``demo``) or ``repair``.

The user holds an exclusive ``flock`` on ``DATA/node.lock`` for as long as it runs and writes
its pid and command into the file. The kernel drops the lock when the process exits, however
it exits (``kill -9`` included), so a file left behind never blocks anyone: only a live holder
does. A ``tsunagu serve`` of the folder started without the lock (an older version) is found
in ``/proc`` as well.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

LOCK_FILE = "node.lock"


class DataDirBusy(Exception):
    """The data folder is in use by another process (``pid``, ``what`` it is)."""

    def __init__(self, data_dir: Path, pid: int | None, what: str) -> None:
        self.pid = pid
        self.what = what
        who = f"{what} (pid {pid})" if pid else what
        super().__init__(f"{data_dir} is in use by {who}")


def _holder(path: Path) -> tuple[int | None, str]:
    try:
        found = json.loads(path.read_text())
        return int(found["pid"]), str(found.get("what", "another process"))
    except (OSError, ValueError, KeyError, TypeError):
        return None, "another process"


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [c.decode(errors="replace") for c in raw.split(b"\0")[:-1]]


def _unlocked_server(data_dir: Path) -> int | None:
    """The pid of a ``tsunagu serve``/``demo`` process on ``data_dir`` (found in /proc)."""
    target = os.path.normpath(data_dir.resolve())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        cmd = _cmdline(int(proc.name))
        if not any("tsunagu" in c for c in cmd[:3]) or not ({"serve", "demo"} & set(cmd)):
            continue
        for i, arg in enumerate(cmd[:-1]):
            if arg == "--data":
                value = Path(cmd[i + 1])
                if not value.is_absolute():
                    with contextlib.suppress(OSError):
                        value = Path(os.readlink(f"/proc/{proc.name}/cwd")) / value
                if os.path.normpath(value) == target:
                    return int(proc.name)
    return None


class DataLock:
    """An exclusive hold on a data folder; :meth:`release` (or the process's exit) frees it."""

    def __init__(self, data_dir: Path, what: str) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_FILE
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirBusy(self.data_dir, *_holder(self.path)) from None
        pid = _unlocked_server(self.data_dir)
        if pid is not None:
            os.close(fd)
            raise DataDirBusy(self.data_dir, pid, "tsunagu serve")
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "what": what}).encode())
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> DataLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
