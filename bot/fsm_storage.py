"""aiogram FSM storage on the project's own database: the conversation step and the draft
survive a restart. Keys come from aiogram's DefaultKeyBuilder.

Inside a unit of work (one per update, see bot/middlewares.py) a key's row is read once —
usually by the unit's first SELECT, which :meth:`DatabaseStorage.prime` hands over — and
written once, just before the unit commits, however often a handler reads or changes its
state and data. A call outside a unit is a unit of its own (read, or read-change-write-commit).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StateType, StorageKey
from sqlalchemy import JSON, DateTime, String

from storage.db import Database, Sql, Unit, current_unit

_READ = Sql(
    "SELECT state, data FROM conversation_state WHERE key = :key",
    params={"key": String()},
    columns={"state": String(), "data": JSON()},
)
_WRITE = Sql(
    """INSERT INTO conversation_state (key, state, data, updated_at)
       VALUES (:key, :state, :data, :updated_at)
       ON CONFLICT (key) DO UPDATE
       SET state = excluded.state, data = excluded.data, updated_at = excluded.updated_at""",
    params={"key": String(), "state": String(), "data": JSON(), "updated_at": DateTime(timezone=True)},
)
_ROWS = "fsm_rows"


def _state_name(state: StateType) -> str | None:
    return state.state if isinstance(state, State) else state


@dataclass
class _Row:
    state: str | None
    data: dict[str, Any] = field(default_factory=dict)
    dirty: bool = False


class DatabaseStorage(BaseStorage):
    def __init__(self, db: Database, key_builder: KeyBuilder | None = None) -> None:
        self.db = db
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)

    def key(self, key: StorageKey) -> str:
        return self.key_builder.build(key)

    def prime(self, unit: Unit, key: str, state: str | None, data: Mapping[str, Any] | None) -> _Row:
        """The row of ``key`` as the unit already read it (None, None: there is none)."""
        row = unit.info.setdefault(_ROWS, {})[key] = _Row(state, dict(data or {}))
        return row

    async def _row(self, unit: Unit, key: StorageKey) -> _Row:
        k = self.key(key)
        rows: dict[str, _Row] = unit.info.setdefault(_ROWS, {})
        row = rows.get(k)
        if row is None:
            found = await _READ.one(unit, key=k)
            row = rows[k] = _Row(found[0], dict(found[1] or {})) if found else _Row(None)
        return row

    def changed(self, unit: Unit, row: _Row) -> None:
        """``row`` (of this unit) is written at the unit's commit."""
        row.dirty = True
        unit.before_commit(self._write)

    async def _write(self, unit: Unit) -> None:
        for k, row in unit.info.get(_ROWS, {}).items():
            if row.dirty:
                await _WRITE.run(unit, key=k, state=row.state, data=row.data, updated_at=unit.now)
                row.dirty = False

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        async with self._unit() as unit:
            row = await self._row(unit, key)
            row.state = _state_name(state)
            self.changed(unit, row)

    async def get_state(self, key: StorageKey) -> str | None:
        async with self._unit() as unit:
            return (await self._row(unit, key)).state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        async with self._unit() as unit:
            row = await self._row(unit, key)
            row.data = dict(data)
            self.changed(unit, row)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self._unit() as unit:
            return dict((await self._row(unit, key)).data)

    def _unit(self) -> AbstractAsyncContextManager[Unit]:
        """The update's unit (a handler calls several times per update), else one of its own."""
        unit = current_unit()
        return nullcontext(unit) if unit is not None and unit.db is self.db else self.db.unit()

    async def close(self) -> None:
        """The Database is owned by the application, which disposes it."""


class UnitState(FSMContext):
    """The FSM context of an update in a unit of work. Once UnitOfWork has read the update's
    conversation row (:meth:`attach`), the context reads and changes that row itself — the
    row :class:`DatabaseStorage` would find by building the key and looking the unit up on
    every call (a report step makes five to ten). It is written once, at the unit's commit,
    as before. Not attached, or called outside its unit: through the storage, as aiogram's."""

    storage: DatabaseStorage

    def __init__(self, storage: DatabaseStorage, key: StorageKey) -> None:
        super().__init__(storage, key)
        self._unit: Unit | None = None
        self._row: _Row | None = None

    def attach(self, unit: Unit, row: _Row) -> None:
        self._unit, self._row = unit, row

    def _live(self) -> _Row | None:
        """The attached row, while its unit is the one running."""
        unit = self._unit
        return self._row if unit is not None and current_unit() is unit else None

    def _changed(self, row: _Row) -> None:
        assert self._unit is not None
        self.storage.changed(self._unit, row)

    async def set_state(self, state: StateType = None) -> None:
        row = self._live()
        if row is None:
            return await super().set_state(state)
        row.state = _state_name(state)
        self._changed(row)

    async def get_state(self) -> str | None:
        row = self._live()
        return (await super().get_state()) if row is None else row.state

    async def set_data(self, data: Mapping[str, Any]) -> None:
        row = self._live()
        if row is None:
            return await super().set_data(data)
        row.data = dict(data)
        self._changed(row)

    async def get_data(self) -> dict[str, Any]:
        row = self._live()
        return (await super().get_data()) if row is None else dict(row.data)

    async def get_value(self, key: str, default: Any | None = None) -> Any | None:
        row = self._live()
        return (await super().get_value(key, default)) if row is None else row.data.get(key, default)

    async def update_data(self, data: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        row = self._live()
        if row is None:
            return await super().update_data(data, **kwargs)
        if data:
            kwargs.update(data)
        row.data = {**row.data, **kwargs}
        self._changed(row)
        return dict(row.data)
