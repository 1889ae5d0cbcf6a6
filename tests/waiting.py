"""How tests wait: for the state they assert, never for a fixed time, and with a long deadline.

A loaded CI machine (two cores shared by many processes) can take seconds for what takes milliseconds
on a quiet one. A generous deadline costs nothing when the state comes sooner, since every wait here
returns the moment it holds; it only decides how long a real failure takes to be reported. pytest's
own per-test timeout (pyproject.toml, 300 s) stays above it, as the last guard against a hang.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

T = TypeVar("T")

PATIENCE_S: Final = 120.0
"""How long a test waits for a state it expects before calling it a failure.

With load average 20 on two cores (two CPU burners beside three full test runs), the estimates
worker (at nice 10) took tests/test_estimates_live.py to 60–65 s; 120 s keeps a margin, and stays
under pytest's 300 s for the whole test.
"""
PATIENCE_MS: Final = int(PATIENCE_S * 1000)
"""The same, for Playwright (milliseconds)."""
POLL_S: Final = 0.02
"""Between two looks at a state that gives no signal when it changes."""


async def wait_until(look: Callable[[], Awaitable[T | None]], what: str, timeout: float = PATIENCE_S) -> T:
    """The first truthy result of ``look()``, polled until ``timeout``; AssertionError naming ``what`` after it."""
    deadline = time.monotonic() + timeout
    while True:
        result = await look()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {timeout:.0f} s")
        await asyncio.sleep(POLL_S)


async def next_millisecond() -> None:
    """Until the clock has moved on to a later millisecond: two steps either side of this never share
    a timestamp (the server's clock is this machine's, give or take a fixed offset), so where the
    product orders by time (the newest call, the longest waiting) the order is the one they were
    made in. Two steps in one millisecond are a tie, which the product may break either way."""
    now = time.time_ns() // 1_000_000
    while time.time_ns() // 1_000_000 <= now:
        await asyncio.sleep(0.0002)
