"""Who a booking-code lookup counts against: the registered kiosk that sent it, else the client's address.

The one place the booking handlers (``bookings.py``, ``checkin.py``) read who is guessing; the address
itself comes from ``client_address.client_address`` (the client behind a trusted proxy). A kiosk is known by the device token in its HttpOnly cookie
(``store/kiosks.py``), and only at its own office's check-in: an unknown, revoked or forged token, or a
kiosk's token sent anywhere else, counts as the address.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from ..store.kiosks import Kiosk
from ..store.ratelimit import Subject
from .keys import CONFIG, KIOSKS
from .client_address import client_address

KIOSK_COOKIE: Final = "madoguchi_kiosk"
KIOSK_COOKIE_DAYS: Final = 400  # the longest a browser keeps a cookie; the kiosk page renews it on each load


async def registered_kiosk(request: web.Request, office: str) -> Kiosk | None:
    """The kiosk of ``office`` whose device token this request carries, if any."""
    token = request.cookies.get(KIOSK_COOKIE)
    kiosk = await request.app[KIOSKS].find(token) if token else None
    return kiosk if kiosk is not None and kiosk.office == office else None


async def booking_subject(request: web.Request, office: str | None = None) -> Subject:
    """The kiosk (at ``office``'s check-in) or the address a lookup's misses count against."""
    kiosk = await registered_kiosk(request, office) if office is not None else None
    return Subject("kiosk", kiosk.id) if kiosk is not None else Subject("address", client_address(request))


def set_kiosk_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    """Keep a kiosk's device token in its browser: HttpOnly (no script reads it), same-site only."""
    response.set_cookie(KIOSK_COOKIE, token, httponly=True, samesite="Strict", path="/",
                        secure=request.app[CONFIG].server.secure_cookies, max_age=KIOSK_COOKIE_DAYS * 86_400)
