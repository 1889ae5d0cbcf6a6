"""The OpenAPI 3.1 document of the HTTP API, served at ``/api/openapi.json``."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from .messages import ERROR_STATUS, json_response
from .views import IDEMPOTENCY_KEY_LENGTH, LANGUAGES


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    content = {"application/json": {"schema": schema}} if schema else {}
    return {"description": description, **({"content": content} if content else {})}


_ERRORS: Final = {str(status): {"description": f"error ({', '.join(c for c, s in ERROR_STATUS.items() if s == status)})",
                                "content": {"application/json": {"schema": _ref("Error")}}}
                  for status in sorted(set(ERROR_STATUS.values()))}
_OFFICE: Final = {"name": "office", "in": "path", "required": True, "schema": {"type": "string"}}
_COUNTER: Final = {"name": "counter", "in": "path", "required": True, "schema": {"type": "string"}}
_TOKEN: Final = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"},
                 "description": "the unguessable status token from issuing"}
_IDEM: Final = {"name": "Idempotency-Key", "in": "header", "required": False,
                "schema": {"type": "string", "minLength": IDEMPOTENCY_KEY_LENGTH[0],
                           "maxLength": IDEMPOTENCY_KEY_LENGTH[1], "pattern": "^[\\x20-\\x7e]+$"},
                "description": "printable ASCII; a retried request with the same key is applied once and gets the "
                               "first answer"}
_CSRF: Final = {"name": "X-CSRF-Token", "in": "header", "required": True, "schema": {"type": "string"},
                "description": "csrf_token from sign-in (staff requests that change state)"}
_EMPTY: Final = {"type": "object", "additionalProperties": False}


def _op(summary: str, ok: dict[str, Any], *, params: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None, staff: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "parameters": params or [], "responses": {"200": ok, **_ERRORS}}
    if body is not None:
        op["requestBody"] = _body(body)
    if staff:
        op["security"] = [{"session": []}]
    return op


SPEC: Final[dict[str, Any]] = {
    "openapi": "3.1.0",
    "info": {"title": "madoguchi API", "version": "1",
             "description": "Numbered tickets, counter calls and live state of city-hall counters. "
                            "Live updates: WebSocket at /api/ws (see ARCHITECTURE.md, 'Message protocol')."},
    "components": {
        "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "madoguchi_session"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string", "enum": sorted(ERROR_STATUS)}, "message": {"type": "string"},
                               "field": {"type": "string"}}}}},
            "Ticket": {"type": "object", "required": ["number", "procedure", "state"], "properties": {
                "number": {"type": "string"}, "procedure": {"type": "string"},
                "day": {"type": "string", "description": "business day YYYYMMDD (numbers restart every day)"},
                "state": {"type": "string", "enum": ["waiting", "called", "serving", "done", "no_show", "cancelled", "expired"],
                          "description": "expired: still open when its business day ended"},
                "priority": {"type": "integer", "description": "staff answers only"},
                "issued_at": {"type": "integer", "description": "epoch ms"},
                "called_at": {"type": "integer"}, "counter": {"type": "string"}, "lang": {"type": "string"},
                "handed_over_from": {"type": "string", "description": "staff answers only"},
                "hand_over_reason": {"type": "string", "description": "staff answers only: free text, never public"},
                "prep": {"type": "string", "enum": ["pending", "ready"],
                         "description": "the card's preparation (procedures with a prepare stage): pending = not "
                                        "callable yet, its place in line kept"}}},
            "Counter": {"type": "object", "required": ["id", "status"], "properties": {
                "id": {"type": "string"}, "status": {"type": "string", "enum": ["open", "paused", "closed"]},
                "ticket": {"type": "string", "description": "DAY|NUMBER of the current ticket"},
                "since": {"type": "integer"}}},
            "CounterResult": {"type": "object", "properties": {"counter": _ref("Counter"), "ticket": _ref("Ticket")}},
            "Congestion": {"type": "object", "required": [
                "office", "name", "date", "open", "reception", "hours_today", "procedures", "seq"], "properties": {
                "office": {"type": "string"}, "name": {"type": "string"},
                "date": {"type": "string", "format": "date", "description": "the office's business day"},
                "open": {"type": "boolean", "description": "whether the office issues tickets now"},
                "reception": {"type": "string", "enum": ["open", "not_yet_open", "ended", "closed_today"],
                              "description": "why it is open or not: before today's hours, after them, "
                                             "or closed all day"},
                "hours_today": {"type": ["object", "null"], "description": "null when closed all day",
                                "properties": {"opens": {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}$"},
                                               "closes": {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}$"}}},
                "seq": {"type": "integer"},
                "procedures": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"},
                    "names": {"type": "object", "additionalProperties": {"type": "string"}},
                    "waiting": {"type": "integer"},
                    "estimate_minutes": {"type": ["number", "null"],
                                         "description": "median wait for a ticket taken now; null: no estimate"},
                    "low_minutes": {"type": ["number", "null"]}, "high_minutes": {"type": ["number", "null"]},
                    "past_closing": {"type": "boolean",
                                     "description": "the estimate says a ticket taken now would likely be called "
                                                    "after closing (never without an estimate)"},
                    "level": {"type": "string", "enum": ["low", "medium", "high", "unknown"]},
                    "paused": {"type": "boolean"},
                    "now_calling": {"type": "array", "items": {"type": "string"},
                                    "description": "numbers at a counter now (called or served), newest call first"},
                }}}}},
            "Issued": {"type": "object", "required": ["ticket", "token", "status_url", "ahead"], "properties": {
                "ticket": _ref("Ticket"), "token": {"type": "string"}, "status_url": {"type": "string"},
                "ahead": {"type": "integer"}}},
        },
    },
    "paths": {
        "/api/openapi.json": {"get": _op("This document", _ok("the OpenAPI document"))},
        "/api/offices": {"get": _op("Offices, their procedures, counters and hours today", _ok("offices"))},
        "/api/offices/{office}": {"get": _op("One office", _ok("office"), params=[_OFFICE])},
        "/api/offices/{office}/state": {"get": _op(
            "The live state: for anyone the lobby snapshot (calls, counts per procedure, estimates); for staff the "
            "counter snapshot (every waiting ticket)", _ok("state"), params=[_OFFICE])},
        "/api/offices/{office}/congestion": {"get": _op(
            "Congestion per procedure, open or not, hours today (CORS open)", _ok("congestion", _ref("Congestion")),
            params=[_OFFICE])},
        "/api/offices/{office}/service-model": {"get": _op(
            "Measured service times, the learned model and the current estimates (supervisor)", _ok("model"),
            params=[_OFFICE], staff=True)},
        "/api/congestion": {"get": _op(
            "Congestion of every office (CORS open)", _ok("{offices: [Congestion]}", {
                "type": "object", "properties": {"offices": {"type": "array", "items": _ref("Congestion")}}}))},
        "/api/offices/{office}/tickets": {"post": {**_op(
            "Take a numbered ticket (no sign-in; a priority class needs staff)", _ok("issued", _ref("Issued")),
            params=[_OFFICE, _IDEM],
            body={"type": "object", "additionalProperties": False, "required": ["procedure"], "properties": {
                "procedure": {"type": "string"}, "lang": {"type": "string", "enum": list(LANGUAGES)},
                "priority": {"type": "integer", "minimum": 0, "maximum": 9}}}),
            "responses": {"201": _ok("issued", _ref("Issued")), **_ERRORS}}},
        "/api/offices/{office}/tickets/{number}/cancel": {"post": _op(
            "Cancel a waiting or called ticket (staff)", _ok("cancelled"), staff=True, body=_EMPTY,
            params=[_OFFICE, {"name": "number", "in": "path", "required": True, "schema": {"type": "string"}}, _IDEM, _CSRF])},
        "/api/offices/{office}/counters/{counter}/{action}": {"post": _op(
            "A counter action: call-next, call {number}, recall, start, finish, no-show, "
            "hand-over {to, reason, category, keep_place}, open, pause, resume, close (staff of that counter)",
            _ok("the counter and its ticket", _ref("CounterResult")), staff=True,
            params=[_OFFICE, _COUNTER, {"name": "action", "in": "path", "required": True, "schema": {
                "type": "string", "enum": ["call-next", "call", "recall", "start", "finish", "no-show", "hand-over",
                                           "open", "pause", "resume", "close"]}}, _IDEM, _CSRF],
            body={"type": "object", "additionalProperties": False, "properties": {
                "number": {"type": "string"}, "to": {"type": "string"}, "reason": {"type": "string", "maxLength": 200},
                "category": {"type": "string", "description": "hand-over: one of [calling] hand_over_categories "
                                                              "(what the archive keeps; the reason text is not archived)"},
                "keep_place": {"type": "boolean"}}})},
        "/api/offices/{office}/notice": {"put": _op(
            "The lobby display's notice line (supervisor)", _ok("notice"), staff=True, params=[_OFFICE, _CSRF],
            body={"type": "object", "additionalProperties": False, "required": ["text"],
                  "properties": {"text": {"type": "string", "maxLength": 200}}})},
        "/api/offices/{office}/procedures/{procedure}/{action}": {"post": _op(
            "Stop or resume issuing tickets for a procedure (supervisor)", _ok("procedure"), staff=True, body=_EMPTY,
            params=[_OFFICE, {"name": "procedure", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "action", "in": "path", "required": True, "schema": {"type": "string", "enum": ["pause", "resume"]}},
                    _CSRF])},
        "/api/tickets/{token}": {"get": _op("A visitor's own ticket: state, people ahead, numbers being called",
                                            _ok("ticket status"), params=[_TOKEN])},
        "/api/tickets/{token}/cancel": {"post": _op("The visitor leaves the line", _ok("cancelled"), params=[_TOKEN, _IDEM],
                                                    body=_EMPTY)},
        "/api/session": {
            "post": _op("Staff sign-in; sets the HttpOnly session cookie and returns the CSRF token", _ok("session"),
                        body={"type": "object", "additionalProperties": False, "required": ["username", "password"],
                              "properties": {"username": {"type": "string"}, "password": {"type": "string"}}}),
            "get": _op("The signed-in staff member", _ok("session"), staff=True),
            "delete": _op("Sign out", _ok("signed out"), staff=True, params=[_CSRF]),
        },
        "/api/ws": {"get": {"summary": "WebSocket: subscribe to lobby, counter, ticket, congestion or backoffice views",
                            "responses": {"101": {"description": "switching protocols"}}}},
    },
}


OPENAPI_PATHS: Final = web.AppKey("openapi_paths", dict)


def add_paths(app: web.Application, paths: dict[str, Any]) -> None:
    """Document more API paths (front-end packages register their own endpoints here)."""
    app.setdefault(OPENAPI_PATHS, {}).update(paths)


def operation(summary: str, ok_description: str, *, params: list[dict[str, Any]] | None = None,
              body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One documented operation with the shared error answers (for ``add_paths``)."""
    return _op(summary, _ok(ok_description), params=params, body=body)


async def get_openapi(request: web.Request) -> web.Response:
    """GET /api/openapi.json"""
    return json_response({**SPEC, "paths": {**SPEC["paths"], **request.app.get(OPENAPI_PATHS, {})}})
