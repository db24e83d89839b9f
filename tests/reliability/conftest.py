"""Fixtures of the reliability evidence: a fresh PostgreSQL database (skipped cleanly when no
server answers, like the PostgreSQL lane of the other tests)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import PG_ADMIN_DSN, _pg_admin


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database URL (postgresql+asyncpg://…)."""
    template = request.getfixturevalue("pg_template")  # skips when PostgreSQL is not reachable
    name = f"resobot_r_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
