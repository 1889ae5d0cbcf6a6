"""Reading JSON request bodies strictly: unknown fields, wrong types and bad values name the field.

``parse_json`` is the one JSON reader for HTTP bodies and WebSocket messages: whatever a client
sends, it either returns plain data every later step can store and echo, or raises ``invalid_json``
saying what is wrong (nesting too deep, an integer too long, text that is not valid Unicode).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from .messages import ApiError


@dataclass(frozen=True, slots=True)
class Field:
    """One allowed body field: its JSON type, whether required, and an optional value check."""

    kind: type | tuple[type, ...]
    required: bool = False
    check: Callable[[Any], str | None] | None = None
    default: Any = None


Schema = Mapping[str, Field]

MAX_INT_DIGITS: Final = 15
"""Integers in the API are small (ids, priorities); 15 digits keeps them exact in JavaScript too."""
MAX_DEPTH: Final = 16
"""No message of the API nests more than a few levels; deeper is an attack on the parser."""


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise ApiError("invalid_json", f"a number has {digits} digits; at most {MAX_INT_DIGITS} are accepted")
    return int(text)


def _check_text(value: Any, where: str) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH`` and text Redis cannot store (lone surrogates)."""
    stack: list[tuple[Any, int, str]] = [(value, 0, where)]
    while stack:
        item, depth, field = stack.pop()
        if depth > MAX_DEPTH:
            raise ApiError("invalid_json", f"the {where} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, str):
            _check_unicode(item, field)
        elif isinstance(item, dict):
            for key, inner in item.items():
                _check_unicode(key, field if depth else where)
                stack.append((inner, depth + 1, key if depth == 0 else field))
        elif isinstance(item, list):
            stack.extend((inner, depth + 1, field) for inner in item)


def _check_unicode(text: str, field: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Only the JSON escape \ud800…\udfff without its pair makes such a string; name it, don't echo it.
        raise ApiError("invalid_request", f"field {field!r} contains a lone surrogate (\\ud800–\\udfff), "
                                          "which is not a character; send whole characters", field=field) from None


def parse_json(raw: bytes | str, where: str = "body") -> Any:
    """Decode a client's JSON, or raise ``invalid_json``/``invalid_request`` naming the problem."""
    try:
        data = json.loads(raw, parse_int=_parse_int)
    except RecursionError:
        raise ApiError("invalid_json", f"the {where} is nested more than {MAX_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise ApiError("invalid_json", f"the {where} is not valid JSON: {e}") from None
    _check_text(data, where)
    return data


def check_fields(data: Any, schema: Schema, where: str = "body") -> dict[str, Any]:
    """Validate a decoded JSON object against ``schema``; returns it with defaults filled in."""
    if not isinstance(data, dict):
        raise ApiError("invalid_request", f"the {where} must be a JSON object", field=where)
    for name in data:
        if name not in schema:
            allowed = ", ".join(schema) or "none"
            raise ApiError("invalid_request", f"unknown field {name!r}; allowed fields: {allowed}", field=name)
    out: dict[str, Any] = {}
    for name, spec in schema.items():
        if name not in data:
            if spec.required:
                raise ApiError("invalid_request", f"field {name!r} is required", field=name)
            out[name] = spec.default
            continue
        value = data[name]
        kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join({str: "a string", int: "an integer", bool: "true or false", float: "a number",
                                 dict: "an object", list: "an array"}.get(k, k.__name__) for k in kinds)
            raise ApiError("invalid_request", f"field {name!r} must be {names}, got {json.dumps(value)[:40]}", field=name)
        if isinstance(value, str):
            _check_unicode(value, name)  # query strings and other sources than ``parse_json``
        if spec.check is not None and (problem := spec.check(value)) is not None:
            raise ApiError("invalid_request", f"field {name!r} {problem}", field=name)
        out[name] = value
    return out


async def read_body(request: web.Request, schema: Schema) -> dict[str, Any]:
    """The request's JSON body checked against ``schema``; an empty body counts as ``{}``."""
    raw = await request.read()
    if not raw.strip():
        data: Any = {}
    else:
        if request.content_type != "application/json":
            raise ApiError("unsupported_media_type", "send the body as JSON with Content-Type: application/json")
        data = parse_json(raw)
    return check_fields(data, schema)


def max_length(n: int) -> Callable[[str], str | None]:
    """A check that a string is at most ``n`` characters."""
    return lambda v: None if len(v) <= n else f"must be at most {n} characters"


def one_of(*allowed: str) -> Callable[[str], str | None]:
    """A check that a string is one of ``allowed``."""
    return lambda v: None if v in allowed else f"must be one of {', '.join(allowed)}"
