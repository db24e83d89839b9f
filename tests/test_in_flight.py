"""InFlight (bot/middlewares.py): what a stop waits for, and what it cancels.

The process-level evidence is tests/reliability/test_sigterm_in_flight.py; here, the rules:
an update is followed by itself, not by the task it runs in (a replayed update runs in the
replay's long-lived task, which must not be waited for, nor cancelled, once the update is done)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiogram.types import Update

from bot.middlewares import InFlight


async def test_a_stop_waits_for_an_update_being_handled_and_cancels_nothing() -> None:
    in_flight = InFlight()
    finished: list[int] = []

    async def handler(event: Any, data: dict[str, Any]) -> None:
        await asyncio.sleep(0.05)
        finished.append(event.update_id)

    task = asyncio.create_task(in_flight(handler, Update(update_id=7), {}))
    await asyncio.sleep(0)
    assert await in_flight.finish(5.0) == []
    assert finished == [7] and task.done() and not task.cancelled()


async def test_an_update_in_a_long_lived_task_is_followed_by_itself() -> None:
    """The replay's task goes on after its update; the stop neither waits for it nor cancels it."""
    in_flight = InFlight()
    replayed = asyncio.Event()
    keep_going = asyncio.Event()

    async def handler(event: Any, data: dict[str, Any]) -> None:
        await asyncio.sleep(0.01)

    async def replay_loop() -> None:
        await in_flight(handler, Update(update_id=8), {})
        replayed.set()
        await keep_going.wait()  # the replay waits for the next held update

    loop_task = asyncio.create_task(replay_loop())
    await asyncio.sleep(0)
    started = asyncio.get_running_loop().time()
    assert await in_flight.finish(5.0) == []
    assert asyncio.get_running_loop().time() - started < 2.0  # not the grace: the update was done
    assert replayed.is_set() and not loop_task.done()
    keep_going.set()
    await loop_task


async def test_an_update_outlasting_the_grace_is_cancelled_and_its_cleanup_runs() -> None:
    in_flight = InFlight()
    cleaned: list[int] = []

    async def handler(event: Any, data: dict[str, Any]) -> None:
        try:
            await asyncio.sleep(60)
        finally:
            cleaned.append(event.update_id)  # the unit of work's rollback, in the bot

    quick = asyncio.create_task(in_flight(lambda e, d: asyncio.sleep(0), Update(update_id=1), {}))
    slow = asyncio.create_task(in_flight(handler, Update(update_id=9), {}))
    await asyncio.sleep(0)
    assert [u.update_id for u in await in_flight.finish(0.1)] == [9]
    assert cleaned == [9] and slow.cancelled() and quick.done() and not quick.cancelled()
    assert await in_flight.finish(0.1) == []  # nothing left
