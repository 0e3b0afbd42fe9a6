"""Public pages: the community dashboard with its map of Tama and the islands, the credential
verifier (paste or upload a credential), and each stored credential's own page, which the
certificate's QR code opens, with its JSON and PDF.

A stored credential is shown to its owner, to the organisers of the group that issued it, and
to anyone holding its share link (``?k=``, an HMAC of the hash under the node's secret, which
the QR code carries). Anyone else gets 404: the hashes are public on the chain, the
credentials are not. Whoever holds a credential can always check it on the verify page.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from tsunagu.apps.community import api, catalog, issuing, privacy, views
from tsunagu.apps.community.certificate import certificate_pdf
from tsunagu.apps.community.pages import common, state
from tsunagu.web.deps import check_csrf, language, optional_user, render, services

MAX_CREDENTIAL_BYTES = 64 * 1024


def _map(board: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    biggest = max(board["by_place"].values(), default=1)
    points = []
    for p in views.map_points():
        minutes = board["by_place"].get(p["id"], 0)
        radius = 3 + round(14 * math.sqrt(minutes / biggest)) if minutes else 2
        small = p["id"] in board["small_places"]  # activity there, figures withheld
        name = p["name_ja"] if lang == "ja" else p["name_en"]
        points.append(
            {**p, "minutes": minutes, "r": 4 if small else radius, "name": name, "small": small}
        )
    return points


def _verify_page(
    request: Request,
    report: dict[str, Any] | None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request, "community/verify.html", status_code=status_code, report=report, error=error
    )


def router() -> APIRouter:
    r = APIRouter()

    @r.get("/community/dashboard")
    def dashboard(request: Request) -> Response:
        lang = language(request)
        board = views.dashboard(state(request))
        used = sorted({c for m in board["months"] for c in m["minutes"]})
        peak = max((sum(m["minutes"].values()) for m in board["months"]), default=1) or 1
        return render(
            request,
            "community/dashboard.html",
            board=board,
            points=_map(board, lang),
            used=used,
            peak=peak,
            **common(lang),
        )

    @r.get("/community/verify")
    def verify_form(request: Request) -> Response:
        return _verify_page(request, None)

    @r.post("/community/verify")
    async def verify(request: Request) -> Response:
        form = await request.form()
        check_csrf(request, str(form.get("csrf", "")))
        raw: bytes | str = str(form.get("credential", "")).strip()
        upload = form.get("file")
        if isinstance(upload, UploadFile) and upload.filename:
            raw = await upload.read(MAX_CREDENTIAL_BYTES + 1)
        if not raw or len(raw) > MAX_CREDENTIAL_BYTES:
            return _verify_page(request, None, "empty", 422)
        try:
            credential = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _verify_page(request, None, "not_json", 422)
        report = issuing.verify(services(request).node, credential)
        return _verify_page(request, {**report, "credential": credential})

    @r.get("/community/credentials/{digest}")
    def credential_page(request: Request, digest: str, k: str = "") -> Response:
        credential = privacy.readable_credential(request, digest, k)
        if credential is None:
            # Whether the hash is unknown, erased or just not shared with this visitor, the
            # answer is the same: nobody learns that a credential is stored here.
            return render(request, "community/message.html", status_code=404, kind="not_found")
        anchored = state(request).get("credential", digest)
        report = issuing.verify(services(request).node, credential)
        user = optional_user(request)
        owner = user is not None and user.key_id == (anchored or {}).get("recipient")
        return render(
            request,
            "community/credential.html",
            credential=credential,
            report=report,
            anchored=anchored,
            digest=digest,
            key=api.store(request).share_token(digest),
            share_url=privacy.share_url(request, digest) if owner else None,
            may_revoke=user is not None
            and anchored is not None
            and user.org == anchored["org"]
            and user.has_role("organiser"),
            milestones=catalog.MILESTONES,
        )

    @r.get("/community/credentials/{digest}/certificate.pdf")
    def certificate(request: Request, digest: str, k: str = "") -> Response:
        credential = privacy.readable_credential(request, digest, k)
        if credential is None:
            return render(request, "community/message.html", status_code=404, kind="not_found")
        anchored = state(request).get("credential", digest) or {}
        pdf = certificate_pdf(
            credential, privacy.share_url(request, digest), revoked=anchored.get("revoked", False)
        )
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="certificate-{digest[:12]}.pdf"'},
        )

    return r
