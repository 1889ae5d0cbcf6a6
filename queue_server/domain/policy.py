"""The calling policy and the ticket lifecycle rules.

Call-next at a counter looks only at the queues of the procedures that counter serves and
picks by the office's configured :class:`CallingOrder`:

``priority_then_waited`` (default)
    the highest priority class first, then the longest in line (lowest ``order``);
``waited``
    the longest in line, whatever the priority class;
``counter_procedure_order``
    the counter's procedures in the order its configuration lists them: the first one with
    anybody waiting, and within it the highest priority class, then the longest in line.

Inside a priority class tickets fall in four tiers (:func:`effective_tier`), then time in line:

0. **returning** — a visitor handed over with their place kept (the case moves on to city staff
   or another procedure), among themselves by their original place. They have already waited
   their turn once and their case is half done at the office; putting them behind people who
   came later would make them wait twice (with ``waited``, there are no classes: before every
   ticket not yet served). A hand-over to the back of the line (``keep_place: false``) is not
   returning.
1. **booked, slot started** — a booked visitor checked in on time (``booked``) once the slot's
   start has come, among themselves by their place (the check-in). A booking is a promise of a
   time: the office kept room in that slot for them (its capacity counts counters' time), so
   once the slot runs they go before the walk-ins of their class, who came without one — else a
   booking would be worth nothing on a busy morning. Before the slot starts
   (``[calling] booked_before_slot = "walk_in"``, the default) they wait like a walk-in who
   arrived at check-in: coming early gains nothing over the walk-ins, but costs nothing either —
   an early arrival called before the slot is simply served early. ``"at_check_in"`` gives the
   precedence from the check-in on (offices that let booked visitors check in only shortly
   before the slot). ``"keep_for_slot"`` keeps them for their slot: until it starts they are
   tier 3 (below), so a counter calls one early only when no walk-in of their class is waiting.
   A visitor checked in too late (``late``) is a walk-in from the check-in,
   and a booked ticket handed over goes on by the hand-over rule (returning or the back of
   the line), not by its booking. Returning visitors still come first: their case is open.
2. **everybody else** — by time in line.
3. **booked, kept for the slot** — with ``booked_before_slot = "keep_for_slot"``, a booked visitor
   checked in before the slot, until it starts; among themselves by their place. Offices that
   plan their booked and walk-in work apart keep the early arrivals out of the walk-ins' time,
   but a counter with nobody else to call still serves them early rather than stand idle.

Each queue is kept sorted by :func:`queue_score` with the *stored* tier (:func:`stored_tier`: 0,
2, or 3 for a ticket kept for its slot); only a booked ticket's tier changes with time, and only
downwards (3 or 2 to 1), so stored scores are never below the effective ones, and call-next
compares the queue heads with the booked tickets whose precedence has begun, rescored with tier
1 (:func:`effective_score`). The Lua step (``store/lua/counters.lua``: ``D q:{procedure}`` and
``D bq:{procedure}``; ``store/lua/checkin.lua`` stores tier 3) implements exactly this; a test
plays both on random offices.

A ticket is not callable until its card is prepared (``prep == "pending"``: a same-day visitor of a
procedure with a ``prepare`` stage, or a booked visitor checking in before their card's preparation
is done; see ``domain/tasks.py``). Its booked precedence, if any, waits with it. Call-next passes over it and takes the
next ready ticket; the held ticket keeps its place (its score), so once its preparation task is done
it is called where it stood in line. Calling it by number is refused (``card_not_ready``). The store
keeps held tickets out of the procedure queue (``D hold:{procedure}``), so call-next never sees them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from .model import MAX_PRIORITY, BookedBeforeSlot, CallingOrder, Conflict, Ticket, TicketState

TIER_WEIGHT: Final = 10**9
"""Score distance between two tiers; larger than any day's ``order``."""
TIER_RETURNING: Final = 0
TIER_BOOKED: Final = 1
TIER_OTHER: Final = 2
TIER_KEPT: Final = 3
"""A booked visitor kept for their slot (``keep_for_slot``) before it starts."""
TIERS: Final = 4
PRIORITY_WEIGHT: Final = TIERS * TIER_WEIGHT
"""Score distance between two priority classes: the four tiers fit in one class."""


