"""The office's own things: procedures, counters, tickets and what may happen to them.

Plain Python: no aiohttp, Redis or file I/O. The storage adapter carries out the same
rules atomically in Lua; ``tests/test_policy_agreement.py`` checks the two agree.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Final


class DomainError(Exception):
    """A request the office's rules do not allow; ``code`` is from the shared error vocabulary."""

    code: str = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        """The human-readable explanation."""
        return str(self.args[0])


class NotFound(DomainError):
    """The office, counter, procedure or ticket does not exist."""

    code = "not_found"


class Conflict(DomainError):
    """The transition is impossible in the current state (e.g. finishing a ticket never called)."""

    code = "conflict"


class TicketState(enum.StrEnum):
    """Where a ticket is in its life: waiting → called → serving → done (or no-show, cancelled), or
    expired: still open when its business day ended (closed out at midnight, see ``policy``)."""

    WAITING = "waiting"
    CALLED = "called"
    SERVING = "serving"
    DONE = "done"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class CounterStatus(enum.StrEnum):
    """Whether a counter takes visitors: open, paused (staff away) or closed."""

    OPEN = "open"
    PAUSED = "paused"
    CLOSED = "closed"


class Role(enum.StrEnum):
    """Staff roles. Contractor staff run the counters; city staff review and handle PINs; call-centre
    operators book, change and cancel for callers (they staff no counter)."""

    CONTRACTOR = "contractor"
    CITY = "city"
    SUPERVISOR = "supervisor"
    CALLCENTER = "callcenter"


class CallingOrder(enum.StrEnum):
    """How call-next chooses among the procedures a counter serves (see ``policy``)."""

    PRIORITY_THEN_WAITED = "priority_then_waited"
    WAITED = "waited"
    COUNTER_PROCEDURE_ORDER = "counter_procedure_order"


class BookedBeforeSlot(enum.StrEnum):
    """How a booked visitor checked in before their slot starts waits (``[calling] booked_before_slot``).

    ``walk_in`` (default): like a walk-in who arrived then, until the slot starts, then before the
    walk-ins of their priority class; ``at_check_in``: before the walk-ins from the moment of check-in;
    ``keep_for_slot``: kept for the slot — until it starts, called only when nobody else of their
    priority class waits, then before the walk-ins.
    """

    WALK_IN = "walk_in"
    AT_CHECK_IN = "at_check_in"
    KEEP_FOR_SLOT = "keep_for_slot"


@dataclass(frozen=True, slots=True)
class NumberFormat:
    """How a procedure's ticket numbers look: a prefix letter (``A001``) or a 3-digit range (``300``–``599``)."""

    prefix: str = ""
    width: int = 3
    first: int = 1
    last: int = 999

    def render(self, n: int) -> str:
        """The printed number for the ``n``-th ticket of the day (1-based); ``Conflict`` when the range is used up."""
        value = self.first + n - 1
        if value > self.last:
            raise Conflict(
                f"today's numbers {self.render_value(self.first)}–{self.render_value(self.last)} are used up",
                code="numbers_exhausted",
            )
        return self.render_value(value)

    def render_value(self, value: int) -> str:
        """Format one number value with this format's prefix and width."""
        return f"{self.prefix}{value:0{self.width}d}"



@dataclass(frozen=True, slots=True)
class Procedure:
    """A kind of business at the counter (交付申請受付, カード交付, …) with its own queue.

    ``service_minutes`` is the prior for the counter time; ``prep_minutes`` and ``post_minutes``
    the back-office work before the call and after the visit (card preparation 15 min,
    post-issuance processing 10 min in the Kurume measurements). ``stages`` names the back-office
    stages the procedure has (``prepare``: a task before the visitor can be called; ``post``: a
    task after the counter finishes; see ``domain/tasks.py``). ``booked_number``: the numbers of
    booked visitors checked in on time (None: the procedure's own numbers).
    """

    id: str
    name: str
    number: NumberFormat
    service_minutes: float
    prep_minutes: float = 0.0
    post_minutes: float = 0.0
    stages: tuple[str, ...] = ()
    city_staff_only: bool = False
    description: str = ""
    names: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    booked_number: NumberFormat | None = None


@dataclass(frozen=True, slots=True)
class Counter:
    """A numbered counter (窓口): the procedures it serves, in preference order, and who staffs it.

    ``breaks`` are the planned daily pauses (local ``(start, end)`` times, e.g. lunch) that the wait
    estimate expects; staff still pause the counter themselves.
    """

    id: str
    name: str
    procedures: tuple[str, ...]
    staff: Role = Role.CONTRACTOR
    breaks: tuple[tuple[dt.time, dt.time], ...] = ()


@dataclass(frozen=True, slots=True)
class Ticket:
    """A numbered ticket as stored: no names, no My Numbers, only numbers and times.

    ``seq`` is the office-day issue order; ``order`` is the place in line, equal to ``seq`` unless
    a hand-over sent the ticket to the back; ``returning`` marks a visitor handed over with their
    place kept (called before tickets not yet served, see ``policy``). Times are epoch milliseconds.

    A booked visitor's ticket carries its ``booking`` (id) and ``slot_start``; ``booked`` when checked
    in on time (eligible for the booked precedence, see ``policy``), ``late`` when checked in too late
    (a walk-in from the check-in on). ``issued_at`` of a booked ticket is the check-in time.
    """

    number: str
    procedure: str
    state: TicketState
    seq: int
    order: int
    issued_at: int
    priority: int = 0
    lang: str = "ja"
    day: str = ""
    counter: str | None = None
    called_at: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    recalls: int = 0
    handed_over_from: str | None = None
    hand_over_reason: str | None = None
    returning: bool = False
    booking: str | None = None
    slot_start: int | None = None
    booked: bool = False
    late: bool = False
    prep: str | None = None
    """``pending`` while the visitor's card is being prepared (not callable), ``ready`` after; None when
    the procedure has no preparation stage."""


MAX_PRIORITY: Final = 9


def can_act_at(role: Role, counter: Counter) -> bool:
    """Whether staff of ``role`` may work at ``counter``: its own kind of staff, or a supervisor."""
    return role is Role.SUPERVISOR or role is counter.staff
