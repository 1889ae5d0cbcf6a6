"""HTTP handlers of the back office (card preparation, post-issuance work) and its WebSocket view.

Thin: parse, check the staff member, call :class:`~queue_server.store.tasks.TaskStore`, answer. The
work list comes from the hub's live state (``domain/backoffice.py``). Any signed-in staff member may
work back-office tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

from aiohttp import web

from ..config import Office
from ..domain.backoffice import first_open, work_view
from ..domain.model import NotFound
from ..domain.state import OfficeState, staff_event, staff_ticket
from ..domain.tasks import TaskKind
from ..store.tasks import TaskStore
from .auth import require_staff
from .keys import CLOCK, HUB, STORE
from .messages import dumps, json_response
from .openapi import add_paths, operation
from .validation import read_body
from .views import _idem, _office

TASK_ACTIONS: Final = ("claim", "finish", "return")
TASK_ID_DIGITS: Final = 15
CATCH_UP_SECONDS: Final = 2.0
"""How long the work list waits for this process's hub to apply the store's latest events."""


def office_work(app: web.Application, office: Office, states: list[OfficeState] | None = None,
                now: int | None = None) -> dict[str, Any]:
    """The work list and backlog of ``office``'s back office, from ``states`` (its own and its branches',
    in ``TaskStore.work_offices`` order; default: the hub's live states)."""
    offices = TaskStore(app[STORE]).work_offices(office.id)
    priors: dict[tuple[str, str], float] = {}
    for o in offices:
        for p in o.procedures.values():
            priors[(TaskKind.PREPARE.value, p.id)] = p.prep_minutes
            priors[(TaskKind.POST.value, p.id)] = p.post_minutes
    if states is None:
        states = [app[HUB].state(o.id) for o in offices]
    return work_view(states, office=office.id, people=office.back_office_people, priors=priors,
                     day_of=app[CLOCK].day, now=now)


async def list_tasks(request: web.Request) -> web.Response:
    """GET /api/offices/{office}/tasks — the back office's work in order, people on it, backlog (staff)."""
    office = _office(request)
    await require_staff(request)
    store = request.app[STORE]
    # The caller's own last action is in the answer: wait (briefly) until this process's hub has
    # applied every event the store has, then compute from its state without touching Redis more.
    for o in TaskStore(store).work_offices(office.id):
        await caught_up(request.app, o.id, await store.latest_event_seq(o.id))
    now = request.app[CLOCK].now_ms()
    view = office_work(request.app, office, now=now)
    references = await TaskStore(request.app[STORE]).references(view["tasks"])
    for task in view["tasks"]:
        if (ref := references.get((task["office"], str(task.get("booking"))))) is not None:
            task["reference"] = ref
    return json_response({**view, "now": now})


async def caught_up(app: web.Application, office: str, seq: int) -> None:
    """Return once the hub's state of ``office`` has applied event ``seq`` (at most CATCH_UP_SECONDS:
    after that, what the hub has is answered)."""
    hub = app[HUB]
    if hub.state(office).seq >= seq:
        return
    done = asyncio.Event()

    def listener(changed: str, state: OfficeState) -> None:
        if changed == office and state.seq >= seq:
            done.set()

    hub.listeners.append(listener)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), CATCH_UP_SECONDS)
    finally:
        hub.listeners.remove(listener)


def _task_answer(result: dict[str, Any], office: str) -> web.Response:
    body: dict[str, Any] = {"task": {**result["task"], "office": office}}
    if result.get("ready"):
        body["ticket_ready"] = staff_ticket(result["ready"]["ticket"])
    return json_response(body)


def _claim_order(app: web.Application, office: Office) -> list[str]:
    """The offices worked by ``office``'s back office, the one with the first open task in the work list first
    (from the live state: each office's own step then takes its first open task atomically)."""
    offices = TaskStore(app[STORE]).work_offices(office.id)
    if len(offices) == 1:
        return [office.id]
    return first_open([app[HUB].state(o.id) for o in offices])


async def claim_next(request: web.Request) -> web.Response:
    """POST /api/offices/{office}/tasks/claim-next — claim the first open task in the work order."""
    office = _office(request)
    staff = await require_staff(request)
    await read_body(request, {})
    result = await TaskStore(request.app[STORE]).claim_next(office.id, _claim_order(request.app, office),
                                                            actor=staff.username, idem=_idem(request))
    return _task_answer(result, result["task"]["office"])


