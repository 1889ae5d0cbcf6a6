"""The supervisor's figures of the day, kept from an office's events, and the console's view of an office.

Pure Python: the hub's :class:`~queue_server.domain.state.OfficeState` feeds :class:`DayFigures` with
each ticket event; :func:`supervisor_view` turns the state into what the console shows (staff only:
it names the staff member at each counter). Times are epoch milliseconds; waits are minutes.

Figures are those the process saw since the start of the business day (or since it started), carried
over when the hub rebuilds its state from a snapshot on the same day.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .state import OfficeState

FINAL_STATES: Final = ("done", "no_show", "cancelled", "expired")
STILL_WAITING_LISTED: Final = 100
"""Numbers listed as still waiting per office (the count says how many more)."""
MINUTE_MS: Final = 60_000


@dataclass(frozen=True, slots=True)
class Wait:
    """One visitor's first call: how long they waited and what they were shown at issue."""

    procedure: str
    minutes: float
    estimate: tuple[float, float, float] | None
    """(median, low, high) minutes the procedure's estimate said when the ticket was issued."""


@dataclass
class DayFigures:
    """What happened today in one office, as far as this process followed it."""

    issued: dict[str, int] = field(default_factory=dict)
    finished: dict[str, dict[str, int]] = field(default_factory=dict)
    """procedure → final state (done, no_show, cancelled) → count; ``expired`` under ``"*"``."""
    shown: dict[str, tuple[float, float, float] | None] = field(default_factory=dict)
    """Ticket key → the estimate shown at issue, until its first call."""
    waits: list[Wait] = field(default_factory=list)
    called: set[str] = field(default_factory=set)
    """Ticket keys already called once today (a recall or a second call after a hand-over is no new wait)."""

    def on_issued(self, key: str, procedure: str, outlook: Mapping[str, Any] | None) -> None:
        """A ticket was issued while the procedure's estimate was ``outlook``."""
        self.issued[procedure] = self.issued.get(procedure, 0) + 1
        median = outlook.get("median_minutes") if outlook else None
        self.shown[key] = ((float(median), float(outlook.get("low_minutes", median)),  # type: ignore[union-attr]
                            float(outlook.get("high_minutes", median)))  # type: ignore[union-attr]
                           if isinstance(median, (int, float)) else None)

    def on_called(self, key: str, ticket: Mapping[str, Any]) -> None:
        """A ticket was called; its first call is its wait."""
        if key in self.called or ticket.get("issued_at") is None or ticket.get("called_at") is None:
            return
        self.called.add(key)
        minutes = max(0.0, (int(ticket["called_at"]) - int(ticket["issued_at"])) / MINUTE_MS)
        self.waits.append(Wait(ticket["procedure"], minutes, self.shown.pop(key, None)))

    def on_finished(self, procedure: str, state: str, key: str) -> None:
        """A ticket reached a final state."""
        counts = self.finished.setdefault(procedure, {})
        counts[state] = counts.get(state, 0) + 1
        self.shown.pop(key, None)


def service_level(figures: DayFigures, target_minutes: float, target_share: float) -> dict[str, Any]:
    """The share of today's called visitors called within the target wait, and whether it meets the target."""
    called = len(figures.waits)
    within = sum(1 for w in figures.waits if w.minutes <= target_minutes)
    share = within / called if called else None
    waits = [w.minutes for w in figures.waits]
    return {"called": called, "within_target": within, "share": share, "target_wait_minutes": target_minutes,
            "target_share": target_share, "met": None if share is None else share >= target_share,
            "mean_wait_minutes": statistics.fmean(waits) if waits else None,
            "max_wait_minutes": max(waits) if waits else None}


def estimate_accuracy(figures: DayFigures) -> dict[str, Any]:
    """How far the estimates shown at issue were from the real waits of today's called visitors.

    ``mean_abs_error`` and ``bias`` (real − shown; positive: visitors waited longer than shown) in
    minutes, ``within_range``: the share whose real wait fell inside the shown range."""
    pairs = [(w.minutes, w.estimate) for w in figures.waits if w.estimate is not None]
    if not pairs:
        return {"compared": 0, "mean_abs_error": None, "bias": None, "within_range": None}
    errors = [real - shown[0] for real, shown in pairs]
    inside = sum(1 for real, shown in pairs if shown[1] <= real <= shown[2])
    return {"compared": len(pairs), "mean_abs_error": statistics.fmean(abs(e) for e in errors),
            "bias": statistics.fmean(errors), "within_range": inside / len(pairs)}


def day_totals(figures: DayFigures) -> dict[str, Any]:
    """Tickets issued and ended per procedure, today."""
    procedures = sorted(set(figures.issued) | {p for p in figures.finished if p != "*"})
    per = {p: {"issued": figures.issued.get(p, 0),
               **{s: figures.finished.get(p, {}).get(s, 0) for s in FINAL_STATES if s != "expired"}}
           for p in procedures}
    return {"procedures": per, "issued": sum(figures.issued.values()),
            "expired": figures.finished.get("*", {}).get("expired", 0)}


def supervisor_view(state: OfficeState, target_minutes: float, target_share: float) -> dict[str, Any]:
    """One office as the supervisor console shows it (staff view: the user name at each counter)."""
    procedures: dict[str, dict[str, Any]] = {}
    for t in state.waiting.values():
        entry = procedures.setdefault(t["procedure"], {"waiting": 0, "oldest_issued_at": None})
        entry["waiting"] += 1
        issued = t.get("issued_at")
        if issued and (entry["oldest_issued_at"] is None or issued < entry["oldest_issued_at"]):
            entry["oldest_issued_at"] = issued
    outlooks = state.estimates.get("procedures", {})
    for p, outlook in outlooks.items():
        procedures.setdefault(p, {"waiting": 0, "oldest_issued_at": None})["estimate_minutes"] = outlook.get("median_minutes")
    for p in state.paused:
        procedures.setdefault(p, {"waiting": 0, "oldest_issued_at": None})
    for p, entry in procedures.items():
        entry["paused"] = p in state.paused
    counters = []
    for c in state.counters.values():
        ticket = None
        if c.get("ticket"):
            day, _, number = str(c["ticket"]).partition("|")
            t = state.active.get(f"{day}|{number}")
            if t is not None:
                ticket = {k: t[k] for k in ("number", "procedure", "state", "called_at", "started_at", "issued_at")
                          if t.get(k) not in (None, "")}
        counters.append({"id": c["id"], "status": c.get("status", "closed"), "staff": c.get("staff") or None,
                         "since": c.get("since"), "ticket": ticket,
                         "procedures": c.get("procedures") if c.get("procedures_day") == state.day else None})
    still = sorted(state.waiting.values(), key=lambda t: (int(t.get("issued_at") or 0), int(t.get("seq") or 0)))
    return {"office": state.office, "day": state.day, "seq": state.seq, "procedures": procedures,
            "counters": counters, "paused": sorted(state.paused), "notice": state.notice,
            "notices": state.notices, "outage": state.outage,
            # Absent for an office without bookings or back-office stages: not a zero, no figure at all.
            "bookings": state.extras.get("bookings"), "back_office": state.extras.get("back_office"),
            "still_waiting": {"count": len(still), "active": len(state.active),
                              "numbers": [{"number": t["number"], "procedure": t["procedure"],
                                           "issued_at": t.get("issued_at")} for t in still[:STILL_WAITING_LISTED]]},
            "today": {**day_totals(state.figures), "service_level": service_level(state.figures, target_minutes, target_share),
                      "estimates": estimate_accuracy(state.figures)}}
