"""One error vocabulary and one envelope for HTTP and WebSocket answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from ..domain.model import DomainError

# Error code → HTTP status. WebSocket errors carry the same codes.
ERROR_STATUS: Final[Mapping[str, int]] = {
    "invalid_request": 400,
    "invalid_json": 400,
    "unsupported_media_type": 415,
    "unauthorized": 401,
    "forbidden": 403,
    "csrf_failed": 403,
    "origin_not_allowed": 403,
    "not_found": 404,
    "conflict": 409,
    "invalid_transition": 409,
    "counter_busy": 409,
    "counter_not_open": 409,
    "queue_empty": 409,
    "no_ticket": 409,
    "numbers_exhausted": 409,
    "procedure_paused": 409,
    "procedure_not_allowed": 409,
    "not_recalled_enough": 409,
    "office_closed": 409,
    "card_not_ready": 409,
    "no_task": 409,
    "slot_full": 409,
    "booking_only": 409,
    "booking_state": 409,
    "invalid_code": 400,
    "not_bookable": 422,
    "day_closed": 422,
    "slot_outside_hours": 422,
    "slot_past": 422,
    "booking_not_open": 422,
    "booking_closed": 422,
    "idempotency_key_reused": 422,
    "rate_limited": 429,
    "unavailable": 503,
    "printer_error": 503,
}
UNAVAILABLE_RETRY_SECONDS: Final = 1
"""``Retry-After`` of a 503: outages and a full sign-in backlog are usually over within moments."""


class ApiError(DomainError):
    """A request error raised by the web layer itself (bad field, sign-in needed, …)."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field


def error_body(error: DomainError) -> dict[str, Any]:
    """``{"error": {"code", "message"[, "field"][, "retry_after"][, "details"]}}`` (``retry_after`` in seconds)."""
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if field := getattr(error, "field", None):
        body["field"] = field
    if retry_after := getattr(error, "retry_after", None):
        body["retry_after"] = retry_after
    if details := getattr(error, "details", None):
        body["details"] = details  # what a page needs to say it in the visitor's language
    return {"error": body}


def dumps(data: Any) -> str:
    """Compact JSON, Japanese kept readable."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON answer."""
    return web.Response(text=dumps(data), status=status, content_type="application/json")


def error_response(error: DomainError) -> web.Response:
    """The HTTP answer for a domain or request error; a refusal to try again later says when."""
    response = json_response(error_body(error), status=ERROR_STATUS.get(error.code, 409 if error.code else 400))
    retry_after = getattr(error, "retry_after", None) or (UNAVAILABLE_RETRY_SECONDS if response.status == 503 else None)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response
