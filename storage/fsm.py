"""aiogram FSM storage on the project's own database: the conversation step and the draft
survive a restart. Keys come from aiogram's DefaultKeyBuilder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StateType, StorageKey

from storage.db import Database
from storage.tables import ConversationState, utcnow


def _state_name(state: StateType) -> str | None:
    return state.state if isinstance(state, State) else state


class DatabaseStorage(BaseStorage):
    def __init__(self, db: Database, key_builder: KeyBuilder | None = None) -> None:
        self.db = db
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)

    async def _find(self, session: Any, key: StorageKey) -> ConversationState | None:
        """The row, read once per session: SQLAlchemy's identity map holds rows weakly, so
        the session keeps a strong reference (an update reads its state several times)."""
        k = self.key_builder.build(key)
        rows: dict[str, ConversationState] = session.info.setdefault("fsm_rows", {})
        if k not in rows:
            row = await session.get(ConversationState, k)
            if row is None:
                return None
            rows[k] = row
        return rows[k]

    async def _row(self, session: Any, key: StorageKey) -> ConversationState:
        row = await self._find(session, key)
        if row is None:
            k = self.key_builder.build(key)
            row = ConversationState(key=k, state=None, data={})
            session.add(row)
            await session.flush()
            session.info["fsm_rows"][k] = row
        return row

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        async with self.db.current() as session:
            row = await self._row(session, key)
            row.state = _state_name(state)
            row.updated_at = utcnow()

    async def get_state(self, key: StorageKey) -> str | None:
        async with self.db.current() as session:
            row = await self._find(session, key)
            return row.state if row else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        async with self.db.current() as session:
            row = await self._row(session, key)
            row.data = dict(data)
            row.updated_at = utcnow()

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self.db.current() as session:
            row = await self._find(session, key)
            return dict(row.data) if row else {}

    async def close(self) -> None:
        """The Database is owned by the application, which disposes it."""
