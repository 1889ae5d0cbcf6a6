"""Reading JSON request bodies strictly: unknown fields, wrong types and bad values name the field."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ApiError("invalid_json", f"the body is not valid JSON: {e}") from None
    return check_fields(data, schema)


def max_length(n: int) -> Callable[[str], str | None]:
    """A check that a string is at most ``n`` characters."""
    return lambda v: None if len(v) <= n else f"must be at most {n} characters"


def one_of(*allowed: str) -> Callable[[str], str | None]:
    """A check that a string is one of ``allowed``."""
    return lambda v: None if v in allowed else f"must be one of {', '.join(allowed)}"
