"""Engine, sessions and migrations.

SQLite (aiosqlite) is the embedded default — WAL journal, foreign keys on, a busy timeout
so the bot and the CLI can share the file. PostgreSQL (asyncpg) is production.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import aiosqlite
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class InlineSqliteConnection(aiosqlite.Connection):
    """aiosqlite's API with every call run directly on the event-loop thread.

    An SQLite statement on a local file takes microseconds; aiosqlite's hop to its worker
    thread and back costs ~0.2 ms each way on these machines, several times per statement
    (bench/bench_chat.py). The price: a statement waiting for another process's write lock
    (busy_timeout) holds the loop — fine for the embedded default, where writers are this
    bot and short CLI commands. PostgreSQL (asyncpg) is the production path.
    """

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> InlineSqliteConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Any:
        return self._connect().__await__()

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _inline_sqlite(database: str, **kwargs: Any) -> InlineSqliteConnection:
    kwargs["check_same_thread"] = False  # opened and used on the loop thread; pooled across tasks
    return InlineSqliteConnection(lambda: sqlite3.connect(database, **kwargs), iter_chunk_size=64)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def ensure_sqlite_dir(url: str) -> None:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    ensure_sqlite_dir(url)
    if is_sqlite(url):
        kwargs.setdefault("connect_args", {}).setdefault("async_creator_fn", _inline_sqlite)
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


_bound: ContextVar[AsyncSession | None] = ContextVar("resobot_bound_session", default=None)


class Database:
    """One engine and its session factory; ``async with db.session() as s`` commits on success."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        # SQLite statements run on the loop thread (InlineSqliteConnection): two sessions of this
        # process must never wait on each other's write lock there, so they take turns.
        self._turn: asyncio.Lock | None = asyncio.Lock() if is_sqlite(url) else None
        self._turn_owner: asyncio.Task[Any] | None = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._exclusive(), self._sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        if self._turn is None:
            yield
            return
        task = asyncio.current_task()
        if task is not None and self._turn_owner is task:
            raise RuntimeError("a second session inside a session of the same task; use Database.current()")
        async with self._turn:
            self._turn_owner = task
            try:
                yield
            finally:
                self._turn_owner = None

    @asynccontextmanager
    async def bound(self) -> AsyncIterator[AsyncSession]:
        """Open a session and make it the ambient one for this task (one update = one
        transaction: the bot's middleware uses this so the FSM draft and the domain writes
        commit together — and SQLite never waits on a second writer of the same update)."""
        async with self.session() as session:
            token = _bound.set(session)
            try:
                yield session
            finally:
                _bound.reset(token)

    @asynccontextmanager
    async def current(self) -> AsyncIterator[AsyncSession]:
        """The ambient session when one is bound, else a short session of its own."""
        session = _bound.get()
        if session is not None:
            yield session
            return
        async with self.session() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Run Alembic migrations (blocking; call from a thread inside an event loop)."""
    ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes: they were stored as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
