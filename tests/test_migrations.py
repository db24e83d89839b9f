"""The Alembic migrations build exactly the schema storage/tables.py declares (both backends),
and downgrade to nothing and back."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlmodel import SQLModel

import storage.tables  # noqa: F401  (registers the tables)
from storage.db import Database, alembic_config

JOBS_TABLE = "apscheduler_jobs"  # bot.scheduler.JOBS_TABLE (storage must not import bot)


def _diff(connection: Connection) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [
        d
        for d in compare_metadata(context, SQLModel.metadata)
        # APScheduler creates its own table at run time; Alembic's bookkeeping is not a model
        if not (isinstance(d, tuple) and d[0] == "remove_table" and d[1].name in {JOBS_TABLE})
    ]


async def test_migrated_schema_matches_the_models(db_url: str) -> None:
    db = Database(db_url)
    try:
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert {"job_run", "outbox", "report_revision", "conversation_state"} <= tables
    finally:
        await db.dispose()


async def test_downgrade_to_base_and_up_again(db_url: str) -> None:
    import asyncio

    cfg = alembic_config(db_url)
    await asyncio.to_thread(command.downgrade, cfg, "base")
    db = Database(db_url)
    try:
        async with db.engine.connect() as conn:
            left = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert left <= {"alembic_version"}
    finally:
        await db.dispose()
    await asyncio.to_thread(command.upgrade, cfg, "head")
    db = Database(db_url)
    try:
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await db.dispose()
