"""One error base for the whole platform.

Every error carries a stable machine code, an HTTP status and a message in English and
Japanese, so the API can render it as RFC 9457 problem+json and pages can show it in the
user's language without a lookup table elsewhere.
"""

from __future__ import annotations

from typing import Any


class TsunaguError(Exception):
    """An error a user or client can act on."""

    code = "error"
    status = 400
    message_en = "The request could not be processed."
    message_ja = "リクエストを処理できませんでした。"

    def __init__(
        self,
        message_en: str | None = None,
        message_ja: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        **extra: Any,
    ) -> None:
        if message_en is not None:
            self.message_en = message_en
        if message_ja is not None:
            self.message_ja = message_ja
        elif message_en is not None and type(self).message_ja == TsunaguError.message_ja:
            self.message_ja = message_en
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra
        super().__init__(self.message_en)

    def message(self, lang: str) -> str:
        return self.message_ja if lang == "ja" else self.message_en

    def problem(self, lang: str = "en", instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 problem details object for this error."""
        body: dict[str, Any] = {
            "type": f"https://tsunagu.example/problems/{self.code}",
            "title": self.code.replace("_", " "),
            "status": self.status,
            "detail": self.message(lang),
            "code": self.code,
            "detail_en": self.message_en,
            "detail_ja": self.message_ja,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class InvalidInput(TsunaguError):
    code = "invalid_input"
    status = 422
    message_en = "The input is not valid."
    message_ja = "入力内容が正しくありません。"


class NotFound(TsunaguError):
    code = "not_found"
    status = 404
    message_en = "Not found."
    message_ja = "見つかりません。"


class Unauthorized(TsunaguError):
    code = "unauthorized"
    status = 401
    message_en = "Log in first."
    message_ja = "ログインしてください。"


class Forbidden(TsunaguError):
    code = "forbidden"
    status = 403
    message_en = "You are not allowed to do this."
    message_ja = "この操作を行う権限がありません。"


class Conflict(TsunaguError):
    code = "conflict"
    status = 409
    message_en = "This conflicts with the current state."
    message_ja = "現在の状態と矛盾するため処理できません。"


class Unavailable(TsunaguError):
    code = "unavailable"
    status = 503
    message_en = "The ledger cannot accept writes right now. Try again shortly."
    message_ja = "現在、台帳への書き込みができません。しばらくしてから再度お試しください。"


class Rejected(TsunaguError):
    """A contract refused a transaction; the reason is recorded in the block."""

    code = "rejected"
    status = 409
    message_en = "The transaction was rejected."
    message_ja = "取引は拒否されました。"


class InternalError(TsunaguError):
    """A bug: still answered in the API's own format, never a bare text/plain 500."""

    code = "internal_error"
    status = 500
    message_en = "Internal error. The request may not have been processed; try again."
    message_ja = "内部エラーが発生しました。処理されていない可能性があります。再度お試しください。"
