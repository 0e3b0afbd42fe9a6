"""Platform pages: portal, login, language switch, account, block explorer, chain verification."""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from tsunagu.errors import NotFound, TsunaguError
from tsunagu.identity.private import SESSION_SECONDS
from tsunagu.ledger import merkle
from tsunagu.node import verify
from tsunagu.node.executor import MEMBER_NS
from tsunagu.node.store import StateStore
from tsunagu.platform import platform_contracts
from tsunagu.web.deps import (
    LANG_COOKIE,
    SESSION_COOKIE,
    check_csrf,
    language,
    optional_user,
    render,
    services,
)
from tsunagu.web.i18n import LANGUAGES
from tsunagu.web.services import Services

PAGE_SIZE = 20
KEPT_JOBS = 20  # finished verification jobs remembered for their pages
_TX_ID = re.compile(r"[0-9a-f]{64}")
_HEIGHT = re.compile(r"[0-9]{1,18}")


def _safe_next(target: str | None) -> str:
    # Only local paths: never redirect a user off this node. Browsers read "/\" as "//".
    if (
        target
        and target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and target.isprintable()
    ):
        return target
    return "/"


def _after_login(target: str | None) -> str:
    target = _safe_next(target)
    return "/" if target.startswith("/login") else target


class Names:
    """Organisation names for keys and nodes, read from committed state once per request.

    Only organisations are named: a person's name lives in one node's private store and never
    appears in the explorer.
    """

    def __init__(self, state: StateStore, lang: str) -> None:
        self._state = state
        self._lang = lang
        self._orgs: dict[str, str | None] = {}

    def org(self, org_id: str | None) -> str | None:
        if org_id is None:
            return None
        if org_id not in self._orgs:
            org = self._state.get("identity.org", org_id)
            self._orgs[org_id] = None if org is None else org.get(f"name_{self._lang}") or org_id
        return self._orgs[org_id]

    def of_key(self, key_id: str) -> str | None:
        member = self._state.get(MEMBER_NS, key_id)
        return None if member is None else self.org(member.get("org"))

    def of_node(self, node_id: str) -> str | None:
        node = self._state.get("identity.node", node_id)
        return None if node is None else self.org(node.get("org"))


# -- chain verification jobs ------------------------------------------------------------------


@dataclass
class VerifyJob:
    """One run of :func:`tsunagu.node.verify.verify_chain` in a background thread."""

    id: str
    total: int
    done: int = 0
    finished: bool = False
    report: verify.VerifyReport | None = None
    started: float = field(default_factory=time.monotonic)

    def to_json(self) -> dict[str, Any]:
        report = self.report
        return {
            "done": self.done,
            "total": self.total,
            "finished": self.finished,
            "ok": None if report is None else report.ok,
            "height": None if report is None else report.height,
            "problem": None if report is None else report.problem,
            "blocks": None if report is None else report.blocks,
            "transactions": None if report is None else report.transactions,
            "seconds": None if report is None else round(report.seconds, 3),
        }


_jobs_lock = threading.Lock()


def _run(job: VerifyJob, svc: Services) -> None:
    def progress(done: int, total: int) -> None:
        job.done, job.total = done, total

    try:
        # workers=0: forking this multi-threaded server is unsafe (a lock another thread holds
        # at fork time stays held in the child); the CLI's `tsunagu verify` uses processes.
        job.report = verify.verify_chain(
            svc.node.data_dir, platform_contracts(svc.apps), progress=progress, workers=0
        )
    except Exception as exc:  # a crash is a failed verification, never a job stuck running
        job.report = verify.VerifyReport(
            False, None, f"verification stopped: {exc!r}", job.done, 0, 0.0
        )
    job.finished = True


def start_verify(svc: Services) -> VerifyJob:
    """Start verifying this node's chain, or join the run already going (one at a time)."""
    with _jobs_lock:
        jobs = [j for j in svc.jobs.values() if isinstance(j, VerifyJob)]
        running = next((j for j in jobs if not j.finished), None)
        if running is not None:
            return running
        for old in sorted(jobs, key=lambda j: j.started)[: max(0, len(jobs) - KEPT_JOBS + 1)]:
            del svc.jobs[old.id]
        head = svc.node.head
        job = VerifyJob(secrets.token_hex(8), total=0 if head is None else head.height + 1)
        svc.jobs[job.id] = job
    threading.Thread(target=_run, args=(job, svc), name=f"verify-{job.id}", daemon=True).start()
    return job


def find_job(svc: Services, job_id: str) -> VerifyJob:
    job = svc.jobs.get(job_id)
    if not isinstance(job, VerifyJob):
        raise NotFound("No such verification.", "その検証は見つかりません。")
    return job


# -- routes ---------------------------------------------------------------------------------


def _no_block(height: int | str) -> NotFound:
    return NotFound(f"There is no block {height}.", f"ブロック {height} はありません。")


def _no_tx() -> NotFound:
    return NotFound("There is no such transaction.", "その取引は見つかりません。")


