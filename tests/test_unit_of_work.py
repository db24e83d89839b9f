"""The unit of work's hand-written statements (storage.db.Sql) on the driver connection: on
SQLite the sqlite3 connection, on PostgreSQL the asyncpg connection once the unit's transaction
has begun. They must commit and roll back with the ORM's writes, read values exactly as
SQLAlchemy reads them, and fail as SQLAlchemy's statements fail."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import warnings
from typing import Any

import asyncpg
import pytest
from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, Numeric, String, event
from sqlalchemy import exc as sa_exc
from sqlalchemy import text as sql
from sqlmodel import select

import storage.db
from bot.replay import is_outage
from reporting_forms.catalog import Catalog
from storage import repositories
from storage import tables as t
from storage.db import Database, Sql, as_utc
from storage.repositories import Repos

NOW = dt.datetime(2026, 12, 4, 12, 30, tzinfo=dt.UTC)

_INSERT_UPDATE = Sql(  # no ON CONFLICT: a second insert of one id violates the primary key
    "INSERT INTO processed_update (bot_id, update_id, at) VALUES (:bot_id, :update_id, :at)",
    params={"bot_id": Integer(), "update_id": Integer(), "at": DateTime(timezone=True)},
)
_TYPED_ROW = Sql(
    """SELECT CAST(:num AS NUMERIC(12, 3)) AS num, CAST(:real AS FLOAT) AS real, :flag AS flag,
              :stamp AS stamp, s.data AS data, s.state AS state
       FROM conversation_state AS s WHERE s.key = :key""",
    params={
        "num": Numeric(12, 3),
        "real": Float(),
        "flag": Boolean(),
        "stamp": DateTime(timezone=True),
        "key": String(),
    },
    columns={
        "num": Numeric(12, 3),
        "real": Float(),
        "flag": Boolean(),
        "stamp": DateTime(timezone=True),
        "data": JSON(),
        "state": String(),
    },
)


def _is_postgres(db: Database) -> bool:
    return db.engine.dialect.name == "postgresql"


async def _updates(db: Database) -> set[int]:
    async with db.session() as s:
        return set((await s.exec(select(t.ProcessedUpdate.update_id))).all())


async def _setting(db: Database, key: str) -> str | None:
    async with db.session() as s:
        row = await s.get(t.AppSetting, key)
        return row.value if row else None


async def test_statements_and_orm_writes_commit_together(db: Database) -> None:
    async with db.unit() as unit:
        await _INSERT_UPDATE.run(unit, bot_id=1, update_id=101, at=NOW)  # begins the transaction
        unit.session.add(t.AppSetting(key="unit-test", value="one"))  # an ORM write between
        await _INSERT_UPDATE.run(unit, bot_id=1, update_id=102, at=NOW)  # autoflushes it first
    assert await _updates(db) == {101, 102}
    assert await _setting(db, "unit-test") == "one"


async def test_a_failing_unit_keeps_neither_the_statements_nor_the_orm_writes(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.unit() as unit:
            await _INSERT_UPDATE.run(unit, bot_id=1, update_id=201, at=NOW)
            unit.session.add(t.AppSetting(key="unit-test", value="two"))
            await _INSERT_UPDATE.run(unit, bot_id=1, update_id=202, at=NOW)
            raise RuntimeError("the handler failed")
    assert await _updates(db) == set()
    assert await _setting(db, "unit-test") is None
    async with db.unit() as unit:  # the connection is usable again
        await _INSERT_UPDATE.run(unit, bot_id=1, update_id=203, at=NOW)
    assert await _updates(db) == {203}


async def test_values_are_read_as_sqlalchemy_reads_them(db: Database) -> None:
    async with db.session() as s:
        s.add(t.ConversationState(key="k1", state="ReportFlow:answering", data={"draft": {"a": [1, 2.5]}}))
    params: dict[str, Any] = dict(num="12.345", real=2.5, flag=True, stamp=NOW, key="k1")
    async with db.session() as s:  # through SQLAlchemy
        expected = await _TYPED_ROW.one(s, **params)
    async with db.unit() as unit:
        await _INSERT_UPDATE.run(unit, bot_id=1, update_id=301, at=NOW)  # the transaction has begun
        found = await _TYPED_ROW.one(unit, **params)  # on the driver connection
    assert found == expected
    assert [type(v) for v in found] == [type(v) for v in expected]  # type: ignore[union-attr]
    assert found is not None and found[4] == {"draft": {"a": [1, 2.5]}}


async def test_on_postgresql_a_unit_begins_its_transaction_and_no_statement_goes_through_sqlalchemy(
    db: Database,
) -> None:
    """The unit's BEGIN is sent when it starts (it is the pooled connection's liveness check);
    every hand-written statement of the update then runs on the asyncpg connection in it."""
    if not _is_postgres(db):
        pytest.skip("SQLite runs every hand-written statement on sqlite3 (no SQLAlchemy statement)")
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.unit() as unit:
            assert unit.pg is not None and unit.pg.is_in_transaction()
            repos = Repos(unit)
            assert await repos.start_update(401, 7, "bot:7:7") is not None
            await _INSERT_UPDATE.run(unit, bot_id=2, update_id=402, at=NOW)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert seen == []
    assert await _updates(db) == {401, 402}


async def test_on_postgresql_a_unit_checks_its_connection_with_begin_not_a_ping(db: Database) -> None:
    """Other checkouts ping the connection (one round trip); a unit's checkout does not: its
    BEGIN fails on a dead connection just the same (tests/reliability/test_database_outage.py)."""
    if not _is_postgres(db):
        pytest.skip("PostgreSQL's checkout ping")
    pings: list[str] = []
    async with db.unit() as unit:  # a connection is pooled
        assert unit.pg is not None
    original = type(unit.pg).fetchrow

    async def spy(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        pings.append(query)
        return await original(self, query, *args, **kwargs)

    type(unit.pg).fetchrow = spy  # type: ignore[method-assign]
    try:
        async with db.unit():
            pass
        assert pings == []
        async with db.session() as s:  # a plain session's checkout still pings
            await s.exec(sql("SELECT 1"))
        assert pings == [";"]
    finally:
        type(unit.pg).fetchrow = original  # type: ignore[method-assign]


async def test_a_database_error_on_the_driver_connection_is_sqlalchemys(db: Database) -> None:
    if not _is_postgres(db):
        pytest.skip("on SQLite the statement raises sqlite3's own error, as before")
    with pytest.raises(sa_exc.IntegrityError) as raised:
        async with db.unit() as unit:
            await _INSERT_UPDATE.run(unit, bot_id=1, update_id=501, at=NOW)
            await _INSERT_UPDATE.run(unit, bot_id=1, update_id=501, at=NOW)
    assert not raised.value.connection_invalidated and not is_outage(raised.value)
    assert await _updates(db) == set()


async def test_a_connection_lost_mid_unit_is_an_outage_and_is_not_pooled_again(db: Database) -> None:
    if not _is_postgres(db):
        pytest.skip("SQLite has no server connection to lose")
    with pytest.raises(sa_exc.DBAPIError) as raised:
        async with db.unit() as unit:
            await _INSERT_UPDATE.run(unit, bot_id=1, update_id=601, at=NOW)
            pid = (await unit.connection.execute(sql("SELECT pg_backend_pid()"))).scalar_one()
            async with db.session() as admin:
                await admin.exec(sql(f"SELECT pg_terminate_backend({int(pid)})"))
            await _INSERT_UPDATE.run(unit, bot_id=1, update_id=602, at=NOW)
    assert raised.value.connection_invalidated and is_outage(raised.value)
    async with db.unit() as unit:  # the next update: another connection, no error
        await _INSERT_UPDATE.run(unit, bot_id=1, update_id=603, at=NOW)
    assert await _updates(db) == {603}


async def test_a_measures_row_id_is_read_once_per_database_in_units(
    db: Database, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CatalogRepo.measure_id: the report flow asks for a measure's row id at every year step,
    summary card and confirm; in units of work every active measure's id is read at the first
    code not known yet, once per Database (ids of measures are stable: the sync upserts by code).
    A plain session (the CLI) reads the one it asks for every time; an unknown code is read
    again at its next use."""
    async with db.session() as s:
        await Repos(s).catalog.sync(catalog)
    codes = [m.id for *_, m in catalog.measures_for("VPD")]
    code, other_code = codes[0], codes[-1]
    reads: list[str] = []
    one, every = repositories._ACTIVE_MEASURE_ID, repositories._ACTIVE_MEASURE_IDS

    class Counted:
        def __init__(self, sql: Any, name: str) -> None:
            self.sql, self.name = sql, name

        async def one(self, source: Any, **params: Any) -> Any:
            reads.append(params["code"])
            return await self.sql.one(source, **params)

        async def rows(self, source: Any, **params: Any) -> Any:
            reads.append(self.name)
            return await self.sql.rows(source, **params)

    monkeypatch.setattr(repositories, "_ACTIVE_MEASURE_ID", Counted(one, "one"))
    monkeypatch.setattr(repositories, "_ACTIVE_MEASURE_IDS", Counted(every, "every"))
    async with db.session() as s:
        first, last = await Repos(s).catalog.measure_id(code), await Repos(s).catalog.measure_id(other_code)
    assert first is not None and last is not None and first != last and reads == [code, other_code]
    reads.clear()
    async with db.unit() as unit:
        assert await Repos(unit).catalog.measure_id(code) == first
    async with db.unit() as unit:
        assert await Repos(unit).catalog.measure_id(other_code) == last  # read with the first
        assert await Repos(unit).catalog.measure_id(code) == first
        assert await Repos(unit).catalog.measure_id("9.9.9") is None
    assert reads == ["every", "every"]
    async with db.unit() as unit:
        assert await Repos(unit).catalog.measure_id("9.9.9") is None
    async with db.session() as s:
        assert await Repos(s).catalog.measure_id(code) == first
    assert reads == ["every", "every", "every", code]
    other = Database(db.url)
    try:
        async with other.unit() as unit:
            assert await Repos(unit).catalog.measure_id(other_code) == last
    finally:
        await other.dispose()
    assert reads == ["every", "every", "every", code, "every"]


