"""The Lua script every state change runs: ``lua/common.lua``, one module per area, ``lua/main.lua``.

Redis runs one script as one atomic step. Keeping each area (the business day, tickets, counters,
the office as a whole, …) in its own file keeps each a thing a person can hold; they are joined
here, in this order, into the one script ``QueueStore`` registers.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

# common first (shared helpers, `ops`, `lib`), main last (dispatch); areas in between, each a
# `do ... end` block adding its operations to `ops`.
MODULES: Final = ("common", "archive", "day", "tickets", "counters", "office", "bookings", "checkin", "tasks",
                  "main")


def source() -> str:
    """The whole script, each module headed by its file name (Lua errors name the joined line)."""
    lua = resources.files(__package__).joinpath("lua")
    return "\n".join(f"-- ==== lua/{name}.lua ====\n" + lua.joinpath(f"{name}.lua").read_text("utf-8") for name in MODULES)
