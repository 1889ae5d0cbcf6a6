"""The Valkey Functions library every state change runs: ``lua/common.lua``, one module per area, ``lua/main.lua``.

Redis runs one function call as one atomic step. Keeping each area (the business day, tickets,
counters, the office as a whole, …) in its own file keeps each a thing a person can hold; they are
joined here, in this order, into the one library ``madoguchi`` that ``QueueStore`` loads once
(``FUNCTION LOAD REPLACE``) and then calls as ``FCALL mg_{op} 1 {O}evseq {request JSON}``.

Only the routing key is declared: KEYS[1] is the office's ``O evseq`` (``P o:{office}:evseq``),
which every step of the office touches (each change takes the next event number), so a cluster
client sends the call to the node holding the office's slot. The step derives ``O`` (and the
prefix and office id) from it and computes every other key it touches under ``O``; those keys carry
the same hash tag ``{office}``, so they are in the same slot as the declared key. Declaring them all
would mean computing them in Python first, and some are only known inside the step (the ticket a
counter holds, the queue heads call-next compares, the days a new day closes out).
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Final

LIBRARY: Final = "madoguchi"
"""The library's name; its functions are ``mg_{op}`` (one per operation of ``ops``) and ``mg_version``."""

# common first (shared helpers, `ops`, `lib`), main last (registration and dispatch); areas in
# between, each a `do ... end` block adding its operations to `ops`.
MODULES: Final = ("common", "archive", "day", "tickets", "counters", "office", "bookings", "supervisor", "checkin",
                   "tasks", "main")
MAIN_MODULE_HEADER: Final = "-- ==== lua/main.lua ====\n"


def modules() -> str:
    """The joined modules without the library header (a test may add to them before ``source``)."""
    lua = resources.files(__package__).joinpath("lua")
    return "\n".join(f"-- ==== lua/{name}.lua ====\n" + lua.joinpath(f"{name}.lua").read_text("utf-8") for name in MODULES)


def version(body: str | None = None) -> str:
    """The library's version: a digest of its modules (``mg_version`` answers it)."""
    return hashlib.sha1((body if body is not None else modules()).encode()).hexdigest()[:16]


def source(body: str | None = None) -> str:
    """The whole library: its header, its version, then each module headed by its file name (Lua
    errors name the joined line). ``body``: the joined modules, if a caller changed them."""
    body = body if body is not None else modules()
    return f"#!lua name={LIBRARY}\nlocal VERSION = '{version(body)}'\n{body}"
