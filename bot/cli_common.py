"""What every ``resobot`` command shares: the consoles, failing with an exit code, the settings,
the catalog and one unit of work against the configured database. The command modules
(``bot.cli`` and ``bot.cli_*``) import this; it imports none of them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console

from bot import services_container
from bot.config import Settings, SettingsError, load_settings
from reporting_forms.catalog import Catalog, CatalogError, default_catalog, load_catalog, load_catalog_at
from storage.db import Database
from storage.repositories import Repos

out = Console()
err = Console(stderr=True)
CLI_LANGUAGE = "lv"  # the tables' headings are Latvian; the words for stored keys too (labels.j2)
T = TypeVar("T")


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]{message}[/red]", highlight=False)
    return typer.Exit(code)


def get_settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise fail(str(exc), 2) from None


def get_catalog(path: Path | None = None, *, shared: bool = False) -> Catalog:
    """The installed catalog, or the one at ``path`` (a plans folder or one plan file).
    ``shared``: the process's one packaged catalog (``default_catalog``, which the plan calendar
    has read already), not a second read of the files; ``plan check`` reads them afresh."""
    try:
        if path is not None:
            return load_catalog_at(path)
        return default_catalog() if shared else load_catalog()
    except CatalogError as exc:
        raise fail(f"Catalog error: {exc}", 2) from None


def with_repos(fn: Callable[[Repos], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run one unit of work against the configured database."""
    settings = settings or get_settings()

    async def main() -> T:
        db = Database(settings.database_url)
        try:
            async with db.session() as session:
                return await fn(Repos(session))
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except OSError as exc:
        raise fail(f"Database unreachable ({settings.database_url}): {exc}", 3) from None


async def effective_catalog(settings: Settings) -> Catalog:
    """The installed catalog with an admin's reporters (``plan reporters``) from the database;
    the YAML alone when the database cannot be read (not initialised yet)."""
    return await services_container.effective_catalog(settings, get_catalog(shared=True))


def get_effective_catalog(settings: Settings | None = None) -> Catalog:
    """``effective_catalog`` for a command outside an event loop."""
    return asyncio.run(effective_catalog(settings or get_settings()))
