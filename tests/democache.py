"""The demo consortium, built once per test session and copied for each fixture that wants
its own node.

Seeding the demo (every app's months of data, a few thousand transactions) takes seconds;
copying its data folder takes milliseconds. Each copy is a separate node with its own files,
so tests that write to one never see another's writes. The copies share the template's keys
(node key, accounts' custodial keys), which no test relies on being distinct.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

_templates: dict[tuple[tuple[str, ...], str], Path] = {}


def demo_copy(target: Path, apps: list[Any], password: str) -> tuple[Any, Any]:
    """A started demo node in ``target`` and its private store, as ``create_demo`` returns."""
    from tsunagu.demo import create_demo
    from tsunagu.identity.private import PrivateStore
    from tsunagu.node.node import Node
    from tsunagu.platform import platform_contracts

    key = (tuple(sorted(a.name for a in apps)), password)
    template = _templates.get(key)
    if template is None:
        folder = Path(tempfile.mkdtemp(prefix="tsunagu-demo-template-"))
        atexit.register(shutil.rmtree, folder, True)
        template = folder / "data"
        node, _ = create_demo(template, None, apps, password)
        node.stop()  # idle and closed: the files copy consistently
        _templates[key] = template
    shutil.copytree(template, target, dirs_exist_ok=True)
    node = Node(target, platform_contracts(apps))
    node.start()
    return node, PrivateStore(target)
