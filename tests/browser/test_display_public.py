"""The lobby display on the public lobby view: calls and waiting counts, no waiting list, no staff text.

The lobby view sends counts per procedure and the tickets at counters only; the display must still
show every call and the right number waiting as tickets are issued, called, handed over and
cancelled, and after a fresh snapshot.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from .conftest import LiveServer, MakeUser, OpenPage
from .test_display_counter import DISPLAY

pytestmark = pytest.mark.browser

REASON = "鈴木花子 080-9876-5432 本人確認書類なし"


def waiting(display: Any, procedure: str) -> Any:
    """The display's waiting count for one procedure."""
    return display.locator(f"#waiting tr[data-procedure='{procedure}'] .waiting-count")


async def test_the_display_shows_calls_and_counts_from_the_public_lobby_view(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    visitor, staff = web_user(), web_user()
    await staff.sign_in("staff")
    assert (await staff.counter("2", "open"))[0] == 200
    pickups = [await visitor.issue("pickup") for _ in range(3)]
    await visitor.issue("application")

    display = await open_page("/display/main", viewport=DISPLAY, wait=False)
    frames: list[str] = []
    display.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    await display.goto(live_server.url("/display/main"))
    await expect(display.locator("body")).to_have_attribute("data-live", "ready")
    # The first counts come from the snapshot, which lists no waiting ticket.
    await expect(waiting(display, "pickup")).to_have_text("3 人")
    await expect(waiting(display, "application")).to_have_text("1 人")

    # A new ticket, as a count.
    await visitor.issue("application")
    await expect(waiting(display, "application")).to_have_text("2 人")

    # A call: on the display as a card, one fewer waiting.
    first = pickups[0]["ticket"]["number"]
    assert (await staff.counter("2", "call-next"))[1]["ticket"]["number"] == first
    card = display.locator(f".call-card[data-number='{first}'][data-counter='2']")
    await expect(card).to_be_visible()
    await expect(waiting(display, "pickup")).to_have_text("2 人")

    # Handed over to city staff with a reason: the card goes, the review queue counts one, no reason shown.
    status, _ = await staff.counter("2", "hand-over", {"to": "review", "reason": REASON})
    assert status == 200
    await expect(card).to_have_count(0)
    await expect(waiting(display, "review")).to_have_text("1 人")
    await expect(display.locator("#calls-empty")).to_be_visible()

    # A visitor leaves the line: one fewer, though the event names no ticket.
    status, _ = await visitor.post(f"/api/tickets/{pickups[2]['token']}/cancel")
    assert status == 200
    await expect(waiting(display, "pickup")).to_have_text("1 人")

    # After a reload (a fresh snapshot) the same picture.
    await display.reload()
    await expect(display.locator("body")).to_have_attribute("data-live", "ready")
    await expect(waiting(display, "pickup")).to_have_text("1 人")
    await expect(waiting(display, "review")).to_have_text("1 人")
    await expect(waiting(display, "application")).to_have_text("2 人")
    assert (await staff.counter("2", "call-next"))[1]["ticket"]["number"] == pickups[1]["ticket"]["number"]
    await expect(display.locator(f".call-card[data-number='{pickups[1]['ticket']['number']}']")).to_be_visible()
    await expect(waiting(display, "pickup")).to_have_text("0 人")

    # Nothing the display received carried the staff's text, nor the list of waiting tickets.
    assert frames and not any(REASON in f or "hand_over_reason" in f or '"waiting":[' in f for f in frames)
    assert "鈴木花子" not in await display.content()
