"""Who is asking: session cookies, cross-site protection, and the checks on staff actions."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from ..config import Office
from ..domain.model import Role, can_act_at
from ..store.accounts import Staff
from .keys import ACCOUNTS, CONFIG
from .messages import ApiError

SESSION_COOKIE: Final = "madoguchi_session"
CSRF_HEADER: Final = "X-CSRF-Token"
STAFF_KEY: Final = web.RequestKey("staff", object)
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def origin_allowed(request: web.Request) -> bool:
    """A missing Origin (not a browser) or our own / a configured origin is allowed."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    own = f"{request.scheme}://{request.host}"
    return origin.rstrip("/") in (own, *request.app[CONFIG].server.allowed_origins)


async def current_staff(request: web.Request) -> Staff | None:
    """The signed-in staff member of this request, if any (looked up once per request)."""
    if STAFF_KEY not in request:
        session_id = request.cookies.get(SESSION_COOKIE)
        request[STAFF_KEY] = await request.app[ACCOUNTS].session(session_id) if session_id else None
    return request[STAFF_KEY]  # type: ignore[return-value]


async def require_staff(request: web.Request, *roles: Role) -> Staff:
    """The signed-in staff member, who must have one of ``roles`` (any role if none given).

    State-changing requests also need the session's CSRF token in the ``X-CSRF-Token`` header,
    so another site cannot make a signed-in browser act.
    """
    staff = await current_staff(request)
    if staff is None:
        raise ApiError("unauthorized", "sign in first (POST /api/session)")
    if request.method in UNSAFE_METHODS and request.headers.get(CSRF_HEADER) != staff.csrf:
        raise ApiError("csrf_failed", f"missing or wrong {CSRF_HEADER} header; use the csrf_token from sign-in")
    if roles and staff.role not in roles:
        raise ApiError("forbidden", f"this needs the role {' or '.join(r.value for r in roles)}; you are {staff.role.value}")
    return staff


async def require_counter_staff(request: web.Request, office: Office, counter_id: str) -> Staff:
    """Staff allowed to work at this counter: its own kind of staff, or a supervisor."""
    staff = await require_staff(request)
    counter = office.counters.get(counter_id)
    if counter is not None and not can_act_at(staff.role, counter):
        raise ApiError("forbidden", f"counter {counter_id} is staffed by {counter.staff.value} staff; you are {staff.role.value}")
    return staff
