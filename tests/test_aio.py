"""Shutdown ends background tasks even when a cancellation is lost on the way."""

from __future__ import annotations

import asyncio

from queue_server.aio import stop_tasks

from .waiting import PATIENCE_S


async def test_a_task_that_loses_its_first_cancellation_is_still_stopped() -> None:
    started = asyncio.Event()
    lost = 0

    async def loop_that_swallows_one() -> None:
        # What Python 3.11's wait_for does when the cancel arrives as the wait times out.
        nonlocal lost
        started.set()
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                if lost:
                    raise
                lost += 1

    task = asyncio.create_task(loop_that_swallows_one())
    await started.wait()
    stuck: list[bool] = []

    async def when_stuck() -> None:
        stuck.append(True)

    await asyncio.wait_for(stop_tasks([task, None], when_stuck), PATIENCE_S)
    assert task.cancelled() and lost == 1 and stuck == [True]


async def test_a_task_that_failed_does_not_stop_the_shutdown() -> None:
    async def fails() -> None:
        raise ValueError("broken")

    task = asyncio.create_task(fails())
    await asyncio.wait([task])  # it has run and failed
    await stop_tasks([task])
    assert isinstance(task.exception(), ValueError)
