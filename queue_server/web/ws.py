"""The WebSocket endpoint: subscribe to a view, get a snapshot, then every later event.

Client → server: ``{"id": 1, "type": "subscribe", "view": "lobby"|"counter"|"ticket"|"congestion"|"supervisor",
"office": ..., "counter": ..., "token": ...}``, ``{"id": 2, "type": "unsubscribe", "subscription": 1}``,
``{"id": 3, "type": "ping"}``. Server → client: ``result`` (success or an error with a code from
``messages.ERROR_STATUS``), then for the subscription ``snapshot`` and ``event`` (with ``seq``) or
``view`` messages carrying the subscription's id. See ARCHITECTURE.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any, Final

from aiohttp import WSCloseCode, WSMsgType, web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..domain.model import DomainError, NotFound, Role
from ..domain.state import OfficeState, public_event, staff_event
from ..domain.supervision import supervisor_view
from ..live import Hub
from .auth import current_staff, origin_allowed
from .client_address import client_address
from .keys import CONFIG, HUB, STORE
from .messages import ApiError, dumps, error_body, error_response
from .metrics import METRICS
from .validation import Field, check_fields, one_of, parse_json
from .views import ticket_by_token

log = logging.getLogger(__name__)

OUTGOING_QUEUE: Final = 256      # messages a client may fall behind before it is disconnected
HEARTBEAT_SECONDS: Final = 20.0
MAX_MESSAGE_BYTES: Final = 4096
SOCKET_SEND_BUFFER: Final = 64 * 1024
RETRY_AFTER_SECONDS: Final = 10  # a refused connection: the page's reconnect backoff spaces its retries anyway

CLOSE_TIMEOUT_SECONDS: Final = 1.0
CALLS: Final = frozenset({"ticket.called", "ticket.recalled"})
Outgoing = str | tuple[str, str]
"""A message to send: whole, or an envelope's head and a body serialised once and shared by every
subscriber. They are joined only as the message is written, so thousands of queued snapshots or
events hold references to one copy of the body, not a copy each."""
CONNECTIONS: Final = web.AppKey("ws_connections", set)
"""The live WebSocket connections, closed together at shutdown so a restart does not wait on them."""
PER_ADDRESS: Final = web.AppKey("ws_per_address", dict)
"""Open WebSocket connections per client address (``server.ws_connections_per_address``)."""

SUBSCRIBE_SCHEMA: Final = {
    "id": Field(int, required=True),
    "type": Field(str, required=True),
    "view": Field(str, required=True, check=one_of("lobby", "counter", "ticket", "congestion", "supervisor", "backoffice")),
    "office": Field(str),
    "counter": Field(str),
    "token": Field(str),
}


class Connection:
    """One client: a bounded outgoing queue drained by one writer task, and its subscriptions."""

    def __init__(self, ws: web.WebSocketResponse, hub: Hub, request: web.Request) -> None:
        self.ws = ws
        self.hub = hub
        self.request = request
        self.writer_task: asyncio.Task[None] | None = None
        self.outgoing: asyncio.Queue[Outgoing] = asyncio.Queue(OUTGOING_QUEUE)
        self.subscriptions: dict[int, tuple[tuple[str, ...], Subscription]] = {}
        """Each subscription with the offices it follows (one, or every office for the supervisor view)."""
        self.closed = False
        server = request.app[CONFIG].server
        self.max_subscriptions = server.ws_subscriptions_per_connection
        # A token bucket: ``burst`` messages at once, then ``rate`` a second.
        self.rate, self.burst = server.ws_messages_per_second, server.ws_message_burst
        self.tokens = float(self.burst)
        self.refilled = asyncio.get_running_loop().time()

    def take_token(self) -> bool | None:
        """Count one client message: True if allowed, False if over the rate, None if abusive.

        A refused message still costs a token, so a client that keeps sending while refused
        reaches ``-burst`` and is disconnected; one that slows down recovers.
        """
        now = asyncio.get_running_loop().time()
        self.tokens = min(float(self.burst), self.tokens + (now - self.refilled) * self.rate) - 1
        self.refilled = now
        if self.tokens >= 0:
            return True
        return False if self.tokens > -self.burst else None

    def send(self, message: Outgoing) -> None:
        """Queue a message; never waits. A client that cannot keep up is dropped."""
        if self.closed:
            return
        try:
            self.outgoing.put_nowait(message)
        except asyncio.QueueFull:
            log.info("dropping a WebSocket client that stopped reading")
            self.drop()

    def drop(self) -> None:
        """Disconnect at once: stop feeding it, and abort the socket rather than wait on a polite close."""
        self.closed = True
        self.remove_all()
        if self.writer_task is not None:
            self.writer_task.cancel()
        if self.request.transport is not None:
            self.request.transport.abort()

    def send_json(self, data: dict[str, Any]) -> None:
        """Queue a JSON message."""
        self.send(dumps(data))

    async def writer(self) -> None:
        """Drain the outgoing queue into the socket."""
        while True:
            message = await self.outgoing.get()
            await self.ws.send_str(message if isinstance(message, str) else f"{message[0]}{message[1]}}}")

    def add(self, sub_id: int, office: str | tuple[str, ...], subscription: Subscription) -> None:
        """Register a subscription (to one office, or several) and send its snapshot in the same step."""
        if sub_id in self.subscriptions:
            raise ApiError("invalid_request", f"subscription id {sub_id} is already in use", field="id")
        if len(self.subscriptions) >= self.max_subscriptions:
            raise ApiError("invalid_request", f"at most {self.max_subscriptions} subscriptions per connection")
        # A back-office view also follows the branches whose cards its office prepares (``also``).
        offices = (*((office,) if isinstance(office, str) else office), *subscription.also)
        self.subscriptions[sub_id] = (offices, subscription)
        self.send_json({"id": sub_id, "type": "result", "success": True})
        for one in offices:
            self.hub.subscribe(one, subscription)

    def remove(self, sub_id: Any) -> bool:
        """Drop one subscription; False if there is none with this id."""
        offices, subscription = self.subscriptions.pop(sub_id, ((), None))
        for office in offices:
            self.hub.unsubscribe(office, subscription)  # type: ignore[arg-type]
        return subscription is not None

    def remove_all(self) -> None:
        """The one teardown path: drop every subscription of this connection."""
        for sub_id in list(self.subscriptions):
            self.remove(sub_id)


class Subscription:
    """A lobby or counter view: the office snapshot, then each event.

    The lobby is public: its snapshot and events carry calls and counts per procedure, never the
    waiting tickets or staff free text. Counter panels (staff) get every waiting ticket."""

    also: tuple[str, ...] = ()
    """Other offices whose events this view follows too (a back office working its branches' tasks)."""

    def __init__(self, conn: Connection, sub_id: int, view: str) -> None:
        self.conn = conn
        self.sub_id = sub_id
        self.view = view
        self.last_estimates = ""

    @property
    def per_ticket(self) -> bool:
        """Counter panels show each waiting ticket's estimate; the lobby only each procedure's."""
        return self.view == "counter"

    def on_snapshot(self, state: OfficeState) -> None:
        """Send the office state (serialised once per change and view kind, shared by all subscribers)."""
        key = f"snapshot:{self.view}"
        body = state.derived.get(key)
        if body is None:
            body = state.derived[key] = dumps(state.snapshot() if self.per_ticket else state.lobby_snapshot())
        self.conn.send((f'{{"id":{self.sub_id},"type":"snapshot","view":"{self.view}","seq":{state.seq},"data":', body))

    def on_estimates(self, state: OfficeState) -> None:
        """Send fresh wait estimates (serialised once per view kind, shared by all subscribers)."""
        key = f"estimates:{self.view}"
        body = state.derived.get(key)
        if body is None:
            body = state.derived[key] = dumps(state.public_estimates(self.per_ticket))
        if body != self.last_estimates:  # the lobby's whole-minute figures often stay the same
            self.last_estimates = body
            self.conn.send((f'{{"id":{self.sub_id},"type":"estimates","seq":{state.seq},"data":', body))

    def on_event(self, event: dict[str, Any], state: OfficeState) -> None:
        """Send one event; its JSON is built once per event and view kind, and shared by all subscribers."""
        first_to_lobby = not self.per_ticket and "_json_public" not in event
        self.conn.send((f'{{"id":{self.sub_id},"type":"event","seq":{event["seq"]},"event":',
                        _event_json(event, state, staff=self.per_ticket)))
        if first_to_lobby and event.get("type") in CALLS:
            # Once per call, as the first lobby display gets it: the call-to-display latency.
            self.conn.request.app[METRICS].displayed(state.office, event)


def _event_json(event: dict[str, Any], state: OfficeState, *, staff: bool) -> str:
    # Cached on the event itself: one dumps per event and kind, not per client. The event is applied
    # to ``state`` before any subscriber hears of it, so the public counts are the ones after it.
    key = "_json_staff" if staff else "_json_public"
    cached = event.get(key)
    if cached is None:
        cached = event[key] = dumps(staff_event(event) if staff else public_event(event, state.waiting_counts()))
    return cached


class ViewSubscription(Subscription):
    """A derived view (one ticket, congestion): the whole small view, sent again when it changes."""

    def __init__(self, conn: Connection, sub_id: int, view: str, render: Callable[[OfficeState], dict[str, Any]],
                 shared: str | None = None) -> None:
        super().__init__(conn, sub_id, view)
        self.render = render
        self.shared = shared
        """Set for a view that is the same for every subscriber (congestion): it is serialised once per
        view object and kept in ``OfficeState.derived`` under this key."""
        self.last: dict[str, Any] | None = None

    def on_snapshot(self, state: OfficeState) -> None:
        """Send the view as it is now."""
        self.last = None
        self.on_event({}, state)

    def on_estimates(self, state: OfficeState) -> None:
        """Estimates are part of the view: send it again if they changed it."""
        self.on_event({}, state)

    def on_event(self, event: dict[str, Any], state: OfficeState) -> None:
        """Send the view if it changed."""
        data = self.render(state)
        if data is self.last or data == self.last:
            return
        self.last = data
        if self.shared is None:
            body = dumps(data)
        else:
            # Keyed by the view object itself: the view may change with no change of the state
            # (congestion: the office opens or closes), and then its old JSON must not be sent.
            cached = state.derived.get(self.shared)
            if cached is None or cached[0] is not data:
                cached = state.derived[self.shared] = (data, dumps(data))
            body = cached[1]
        self.conn.send((f'{{"id":{self.sub_id},"type":"view","view":"{self.view}","seq":{state.seq},"data":', body))


class TicketSubscription(ViewSubscription):
    """One visitor's ticket: its state, people ahead, the numbers being called."""

    def __init__(self, conn: Connection, sub_id: int, number: str, day: str, stored: dict[str, Any]) -> None:
        self.number, self.day, self.latest = number, day, dict(stored)
        super().__init__(conn, sub_id, "ticket", lambda state: state.ticket_view(day, number, self.latest))

    def on_event(self, event: dict[str, Any], state: OfficeState) -> None:
        """Keep the last known copy of this ticket (of its own day), so a finished one still shows "done"
        and one closed out at the day's end "expired"."""
        ticket = event.get("ticket")
        if ticket and ticket["number"] == self.number and ticket.get("day", self.day) == self.day:
            self.latest.update(ticket)
        elif event.get("type") == "day.closed" and event["closed"] == self.day and self.number in event.get("expired", ()):
            self.latest["state"] = "expired"
        super().on_event(event, state)


class SupervisorSubscription(Subscription):
    """The supervisor console: every office's figures (``supervision.supervisor_view``), each sent as a
    ``view`` message naming its office whenever that office's figures change."""

    def __init__(self, conn: Connection, sub_id: int, target_minutes: float, target_share: float) -> None:
        super().__init__(conn, sub_id, "supervisor")
        self.target = (target_minutes, target_share)
        self.last: dict[str, str] = {}

    def on_snapshot(self, state: OfficeState) -> None:
        """Send the office's figures as they are now."""
        self.last.pop(state.office, None)
        self.on_event({}, state)

    def on_estimates(self, state: OfficeState) -> None:
        """The estimate per procedure is part of the figures."""
        self.on_event({}, state)

    def on_event(self, event: dict[str, Any], state: OfficeState) -> None:
        """Send the office's figures if they changed (serialised once per change, for every supervisor)."""
        body = state.derived.get("supervisor")
        if body is None:
            body = state.derived["supervisor"] = dumps(supervisor_view(state, *self.target))
        if self.last.get(state.office) == body:
            return
        self.last[state.office] = body
        self.conn.send((f'{{"id":{self.sub_id},"type":"view","view":"supervisor","office":"{state.office}",'
                        f'"seq":{state.seq},"data":', body))


async def _subscribe(request: web.Request, conn: Connection, message: dict[str, Any]) -> None:
    msg = check_fields(message, SUBSCRIBE_SCHEMA, where="message")
    store, view, sub_id = request.app[STORE], msg["view"], msg["id"]
    if view == "ticket":
        if not msg["token"]:
            raise ApiError("invalid_request", "a ticket subscription needs the ticket's token", field="token")
        office, day, number = await ticket_by_token(request, msg["token"])
        stored = await store.ticket(office, day, number)
        conn.add(sub_id, office, TicketSubscription(conn, sub_id, number, day, stored))
        return
    if view == "supervisor":
        # Every office on one screen: one subscription follows them all. Staff names are in it.
        staff = await current_staff(request)
        if staff is None:
            raise ApiError("unauthorized", "sign in to follow the offices")
        if staff.role is not Role.SUPERVISOR:
            raise ApiError("forbidden", f"the supervisor view needs the role supervisor; you are {staff.role.value}")
        levels = request.app[CONFIG].service_levels
        conn.add(sub_id, tuple(request.app[CONFIG].offices),
                 SupervisorSubscription(conn, sub_id, levels.target_wait_minutes, levels.target_share))
        return
    if not msg["office"]:
        raise ApiError("invalid_request", f"a {view} subscription needs an office", field="office")
    office = store.office(msg["office"]).id
    if view == "counter":
        staff = await current_staff(request)
        if staff is None:
            raise ApiError("unauthorized", "sign in to follow a counter")
        if msg["counter"] not in store.office(office).counters:
            raise NotFound(f"no counter {msg['counter']!r} at {office}")
        conn.add(sub_id, office, Subscription(conn, sub_id, view))
    elif view == "lobby":
        conn.add(sub_id, office, Subscription(conn, sub_id, view))
    elif view == "backoffice":
        from .tasks import backoffice_subscription

        if await current_staff(request) is None:
            raise ApiError("unauthorized", "sign in to follow the back office")
        conn.add(sub_id, office, backoffice_subscription(request, conn, sub_id, office))
    else:
        from .congestion import congestion_view

        conn.add(sub_id, office, ViewSubscription(conn, sub_id, view, lambda state: congestion_view(request.app, state),
                                                  shared="congestion:json"))


async def websocket(request: web.Request) -> web.StreamResponse:
    """GET /api/ws"""
    if not origin_allowed(request):
        raise ApiError("origin_not_allowed", f"WebSocket connections from {request.headers['Origin']} are not allowed")
    address, per_address = client_address(request), request.app[PER_ADDRESS]
    limit = request.app[CONFIG].server.ws_connections_per_address
    if per_address.get(address, 0) >= limit:
        # Refused before the upgrade: a plain 429 costs nothing, whereas each open connection
        # holds buffers and gets every event.
        response = error_response(ApiError("rate_limited", f"at most {limit} WebSocket connections per client address"))
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    per_address[address] = per_address.get(address, 0) + 1
    try:
        return await _serve(request)
    finally:
        if (left := per_address[address] - 1) > 0:
            per_address[address] = left
        else:
            del per_address[address]


async def _serve(request: web.Request) -> web.WebSocketResponse:
    """One accepted WebSocket connection, from upgrade to teardown."""
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        # Bound what the kernel buffers for one client, so a stalled one is noticed soon and costs little.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_SEND_BUFFER)
    conn = Connection(ws, request.app[HUB], request)
    writer = conn.writer_task = asyncio.create_task(conn.writer())
    request.app[CONNECTIONS].add(conn)
    try:
        async for frame in ws:
            allowed = conn.take_token()
            if allowed is None:
                log.info("closing a WebSocket client from %s that kept flooding messages", client_address(request))
                await _close(conn, WSCloseCode.POLICY_VIOLATION, b"too many messages")
                break
            if frame.type != WSMsgType.TEXT:
                continue
            await _handle(request, conn, frame.data, allowed)
            # Reading a flood never returns to the event loop by itself (its frames are already
            # buffered): let the other connections' work run between two messages of this one.
            await asyncio.sleep(0)
    finally:
        request.app[CONNECTIONS].discard(conn)
        conn.closed = True
        conn.remove_all()
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await writer
    return ws


async def _handle(request: web.Request, conn: Connection, data: str, allowed: bool) -> None:
    """Answer one client message (or refuse it, over the rate limit)."""
    msg_id = None
    try:
        message = parse_json(data, where="message")
        msg_id = message.get("id") if isinstance(message, dict) else None
        if not allowed:
            raise ApiError("rate_limited", f"at most {conn.rate:g} messages a second; slow down")
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "subscribe":
            await _subscribe(request, conn, message)
        elif kind == "unsubscribe":
            sub = message.get("subscription")
            if not conn.remove(sub):
                raise NotFound(f"no subscription {sub!r} on this connection")
            conn.send_json({"id": msg_id, "type": "result", "success": True})
        elif kind == "ping":
            conn.send_json({"id": msg_id, "type": "pong"})
        else:
            raise ApiError("invalid_request", "type must be subscribe, unsubscribe or ping", field="type")
    except DomainError as e:
        conn.send_json({"id": msg_id, "type": "result", "success": False, **error_body(e)})
    except (RedisConnectionError, RedisTimeoutError) as e:
        # Only this request needed Redis (a ticket's token, a session): the connection and its
        # other subscriptions, served from the hub's memory, carry on.
        log.warning("Redis unavailable for a WebSocket request: %s", e)
        request.app[METRICS].store_errors.labels("websocket").inc()
        conn.send_json({"id": msg_id, "type": "result", "success": False, **error_body(
            ApiError("unavailable", "the queue store is unavailable; try again in a moment"))})


async def _close(conn: Connection, code: int, reason: bytes) -> None:
    """Close politely if the client answers at once; otherwise just drop it."""
    try:
        await asyncio.wait_for(conn.ws.close(code=code, message=reason), CLOSE_TIMEOUT_SECONDS)
    except (TimeoutError, ConnectionError):
        conn.drop()


async def close_connections(app: web.Application) -> None:
    """At shutdown: tell every client we are going away (they reconnect to the next server)."""

    await asyncio.gather(*(_close(conn, WSCloseCode.GOING_AWAY, b"server shutdown") for conn in list(app[CONNECTIONS])))
