"""Engine, sessions, units of work and migrations.

SQLite (aiosqlite) is the embedded default — WAL journal, foreign keys on, a busy timeout
so the bot and the CLI can share the file. PostgreSQL (asyncpg) is production.

A :class:`Unit` is the bot's transaction per update. Its hot statements (:class:`Sql`: the
duplicate check, contact + conversation state, the FSM write, the report's reads and writes)
run directly on the driver's connection (sqlite3; asyncpg, in the transaction the unit began
itself); the ORM session is created only when a handler needs it, on the same connection and
transaction, so everything commits together or not at all. On PostgreSQL a unit's connection
is kept for the next unit (up to the pool's size) instead of going back to the pool each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite
from sqlalchemy import bindparam, column, event, inspect, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as SAAsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.types import TypeEngine
from sqlalchemy.util import await_only
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.tables import utcnow

if TYPE_CHECKING:
    from alembic.config import Config

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
    kwargs.setdefault("hide_parameters", True)  # errors and logs never carry names, ids, answers
    if is_sqlite(url):
        kwargs.setdefault("connect_args", {}).setdefault("async_creator_fn", _inline_sqlite)
    elif make_url(url).get_driver_name() != "asyncpg":
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    elif not kwargs.get("pool_pre_ping"):
        event.listen(engine.sync_engine, "checkout", _ping_on_checkout)
    return engine


# Set while Database.unit checks a connection out: the unit's BEGIN is its liveness check.
_BEGIN_CHECKS: ContextVar[bool] = ContextVar("resobot_begin_checks", default=False)


def _ping_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection killed by a restart or ``pg_terminate_backend`` is replaced, not used:
    one round trip (``;``) at every checkout; on failure the pool discards the connection and
    checks out another (SQLAlchemy's DisconnectionError protocol). SQLAlchemy's own
    ``pool_pre_ping`` does the same in three round trips on asyncpg (BEGIN, ``;``, ROLLBACK),
    ~1 ms per update on these machines (bench/bench_chat.py). A unit of work's checkout skips
    it: its BEGIN is the same check (:meth:`Database._begun`)."""
    if _BEGIN_CHECKS.get():
        return
    try:
        await_only(dbapi_connection.driver_connection.fetchrow(";"))
    except Exception as exc:
        raise sa_exc.DisconnectionError() from exc


Params = dict[str, Any] | list[dict[str, Any]]  # one parameter set, or one per execution


