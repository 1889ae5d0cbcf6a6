"""The booking pages' frames: what an unknown office or a malformed link gets, the QR code's headers
(the picture carries the secret), and what each page is told about the office calendar."""

from __future__ import annotations

import datetime as dt
import json
import re

from aiohttp.test_utils import TestClient

from booking.routes import calendar_marks
from queue_server.config import Config

SECRET = "Q" * 22


def page_data(html: str) -> dict[str, object]:
    found = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', html, re.S)
    assert found, "no page data"
    return json.loads(found.group(1))


async def test_an_unknown_office_or_a_malformed_link_is_not_found(client: TestClient) -> None:
    for path in ("/book/nowhere", "/book/main/b/short", "/book/main/b/" + "x" * 65, "/book/nowhere/b/" + SECRET,
                 "/book/main/b/has.dot.in.it.xxxxxxxx/qr.svg"):
        response = await client.get(path)
        assert response.status == 404, path


async def test_the_link_page_and_its_qr_code_are_never_stored_by_a_cache(client: TestClient) -> None:
    page = await client.get(f"/book/main/b/{SECRET}")
    assert page.status == 200
    assert page.headers["Cache-Control"] == "private, no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    qr = await client.get(f"/book/main/b/{SECRET}/qr.svg")
    assert qr.status == 200 and qr.content_type == "image/svg+xml"
    assert qr.headers["Cache-Control"] == "private, no-store"
    assert (await qr.text()).lstrip().startswith("<svg")


async def test_the_pages_get_the_bookable_procedures_and_only_offices_that_take_bookings(client: TestClient) -> None:
    data = page_data(await (await client.get("/book/main")).text())
    assert [(p["id"], p["reference"]) for p in data["procedures"]] == [("pickup", True)]
    listing = await (await client.get("/book")).text()
    assert 'href="/book/main?lang=ja"' in listing
    desk = page_data(await (await client.get("/callcenter")).text())
    assert [o["id"] for o in desk["offices"]] == ["main"] and [p["id"] for p in desk["procedures"]] == ["pickup"]


def test_the_calendar_marks_closed_days_holiday_openings_and_the_window(config: Config) -> None:
    office = config.offices["main"]
    marks = calendar_marks(office, dt.date(2026, 11, 20))   # a Friday
    assert marks["today"] == "20261120" and marks["days"] == office.bookings.open_days_ahead + 1
    assert "20261121" in marks["closed"] and "20261122" in marks["closed"]   # the weekend
    assert "20261123" in marks["closed"]                                     # 勤労感謝の日
    assert "20261124" not in marks["closed"] and marks["holiday_openings"] == []
    assert marks["booking_only"] == {"pickup": []}
