"""Public pages: the community dashboard with its map of Tama and the islands, the credential
verifier (paste or upload a credential), and each stored credential's own page, which the
certificate's QR code opens, with its JSON and PDF."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from tsunagu.apps.community import api, catalog, issuing, views
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
        name = p["name_ja"] if lang == "ja" else p["name_en"]
        points.append({**p, "minutes": minutes, "r": radius, "name": name})
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
    def credential_page(request: Request, digest: str) -> Response:
        found = api.store(request).by_ref("credential", digest)
        anchored = state(request).get("credential", digest)
        if found is None or found[1] is None:
            return render(
                request,
                "community/credential.html",
                status_code=404 if anchored is None else 410,
                credential=None,
                anchored=anchored,
                digest=digest,
            )
        credential = found[1]
        report = issuing.verify(services(request).node, credential)
        user = optional_user(request)
        return render(
            request,
            "community/credential.html",
            credential=credential,
            report=report,
            anchored=anchored,
            digest=digest,
            may_revoke=user is not None
            and anchored is not None
            and user.org == anchored["org"]
            and user.has_role("organiser"),
            milestones=catalog.MILESTONES,
        )

    @r.get("/community/credentials/{digest}/certificate.pdf")
    def certificate(request: Request, digest: str) -> Response:
        found = api.store(request).by_ref("credential", digest)
        if found is None or found[1] is None:
            return render(request, "community/message.html", status_code=404, kind="not_found")
        anchored = state(request).get("credential", digest) or {}
        base = services(request).base_url(str(request.base_url))
        pdf = certificate_pdf(
            found[1],
            f"{base}/community/credentials/{digest}",
            revoked=anchored.get("revoked", False),
        )
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="certificate-{digest[:12]}.pdf"'},
        )

    return r
