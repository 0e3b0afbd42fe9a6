"""The FastAPI application factory."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from tsunagu import __version__
from tsunagu.errors import InternalError, TsunaguError
from tsunagu.identity.private import PrivateStore
from tsunagu.node.node import Node
from tsunagu.platform import App
from tsunagu.validation_text import REQUEST_PARTS, explain_all, summary
from tsunagu.web.deps import language, render
from tsunagu.web.fasttx import PATH as TX_PATH
from tsunagu.web.fasttx import FastTx
from tsunagu.web.i18n import Catalog
from tsunagu.web.limits import BodyLimit
from tsunagu.web.services import Services

WEB = Path(__file__).parent
PROBLEM = "application/problem+json"


def build_templates(apps: list[App]) -> jinja2.Environment:
    paths = [str(WEB / "templates")] + [str(a.templates) for a in apps if a.templates]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(paths),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    from tsunagu.web.filters import register_filters

    register_filters(env)
    return env


def build_catalog(apps: list[App]) -> Catalog:
    catalog = Catalog()
    catalog.load_dir(WEB / "locales")
    for app in apps:
        if app.locales:
            catalog.load_dir(app.locales, app.name)
    return catalog


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _problem(request: Request, error: TsunaguError) -> Response:
    if _is_api(request):
        lang = "ja" if request.headers.get("accept-language", "").startswith("ja") else "en"
        return JSONResponse(
            error.problem(lang, instance=request.url.path),
            status_code=error.status,
            media_type=PROBLEM,
        )
    return render(
        request,
        "error.html",
        status_code=error.status,
        error=error,
        message=error.message(language(request)),
    )


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
TX_ERRORS = {
    "400": "Refused at admission, nothing written: `malformed_json`, "
    "`malformed_transaction`, `wrong_chain`, `bad_signature` (docs/protocol.md 3.5).",
    "403": "`unknown_signer`: the signer is not a registered, active member key.",
    "409": "`replayed_seq` at admission (with `last_seq`, nothing written), or the contract "
    "refused the transaction: its code, with `tx_id`, `height` and `index` (the transaction "
    "is in that block with a `rejected` result and its seq is spent).",
    "413": "`body_too_large`: the body is over 262,144 bytes.",
    "503": "`unavailable`: the node cannot commit now, or the block took over 30 s; the "
    "transaction may still be committed (look it up by its id).",
}


def problem_schemas() -> dict[str, Any]:
    """The RFC 9457 problem every error answer is (docs/protocol.md 7.1), as OpenAPI schemas."""
    text = {"type": "string"}
    integer = {"type": "integer"}
    return {
        "Problem": {
            "title": "Problem",
            "description": "RFC 9457 problem details (application/problem+json). Branch on "
            "`code`; `detail` is in the request's language (Accept-Language `ja…`: Japanese).",
            "type": "object",
            "required": ["type", "title", "status", "detail", "code", "detail_en", "detail_ja"],
            "properties": {
                "type": {
                    "type": "string",
                    "format": "uri",
                    "description": "https://tsunagu.example/problems/<code>",
                },
                "title": {"type": "string", "description": "the code with spaces"},
                "status": {"type": "integer", "description": "the HTTP status"},
                "detail": text,
                "detail_en": text,
                "detail_ja": text,
                "code": {"type": "string", "description": "the stable machine code"},
                "instance": {"type": "string", "description": "the request path (not on 413)"},
                "errors": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/ProblemFieldError"},
                    "description": "validation details (invalid_input, malformed_json)",
                },
                "last_seq": {**integer, "description": "replayed_seq: the highest seq used"},
                "tx_id": {**text, "description": "a contract refused a recorded transaction"},
                "height": integer,
                "index": integer,
                "sha256": {**text, "description": "unknown document"},
            },
            "additionalProperties": True,
        },
        "ProblemFieldError": {
            "title": "ProblemFieldError",
            "type": "object",
            "required": ["loc", "msg", "type", "msg_en", "msg_ja"],
            "properties": {
                "loc": {"type": "array", "items": text},
                "msg": {**text, "description": "as pydantic reports it"},
                "type": {**text, "description": "pydantic's error type"},
                "msg_en": {**text, "description": "what the field must be, in English"},
                "msg_ja": {**text, "description": "what the field must be, in Japanese"},
            },
        },
    }


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM: {"schema": dict(PROBLEM_REF)}}}


def use_problem_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Describe errors in ``schema`` (an OpenAPI document) as the API answers them: every
    ``422`` as a problem (not FastAPI's ``HTTPValidationError``), and the refusals of
    ``POST /api/v1/tx``. Changes ``schema`` in place and returns it."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas.update(problem_schemas())
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.get("responses", {})
            if "422" in responses:
                json_body = "application/json" in operation.get("requestBody", {}).get(
                    "content", {}
                )
                responses["422"] = _problem_response(
                    "`invalid_input`: wrong types, missing or unknown fields, or out-of-range "
                    "parameters"
                    + ("; also a body not sent as application/json." if json_body else ".")
                )
            if path == TX_PATH and method == "post":
                for status, description in TX_ERRORS.items():
                    responses[status] = _problem_response(description)
                operation["responses"] = dict(sorted(responses.items()))
    return schema


class TsunaguAPI(FastAPI):
    """The FastAPI application, with client-signed writes (``POST /api/v1/tx``) taken before
    its middleware stack: they go to :class:`FastTx`, which hands anything it does not fully
    understand back to the stack (see fasttx.py)."""

    fast_tx: FastTx | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_tx
        if (
            fast is not None
            and scope["type"] == "http"
            and scope["path"] == TX_PATH
            and scope["method"] == "POST"
        ):
            await fast(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document, with the error answers :func:`use_problem_schema` describes."""
        if not self.openapi_schema:
            self.openapi_schema = use_problem_schema(super().openapi())
        return self.openapi_schema


