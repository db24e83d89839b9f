"""``resobot period …``: the reporting window — reopen a closed year for one institution, close
it again, list what is open — and ``resobot plan reporters`` (who files a measure's reports)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer
from rich.table import Table

from bot import cli_common as cli
from reporting_forms.inputs import InputError
from services.reopening import close_year, reopen_year

period_app = typer.Typer(
    help="Reporting periods: reopen a closed year for one institution",
    no_args_is_help=True,
)


def _refused(exc: InputError) -> typer.Exit:
    return cli.fail(exc.plain_message(cli.CLI_LANGUAGE), 2)


@period_app.command("reopen")
def reopen(
    year: int = typer.Argument(..., help="a closed year of the plan"),
    institution: str = typer.Argument(..., help="the institution whose contacts may file it, e.g. VPD"),
    days: int = typer.Option(30, "--days", min=1, max=366, help="how many days it stays open"),
) -> None:
    """Reopen a closed year for one institution: its contacts may file it (marked late) and are told."""
    settings, catalog = cli.get_settings(), cli.get_catalog()
    today = dt.datetime.now(settings.tz).date()
    try:
        done = cli.with_repos(
            lambda repos: reopen_year(
                repos, catalog, institution=institution, year=year, today=today, days=days
            ),
            settings,
        )
    except InputError as exc:
        raise _refused(exc) from None
    cli.out.print(
        f"{done.year} reopened for {done.institution} until {done.until.isoformat()}; "
        f"notice queued for {done.notified} contact(s)."
    )


@period_app.command("close")
def close(
    year: int = typer.Argument(..., help="a reopened year"),
    institution: str = typer.Argument(..., help="the institution, e.g. VPD"),
) -> None:
    """Close a reopened year again (reports already filed stay)."""
    settings, catalog = cli.get_settings(), cli.get_catalog()
    try:
        closed = cli.with_repos(
            lambda repos: close_year(repos, catalog, institution=institution, year=year), settings
        )
    except InputError as exc:
        raise _refused(exc) from None
    if not closed:
        raise cli.fail(f"{year} is not reopened for {institution}.", 1)
    cli.out.print(f"{year} closed again for {institution}.")


@period_app.command("list")
def list_periods() -> None:
    """The first year the bot chases and every reopened year."""
    settings = cli.get_settings()

    async def work(repos: Any) -> tuple[Any, list[Any]]:
        return await repos.periods.window(), await repos.periods.reopenings()

    window, reopenings = cli.with_repos(work, settings)
    today = dt.datetime.now(settings.tz).date()
    cli.out.print(f"Reports are chased from {window.from_year} (earlier years: no reminders, not overdue).")
    if not reopenings:
        cli.out.print("No reopened years.")
        return
    table = Table(title="Reopened years")
    for name in ("Year", "Institution", "Open until", "State"):
        table.add_column(name)
    for abbr, year, until, _row in reopenings:
        state = "open" if today <= until else "expired"
        table.add_row(str(year), abbr, until.isoformat(), state)
    cli.out.print(table)


def plan_reporters(
    measure_id: str = typer.Argument(..., help="a measure id, e.g. 1.1.5"),
    institutions: list[str] = typer.Argument(None, help="the reporting institutions, e.g. VPD IeVP"),
    reset: bool = typer.Option(False, "--reset", help="back to the catalog's (YAML) list"),
) -> None:
    """Show or set who files a measure's reports (kept in the database; survives `resobot init`).
    The running bot uses the new list from its next start."""
    settings, catalog = cli.get_settings(), cli.get_catalog()
    try:
        measure = catalog.measure(measure_id)
    except KeyError:
        raise cli.fail(f"No measure with id {measure_id!r}; see `resobot plan show`.", 2) from None
    if reset and institutions:
        raise cli.fail("Give institutions or --reset, not both.", 2)
    if not institutions and not reset:
        effective = cli.get_effective_catalog(settings).measure(measure_id)
        yaml_list = ", ".join(measure.reporters)
        cli.out.print(f"{measure_id}: {', '.join(effective.reporters)} (catalog: {yaml_list})")
        return
    chosen: list[str] | None = None
    if institutions:
        reporting = catalog.reporting_institutions()
        chosen = []
        for raw in institutions:
            try:
                abbr = catalog.institution(raw).abbr
            except KeyError:
                abbr = None
            if abbr is None or abbr not in reporting:
                known = ", ".join(sorted(reporting))
                raise cli.fail(f"{raw!r} is not an institution that reports in chat ({known}).", 2)
            if abbr not in chosen:
                chosen.append(abbr)

    async def work(repos: Any) -> Any:
        return await repos.catalog.set_reporters(measure_id, chosen)

    if cli.with_repos(work, settings) is None:
        raise cli.fail(f"Measure {measure_id} is not in the database; run `resobot init` first.", 3)
    shown = ", ".join(chosen) if chosen is not None else f"{', '.join(measure.reporters)} (the catalog's)"
    cli.out.print(f"{measure_id}: reported by {shown}. The running bot uses it from its next start.")
