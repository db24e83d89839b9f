"""Updates a stop left unhandled (``interrupted_update``): saved as the process stops, handed
to the replay at the next start, deleted once handled (bot/app.py, bot/replay.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import tables as t


class InterruptedUpdateRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def save(self, bot_id: int, updates: Iterable[tuple[int, dict[str, Any]]]) -> int:
        """Keep each (update id, the update as Telegram sent it) of bot ``bot_id``; one kept
        already (a stop during the replay of an earlier stop's) is left as it is. The number saved."""
        saved = 0
        for update_id, payload in updates:
            if await self.session.get(t.InterruptedUpdate, (bot_id, update_id)) is None:
                self.session.add(t.InterruptedUpdate(bot_id=bot_id, update_id=update_id, payload=payload))
                saved += 1
        await self.session.flush()
        return saved

    async def pending(self, bot_id: int) -> list[tuple[int, dict[str, Any]]]:
        """Bot ``bot_id``'s kept updates, in Telegram's order (by update id)."""
        stmt = (
            select(t.InterruptedUpdate.update_id, t.InterruptedUpdate.payload)
            .where(col(t.InterruptedUpdate.bot_id) == bot_id)
            .order_by(col(t.InterruptedUpdate.update_id))
        )
        return [(int(update_id), payload) for update_id, payload in (await self.session.exec(stmt)).all()]

    async def forget(self, bot_id: int, update_id: int) -> None:
        """The update was handled (or dropped as a duplicate): no longer kept."""
        row = await self.session.get(t.InterruptedUpdate, (bot_id, update_id))
        if row is not None:
            await self.session.delete(row)
            await self.session.flush()
