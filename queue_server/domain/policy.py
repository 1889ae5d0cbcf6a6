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

A visitor handed over with their place kept (``returning``: the case moves on to city staff or
another procedure) is called before every ticket of the same priority class that has not been
at a counter yet, and returning visitors among themselves by their original place. They have
already waited their turn once and their case is half done at the office; putting them behind
people who came later would make them wait twice (with ``waited``, there are no classes: before
every ticket not yet served). ``counter_procedure_order`` still lets the office's procedure order
come first. A hand-over to the back of the line (``keep_place: false``) is not returning.

A ticket is not callable until its card is prepared (``prep == "pending"``: a same-day visitor of a
procedure with a ``prepare`` stage, see ``domain/tasks.py``). Call-next passes over it and takes the
next ready ticket; the held ticket keeps its place (its score), so once its preparation task is done
it is called where it stood in line. Calling it by number is refused (``card_not_ready``). The store
keeps held tickets out of the procedure queue (``D hold:{procedure}``), so call-next never sees them.

Each queue is kept sorted by :func:`queue_score`, so the choice only compares queue heads.
The Lua step (``store/lua/counters.lua``) implements exactly this; a test plays both on random offices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from .model import MAX_PRIORITY, CallingOrder, Conflict, Ticket, TicketState

TIER_WEIGHT: Final = 10**9
"""Score distance between returning and not-yet-served tickets; larger than any day's ``order``."""
PRIORITY_WEIGHT: Final = 2 * TIER_WEIGHT
"""Score distance between two priority classes: both tiers fit in one class."""


def queue_score(priority: int, order: int, calling_order: CallingOrder, returning: bool = False) -> int:
    """The sort key of a waiting ticket in its procedure queue: lower is called first.

    Scores stay below 2**53, so Redis (doubles) and Lua keep them exact.
    """
    tier = 0 if returning else TIER_WEIGHT
    if calling_order is CallingOrder.WAITED:
        return tier + order
    return (MAX_PRIORITY - priority) * PRIORITY_WEIGHT + tier + order


def choose_next(
    queues: Mapping[str, Sequence[Ticket]],
    served: Sequence[str],
    calling_order: CallingOrder,
) -> Ticket | None:
    """The ticket call-next gives a counter serving ``served`` (in preference order), or None.

    ``queues`` maps a procedure id to its waiting tickets in any order.
    """

    def score(t: Ticket) -> tuple[int, int]:
        return queue_score(t.priority, t.order, calling_order, t.returning), t.seq

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


def people_ahead(ticket: Ticket, waiting: Iterable[Ticket], calling_order: CallingOrder) -> int:
    """How many tickets in the same procedure queue will be called before ``ticket``."""
    mine = queue_score(ticket.priority, ticket.order, calling_order, ticket.returning), ticket.seq
    return sum(
        1
        for t in waiting
        if t.procedure == ticket.procedure
        and t.number != ticket.number
        and (queue_score(t.priority, t.order, calling_order, t.returning), t.seq) < mine
    )


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
