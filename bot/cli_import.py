"""``resobot import FILE.xlsx``: backfill reports from the XLSX the bot exports (see
reporting_forms/imports.py). Every refused cell is listed with its sheet, row and reason and
nothing is stored; otherwise the changed reports get new submitted revisions by "admin (resobot
import)", for any plan year (closed periods too)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer

from bot import cli_common as cli
from reporting_forms.texts import LANGUAGES
from services.imports import CLI_AUTHOR, ImportOutcome, import_file, outcome_text


def import_command(
    path: Path = typer.Argument(..., help="an XLSX made by `resobot compile --format xlsx` or /summary"),
    lang: str = typer.Option("lv", "--lang", help="lv or en: the language of the messages"),
) -> None:
    """Import reported values from an exported XLSX (e.g. past years): all cells or nothing."""
    if lang not in LANGUAGES:
        raise cli.fail(f"--lang must be one of {', '.join(LANGUAGES)}, not {lang!r}.", 2)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise cli.fail(f"Cannot read {path}: {exc.strerror or exc}", 2) from None
    settings = cli.get_settings()
    catalog = cli.get_effective_catalog(settings)  # with an admin's reporters (plan reporters)
    today = dt.datetime.now(settings.tz).date()

    async def work(repos: Any) -> ImportOutcome:
        return await import_file(
            repos, catalog, data, name=path.name, today=today, contact_id=None, author=CLI_AUTHOR
        )

    outcome = cli.with_repos(work, settings)
    message = outcome_text(lang, outcome)
    if outcome.stored is None:
        cli.err.print(message, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    cli.out.print(message, markup=False, highlight=False, soft_wrap=True)