def create_app(
    node: Node,
    private: PrivateStore,
    apps: list[App],
    public_base_url: str | None = None,
) -> FastAPI:
    app = TsunaguAPI(
        title="Tsunagu つなぐ",
        version=__version__,
        description=(
            "Consortium ledger API for the municipalities of Tokyo's Tama and island region. "
            "Errors are RFC 9457 problem+json. Hashes are lowercase hex. "
            "See docs/protocol.md for the exact byte formats."
        ),
        docs_url=None,  # served below from vendored Swagger UI: nodes may have no Internet
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.services = Services(
        node=node,
        private=private,
        apps=apps,
        catalog=build_catalog(apps),
        templates=build_templates(apps),
        public_base_url=public_base_url,
    )
    for tsunagu_app in apps:
        if tsunagu_app.on_start:
            tsunagu_app.on_start(app.state.services)
    app.add_middleware(BodyLimit)
    app.fast_tx = FastTx(partial(FastAPI.__call__, app), node=lambda: app.state.services.node)
    for tsunagu_app in apps:
        if tsunagu_app.static:
            app.mount(
                f"/static/{tsunagu_app.name}",
                StaticFiles(directory=tsunagu_app.static),
                name=f"static-{tsunagu_app.name}",
            )
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Tsunagu API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
            oauth2_redirect_url="/static/vendor/swagger-ui/oauth2-redirect.html",
        )

    @app.exception_handler(TsunaguError)
    async def tsunagu_error(request: Request, exc: TsunaguError) -> Response:
        return _problem(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        raw = exc.errors()
        messages = explain_all(raw, REQUEST_PARTS)  # per field, in both languages
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": e.get("msg"),
                "type": e.get("type"),
                "msg_en": m.en,
                "msg_ja": m.ja,
            }
            for e, m in zip(raw, messages, strict=True)
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            error = TsunaguError(
                "The body is not valid JSON.",
                "送信された内容が正しいJSONではありません。",
                code="malformed_json",
                status=400,
                errors=errors,
            )
        else:
            error = TsunaguError(
                summary(messages, "en"),
                summary(messages, "ja"),
                code="invalid_input",
                status=422,
                errors=errors,
            )
        return _problem(request, error)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> Response:
        return _problem(request, InternalError())

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        messages = {
            404: ("Not found.", "ページが見つかりません。"),
            405: ("This method is not allowed here.", "この操作はここでは使えません。"),
        }
        en, ja = messages.get(exc.status_code, (str(exc.detail), str(exc.detail)))
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _problem(request, TsunaguError(en, ja, code=code, status=exc.status_code))

    from tsunagu.web import api, consortium, pages

    app.include_router(api.router())
    app.include_router(pages.verify_api_router())
    app.include_router(consortium.router())
    for tsunagu_app in apps:
        if tsunagu_app.api:
            app.include_router(tsunagu_app.api())
    for tsunagu_app in apps:
        if tsunagu_app.pages:
            app.include_router(tsunagu_app.pages())
    app.include_router(pages.router())
    return app