@pytest.mark.parametrize(
    ("failure", "raised_as", "lost"),
    [
        (ConnectionResetError("connection reset by peer"), sa_exc.OperationalError, True),
        (asyncpg.exceptions.InsufficientPrivilegeError("permission denied"), sa_exc.ProgrammingError, False),
    ],
)
async def test_on_postgresql_a_failing_begin_is_raised_as_sqlalchemy_raises_it(
    db: Database, monkeypatch: pytest.MonkeyPatch, failure: Exception, raised_as: type, lost: bool
) -> None:
    """A lost connection at BEGIN: the next is tried, a fresh one last; when that fails too the
    unit raises SQLAlchemy's OperationalError, marked invalidated (the replay's outage). Another
    refusal is raised at once, as the DBAPIError class of its SQLSTATE."""
    if not _is_postgres(db):
        pytest.skip("PostgreSQL's BEGIN")
    async with db.unit():  # the engine's first connection (SQLAlchemy reads the server then)
        pass
    tries: list[int] = []

    async def failing(_pg: Any, _lock: Any) -> None:
        tries.append(1)
        raise failure

    monkeypatch.setattr(storage.db, "_begin", failing)
    with pytest.raises(raised_as) as raised:
        async with db.unit():
            pytest.fail("the unit must not start")
    assert raised.value.connection_invalidated is lost and is_outage(raised.value) is lost
    assert len(tries) == (db.engine.pool.size() + 1 if lost else 1)  # type: ignore[attr-defined]
    monkeypatch.undo()
    async with db.unit() as unit:  # the database itself is fine: the next unit starts
        await _INSERT_UPDATE.run(unit, bot_id=1, update_id=601, at=NOW)
    assert await _updates(db) == {601}