def queue_score(priority: int, order: int, calling_order: CallingOrder, tier: int = TIER_OTHER) -> int:
    """The sort key of a waiting ticket: lower is called first (``(9 − p)·4·10⁹ + tier·10⁹ + order``;
    ``waited``: ``tier·10⁹ + order``).

    Scores stay below 2**53, so Redis (doubles) and Lua keep them exact.
    """
    if calling_order is CallingOrder.WAITED:
        return tier * TIER_WEIGHT + order
    return (MAX_PRIORITY - priority) * PRIORITY_WEIGHT + tier * TIER_WEIGHT + order


def stored_tier(returning: bool, kept_for_slot: bool = False) -> int:
    """The tier a ticket's stored queue score uses: returning, kept for its slot (a booked visitor checked in
    on time under ``keep_for_slot``), or other; the booked tier 1 depends on the time."""
    if returning:
        return TIER_RETURNING
    return TIER_KEPT if kept_for_slot else TIER_OTHER


def booked_precedence_from(booked: bool, handed_over: bool, slot_start: int | None, checked_in_at: int,
                           booked_before_slot: BookedBeforeSlot = BookedBeforeSlot.WALK_IN) -> int | None:
    """From when (epoch ms) a ticket has the booked precedence, or None if it never has.

    Only a booked visit checked in on time (``booked``), before any hand-over; from its slot's start
    (``walk_in``, ``keep_for_slot``), or with ``at_check_in`` from the check-in (the ticket's
    ``issued_at``). The store keeps the same time as the ticket's score in ``D bq:{procedure}``.
    """
    if not booked or handed_over or slot_start is None:
        return None
    return checked_in_at if booked_before_slot is BookedBeforeSlot.AT_CHECK_IN else slot_start


def precedence_from(ticket: Ticket, booked_before_slot: BookedBeforeSlot = BookedBeforeSlot.WALK_IN) -> int | None:
    """:func:`booked_precedence_from` of a ticket."""
    return booked_precedence_from(ticket.booked, bool(ticket.handed_over_from), ticket.slot_start, ticket.issued_at,
                                  booked_before_slot)


def effective_tier(returning: bool, precedence: int | None, now: int | None,
                   booked_before_slot: BookedBeforeSlot = BookedBeforeSlot.WALK_IN) -> int:
    """The tier a ticket is called by at ``now``: returning, booked with its precedence begun, other, or
    (``keep_for_slot``) booked and kept for a slot still to start.

    ``now`` None: no booked precedence has begun (a caller with no clock, e.g. a replay without bookings).
    """
    if returning:
        return TIER_RETURNING
    if precedence is not None and now is not None and precedence <= now:
        return TIER_BOOKED
    if precedence is not None and booked_before_slot is BookedBeforeSlot.KEEP_FOR_SLOT:
        return TIER_KEPT
    return TIER_OTHER


def effective_score(ticket: Ticket, now: int | None, calling_order: CallingOrder,
                    booked_before_slot: BookedBeforeSlot = BookedBeforeSlot.WALK_IN) -> int:
    """The score call-next compares at ``now``: the stored score, or tier 1 for a booked ticket whose
    precedence has begun (tier 3 before, kept for the slot under ``keep_for_slot``)."""
    tier = effective_tier(ticket.returning, precedence_from(ticket, booked_before_slot), now, booked_before_slot)
    return queue_score(ticket.priority, ticket.order, calling_order, tier)


