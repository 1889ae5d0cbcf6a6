"""Public views (lobby, ticket, congestion, anonymous state, status page) against staff views.

Public views show numbers, counts, calls and estimates: never staff free text (the hand-over
reason), never a staff member's user name, and never a list of every waiting ticket, so what a
lobby display is sent does not grow with the queue.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType

from .conftest import Api
from .test_concurrency import busy_office

REASON = "山田太郎様 090-1234-5678 暗証番号を忘れた"
PHONE = "090-1234-5678"
SNAPSHOT_LIMIT = 20_000  # bytes: a lobby snapshot with 2,000 waiting stays under this


class Follower:
    """A WebSocket that keeps every text frame it receives, so a test can look at all of them."""

    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[str] = []

    @classmethod
    async def open(cls, api: Api, *subscriptions: dict[str, Any]) -> Follower:
        """Connect and subscribe (ids 1, 2, …); return once every subscription is answered."""
        follower = cls(await api.http.ws_connect("/api/ws", max_msg_size=0))
        for sub_id, params in enumerate(subscriptions, start=1):
            await follower.ws.send_json({"id": sub_id, "type": "subscribe", **params})
            result = await follower.until(lambda m, i=sub_id: m["type"] == "result" and m["id"] == i)
            assert result["success"] is True, result
        return follower

    async def until(self, wanted: Any, timeout: float = 10.0) -> dict[str, Any]:
        """The first message (already received or coming) for which ``wanted(message)`` holds."""
        for frame in self.frames:
            message = json.loads(frame)
            if wanted(message):
                return message
        while True:
            frame = await asyncio.wait_for(self.ws.receive(), timeout)
            assert frame.type == WSMsgType.TEXT, frame
            self.frames.append(frame.data)
            message = json.loads(frame.data)
            if wanted(message):
                return message

    def text(self) -> str:
        return "\n".join(self.frames)


def event_of(kind: str, number: str, sub_id: int = 1) -> Any:
    """Matches the event ``kind`` of ticket ``number`` on subscription ``sub_id``."""
    return lambda m: (m["type"] == "event" and m["id"] == sub_id and m["event"]["type"] == kind
                      and m["event"].get("ticket", {}).get("number") == number)


async def test_a_hand_over_reason_reaches_staff_views_only(staff: Api, visitor: Api, user: Any) -> None:
    mine = await visitor.issue("pickup")
    number, token = mine["ticket"]["number"], mine["token"]
    public = await Follower.open(visitor, {"view": "lobby", "office": "main"},
                                 {"view": "congestion", "office": "main"}, {"view": "ticket", "token": token})
    counter = await Follower.open(staff, {"view": "counter", "office": "main", "counter": "2"})

    assert (await staff.counter("2", "call-next"))[1]["ticket"]["number"] == number
    status, answer = await staff.counter("2", "hand-over", {"to": "review", "reason": REASON})
    assert status == 200 and answer["ticket"]["hand_over_reason"] == REASON  # the staff member's own answer

    # Staff see the reason: on the counter panels' events and in the staff state.
    handed = await counter.until(event_of("ticket.handed_over", number))
    assert handed["event"]["ticket"]["hand_over_reason"] == REASON
    _, staff_state = await staff.get("/api/offices/main/state")
    assert [t["hand_over_reason"] for t in staff_state["waiting"] if t["number"] == number] == [REASON]

    # The public get the hand-over as a category — the procedures, from and to — and nothing typed.
    public_handed = await public.until(event_of("ticket.handed_over", number))
    assert public_handed["event"]["from"] == "pickup"
    assert public_handed["event"]["ticket"]["procedure"] == "review"
    await public.until(lambda m: m["type"] == "view" and m["id"] == 3 and m["data"]["procedure"] == "review")

    # City staff call the case: the call is public, the reason still is not.
    city = user()
    await city.sign_in("city")
    assert (await city.counter("9", "open"))[0] == 200
    assert (await city.counter("9", "call-next"))[1]["ticket"]["number"] == number
    at_nine = event_of("ticket.called", number)
    await public.until(lambda m: at_nine(m) and m["event"]["counter"]["id"] == "9")
    called = await counter.until(lambda m: at_nine(m) and m["event"]["counter"]["id"] == "9")
    assert called["event"]["ticket"]["hand_over_reason"] == REASON
    await public.until(lambda m: m["type"] == "view" and m["id"] == 3 and m["data"]["state"] == "called")

    # Everything public, live and fresh: a new lobby display and phone, every public endpoint.
    fresh = await Follower.open(visitor, {"view": "lobby", "office": "main"}, {"view": "ticket", "token": token})
    snapshot = await fresh.until(lambda m: m["type"] == "snapshot")
    await fresh.until(lambda m: m["type"] == "view")
    assert number in [t["number"] for t in snapshot["data"]["active"]]
    pages = [public.text(), fresh.text()]
    for path in ("/api/offices/main/state", "/api/offices/main/congestion", "/api/congestion",
                 f"/api/tickets/{token}", f"/status/{token}", "/congestion", "/display/main"):
        response = await visitor.http.get(path)
        assert response.status == 200, path
        pages.append(await response.text())
    for page in pages:
        assert REASON not in page and PHONE not in page and "hand_over_reason" not in page
    # Nor the user name of whoever is at a counter (staff views keep it).
    lobby_counters = [*snapshot["data"]["counters"],
                      *(json.loads(f)["event"]["counter"] for f in public.frames
                        if '"type":"event"' in f and '"counter":{' in f)]
    assert lobby_counters and all("staff" not in c for c in lobby_counters)
    assert called["event"]["counter"]["staff"] == "city"

    for follower in (public, counter, fresh):
        await follower.ws.close()


@pytest.mark.slow
async def test_the_lobby_snapshot_does_not_grow_with_the_queue(make_client: Any, user: Any) -> None:
    client = await make_client(busy_office())
    kiosk, staff = user(client), user(client)
    await staff.sign_in("staff")
    for start in range(0, 2000, 50):
        await asyncio.gather(*(kiosk.issue("application") for _ in range(50)))

    display = await Follower.open(kiosk, {"view": "lobby", "office": "main"}, {"view": "congestion", "office": "main"})
    snapshot = await display.until(lambda m: m["type"] == "snapshot")
    congestion = await display.until(lambda m: m["type"] == "view")
    assert snapshot["data"]["waiting_counts"] == {"application": 2000}
    assert congestion["data"]["procedures"][0]["waiting"] == 2000
    frame = {kind: next(f for f in display.frames if f'"type":"{kind}"' in f) for kind in ("snapshot", "view")}
    sizes = {"lobby snapshot": len(frame["snapshot"].encode()), "congestion view": len(frame["view"].encode())}
    response = await kiosk.http.get("/api/offices/main/state")
    sizes["public state"] = len(await response.read())
    assert all(size <= SNAPSHOT_LIMIT for size in sizes.values()), sizes

    # A new ticket reaches the display as a count, not as a ticket to add to a list.
    await kiosk.issue("application")
    issued = await display.until(lambda m: m["type"] == "event" and m["event"]["type"] == "ticket.issued")
    assert issued["event"]["waiting_counts"] == {"application": 2001} and "ticket" not in issued["event"]

    # Staff still get the whole line.
    _, whole = await staff.get("/api/offices/main/state")
    assert len(whole["waiting"]) == 2001
    await display.ws.close()
