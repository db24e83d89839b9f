"""Shared fixtures: a migrated database on SQLite always, and on PostgreSQL when reachable."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import time_machine

from reporting_forms.catalog import Catalog, load_catalog
from storage.db import Database, upgrade
from tests.chat_harness import CHAT_NOW, Harness, prepare_database, running_bot
from tests.fakebotapi import FakeBotAPI

PG_ADMIN_DSN = os.environ.get("RESOBOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
_pg_state: dict[str, str | None] = {}


def _pg_reason() -> str | None:
    """None when PostgreSQL answers; else why the PostgreSQL lane is skipped."""
    if "reason" not in _pg_state:
        try:
            import asyncpg

            async def probe() -> None:
                conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
                await conn.close()

            asyncio.run(probe())
            _pg_state["reason"] = None
        except Exception as exc:  # any failure means: no PostgreSQL lane here
            _pg_state["reason"] = f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {type(exc).__name__}: {exc}"
    return _pg_state["reason"]


def _pg_admin(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database used as the template for each test's database."""
    reason = _pg_reason()
    if reason:
        pytest.skip(reason)
    name = f"resobot_tmpl_{uuid.uuid4().hex[:8]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    upgrade(f"{base}/{name}")
    yield name
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("tmpl") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return str(path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A fresh, migrated database URL per test, on each backend."""
    if request.param == "sqlite":
        import shutil

        path = tmp_path / "resobot.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"resobot_t_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template: str) -> str:
    """SQLite only (for tests that run a bot process or measure the embedded default)."""
    import shutil

    path = tmp_path / "resobot.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


# ---------------------------------------------------------------- the fake Bot API and a running bot


@pytest.fixture
async def server() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
def frozen_clock() -> Iterator[None]:
    with time_machine.travel(CHAT_NOW, tick=True):
        yield


@pytest.fixture
async def harness(
    server: FakeBotAPI, sqlite_url: str, catalog: Catalog, frozen_clock: None
) -> AsyncIterator[Harness]:
    """A real polling bot on a fresh SQLite database, talking to ``server``."""
    await prepare_database(sqlite_url, catalog)
    async with running_bot(server, sqlite_url, catalog) as h:
        yield h