def choose_next(
    queues: Mapping[str, Sequence[Ticket]],
    served: Sequence[str],
    calling_order: CallingOrder,
    now: int | None = None,
    booked_before_slot: BookedBeforeSlot = BookedBeforeSlot.WALK_IN,
) -> Ticket | None:
    """The ticket call-next gives a counter serving ``served`` (in preference order) at ``now``, or None.

    ``queues`` maps a procedure id to its waiting tickets in any order. Under ``keep_for_slot`` a
    booked visitor whose slot has not started is given out only when nobody else of their priority
    class is callable (in ``counter_procedure_order``: in that procedure).
    """

    def score(t: Ticket) -> tuple[int, int]:
        return effective_score(t, now, calling_order, booked_before_slot), t.seq

    if calling_order is CallingOrder.COUNTER_PROCEDURE_ORDER:
        for procedure in served:
            waiting = [t for t in queues.get(procedure, ()) if callable_now(t)]
            if waiting:
                return min(waiting, key=score)
        return None
    candidates = [t for p in served for t in queues.get(p, ()) if callable_now(t)]
    return min(candidates, key=score) if candidates else None


def callable_now(ticket: Ticket) -> bool:
    """Whether call-next may give out this waiting ticket: not while its card is being prepared."""
    return ticket.prep != "pending"


def people_ahead(ticket: Ticket, waiting: Iterable[Ticket], calling_order: CallingOrder, now: int | None = None,
                 booked_before_slot: BookedBeforeSlot = BookedBeforeSlot.WALK_IN) -> int:
    """How many tickets in the same procedure queue would be called before ``ticket`` at ``now``
    (by :func:`effective_score`: a booked visitor kept for their slot has everybody of their class ahead)."""

    def score(t: Ticket) -> tuple[int, int]:
        return effective_score(t, now, calling_order, booked_before_slot), t.seq

    mine = score(ticket)
    return sum(1 for t in waiting if t.procedure == ticket.procedure and t.number != ticket.number and score(t) < mine)


# Which states each operation may start from. The Lua scripts check the same table
# (see ``store/lua/common.lua``) and report a violation as ``bad_state``.
ALLOWED_FROM: Final[Mapping[str, frozenset[TicketState]]] = {
    "call": frozenset({TicketState.WAITING}),
    "recall": frozenset({TicketState.CALLED}),
    "start": frozenset({TicketState.CALLED}),
    "finish": frozenset({TicketState.SERVING}),
    "no_show": frozenset({TicketState.CALLED}),
    "cancel": frozenset({TicketState.WAITING, TicketState.CALLED}),
    "hand_over": frozenset({TicketState.CALLED, TicketState.SERVING}),
    # The day's end: a ticket still open when its business day ends is closed out as expired, never
    # carried into the next day (numbers restart; offices close hours before midnight, so these are
    # few: forgotten finishes and visitors who left without a word). ``lua/day.lua`` close_day.
    "expire": frozenset({TicketState.WAITING, TicketState.CALLED, TicketState.SERVING}),
}

_VERBS: Final = {
    "call": "call",
    "recall": "recall",
    "start": "start serving",
    "finish": "finish",
    "no_show": "mark as no-show",
    "cancel": "cancel",
    "hand_over": "hand over",
    "expire": "close out",
}


def transition_error(operation: str, number: str, state: TicketState | str) -> Conflict:
    """The 409 explaining why ``operation`` is impossible for a ticket in ``state``."""
    allowed = " or ".join(sorted(s.value for s in ALLOWED_FROM[operation]))
    return Conflict(
        f"cannot {_VERBS[operation]} ticket {number}: it is {TicketState(state).value}, "
        f"and only a {allowed} ticket can be",
        code="invalid_transition",
    )


def check_transition(operation: str, ticket: Ticket) -> None:
    """Raise :class:`Conflict` unless ``operation`` may be applied to ``ticket`` now."""
    if ticket.state not in ALLOWED_FROM[operation]:
        raise transition_error(operation, ticket.number, ticket.state)