class Sql:
    """A hand-written statement of the hot path, portable between SQLite and PostgreSQL
    (``:name`` parameters; ``INSERT ... ON CONFLICT`` is spoken by both).

    In a :class:`Unit` it runs on the driver's connection itself — the sqlite3 connection on
    SQLite, the asyncpg connection on PostgreSQL once the unit's transaction has begun — a few
    µs (SQLite) or ~0.1 ms (PostgreSQL) less than through SQLAlchemy's async layers per
    statement, with SQLAlchemy's own compilation and type processors for the parameters and
    columns, so values are sent, stored and read exactly as the ORM does. Elsewhere (a plain
    session, or a unit's first PostgreSQL statement, which begins its transaction) it runs
    through SQLAlchemy as a ``text()`` clause, which SQLAlchemy compiles once and caches.
    """

    def __init__(
        self, sql: str, params: Mapping[str, TypeEngine[Any]], columns: Mapping[str, TypeEngine[Any]] = {}
    ) -> None:
        self.sql = " ".join(sql.split())
        named = set(re.findall(r"(?<![:\w]):(\w+)", self.sql))
        self.params = {n: ty for n, ty in params.items() if n in named}  # a table's columns may be given
        self.columns = dict(columns)
        clause: Any = text(self.sql).bindparams(*(bindparam(n, type_=ty) for n, ty in self.params.items()))
        if self.columns:
            clause = clause.columns(*(column(n, ty) for n, ty in self.columns.items()))
        self.clause = clause
        self._processors: tuple[Dialect, dict[str, Any], list[Any]] | None = None
        self._positional: tuple[Dialect, str, tuple[str, ...]] | None = None

    def _type_processors(
        self, dialect: Dialect, coltypes: list[Any] | None = None
    ) -> tuple[dict[str, Any], list[Any]]:
        """Bind processors by parameter, result processors by column. ``coltypes``: the
        database's type of each column (asyncpg's numeric processors choose by it, as
        SQLAlchemy's cursor description gives it)."""
        if self._processors is None or self._processors[0] is not dialect:
            binds = {n: ty.dialect_impl(dialect).bind_processor(dialect) for n, ty in self.params.items()}
            types = coltypes or [None] * len(self.columns)
            results = [
                t.dialect_impl(dialect).result_processor(dialect, coltype)
                for t, coltype in zip(self.columns.values(), types, strict=True)
            ]
            self._processors = (dialect, {n: p for n, p in binds.items() if p is not None}, results)
        return self._processors[1], self._processors[2]

    async def _pg_processors(self, dialect: Dialect, pg: Any, sql: str) -> None:
        """The processors for asyncpg, with the column types PostgreSQL reports for the
        statement (once per process)."""
        if self._processors is None or self._processors[0] is not dialect:
            coltypes = None
            if self.columns:
                coltypes = [a.type.oid for a in (await pg.prepare(sql)).get_attributes()]
            self._type_processors(dialect, coltypes)

    def _bound(self, dialect: Dialect, params: dict[str, Any]) -> dict[str, Any]:
        binds, _ = self._type_processors(dialect)
        for name, process in binds.items():
            if params.get(name) is not None:
                params[name] = process(params[name])
        return params

    def _decoded(self, dialect: Dialect, rows: list[Any]) -> list[tuple[Any, ...]]:
        _, results = self._type_processors(dialect)
        processed = [(i, p) for i, p in enumerate(results) if p is not None]  # a few of the columns
        decoded = []
        for row in rows:
            values = list(row)
            for i, process in processed:
                if values[i] is not None:
                    values[i] = process(values[i])
            decoded.append(tuple(values))
        return decoded

    def _numbered(self, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
        """The statement as SQLAlchemy compiles it for asyncpg ($1, $2 … with their casts) and
        the parameter names in the order of the numbers."""
        if self._positional is None or self._positional[0] is not dialect:
            compiled = self.clause.compile(dialect=dialect)
            self._positional = (dialect, compiled.string, tuple(compiled.positiontup or ()))
        return self._positional[1], self._positional[2]

    async def _direct(self, unit: Unit, params: Params, *, fetch: bool) -> Any:
        """Run on the unit's driver connection: rows (fetch) or the changed-row count; None when
        the statement must go through SQLAlchemy (PostgreSQL before the transaction has begun).
        ``params`` a list: once per parameter set in one call to the driver (asyncpg sends them
        in one round trip), giving the number of sets."""
        if unit._session is not None:
            await unit.autoflush()  # the ORM's pending changes go first (as SQLAlchemy's autoflush)
        dialect = unit.db.dialect
        many = isinstance(params, list)
        if unit.sqlite is not None:
            if many:
                unit.sqlite.executemany(self.sql, [self._bound(dialect, dict(p)) for p in params])
                return len(params)
            cursor = unit.sqlite.execute(self.sql, self._bound(dialect, params))
            return self._decoded(dialect, cursor.fetchall()) if fetch else int(cursor.rowcount)
        pg = unit.pg
        if pg is None or not pg.is_in_transaction():
            return None
        sql, names = self._numbered(dialect)
        try:
            await self._pg_processors(dialect, pg, sql)
            if many:
                bound_sets = [self._bound(dialect, dict(p)) for p in params]
                await pg.executemany(sql, [[bound[n] for n in names] for bound in bound_sets])
                return len(params)
            bound = self._bound(dialect, params)
            args = [bound[n] for n in names]
            if fetch:
                return self._decoded(dialect, await pg.fetch(sql, *args))
            return _changed_rows(await pg.execute(sql, *args))
        except Exception as exc:
            raise await unit.driver_error(exc, sql) from exc

    async def rows(self, source: Unit | AsyncSession, **params: Any) -> list[tuple[Any, ...]]:
        if isinstance(source, Unit):
            rows = await self._direct(source, params, fetch=True)
            if rows is not None:
                return rows
        result = await self._execute(source, params)
        return [tuple(row) for row in result.all()]

    async def one(self, source: Unit | AsyncSession, **params: Any) -> tuple[Any, ...] | None:
        rows = await self.rows(source, **params)
        return rows[0] if rows else None

    async def run(self, source: Unit | AsyncSession, **params: Any) -> int:
        """Execute; the number of rows the statement changed."""
        if isinstance(source, Unit):
            changed = await self._direct(source, params, fetch=False)
            if changed is not None:
                return int(changed)
        return int((await self._execute(source, params)).rowcount)

    async def run_many(self, source: Unit | AsyncSession, rows: list[dict[str, Any]]) -> None:
        """Execute once per parameter set, in one call to the driver (asyncpg sends them in one
        round trip; SQLite's executemany); through SQLAlchemy's executemany elsewhere."""
        if not rows:
            return
        if isinstance(source, Unit) and await self._direct(source, rows, fetch=False) is not None:
            return
        await self._execute(source, rows)

    async def _execute(self, source: Unit | AsyncSession, params: Params) -> Any:
        if isinstance(source, Unit) and source._session is None:
            return await source.connection.execute(self.clause, params)  # pending ORM work: none
        session = source.session if isinstance(source, Unit) else source
        # SQLAlchemy's own execute (SQLModel's warns for anything but ORM selects): autoflushes first
        return await SAAsyncSession.execute(session, self.clause, params)


def _changed_rows(status: str | None) -> int:
    """The row count of an asyncpg command status ("INSERT 0 1", "UPDATE 3", "DELETE 0")."""
    last = (status or "").rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


# SQLAlchemy's exception class for a PostgreSQL error raised on the driver connection directly,
# by the SQLSTATE class (as psycopg reports them): the same classes a statement run through
# SQLAlchemy raises for these errors, so callers (bot/replay.py's outage test) see no difference.
_SQLSTATE_CLASSES: dict[str, type[sa_exc.DBAPIError]] = {
    "08": sa_exc.OperationalError,  # connection exception
    "0A": sa_exc.NotSupportedError,
    "22": sa_exc.DataError,
    "23": sa_exc.IntegrityError,
    "40": sa_exc.OperationalError,  # serialization failure, deadlock
    "42": sa_exc.ProgrammingError,
    "53": sa_exc.OperationalError,  # insufficient resources
    "55": sa_exc.OperationalError,  # lock not available
    "57": sa_exc.OperationalError,  # operator intervention: shutdown, query cancelled
    "XX": sa_exc.InternalError,
}
_DISCONNECT_STATES = {"57P01", "57P02", "57P03"}  # admin shutdown, crash shutdown, cannot connect now


def _lost(error: BaseException, pg: Any) -> bool:
    """Did ``error`` (from the asyncpg connection ``pg``, or SQLAlchemy's adapter of it) lose
    the connection?"""
    state = _sqlstate(error)
    return (
        isinstance(error, OSError | ConnectionError | TimeoutError)
        or isinstance(error.__cause__, OSError | ConnectionError | TimeoutError)
        or state.startswith("08")
        or state in _DISCONNECT_STATES
        or (pg is not None and pg.is_closed())
    )


def _sqlstate(error: BaseException) -> str:
    """The SQLSTATE of an asyncpg error, also when SQLAlchemy's adapter wrapped it."""
    return str(getattr(error, "sqlstate", None) or getattr(error.__cause__, "sqlstate", None) or "")


def _sqlalchemy_error(error: Exception, statement: str, lost: bool) -> sa_exc.DBAPIError:
    state = _sqlstate(error)
    cls = _SQLSTATE_CLASSES.get(state[:2], sa_exc.OperationalError if lost else sa_exc.DBAPIError)
    return cls(statement, None, error, hide_parameters=True, connection_invalidated=lost)  # type: ignore[arg-type]


async def _begin(pg: Any, lock: tuple[int, int] | None) -> None:
    """BEGIN on the asyncpg connection ``pg``; with ``lock``, the advisory lock too, in the same
    round trip (one simple query: the lock's numbers are ints, written as literals)."""
    if lock is None:
        await pg.execute("BEGIN")
        return
    cls, key = (int(n) for n in lock)
    await pg.execute(f"BEGIN; SELECT pg_advisory_xact_lock({cls}, {key})")


async def _discard(conn: AsyncConnection) -> None:
    """A connection that must not be used again: invalidated (not pooled) and closed; errors
    on the way are the broken connection's own."""
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()


def detached(model: type[Any], **values: Any) -> Any:
    """An ORM instance of a row read by :class:`Sql`: persistent, detached — it joins the unit's
    session when one is created and its changes are then flushed like any loaded row's."""
    obj = model.__mapper__.class_manager.new_instance()
    obj.__dict__.update(values)
    make_transient_to_detached(obj)
    return obj


Hook = Callable[["Unit"], Awaitable[None]]


class Unit:
    """One transaction: the bot's unit of work for an update (see :meth:`Database.unit`).

    ``connection`` is the unit's SQLAlchemy connection. ``sqlite`` is its sqlite3 connection
    on SQLite, ``pg`` its asyncpg connection on PostgreSQL (None elsewhere), for :class:`Sql`.
    ``session`` is the ORM session, created on first use on the same connection and
    transaction. ``info`` holds per-unit state of its users (the FSM rows). Hooks added with
    :meth:`before_commit` run just before the commit.
    """

    def __init__(
        self,
        db: Database,
        *,
        conn: AsyncConnection,
        sqlite: Any = None,
        pg: Any = None,
    ) -> None:
        self.db = db
        self.sqlite = sqlite
        self.pg = pg
        self.info: dict[str, Any] = {}
        self._conn = conn
        self._session: AsyncSession | None = None
        self._hooks: list[Hook] = []
        self._after: list[Callable[[], None]] = []
        self._adopted: dict[Any, Any] = {}  # identity key → instance

    @property
    def connection(self) -> AsyncConnection:
        return self._conn

    @functools.cached_property
    def now(self) -> dt.datetime:
        """The unit's time, read once (as PostgreSQL's ``now()`` is its transaction's): the
        update's row, its conversation row and its report are stamped alike."""
        return utcnow()

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self.db._sessions(bind=self._conn)
            self._session.add_all(list(self._adopted.values()))
        return self._session

    def adopt(self, obj: Any, *, refresh: bool = False) -> Any:
        """An instance built by :func:`detached` joins this unit (and its session, if made).
        Returns the unit's instance of that row: one already known is kept, as the ORM's
        identity map does — with ``refresh``, updated to ``obj``'s values (a row just written)."""
        key = inspect(obj).key
        known = self._adopted.get(key)
        if known is None and self._session is not None:
            known = self._session.identity_map.get(key)
            if known is None:
                self._session.add(obj)
        if known is None:
            self._adopted[key] = obj
            return obj
        if refresh:
            for attr in inspect(type(obj)).column_attrs:
                set_committed_value(known, attr.key, obj.__dict__[attr.key])
        return known

    def before_commit(self, hook: Hook) -> None:
        if hook not in self._hooks:
            self._hooks.append(hook)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """``callback`` runs once the unit has committed (never after a rollback): e.g. waking
        the outbox sender for the rows this unit queued."""
        if callback not in self._after:
            self._after.append(callback)

    async def autoflush(self) -> None:
        """Before a raw statement: the ORM's pending changes go first (as SQLAlchemy's autoflush)."""
        session = self._session
        if session is not None and (session.new or session.dirty or session.deleted):
            await session.flush()

    async def driver_error(self, error: Exception, statement: str) -> sa_exc.DBAPIError:
        """A PostgreSQL error raised on the asyncpg connection directly, as SQLAlchemy raises it
        for a statement it ran: its DBAPIError subclass; a lost connection is invalidated (not
        given back to the pool) and the error says so, as SQLAlchemy's disconnect handling does."""
        lost = _lost(error, self.pg)
        if lost:
            with contextlib.suppress(Exception):
                await self._conn.invalidate()
        return _sqlalchemy_error(error, statement, lost)

    async def commit(self) -> None:
        while self._hooks:
            await self._hooks.pop(0)(self)
        if self._session is None and any(inspect(o).modified for o in self._adopted.values()):
            _ = self.session  # a changed contact (language, unblocked): flushed by the ORM
        if self._session is not None:
            # flushes; commits too when the session began the connection's transaction
            await self._session.commit()
        if self.sqlite is not None and self.sqlite.in_transaction:
            self.sqlite.commit()
        if self.pg is not None:
            await self._end("COMMIT")
        elif self._conn.in_transaction():
            await self._conn.commit()
        after, self._after = self._after, []
        for callback in after:
            callback()

    async def rollback(self) -> None:
        self._after.clear()
        try:
            if self._session is not None:
                await self._session.rollback()
        finally:
            if self.sqlite is not None and self.sqlite.in_transaction:
                self.sqlite.rollback()
            if self.pg is not None:
                await self._end("ROLLBACK")

    async def _end(self, command: str) -> None:
        """PostgreSQL: COMMIT or ROLLBACK the transaction the unit began on its driver connection
        (:meth:`Database._begun`); an error is raised as SQLAlchemy raises a statement's. A
        connection already lost has nothing left to roll back."""
        assert self.pg is not None
        if not self.pg.is_in_transaction() or (command == "ROLLBACK" and self.pg.is_closed()):
            return
        try:
            await self.pg.execute(command)
        except Exception as exc:
            raise await self.driver_error(exc, command) from exc

    async def close(self) -> None:
        try:
            if self._session is not None:
                await self._session.close()
        finally:
            if self.pg is not None:  # PostgreSQL: kept or back to the pool (SQLite keeps its one)
                await self._release()

    async def _release(self) -> None:
        """PostgreSQL: the connection is kept for the next unit or goes back to the pool
        (:meth:`Database._keep`), in either case outside any transaction: neither the next unit
        nor the pool's rollback on return would end one (the unit's connection is in autocommit
        for SQLAlchemy), so a transaction still open — a unit cancelled mid-statement — is
        rolled back here, or the connection is discarded."""
        try:
            await self._end("ROLLBACK")
        except Exception:
            with contextlib.suppress(Exception):
                await self._conn.invalidate()
        await self.db._keep(self._conn)


_bound: ContextVar[Unit | None] = ContextVar("resobot_unit", default=None)


def current_unit() -> Unit | None:
    """The unit of work bound to this task (inside :meth:`Database.unit`), if any."""
    return _bound.get()


class Database:
    """One engine and its session factory; ``async with db.session() as s`` commits on success."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self.dialect = self.engine.dialect  # read per statement: the engine's is a proxied property
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        # SQLite statements run on the loop thread (InlineSqliteConnection): two sessions of this
        # process must never wait on each other's write lock there, so they take turns.
        self._turn: asyncio.Lock | None = asyncio.Lock() if is_sqlite(url) else None
        self._turn_owner: asyncio.Task[Any] | None = None
        # SQLite: the connection units run on, checked out of the pool once (units take turns)
        self._unit_conn: tuple[AsyncConnection, Any] | None = None
        # PostgreSQL: units check out of the same pool in autocommit, as SQLAlchemy sees it —
        # it begins nothing — and run their transaction themselves (_begun, Unit.commit); a
        # unit's connection is kept checked out for the next unit (up to the pool's size), not
        # given back to the pool and checked out again every update
        self._unit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._kept: list[AsyncConnection] = []

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
    async def unit(self, *, lock: tuple[int, int] | None = None) -> AsyncIterator[Unit]:
        """A unit of work bound to this task: commits on success, rolls back on error. Inside
        a unit of this task it joins that one (the FSM storage, called from handlers).

        ``lock`` (PostgreSQL): a transaction-scoped advisory lock (two int4) the transaction
        takes as it begins, in BEGIN's round trip — its first statement then already reads
        what the lock's last holder committed (bot/middlewares.py: the conversation lock)."""
        outer = _bound.get()
        if outer is not None and outer.db is self:
            yield outer
            return
        async with self._exclusive():
            if self._turn is not None:
                conn, raw = await self._unit_connection()
                unit = Unit(self, conn=conn, sqlite=raw)
            else:  # PostgreSQL: a pooled connection, its transaction begun
                conn, pg = await self._begun(lock)
                unit = Unit(self, conn=conn, pg=pg)
            token = _bound.set(unit)
            try:
                yield unit
                await unit.commit()
            except BaseException:
                try:
                    await unit.rollback()
                except Exception:
                    await self._drop_unit_connection()
                    raise
                raise
            finally:
                _bound.reset(token)
                await unit.close()

    async def _begun(self, lock: tuple[int, int] | None = None) -> tuple[AsyncConnection, Any]:
        """PostgreSQL: a pooled connection with the unit's transaction begun, and its asyncpg
        connection. BEGIN, the transaction's first round trip, is also the liveness check that
        every other checkout makes with a ping of its own (``_ping_on_checkout``): a connection
        killed while pooled (a server restart, ``pg_terminate_backend``) fails it before
        anything ran on it, so it is discarded and another one checked out, as the pool does on
        a failed ping. An error that is not a lost connection is raised at once; either is
        raised as SQLAlchemy raises it for a statement it ran (a DBAPIError subclass).

        The unit sends BEGIN itself, on the asyncpg connection, with ``lock`` taken in the same
        round trip (:func:`_begin`); COMMIT and ROLLBACK too (:class:`Unit`). SQLAlchemy sees
        the connection in autocommit (``_unit_engine``): it begins nothing of its own, so its
        statements and the ORM session's, when a unit makes one, run in the unit's transaction
        (the session's commit and rollback send nothing: the unit's do)."""
        attempts = self._pool_size() + 1  # every pooled connection may be dead, and then a new one
        for attempt in range(attempts):
            if self._kept:
                conn = self._kept.pop()
            else:
                token = _BEGIN_CHECKS.set(True)
                try:
                    conn = await self._unit_engine.connect()
                finally:
                    _BEGIN_CHECKS.reset(token)
            pg = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
            try:
                await _begin(pg, lock)
            except Exception as exc:
                lost = _lost(exc, pg) or self.dialect.is_disconnect(exc, None, None)
                if lost:  # the server went away (a restart): the kept connections went with it
                    await _discard(conn)
                    await self._close_kept(discard=True)
                else:
                    with contextlib.suppress(Exception):
                        if pg.is_in_transaction():  # BEGIN went through, the lock did not
                            await pg.execute("ROLLBACK")
                    with contextlib.suppress(Exception):
                        await conn.close()
                if not lost or attempt == attempts - 1:
                    raise _sqlalchemy_error(exc, "BEGIN", lost) from exc
                continue
            except BaseException:  # cancelled mid-BEGIN: what the connection holds is unknown
                await _discard(conn)
                raise
            return conn, pg
        raise AssertionError("unreachable")  # the loop returns or raises

    def _pool_size(self) -> int:
        return int(getattr(self.engine.pool, "size", lambda: 0)())

    async def _keep(self, conn: AsyncConnection) -> None:
        """A unit's connection, its transaction ended: kept for the next unit, or given back to
        the pool (one kept beyond the pool's size, or invalidated, or closed)."""
        if conn.invalidated or conn.closed or len(self._kept) >= self._pool_size():
            await conn.close()
            return
        if conn.in_transaction():  # an ORM session's, SQLAlchemy's bookkeeping: nothing is sent
            await conn.rollback()
        self._kept.append(conn)

    async def _close_kept(self, *, discard: bool = False) -> None:
        kept, self._kept = self._kept, []
        for conn in kept:
            if discard:
                await _discard(conn)
            else:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def _unit_connection(self) -> tuple[AsyncConnection, Any]:
        if self._unit_conn is None:
            conn = await self.engine.connect()
            driver = (await conn.get_raw_connection()).driver_connection
            self._unit_conn = (conn, getattr(driver, "_connection", None) or driver)  # aiosqlite → sqlite3
        return self._unit_conn

    async def _drop_unit_connection(self) -> None:
        held, self._unit_conn = self._unit_conn, None
        if held is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to give back
                await held[0].invalidate()

    @asynccontextmanager
    async def bound(self) -> AsyncIterator[AsyncSession]:
        """A unit of work's ORM session, bound to this task (FSM storage calls join it)."""
        async with self.unit() as unit:
            yield unit.session

    @asynccontextmanager
    async def current(self) -> AsyncIterator[AsyncSession]:
        """The bound unit's session when there is one, else a short session of its own."""
        unit = _bound.get()
        if unit is not None and unit.db is self:
            yield unit.session
            return
        async with self.session() as session:
            yield session

    async def dispose(self) -> None:
        await self._close_kept()
        held, self._unit_conn = self._unit_conn, None
        if held is not None:
            await held[0].close()
        await self.engine.dispose()


def alembic_config(url: str) -> Config:
    # Alembic (and Mako under it) is imported here, where migrations run, not when the bot
    # starts: the idle bot must not hold it in memory (issue 12, item 6) — not a cycle break.
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Run Alembic migrations (blocking; call from a thread inside an event loop)."""
    from alembic import command  # see alembic_config

    ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes: they were stored as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