def router() -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/")
    def portal(request: Request) -> Response:
        node = services(request).node
        status = node.status() if node.head is not None else None
        return render(request, "portal.html", status=status)

    @r.get("/login")
    def login_form(request: Request, next: str | None = None) -> Response:
        return render(request, "login.html", next=_after_login(next), error=None)

    @r.post("/login")
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=256)],
        next: Annotated[str, Form(max_length=500)] = "/",
    ) -> Response:
        # No CSRF token here: there is no session yet to bind one to.
        private = services(request).private
        try:
            user = private.authenticate(username, password)
        except TsunaguError as exc:
            return render(
                request,
                "login.html",
                status_code=exc.status,
                next=_after_login(next),
                error=exc.message(language(request)),
                username=username,
            )
        response = RedirectResponse(_after_login(next), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            private.issue_token(user),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="lax",
        )
        return response

    @r.post("/logout")
    def logout(request: Request, csrf: Annotated[str | None, Form()] = None) -> Response:
        check_csrf(request, csrf)
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            services(request).private.revoke_token(token)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @r.get("/lang/{lang}")
    def switch_language(request: Request, lang: str, next: str | None = None) -> Response:
        response = RedirectResponse(_safe_next(next), status_code=303)
        if lang in LANGUAGES:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
        return response

    @r.get("/account")
    def account(request: Request) -> Response:
        user = optional_user(request)
        if user is None:
            return RedirectResponse("/login?next=/account", status_code=303)
        names = Names(services(request).node.store.state(), language(request))
        return render(request, "account.html", org_name=names.org(user.org))

    @r.get("/explorer")
    def explorer(request: Request, before: Annotated[int | None, Query(ge=1)] = None) -> Response:
        svc = services(request)
        status = svc.node.status()
        headers = svc.node.store.blocks_desc(PAGE_SIZE, before)
        if before is not None and not headers:
            raise _no_block(before - 1)
        top, bottom = headers[0].height, headers[-1].height
        newer = None  # the page above this one, if this is not the newest
        if top < status["height"]:
            above = top + PAGE_SIZE + 1
            newer = "/explorer" if above > status["height"] else f"/explorer?before={above}"
        return render(
            request,
            "explorer/index.html",
            status=status,
            blocks=headers,
            names=Names(svc.node.store.state(), language(request)),
            newer=newer,
            older=f"/explorer?before={bottom}" if bottom > 0 else None,
        )

    @r.get("/explorer/find")
    def find(request: Request, q: Annotated[str, Query(max_length=100)] = "") -> Response:
        query = q.strip().lower()
        if _HEIGHT.fullmatch(query):
            return RedirectResponse(f"/explorer/blocks/{int(query)}", status_code=303)
        if _TX_ID.fullmatch(query):
            return RedirectResponse(f"/explorer/tx/{query}", status_code=303)
        raise NotFound(
            "Enter a block height (a number) or a transaction id (64 hexadecimal characters).",
            "ブロック高（数字）または取引ID（16進数64文字）を入力してください。",
        )

    @r.get("/explorer/blocks/{height}")
    def block(request: Request, height: str) -> Response:
        svc = services(request)
        found = svc.node.store.block(int(height)) if _HEIGHT.fullmatch(height) else None
        if found is None:
            raise _no_block(height)
        first = found.header.tree_size - found.header.tx_count
        head = svc.node.head
        return render(
            request,
            "explorer/block.html",
            block=found,
            rows=list(enumerate(zip(found.txs, found.results, strict=True), start=first)),
            names=Names(svc.node.store.state(), language(request)),
            has_next=head is not None and found.height < head.height,
        )

    @r.get("/explorer/tx/{tx_id}")
    def tx(request: Request, tx_id: str) -> Response:
        svc = services(request)
        tx_id = tx_id.lower()
        stored = svc.node.store.tx(tx_id) if _TX_ID.fullmatch(tx_id) else None
        if stored is None:
            raise _no_tx()
        found = svc.node.store.header(stored.height)
        if found is None:  # the row and its block are written in one SQLite transaction
            raise _no_tx()
        header = found[0]
        return render(
            request,
            "explorer/tx.html",
            stored=stored,
            header=header,
            position=stored.log_index - (header.tree_size - header.tx_count),
            leaf_hash=merkle.leaf_hash(stored.tx.leaf).hex(),
            payload=json.dumps(stored.tx.payload, ensure_ascii=False, indent=2, sort_keys=True),
            names=Names(svc.node.store.state(), language(request)),
        )

    @r.post("/explorer/verify")
    def verify_start(request: Request, csrf: Annotated[str | None, Form()] = None) -> Response:
        check_csrf(request, csrf or request.headers.get("x-csrf-token"))
        job = start_verify(services(request))
        if request.headers.get("hx-request"):
            return render(request, "explorer/_verify_job.html", job=job, oob=True)
        return RedirectResponse(f"/explorer/verify/{job.id}", status_code=303)

    @r.get("/explorer/verify/{job_id}")
    def verify_page(request: Request, job_id: str) -> Response:
        job = find_job(services(request), job_id)
        if request.headers.get("hx-request"):
            return render(request, "explorer/_verify_job.html", job=job, oob=True)
        return render(request, "explorer/verify.html", job=job)

    return r


def verify_api_router() -> APIRouter:
    """``/api/v1/verify``: re-check this node's whole chain in the background and poll it."""
    r = APIRouter(prefix="/api/v1", tags=["ledger"])

    @r.post("/verify", status_code=202)
    def verify_start(request: Request) -> JSONResponse:
        """Start verifying the chain (or join the verification already running).

        Answers ``{"job": id}``; poll ``GET /api/v1/verify/{job}``."""
        job = start_verify(services(request))
        return JSONResponse({"job": job.id}, status_code=202)

    @r.get("/verify/{job}")
    def verify_status(request: Request, job: str) -> dict[str, Any]:
        """Progress in blocks (``done`` of ``total``) and, once ``finished``, the outcome:
        ``ok``, the first bad ``height`` and its ``problem``, the ``blocks`` and
        ``transactions`` checked and the ``seconds`` it took."""
        return find_job(services(request), job).to_json()

    return r