async def test_on_postgresql_a_units_lock_is_taken_by_its_begin_and_its_start_is_one_statement(
    db: Database,
) -> None:
    """``Database.unit(lock=...)``: the advisory lock is held from the unit's first round trip
    (BEGIN and the lock, one simple query); the duplicate check with the sender's context is
    then one statement, and COMMIT ends the transaction and releases the lock."""
    if not _is_postgres(db):
        pytest.skip("PostgreSQL's advisory lock and round trips")
    sent: list[str] = []
    async with db.unit() as unit:  # a connection is pooled
        assert unit.pg is not None
    cls = type(unit.pg)
    originals = {name: getattr(cls, name) for name in ("execute", "fetch")}

    def spy(name: str) -> Any:
        async def call(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            sent.append(" ".join(query.split())[:60])
            return await originals[name](self, query, *args, **kwargs)

        return call

    held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1 AND objid = 2"
    for name in originals:
        setattr(cls, name, spy(name))
    try:
        async with db.unit(lock=(1, 2)) as unit:
            assert len(sent) == 1 and sent[0].startswith("BEGIN; SELECT pg_advisory_xact_lock(1, 2)")
            assert await Repos(unit).start_update(901, 7, "bot:7:7") is not None
            assert len(sent) == 2  # the check and the context: one statement
            assert await Repos(unit).start_update(901, 7, "bot:7:7") is None  # the same update again
            async with db.session() as other:
                assert (await other.exec(sql(held))).scalar_one() == 1
    finally:
        for name, original in originals.items():
            setattr(cls, name, original)
    assert sent[-1] == "COMMIT"
    async with db.session() as other:
        assert (await other.exec(sql(held))).scalar_one() == 0
    assert await _updates(db) == {901}


async def test_on_postgresql_a_unit_never_pools_its_connection_inside_a_transaction(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLAlchemy's rollback on return does nothing for a unit's connection (autocommit to it):
    a unit whose rollback never ran (cancelled in it) still gives its connection back outside
    the transaction, and what it wrote is gone."""
    if not _is_postgres(db):
        pytest.skip("PostgreSQL's pooled connections")

    async def skipped(self: Any) -> None:
        pass

    monkeypatch.setattr(storage.db.Unit, "rollback", skipped)
    with pytest.raises(RuntimeError):
        async with db.unit() as unit:
            await _INSERT_UPDATE.run(unit, bot_id=1, update_id=701, at=NOW)
            pg = unit.pg
            raise RuntimeError("the update failed")
    assert pg is not None and not pg.is_in_transaction()
    monkeypatch.undo()
    async with db.unit() as unit:
        await _INSERT_UPDATE.run(unit, bot_id=1, update_id=702, at=NOW)
    assert await _updates(db) == {702}


async def test_on_postgresql_a_units_connection_is_kept_for_the_next_unit(db: Database) -> None:
    """The next unit takes the connection the last one kept — no checkout from the pool, its
    BEGIN the first round trip — up to the pool's size; more at once go back to the pool, and
    the kept ones are closed with the database."""
    if not _is_postgres(db):
        pytest.skip("PostgreSQL's pooled connections")
    async with db.unit() as unit:
        first = unit.pg
    checkouts: list[int] = []

    def checkout(*_args: Any) -> None:
        checkouts.append(1)

    event.listen(db.engine.sync_engine, "checkout", checkout)
    try:
        async with db.unit() as unit:
            assert unit.pg is first
        assert checkouts == []
        size = db.engine.pool.size()  # type: ignore[attr-defined]
        gate = asyncio.Event()

        async def held() -> None:
            async with db.unit():
                await gate.wait()

        units = [asyncio.create_task(held()) for _ in range(size + 2)]
        await asyncio.sleep(0.3)
        assert len(checkouts) == size + 1  # the kept one, and a checkout for each other
        gate.set()
        await asyncio.gather(*units)
    finally:
        event.remove(db.engine.sync_engine, "checkout", checkout)
    assert len(db._kept) == size
    await db.dispose()
    assert db._kept == []


async def test_on_postgresql_a_unit_cancelled_while_its_begin_waits_for_the_lock_leaks_no_connection(
    db: Database,
) -> None:
    """An update's task cancelled while its BEGIN waits for the conversation lock (another
    unit holds it): its connection is discarded, neither kept nor left checked out, and the
    lock's holder and the next unit go on."""
    if not _is_postgres(db):
        pytest.skip("PostgreSQL's advisory lock")
    holding, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with db.unit(lock=(3, 4)) as unit:
            holding.set()
            await release.wait()
            await _INSERT_UPDATE.run(unit, bot_id=1, update_id=801, at=NOW)

    async def waiter() -> None:
        async with db.unit(lock=(3, 4)):
            pytest.fail("the lock is held: this unit never starts")

    first = asyncio.create_task(holder())
    await holding.wait()
    second = asyncio.create_task(waiter())
    await asyncio.sleep(0.3)  # BEGIN sent, waiting for the lock
    with warnings.catch_warnings(record=True) as seen:  # a connection left checked out is
        warnings.simplefilter("always")  # found by the collector, with SQLAlchemy's warning
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        release.set()
        await first
        gc.collect()
    assert not [w for w in seen if "non-checked-in connection" in str(w.message)]
    pool = db.engine.pool
    assert pool.checkedout() == len(db._kept) == 1  # type: ignore[attr-defined]
    async with db.unit(lock=(3, 4)) as unit:
        await _INSERT_UPDATE.run(unit, bot_id=1, update_id=802, at=NOW)
    assert await _updates(db) == {801, 802}


async def test_a_first_submission_in_a_unit_writes_the_rows_a_session_writes(
    db: Database, catalog: Catalog
) -> None:
    """ReportRepo.submit: on PostgreSQL a unit of work writes a first submission's report, values
    and revision in one statement (_FIRST_SUBMISSION_PG); elsewhere three. Either way the same
    rows as the session's path: every value kind, a skipped indicator, the comment, the
    revision's answers and changes; a correction after it goes on from those rows."""
    answers = {"1.1.1.1": "done", "1.1.1.1.date": "2026-10-01", "1.1.1.2": 45, "comment": "Sākts"}
    async with db.session() as s:
        repos = Repos(s)
        await repos.catalog.sync(catalog)
        measure = await repos.catalog.measure("1.1.1")
        vpd, ievp = await repos.people.institution("VPD"), await repos.people.institution("IeVP")
        anna = await repos.people.add_contact(display_name="Anna", institution_id=vpd.id)
        m_id, vpd_id, ievp_id, anna_id = measure.id, vpd.id, ievp.id, anna.id
        by_session = await repos.reports.submit(
            measure_id=m_id, institution_id=vpd_id, year=2026, answers=answers, contact_id=anna_id, now=NOW
        )
        session_id = by_session.id
    async with db.unit() as unit:
        by_unit = await Repos(unit).reports.submit(
            measure_id=m_id, institution_id=ievp_id, year=2026, answers=answers, contact_id=anna_id, now=NOW
        )
        unit_id = by_unit.id
        assert (by_unit.revision, by_unit.status, by_unit.comment) == (1, "submitted", "Sākts")

    async def stored(report_id: int) -> tuple[Any, ...]:
        async with db.session() as s:
            report = await s.get(t.Report, report_id)
            values = (await s.exec(select(t.ReportValue).where(t.ReportValue.report_id == report_id))).all()
            revisions = (
                await s.exec(select(t.ReportRevision).where(t.ReportRevision.report_id == report_id))
            ).all()
        assert report is not None
        head = report.model_dump(exclude={"id", "institution_id"})
        rows = sorted((v.indicator_id, v.value_num, v.value_text, v.status, v.value_date) for v in values)
        audit = [
            (r.revision, r.submitted_by_contact_id, as_utc(r.submitted_at), r.answers, r.changes)
            for r in revisions
        ]
        return head, rows, audit

    assert await stored(unit_id) == await stored(session_id)
    _, rows, audit = await stored(unit_id)
    assert len(rows) == 2 and audit[0][3] == answers  # the milestone (with its date) and the count
    async with db.unit() as unit:
        again = await Repos(unit).reports.submit(
            measure_id=m_id, institution_id=ievp_id, year=2026, answers={"1.1.1.2": 46}, contact_id=None
        )
    assert (again.id, again.revision) == (unit_id, 2)
    async with db.session() as s:
        view = await Repos(s).reports.view(unit_id)
    assert view is not None and view.answers() == {"1.1.1.2": 46}
