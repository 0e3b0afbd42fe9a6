"""A steady write load over several nodes, recording what each node acknowledged."""

from __future__ import annotations

import threading
import time

import httpx

from consortium.conftest import WRITERS, Consortium


class Load:
    """One thread per node index, each registering documents as its own writer."""

    def __init__(self, consortium: Consortium, indexes: list[int], tag: str) -> None:
        self.consortium = consortium
        self.indexes = indexes
        self.tag = tag
        self.acked: list[tuple[int, str, float]] = []  # (node index, tx id, when)
        self.failed: list[tuple[int, str, float]] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in indexes
        ]
        for i in indexes:  # log in before the clock starts
            consortium.token(i, WRITERS[i])

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def _run(self, index: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            try:
                response = self.consortium.register(
                    index, WRITERS[index], f"{self.tag} {index} {n}", timeout=10
                )
            except httpx.HTTPError as exc:
                self.failed.append((index, type(exc).__name__, time.monotonic()))
                time.sleep(0.1)
                continue
            if response.status_code == 201:
                self.acked.append((index, response.json()["tx_id"], time.monotonic()))
            else:
                self.failed.append((index, response.text[:200], time.monotonic()))
                time.sleep(0.1)

    def acked_after(self, moment: float) -> int:
        return sum(1 for _, _, when in self.acked if when > moment)
