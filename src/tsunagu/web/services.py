"""What every request handler may reach: the node, the private store, apps, templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jinja2

from tsunagu.identity.private import PrivateStore
from tsunagu.node.node import Node
from tsunagu.platform import App
from tsunagu.web.i18n import Catalog


@dataclass
class Services:
    node: Node
    private: PrivateStore
    apps: list[App]
    catalog: Catalog
    templates: jinja2.Environment
    public_base_url: str | None = None
    jobs: dict[str, Any] = field(default_factory=dict)

    def base_url(self, request_base: str) -> str:
        """The public base URL for links printed or shown outside the browser (QR codes)."""
        return (self.public_base_url or request_base).rstrip("/")
