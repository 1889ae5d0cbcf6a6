"""An office's live state rebuilt from a snapshot and its events, and the views derived from it.

Each server process keeps one :class:`OfficeState` per office, fed by the event stream; every
WebSocket view (lobby, counter, one ticket, congestion) is computed from it without touching
Redis, so a snapshot is taken and a subscription made with no await in between.

The state keeps each ticket's staff fields (``staff_ticket``); what leaves it for a public view goes
through ``public_ticket``/``public_counter``/``public_event`` (numbers, codes, times, counts), and the
lobby's snapshot holds counts rather than the waiting tickets, so it does not grow with the queue.

Numbers restart every business day, so a ticket is known by its day and number
(:func:`ticket_key`, the same ``DAY|NUMBER`` a counter's ``ticket`` field holds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .model import BookedBeforeSlot, CallingOrder
from .policy import booked_precedence_from, effective_tier, queue_score
from .supervision import FINAL_STATES, DayFigures

RECENT_CALLS: Final = 10
ISSUE_HISTORY: Final = 2000  # issue times kept per procedure, for the walk-in rate
STAFF_TICKET_FIELDS: Final = ("number", "procedure", "state", "priority", "issued_at", "called_at", "started_at",
                              "counter", "lang", "recalls", "order", "seq", "handed_over_from", "hand_over_reason",
                              "returning", "day", "expired_from", "booking", "slot_start", "booked", "late", "prep", "task")
"""What staff views (counter panels, staff-only endpoints) and the live state keep of a ticket."""
PUBLIC_TICKET_FIELDS: Final = ("number", "procedure", "state", "issued_at", "called_at", "started_at", "counter",
                               "lang", "recalls", "day", "expired_from", "booked", "prep")
"""What anyone may see: numbers, times and codes (``booked``: the booked mark; never the booking itself). Never the hand-over reason (free text staff type, which
may hold a name or a phone number), nor the priority class (it can tell a visitor's circumstances)."""
PUBLIC_COUNTER_FIELDS: Final = ("id", "status", "ticket", "since")
"""A counter as public views show it: not the user name of the staff member at it."""
ACTIVE_STATES: Final = ("called", "serving")
TASK_TIMES_KEPT: Final = 500  # measured back-office tasks the live state keeps, for backlog figures
OPEN_TASK_STATES: Final = ("open", "claimed")
PRIVATE_EVENT_PREFIXES: Final = ("booking.",)
"""Event types public views receive as bare ``{type, seq, office, day, at}``."""


class GapError(Exception):
    """An event arrived out of sequence: the state must be rebuilt from a fresh snapshot."""


def staff_ticket(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a ticket staff views show (hand-over reason included); no status token."""
    return {k: ticket[k] for k in STAFF_TICKET_FIELDS if ticket.get(k) not in (None, "")}


def ticket_key(day: str, number: str) -> str:
    """How the live state knows a ticket: ``DAY|NUMBER`` (numbers restart each day)."""
    return f"{day}|{number}"


def public_ticket(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a ticket any public view may show: numbers, codes and times only."""
    return {k: ticket[k] for k in PUBLIC_TICKET_FIELDS if ticket.get(k) not in (None, "")}


def public_counter(counter: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a counter any public view may show."""
    return {k: counter[k] for k in PUBLIC_COUNTER_FIELDS if k in counter}


def staff_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """An event as counter panels receive it: the ticket's staff fields, no status token or actor."""
    out = {k: v for k, v in event.items() if k not in ("ticket", "actor") and not k.startswith("_")}
    if "ticket" in event:
        out["ticket"] = staff_ticket(event["ticket"])
    return out


def public_event(event: Mapping[str, Any], waiting_counts: Mapping[str, int]) -> dict[str, Any]:
    """An event as public views (lobby displays, third parties) receive it.

    Public views keep no list of waiting tickets, so a ticket event carries the new waiting count per
    procedure instead, and the ticket itself only when it is or was at a counter (the display must add
    or remove a call). The hand-over's category is its procedures (``from`` → the ticket's procedure)."""
    if str(event.get("type", "")).startswith(PRIVATE_EVENT_PREFIXES):
        # Bookings are no lobby's business: public views get only the sequence number (so they see
        # no gap), the time and the type.
        return {k: event[k] for k in ("type", "seq", "office", "day", "at") if k in event}
    # Back-office tasks are staff matters: public views keep the event (its seq) but not the task.
    out = {k: v for k, v in event.items() if k not in ("ticket", "actor", "task") and not k.startswith("_")}
    if event.get("counter"):
        out["counter"] = public_counter(event["counter"])
    ticket = event.get("ticket")
    if ticket is not None:
        out["waiting_counts"] = dict(waiting_counts)
        # Every event of a ticket at a counter (called, served, released, handed over, cancelled there)
        # names the counter; issuing and cancelling a waiting ticket do not.
        if ticket.get("state") in ACTIVE_STATES or event.get("counter") or event.get("type") == "ticket.ready":
            out["ticket"] = public_ticket(ticket)
    return out


@dataclass
class OfficeState:
    """The office now: waiting and active tickets, counters, recent calls, notice; as of event ``seq``."""

    office: str
    seq: int
    day: str
    calling_order: CallingOrder
    waiting: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Waiting tickets by :func:`ticket_key`."""
    active: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Called and serving tickets by :func:`ticket_key`."""
    counters: dict[str, dict[str, Any]] = field(default_factory=dict)
    recent: list[dict[str, Any]] = field(default_factory=list)
    paused: set[str] = field(default_factory=set)
    notice: str = ""
    notices: dict[str, str] = field(default_factory=dict)
    """The notice in the other languages than Japanese (``notice``): lang → text."""
    outage: dict[str, Any] | None = None
    """Outage mode (``O outage``): procedures, notice_id, notice {lang → text}, since; None when there is none."""
    figures: DayFigures = field(default_factory=DayFigures, repr=False)
    """Today's waits and the estimates shown at issue, for the supervisor console."""
    extras: dict[str, Any] = field(default_factory=dict, repr=False)
    """Figures other areas' keys give the supervisor console (``bookings``, ``back_office``), read from
    the store from time to time (``supervisor/api.py``), not from events."""
    done_today: dict[str, int] = field(default_factory=dict)
    estimates: dict[str, Any] = field(default_factory=dict)
    derived: dict[str, Any] = field(default_factory=dict, repr=False)
    """Values computed from the state once for all subscribers (places in line, serialised views);
    emptied by every change, see :meth:`changed`."""
    issued_at: dict[str, list[int]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Open and claimed back-office tasks of this office, by id (``domain/tasks.py``)."""
    task_times: list[dict[str, Any]] = field(default_factory=list)
    """Measured back-office tasks, newest first (kind, procedure, claimed_at, done_at)."""
    booked_before_slot: BookedBeforeSlot = BookedBeforeSlot.WALK_IN
    now: Callable[[], int] | None = field(default=None, repr=False)
    """The office clock (epoch ms): a booked ticket moves ahead when its slot starts, with no event.
    None: no booked precedence is applied (a state without a clock)."""

    @classmethod
    def from_snapshot(cls, office: str, snap: Mapping[str, Any], calling_order: CallingOrder, *,
                      booked_before_slot: BookedBeforeSlot = BookedBeforeSlot.WALK_IN,
                      now: Callable[[], int] | None = None) -> OfficeState:
        """Build the state from the store's snapshot."""
        day = snap["day"]
        return cls(
            office=office, seq=snap["seq"], day=day, calling_order=calling_order,
            booked_before_slot=booked_before_slot, now=now,
            waiting={ticket_key(t.get("day", day), t["number"]): staff_ticket(t) for t in snap["waiting"]},
            active={ticket_key(t.get("day", day), t["number"]): staff_ticket(t) for t in snap["active"]},
            counters={c["id"]: dict(c) for c in snap["counters"]},
            recent=list(snap["recent"])[:RECENT_CALLS], paused=set(snap["paused"]), notice=snap["notice"],
            notices=dict(snap.get("notices") or {}), outage=snap.get("outage"),
            tasks={str(t["id"]): dict(t) for t in snap.get("tasks", ())},
            task_times=list(snap.get("tasktimes", ()))[:TASK_TIMES_KEPT],
        )

    def apply(self, event: Mapping[str, Any]) -> bool:
        """Apply the next event; False if already applied; :class:`GapError` if one was missed."""
        seq = event["seq"]
        if seq <= self.seq:
            return False
        if seq != self.seq + 1:
            raise GapError(f"office {self.office}: expected event {self.seq + 1}, got {seq}")
        self.seq = seq
        self.changed()
        kind = event["type"]
        if event.get("day", self.day) > self.day:
            self.start_day(event["day"])  # the first event of a new day, whichever process made it
        if "counter" in event and event["counter"]:
            self.counters[event["counter"]["id"]] = dict(event["counter"])
        ticket = event.get("ticket")
        if ticket is not None:
            key = ticket_key(ticket.get("day", self.day), ticket["number"])
            self.waiting.pop(key, None)
            self.active.pop(key, None)
            state = ticket["state"]
            if state == "waiting":
                self.waiting[key] = staff_ticket(ticket)
            elif state in ("called", "serving"):
                self.active[key] = staff_ticket(ticket)
            elif state == "done":
                self.done_today[ticket["procedure"]] = self.done_today.get(ticket["procedure"], 0) + 1
            if state in FINAL_STATES:
                self.figures.on_finished(ticket["procedure"], state, key)
            if kind == "ticket.issued":
                # The estimate a ticket issued now is shown (the kiosk's), before this ticket changes it.
                self.figures.on_issued(key, ticket["procedure"], self.estimates.get("procedures", {}).get(ticket["procedure"]))
            elif kind == "ticket.called":
                self.figures.on_called(key, ticket)
        task = event.get("task")
        if task is not None:
            self._apply_task(task)
        if kind == "ticket.issued":
            times = self.issued_at.setdefault(ticket["procedure"], [])
            times.append(event["at"])
            if len(times) > ISSUE_HISTORY:
                del times[: len(times) - ISSUE_HISTORY]
        if kind in ("ticket.called", "ticket.recalled"):
            call = {"number": ticket["number"], "day": ticket.get("day", self.day), "counter": event["counter"]["id"],
                    "procedure": ticket["procedure"], "lang": ticket.get("lang", "ja"), "at": event["at"],
                    "recall": kind == "ticket.recalled"}
            self.recent = [call, *self.recent][:RECENT_CALLS]
        elif kind == "day.closed":
            # The store closed the day out (its tickets left the state with start_day above): the
            # counters that held one are free.
            for counter in event.get("counters") or ():
                self.counters[counter["id"]] = dict(counter)
            if event["closed"] == self.day:
                # The supervisor closed today out (not midnight): its remaining tickets expired.
                for number in event.get("expired") or ():
                    self.waiting.pop(ticket_key(self.day, number), None)
                    self.active.pop(ticket_key(self.day, number), None)
                self.figures.finished.setdefault("*", {})["expired"] = len(event.get("expired") or ())
        elif kind == "procedure.updated":
            (self.paused.add if event["paused"] else self.paused.discard)(event["procedure"])
        elif kind == "notice.updated":
            self.notice = event["notice"]
            self.notices = dict(event.get("notices") or {})
        elif kind == "outage.started":
            self.outage = dict(event["outage"])
            self.paused = set(event.get("paused") or ())
        elif kind == "outage.ended":
            self.outage = None
            self.paused = set(event.get("paused") or ())
        return True

    def _apply_task(self, task: Mapping[str, Any]) -> None:
        """Follow a task event: open and claimed tasks are kept, done ones measured, the rest dropped."""
        task_id = str(task["id"])
        if task["state"] in OPEN_TASK_STATES:
            self.tasks[task_id] = dict(task)
            return
        self.tasks.pop(task_id, None)
        if task["state"] == "done" and task.get("claimed_at") is not None:
            self.task_times.insert(0, {"kind": task["kind"], "procedure": task["procedure"],
                                       "claimed_at": task["claimed_at"], "done_at": task["done_at"]})
            del self.task_times[TASK_TIMES_KEPT:]

    def start_day(self, day: str) -> None:
        """Move to business day ``day``: the earlier days' tickets and calls leave the live state.

        The store closes those days out before the first step of the new day (``day.closed``), so
        nothing still open is lost here; a process may only learn of the new day from a later event.
        """
        self.day = day
        self.done_today = {}
        self.figures = DayFigures()
        first_key = ticket_key(day, "")
        self.waiting = {k: t for k, t in self.waiting.items() if k >= first_key}
        self.active = {k: t for k, t in self.active.items() if k >= first_key}
        self.recent = [c for c in self.recent if c.get("day", day) >= day]
        self.changed()

    def issued_last_hour(self, now_ms: int) -> dict[str, float]:
        """Tickets issued per procedure in the last hour (the walk-in rate the estimator extrapolates)."""
        since = now_ms - 3_600_000
        return {p: float(sum(1 for t in times if t >= since)) for p, times in self.issued_at.items()}

    def _precedence(self, ticket: Mapping[str, Any]) -> int | None:
        """From when the ticket has the booked precedence (``policy.booked_precedence_from``), or None."""
        slot_start = ticket.get("slot_start")
        if not ticket.get("booked") or slot_start is None:
            return None  # most tickets: no booking
        return booked_precedence_from(True, bool(ticket.get("handed_over_from")), int(slot_start),
                                      int(ticket["issued_at"]), self.booked_before_slot)

    def _sort_key(self, ticket: Mapping[str, Any], now: int | None) -> tuple[int, int]:
        """The calling order at ``now`` (``policy.effective_score``, then ``seq``)."""
        tier = effective_tier(bool(ticket.get("returning")), self._precedence(ticket), now, self.booked_before_slot)
        return (queue_score(int(ticket.get("priority", 0)), int(ticket["order"]), self.calling_order, tier),
                int(ticket["seq"]))

    def _next_precedence(self, now: int | None) -> int | None:
        """The soonest booked precedence still to begin after ``now``: the calling order changes then."""
        if now is None:
            return None
        times = [p for t in self.waiting.values() if (p := self._precedence(t)) is not None and p > now]
        return min(times, default=None)

    def waiting_counts(self) -> dict[str, int]:
        """How many wait for each procedure (counted once per change: every public event carries it)."""
        counts = self.derived.get("waiting_counts")
        if counts is None:
            counts = self.derived["waiting_counts"] = {}
            for t in self.waiting.values():
                counts[t["procedure"]] = counts.get(t["procedure"], 0) + 1
        return counts

    def changed(self) -> None:
        """Forget the derived values (the state or its estimates changed)."""
        self.derived.clear()

    def ahead(self, number: str, day: str | None = None) -> int | None:
        """How many in the same queue will be called before ticket ``number`` of ``day`` (default: the
        state's day); None if it is not waiting."""
        places = self.derived.get("ahead")
        now = self.now() if self.now else None
        until = self.derived.get("ahead_until")
        if places is None or (until is not None and now is not None and now >= until):
            # Every waiting ticket's place, sorted once per change (thousands of phones may ask) and
            # again when a booked ticket's slot starts.
            places = self.derived["ahead"] = {}
            seen: dict[str, int] = {}
            for key, t in sorted(self.waiting.items(), key=lambda item: self._sort_key(item[1], now)):
                places[key] = seen.get(t["procedure"], 0)
                seen[t["procedure"]] = places[key] + 1
            self.derived["ahead_until"] = self._next_precedence(now)
        return places.get(ticket_key(day or self.day, number))

    def public_estimates(self, per_ticket: bool) -> dict[str, Any]:
        """The estimates a view shows: all of them for counters; for the lobby each procedure's, in whole
        minutes (as displayed), so an unchanged display is not sent again."""
        if per_ticket:
            return self.estimates
        return {"procedures": {
            p: {k: round(v) if isinstance(v, float) else v for k, v in outlook.items()}
            for p, outlook in self.estimates.get("procedures", {}).items()}}

    def snapshot(self, per_ticket_estimates: bool = True) -> dict[str, Any]:
        """The full state for staff (counter panels, signed-in ``GET …/state``): every waiting ticket."""
        now = self.now() if self.now else None
        waiting = sorted(self.waiting.values(), key=lambda t: self._sort_key(t, now))
        return {"office": self.office, "seq": self.seq, "day": self.day, "waiting": waiting,
                "active": list(self.active.values()), "counters": list(self.counters.values()),
                "recent": self.recent, "paused": sorted(self.paused), "notice": self.notice, "notices": self.notices,
                "outage": self.outage, "waiting_counts": self.waiting_counts(),
                "estimates": self.public_estimates(per_ticket_estimates)}

    def lobby_snapshot(self) -> dict[str, Any]:
        """The public state (lobby displays, anonymous ``GET …/state``): calls, counters, counts per
        procedure and their estimates, never a list of the waiting tickets, so its size does not grow
        with the queue (thousands of idle displays each get it)."""
        return {"office": self.office, "seq": self.seq, "day": self.day,
                "active": [public_ticket(t) for t in self.active.values()],
                "counters": [public_counter(c) for c in self.counters.values()],
                "recent": self.recent, "paused": sorted(self.paused), "notice": self.notice, "notices": self.notices,
                "outage": self.outage, "waiting_counts": self.waiting_counts(), "estimates": self.public_estimates(False)}

    def ticket_view(self, day: str, number: str, ticket: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What the visitor's phone shows: their own ticket (``number`` of business day ``day``; ``ticket``
        is its last known copy), people ahead, numbers being called on its day."""
        key = ticket_key(day, number)
        current = self.waiting.get(key) or self.active.get(key) or (ticket and public_ticket(ticket)) or {}
        today = day == self.day
        # Outage mode: its notice on every visitor's page; for the procedures it stopped, no minutes
        # that are no longer true — the page says the wait is unknown.
        outage = self.outage if today else None
        unknown = bool(outage) and current.get("procedure") in outage["procedures"]  # type: ignore[index]
        return {
            "number": number,
            "day": day,
            "procedure": current.get("procedure"),
            "lang": current.get("lang", "ja"),
            "state": current.get("state", "done"),
            # "pending": the card is being prepared (the page says so); the ticket is not called until ready.
            "prep": current.get("prep") if current.get("state") == "waiting" else None,
            "counter": current.get("counter") if current.get("state") in ("called", "serving") else None,
            "ahead": self.ahead(number, day),
            # Another day's calls are not this ticket's: the same number may be called again today.
            "now_calling": [{"number": c["number"], "counter": c["counter"]} for c in self.recent[:3]] if today else [],
            "estimate": self.estimates.get("tickets", {}).get(number) if today and not unknown else None,
            "wait_unknown": unknown,
            "outage_notice": outage["notice"] if outage else None,
        }
