"""The ticket lifecycle over HTTP, and the matching events over the WebSocket."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import ClientWebSocketResponse

from .conftest import Api
from .waiting import PATIENCE_S


async def receive(ws: ClientWebSocketResponse, kind: str, timeout: float = PATIENCE_S) -> dict[str, Any]:
    """The next message of ``kind``, skipping others."""
    while True:
        message = await asyncio.wait_for(ws.receive_json(), timeout)
        if message["type"] == kind:
            return message


async def test_ticket_goes_from_issue_to_done_and_every_step_is_an_event(staff: Api, visitor: Api) -> None:
    ws = await staff.http.ws_connect("/api/ws")
    await ws.send_json({"id": 1, "type": "subscribe", "view": "lobby", "office": "main"})
    assert (await receive(ws, "result"))["success"] is True
    snapshot = await receive(ws, "snapshot")
    assert snapshot["id"] == 1 and snapshot["data"]["waiting_counts"] == {}
    seq = snapshot["seq"]

    issued = await visitor.issue("pickup", lang="en")
    assert issued["ticket"]["number"] == "300"
    assert issued["ticket"]["state"] == "waiting"
    assert issued["ahead"] == 0
    assert issued["status_url"].endswith("/status/" + issued["token"])

    steps = [("call-next", "called"), ("recall", "called"), ("start", "serving"), ("finish", "done")]
    for action, state in steps:
        status, body = await staff.counter("2", action)
        assert status == 200, body
        assert body["ticket"]["state"] == state

    expected = ["ticket.issued", "ticket.called", "ticket.recalled", "ticket.serving", "ticket.done"]
    received: list[dict[str, Any]] = []
    while len([e for e in received if e["event"]["type"].startswith("ticket.")]) < len(expected):
        received.append(await receive(ws, "event"))
    # Every event after the snapshot arrives once, in sequence (the counters opened just before
    # subscribing may still be among them); the ticket's own steps come in lifecycle order.
    assert [e["seq"] for e in received] == list(range(seq + 1, seq + 1 + len(received)))
    events = [e for e in received if e["event"]["type"].startswith("ticket.")]
    assert [e["event"]["type"] for e in events] == expected
    # The lobby lists no waiting tickets: the issue is a new count, each later step names the ticket.
    assert "ticket" not in events[0]["event"] and events[0]["event"]["waiting_counts"] == {"pickup": 1}
    assert all(e["event"]["ticket"]["number"] == "300" for e in events[1:])
    assert events[1]["event"]["waiting_counts"] == {}
    assert events[1]["event"]["counter"]["id"] == "2"
    # Events are public: they never carry the visitor's status token or the staff member's name.
    assert all(issued["token"] not in str(e) and "actor" not in e["event"] for e in events)

    status, view = await visitor.get(f"/api/tickets/{issued['token']}")
    assert status == 200 and view["state"] == "done"
    await ws.close()


async def test_numbers_follow_each_procedure_format_and_queue_order(staff: Api, visitor: Api) -> None:
    numbers = [(await visitor.issue(p))["ticket"]["number"] for p in ("application", "pickup", "application")]
    assert numbers == ["A001", "300", "A002"]
    # Counter 1 serves both; the longest in line is called first across its procedures.
    called = []
    for _ in range(3):
        status, body = await staff.counter("1", "call-next")
        assert status == 200, body
        called.append(body["ticket"]["number"])
        await staff.counter("1", "start")
        await staff.counter("1", "finish")
    assert called == numbers


async def test_a_priority_ticket_is_called_first_and_needs_staff_to_issue(staff: Api, visitor: Api) -> None:
    status, body = await visitor.post("/api/offices/main/tickets", {"procedure": "pickup", "priority": 5})
    assert status == 401, body
    await visitor.issue("pickup")
    urgent = await staff.issue("pickup", priority=5)
    assert urgent["ahead"] == 0
    status, body = await staff.counter("2", "call-next")
    assert body["ticket"]["number"] == urgent["ticket"]["number"]


async def test_hand_over_keeps_number_and_place_and_only_city_staff_serve_it(staff: Api, visitor: Api,
                                                                             user: Any) -> None:
    first = await visitor.issue("pickup")
    await staff.counter("2", "call-next")
    await staff.counter("2", "start")
    status, body = await staff.counter("2", "hand-over", {"to": "review", "reason": "暗証番号の確認"})
    assert status == 200, body
    assert body["ticket"]["state"] == "waiting" and body["ticket"]["procedure"] == "review"
    assert body["ticket"]["number"] == first["ticket"]["number"]
    assert body["counter"].get("ticket") is None

    status, body = await staff.counter("9", "call-next")
    assert status == 403 and body["error"]["code"] == "forbidden"

    city = user()
    await city.sign_in("city")
    assert (await city.counter("9", "open"))[0] == 200
    status, body = await city.counter("9", "call-next")
    assert status == 200 and body["ticket"]["number"] == first["ticket"]["number"]


async def test_no_show_needs_the_configured_recalls(staff: Api, visitor: Api) -> None:
    await visitor.issue("pickup")
    await staff.counter("2", "call-next")
    status, body = await staff.counter("2", "no-show")
    assert status == 409 and body["error"]["code"] == "not_recalled_enough"
    assert "recalled 0 of 2" in body["error"]["message"]
    await staff.counter("2", "recall")
    await staff.counter("2", "recall")
    status, body = await staff.counter("2", "no-show")
    assert status == 200 and body["ticket"]["state"] == "no_show"


async def test_call_a_specific_number_and_cancel(staff: Api, visitor: Api) -> None:
    a = await visitor.issue("pickup")
    b = await visitor.issue("pickup")
    status, body = await staff.counter("2", "call", {"number": b["ticket"]["number"]})
    assert status == 200 and body["ticket"]["number"] == b["ticket"]["number"]
    status, body = await visitor.post(f"/api/tickets/{a['token']}/cancel")
    assert status == 200 and body["ticket"]["state"] == "cancelled"
    await staff.counter("2", "start")
    await staff.counter("2", "finish")
    status, body = await staff.counter("2", "call-next")
    assert status == 409 and body["error"]["code"] == "queue_empty"


async def test_visitor_status_shows_people_ahead(staff: Api, visitor: Api) -> None:
    tickets = [await visitor.issue("pickup") for _ in range(3)]
    last = tickets[-1]
    assert last["ahead"] == 2
    _, view = await visitor.get(f"/api/tickets/{last['token']}")
    assert view["ahead"] == 2 and view["state"] == "waiting"
    await staff.counter("2", "call-next")
    _, view = await visitor.get(f"/api/tickets/{last['token']}")
    assert view["ahead"] == 1
    assert view["now_calling"][0] == {"number": tickets[0]["ticket"]["number"], "counter": "2"}
