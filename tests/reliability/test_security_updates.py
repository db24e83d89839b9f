"""Issue 11, defect 7: processed updates are remembered per bot — two bots (tokens) on one
database each handle their own update 1 — and the duplicate check still holds per bot."""

from __future__ import annotations

from storage.db import Database
from storage.repositories import Repos


async def test_update_ids_are_per_bot(db: Database) -> None:
    async with db.session() as s:
        assert await Repos(s).mark_update(1001, bot_id=111) is True
    async with db.session() as s:
        assert await Repos(s).mark_update(1001, bot_id=222) is True  # another bot's update 1001
    async with db.session() as s:
        assert await Repos(s).mark_update(1001, bot_id=111) is False  # a re-delivery
        assert await Repos(s).mark_update(1001, bot_id=222) is False
