"""Stopping background tasks for certain.

On Python 3.11 ``asyncio.wait_for`` can swallow a cancellation that arrives just as the awaited
thing completes or times out (fixed in 3.12), and redis-py can lose one inside a blocking pub/sub
read. A loop like ``while True: with suppress(TimeoutError): await wait_for(event.wait(), 30)`` then
runs on after its one ``cancel()``, and ``await task`` in the shutdown path waits forever: the
server never finishes stopping. :func:`stop_tasks` cancels again until the tasks have ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

log = logging.getLogger(__name__)

RETRY_SECONDS: Final = 0.5  # a task still running this long after cancel() is cancelled again


async def stop_tasks(tasks: Iterable[asyncio.Task[Any] | None],
                     when_stuck: Callable[[], Awaitable[None]] | None = None) -> None:
    """Cancel ``tasks`` and wait until every one has ended, cancelling again each ``RETRY_SECONDS``.

    ``when_stuck`` runs before each repeated cancel (e.g. to close a socket a task blocks on). A task
    that ended with an error other than the cancellation is logged, not raised: this is shutdown.
    """
    started = [t for t in tasks if t is not None]
    pending = set(started)
    for task in pending:
        task.cancel()
    while pending:
        _done, pending = await asyncio.wait(pending, timeout=RETRY_SECONDS)
        if pending:
            if when_stuck is not None:
                await when_stuck()
            for task in pending:
                task.cancel()
    for task in started:
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s ended with %r", task.get_name(), task.exception())
