"""``resobot backup FILE`` / ``resobot restore FILE`` / ``resobot purge``: operating the data
(storage/backup.py, storage/retention.py do the work)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer

from bot import cli_common as cli
from storage import backup
from storage.db import Database, upgrade_async
from storage.retention import purge


def _run(coro_fn: Any, settings: Any) -> Any:
    try:
        return asyncio.run(coro_fn())
    except OSError as exc:
        raise cli.fail(f"Database unreachable ({settings.database_url}): {exc}", 3) from None


def backup_command(
    file: Path = typer.Argument(..., help="where to write the dump (a name ending in .gz is gzipped)"),
    gzip: bool = typer.Option(None, "--gzip/--no-gzip", help="compress (default: by the file name)"),
) -> None:
    """A consistent dump of the database (catalog version, people, reports with every revision,
    policy actuals, mutes, job runs, outbox) as JSON, read in one transaction."""
    settings, catalog = cli.get_settings(), cli.get_catalog()

    async def main() -> dict[str, Any]:
        db = Database(settings.database_url)
        try:
            return await backup.dump(db, catalog=catalog)
        finally:
            await db.dispose()

    data = _run(main, settings)
    try:
        path = backup.write_file(data, file, compress=gzip)
    except OSError as exc:
        raise cli.fail(f"Cannot write {file}: {exc.strerror or exc}") from None
    rows = {name: len(block["rows"]) for name, block in data["tables"].items()}
    cli.out.print(
        f"Backup written: {path} ({path.stat().st_size:,} bytes; "
        f"{rows['contact']} contacts, {rows['invite']} invites, {rows['report']} reports, "
        f"{rows['report_revision']} revisions, {rows['outbox']} outbox rows; "
        f"{sum(rows.values())} rows in {len(rows)} tables).",
        highlight=False,
    )


def restore_command(
    file: Path = typer.Argument(..., help="a file written by `resobot backup`"),
) -> None:
    """Load a backup into an empty database (migrated first); ids are kept. Refuses a database
    that already holds contacts, reports or outbox rows."""
    settings, catalog = cli.get_settings(), cli.get_catalog()
    try:
        data = backup.read_file(file)
    except backup.BackupError as exc:
        raise cli.fail(f"Restore refused: {exc}") from None

    async def main() -> backup.RestoreResult:
        await upgrade_async(settings.database_url)
        db = Database(settings.database_url)
        try:
            return await backup.restore(db, data, catalog=catalog)
        finally:
            await db.dispose()

    try:
        result = _run(main, settings)
    except backup.BackupError as exc:
        raise cli.fail(f"Restore refused: {exc}") from None
    counts = result.counts
    cli.out.print(
        f"Restored from {file}: {counts.get('contact', 0)} contacts, {counts.get('report', 0)} reports, "
        f"{counts.get('report_revision', 0)} revisions, {counts.get('outbox', 0)} outbox rows; "
        f"{sum(counts.values())} rows in {len(counts)} tables.",
        highlight=False,
    )
    if result.same_catalog is False:
        cli.out.print(
            "The backup was taken with another plan catalog: run `resobot init` to apply the installed "
            "YAML (rows are updated by plan and code, ids stay).",
            highlight=False,
        )


def purge_command(
    days: int = typer.Option(None, "--days", min=1, help="keep this many days (default RETENTION_DAYS, 90)"),
) -> None:
    """Delete processed update ids, delivered outbox rows, registration attempts and compiled
    files older than N days; erase the personal data of contacts deactivated N days ago."""
    settings = cli.get_settings()
    keep = days or settings.retention_days

    async def main() -> Any:
        db = Database(settings.database_url)
        try:
            return await purge(db, days=keep, compiled_dir=settings.compiled_dir)
        finally:
            await db.dispose()

    result = _run(main, settings)
    c = result.counts()
    cli.out.print(
        f"Purged what is older than {keep} days (before {result.cutoff:%Y-%m-%d %H:%M} UTC): "
        f"{c['processed_updates']} processed updates, {c['interrupted_updates']} interrupted updates, "
        f"{c['outbox_rows']} delivered outbox rows, "
        f"{c['registration_attempts']} registration attempts, {c['compiled_files']} compiled files; "
        f"{c['contacts_anonymised']} deactivated contacts anonymised.",
        highlight=False,
        soft_wrap=True,  # one line, whatever the terminal's width (scripts read it)
    )
