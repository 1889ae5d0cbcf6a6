"""Setting a kiosk up once: ``/kiosk/setup/{code}``, the one-time link ``madoguchi add-kiosk`` prints.

Opened in the kiosk's own browser, the page names the kiosk and office and asks to confirm (a GET
changes nothing, so a chat app's link preview cannot use the link up). The confirming POST uses the
code once, keeps the kiosk's new device token in an HttpOnly cookie (``web/guessing.py``) and opens
the kiosk page. From then on its check-ins count misses against the kiosk, never its address; the
kiosk page renews the cookie on every load (browsers keep a cookie at most 400 days).
"""

from __future__ import annotations

from aiohttp import web

from queue_server.domain.model import NotFound
from queue_server.web.guessing import set_kiosk_cookie
from queue_server.web.keys import CONFIG, KIOSKS
from queue_server.web.pages import page_language, render_page


def _page(request: web.Request, *, office: str = "", name: str = "", used: bool = False) -> web.Response:
    response = render_page(request, "kiosk_setup.html", lang=page_language(request), catalog_sections=("kiosk_setup",),
                           office_name=request.app[CONFIG].offices[office].name if office else "", name=name,
                           used=used)
    response.headers["Cache-Control"] = "no-store"  # the page holds a one-time code
    # The confirming POST must carry this server's Origin (no-referrer, every page's default, sends "null").
    response.headers["Referrer-Policy"] = "same-origin"
    if used:
        response.set_status(404)
    return response


async def setup_page(request: web.Request) -> web.Response:
    """GET /kiosk/setup/{code} — which kiosk this link registers, and a button to confirm."""
    try:
        kiosk = await request.app[KIOSKS].pending(request.match_info["code"])
    except NotFound:
        return _page(request, used=True)
    return _page(request, office=kiosk.office, name=kiosk.name)


async def register(request: web.Request) -> web.Response:
    """POST /kiosk/setup/{code} — register this browser as the kiosk, then open the kiosk page."""
    try:
        kiosk, token = await request.app[KIOSKS].claim(request.match_info["code"])
    except NotFound:
        return _page(request, used=True)
    response = web.Response(status=303, headers={"Location": f"/kiosk/{kiosk.office}"})
    set_kiosk_cookie(request, response, token)
    return response


def setup_routes(app: web.Application) -> None:
    """Register the kiosk setup page."""
    app.router.add_get("/kiosk/setup/{code}", setup_page)
    app.router.add_post("/kiosk/setup/{code}", register)
