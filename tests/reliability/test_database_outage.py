"""Defect 6 of issue 11: after ``pg_terminate_backend`` the next unit of work failed although the
database was up (the pool handed out a dead connection)."""

from __future__ import annotations

from sqlalchemy import text

from storage.db import Database


async def terminate_other_backends(url: str) -> int:
    """What a database restart or a failover does to the bot's pooled connections."""
    admin = Database(url)
    try:
        async with admin.session() as s:
            result = await s.exec(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            return int(result.scalar_one())
    finally:
        await admin.dispose()


async def test_a_terminated_pooled_connection_does_not_fail_the_next_unit(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        async with db.unit() as unit:  # a connection is pooled
            await unit.session.exec(text("SELECT 1"))
        assert await terminate_other_backends(pg_url) >= 1
        async with db.unit() as unit:  # the next update: a fresh connection, no error
            assert (await unit.session.exec(text("SELECT 2"))).scalar_one() == 2
        async with db.session() as s:
            assert (await s.exec(text("SELECT 3"))).scalar_one() == 3
    finally:
        await db.dispose()