async def task_action(request: web.Request) -> web.Response:
    """POST /api/offices/{office}/tasks/{task}/{claim|finish|return} (``office``: the task's own office)."""
    office = _office(request)
    task_id, action = request.match_info["task"], request.match_info["action"]
    if action not in TASK_ACTIONS:
        raise NotFound(f"no task action {action!r}; actions: {', '.join(TASK_ACTIONS)}")
    if not (task_id.isascii() and task_id.isdigit() and len(task_id) <= TASK_ID_DIGITS):
        raise NotFound(f"no task {task_id!r} at {office.id} (task ids are numbers)")
    staff = await require_staff(request)
    await read_body(request, {})
    tasks, idem = TaskStore(request.app[STORE]), _idem(request)
    if action == "claim":
        result = await tasks.claim(office.id, task_id, actor=staff.username, idem=idem)
    elif action == "finish":
        result = await tasks.finish(office.id, task_id, actor=staff.username, idem=idem)
    else:
        result = await tasks.give_back(office.id, task_id, actor=staff.username, idem=idem)
    return _task_answer(result, office.id)


def _path(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"},
            "description": description}


_STAFF_ACTION: Final = [
    {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
     "description": "a retried request with the same key is applied once and gets the first answer"},
    {"name": "X-CSRF-Token", "in": "header", "required": True, "schema": {"type": "string"}},
]


def setup_routes(app: web.Application) -> None:
    """Register the back office's endpoints and document them."""
    app.router.add_get("/api/offices/{office}/tasks", list_tasks)
    app.router.add_post("/api/offices/{office}/tasks/claim-next", claim_next)
    app.router.add_post("/api/offices/{office}/tasks/{task}/{action}", task_action)
    office = _path("office", "the office (for an action on one task: the task's own office)")
    staff = {"security": [{"session": []}]}
    empty = {"type": "object", "additionalProperties": False}
    add_paths(app, {
        "/api/offices/{office}/tasks": {"get": {**operation(
            "The back office's work (staff): open and claimed card-preparation and post-issuance tasks of the "
            "office and the branches keeping cards there, in the order they should be done (preparation for "
            "visitors waiting now, then by deadline, then post-issuance), people on back-office work now, and "
            "the backlog at the measured rate (ARCHITECTURE.md, 'Back-office stages')",
            "{office, offices, now, people_on_work, people_planned, tasks, backlog}", params=[office]), **staff}},
        "/api/offices/{office}/tasks/claim-next": {"post": {**operation(
            "Claim the first open task in the work order (staff); 409 no_task when there is none",
            "{task}", params=[office, *_STAFF_ACTION], body=empty), **staff}},
        "/api/offices/{office}/tasks/{task}/{action}": {"post": {**operation(
            "Claim, finish or give back one task (staff); 409 naming the task's state when it cannot be "
            "(finishing an unclaimed task, claiming a done one). Finishing a preparation makes its waiting "
            "visitor callable in their place (ticket_ready)",
            "{task[, ticket_ready]}", params=[
                office, _path("task", "the task id", {"type": "string", "pattern": "^[0-9]{1,15}$"}),
                _path("action", "what to do", {"type": "string", "enum": list(TASK_ACTIONS)}), *_STAFF_ACTION],
            body=empty), **staff}},
    })


TASK_EVENTS: Final = frozenset({"task.created", "task.claimed", "task.done", "task.returned", "task.cancelled",
                                "task.updated", "ticket.ready"})


def backoffice_subscription(request: web.Request, conn: Any, sub_id: int, office_id: str) -> Any:
    """The WebSocket view ``backoffice`` (staff) of ``office_id``: the work list (as ``GET …/tasks`` without
    ages and references) sent whole whenever it changes, and each task event of the offices it covers."""
    from .ws import ViewSubscription

    app = request.app
    office = app[STORE].office(office_id)
    offices = [o.id for o in TaskStore(app[STORE]).work_offices(office.id)]

    def render(_state: OfficeState) -> dict[str, Any]:
        # Once per change of any of the offices, shared by every panel following this back office.
        states = [app[HUB].state(o) for o in offices]
        key = "backoffice:" + ",".join(f"{s.office}={s.seq}" for s in states)
        view = states[0].derived.get(key)
        if view is None:
            view = states[0].derived[key] = office_work(app, office, states)
        return view

    class BackofficeSubscription(ViewSubscription):
        """Follows the office and its branches; sends the view when it changes, and task events."""

        also = tuple(offices[1:])

        def on_estimates(self, state: OfficeState) -> None:
            """Wait estimates are not part of the back office's view."""

        def on_event(self, event: dict[str, Any], state: OfficeState) -> None:
            if event.get("type") in TASK_EVENTS:
                self.conn.send_json({"id": self.sub_id, "type": "event", "seq": event["seq"],
                                     "event": staff_event(event)})
            # Only tasks, tickets waiting for their card and the day's end change the work list.
            held = (event.get("ticket") or {}).get("prep") == "pending"
            if event and "task" not in event and not held and event.get("type") not in ("ticket.ready", "day.closed"):
                return
            data = self.render(state)
            if data is self.last or data == self.last:
                return
            self.last = data
            body = dumps({**data, "now": app[CLOCK].now_ms()})
            self.conn.send((f'{{"id":{self.sub_id},"type":"view","view":"backoffice","seq":{state.seq},"data":', body))

    return BackofficeSubscription(conn, sub_id, "backoffice", render)
