"""``resobot`` command line (typer + rich): database set-up, catalog, people, reports, the bot."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from bot.app import ConsoleSetupError, run_console, telegram_bot
from bot.cli_common import (
    CLI_LANGUAGE,
    err,
    fail,
    get_catalog,
    get_effective_catalog,
    get_settings,
    out,
    with_repos,
)
from bot.cli_compile import compile_command, indicator_app
from bot.cli_import import import_command
from bot.cli_ops import backup_command, purge_command, restore_command
from bot.cli_periods import period_app, plan_reporters
from bot.cli_reminders import reminders_app
from bot.config import Settings, WebhookConfigError
from bot.runner import (
    RunOptions,
    database_error_message,
    database_error_types,
    open_services,
    run_bot,
)
from bot.services_container import Services
from reporting_forms.catalog import (
    Catalog,
    catalog_files,
    lv_count,
)
from reporting_forms.exports.catalog_json import catalog_to_dict
from reporting_forms.inputs import plan_years
from reporting_forms.labels import answer_text, field_label, kind_label, report_status_label, role_label
from reporting_forms.texts import format_number
from storage.db import Database, upgrade_async
from storage.repositories import Repos
from storage.tables import Role, utcnow


class _ResobotGroup(TyperGroup):
    """The one place every command's database work passes through: a database that refuses
    (no such database or role, a file it cannot open) is one line and exit code 3."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except database_error_types() as exc:
            raise fail(f"Database error: {database_error_message(exc)}", 3) from None


app = typer.Typer(
    help="resobot — reporting assistant for the resocialisation policy plan",
    no_args_is_help=True,
    cls=_ResobotGroup,
)
plan_app = typer.Typer(help="The plan catalog (YAML in reporting_forms/plans/)", no_args_is_help=True)
contacts_app = typer.Typer(help="Institution contacts", invoke_without_command=True)
reports_app = typer.Typer(help="Submitted reports", no_args_is_help=True)
app.add_typer(plan_app, name="plan")
app.add_typer(contacts_app, name="contacts")
app.add_typer(reports_app, name="reports")
app.add_typer(reminders_app, name="reminders")
app.add_typer(indicator_app, name="indicator")
app.add_typer(period_app, name="period")
app.command("compile")(compile_command)
plan_app.command("reporters")(plan_reporters)
app.command("backup")(backup_command)
app.command("restore")(restore_command)
app.command("purge")(purge_command)
app.command("import")(import_command)


async def initialise(settings: Settings, catalog: Catalog) -> dict[str, Any]:
    """Migrate the schema and load the catalog; safe to run any number of times."""
    await upgrade_async(settings.database_url)
    db = Database(settings.database_url)
    try:
        async with db.session() as session:
            repos = Repos(session)
            result = await repos.catalog.sync(catalog)
            for year in plan_years():
                await repos.reports.period(year)
            from_year = await _reporting_from_year(repos, settings)
            counts = await repos.catalog.counts()
        return {"result": result, "counts": counts, "from_year": from_year}
    finally:
        await db.dispose()


async def _reporting_from_year(repos: Repos, settings: Settings) -> int:
    """The first year the bot chases: ``REPORTING_FROM_YEAR`` when set, else the value kept
    since the first init, else (the first init) the current year, within the plan period."""
    stored = await repos.periods.from_year()
    if settings.reporting_from_year is not None:
        year = settings.reporting_from_year
    elif stored is not None:
        year = stored
    else:
        years = plan_years()
        year = min(max(dt.datetime.now(settings.tz).year, years[0]), years[-1])
    if year != stored:
        await repos.periods.set_setting(repos.periods.FROM_YEAR, str(year))
    return year


# ------------------------------------------------------------------ init


@app.command()
def init() -> None:
    """Create or upgrade the database and load the plan catalog (idempotent)."""
    settings, catalog = get_settings(), get_catalog()
    try:
        info = asyncio.run(initialise(settings, catalog))
    except OSError as exc:
        raise fail(f"Database unreachable ({settings.database_url}): {exc}", 3) from None
    result, counts = info["result"], info["counts"]
    out.print(
        f"Database ready: {settings.database_url}\n"
        f"Catalog: {counts['plans']} plans, {counts['directions']} directions, {counts['tasks']} tasks, "
        f"{counts['measures']} measures, {counts['indicators']} indicator rows, "
        f"{counts['policy_indicators']} policy indicators, {counts['institutions']} institutions.\n"
        f"This run: {result.created} created, {result.updated} updated, {result.deactivated} deactivated.\n"
        f"Reports chased from {info['from_year']} (REPORTING_FROM_YEAR; earlier years: no reminders, "
        f"not overdue)."
    )
    for change in result.changes:
        out.print(f"  updated {change}")


# ------------------------------------------------------------------ plan


def _en(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@plan_app.command("check")
def plan_check(
    path: Path = typer.Argument(
        None,
        help="a plans folder or one plan YAML file to check before installing it "
        "(institutions.yaml from the same folder, else the installed one); default: the installed catalog",
    ),
) -> None:
    """Validate the YAML catalog; prints the counts or the broken entry."""
    catalog = get_catalog(path)
    if path is not None:
        institutions, plan_files = catalog_files(path)
        out.print(
            f"Checked {', '.join(str(p) for p in plan_files)} with {institutions}",
            highlight=False,
            soft_wrap=True,
        )
    for plan in catalog.plans:
        measures = list(plan.measures())
        rows = sum(len(m.indicators) for m in measures)
        tasks = sum(len(d.tasks) for d in plan.directions)
        policy = sum(len(p.indicators) for p in plan.policy_results)
        counts = (
            _en(len(plan.directions), "direction"),
            _en(tasks, "task"),
            _en(len(measures), "measure"),
            _en(rows, "indicator row"),
            _en(policy, "policy indicator"),
        )
        out.print(f"[green]OK[/green] {plan.id}: {', '.join(counts)}")


@plan_app.command("export")
def plan_export() -> None:
    """The whole catalog as JSON on stdout."""
    json.dump(catalog_to_dict(get_catalog()), sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def _target(value: float | None) -> str:
    return "—" if value is None else format_number(value)


def _day(value: dt.date | None, text: str | None = None) -> str:
    return value.isoformat() if value else (text or "—")


@plan_app.command("show")
def plan_show(item_id: str = typer.Argument(None, help="direction, task, measure or indicator id")) -> None:
    """Show the plan outline, or one direction, task, measure or indicator."""
    catalog = get_effective_catalog()
    if item_id is None:
        table = Table(title="Plāni", show_lines=False)
        for col_name in ("Id", "Nosaukums", "Virzieni", "Uzdevumi", "Pasākumi", "Rādītāji"):
            table.add_column(col_name)
        for plan in catalog.plans:
            ms = list(plan.measures())
            table.add_row(
                plan.id,
                plan.title,
                str(len(plan.directions)),
                str(sum(len(d.tasks) for d in plan.directions)),
                str(len(ms)),
                str(sum(len(m.indicators) for m in ms)),
            )
        out.print(table)
        for plan in catalog.plans:
            _show_directions(plan.directions)
        return
    try:
        kind, item = catalog.find(item_id)
    except KeyError:
        raise fail(f"No plan, direction, task, measure or indicator with id {item_id!r}.") from None
    SHOW[kind](item)


def _show_directions(directions: Any) -> None:
    table = Table(show_lines=False)
    table.add_column("Id", no_wrap=True)
    table.add_column("Rīcības virziens / uzdevums")
    table.add_column("Pasākumi", justify="right")
    for d in directions:
        table.add_row(f"[bold]{d.id}[/bold]", f"[bold]{d.title}[/bold]", "")
        for task in d.tasks:
            if task.id != d.id:
                table.add_row(task.id, task.title, str(len(task.measures)))
            else:
                table.add_row("", "", str(len(task.measures)))
    out.print(table)


def _show_task(task: Any) -> None:
    table = Table(title=f"{task.id}. uzdevums. {task.title}", show_lines=True)
    for name in ("Nr.", "Pasākums", "Atbildīgā", "Līdzatbildīgās", "Ziņo", "Termiņš", "Rādītāji"):
        table.add_column(name)
    for m in task.measures:
        table.add_row(
            m.id,
            m.name,
            ", ".join(m.responsible),
            ", ".join(m.co_responsible),
            ", ".join(m.reporters),
            _day(m.deadline, m.deadline_text),
            str(len(m.indicators)),
        )
    out.print(table)


def _show_direction(direction: Any) -> None:
    out.print(f"[bold]{direction.id}. {direction.title}[/bold]")
    for task in direction.tasks:
        _show_task(task)


def _indicator_table(title: str, indicators: Any) -> Table:
    table = Table(title=title, show_lines=True)
    for name, kw in (
        ("Id", {"no_wrap": True}),
        (f"Rezultatīvā rādītāja vērtība {plan_years()[-1]}.gadā", {}),
        ("Mērķis", {"justify": "right"}),
        ("Veids", {}),
        ("Mērvienība", {}),
        ("Termiņš", {"no_wrap": True}),
    ):
        table.add_column(name, **kw)
    for ind in indicators:
        table.add_row(
            ind.id,
            ind.text,
            _target(ind.target),
            kind_label(CLI_LANGUAGE, ind.kind),
            ind.unit or "—",
            _day(ind.deadline, ind.deadline_text),
        )
    return table


def _show_measure(m: Any) -> None:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold", no_wrap=True)
    head.add_column()
    head.add_row("Pasākums", f"{m.id} {m.name}")
    if m.result:
        head.add_row("Darbības rezultāts", m.result)
    head.add_row("Atbildīgā institūcija", ", ".join(m.responsible))
    head.add_row("Līdzatbildīgās institūcijas", ", ".join(m.co_responsible) or "—")
    head.add_row("Ziņo (atskaites iesniedz)", ", ".join(m.reporters) or "—")
    head.add_row("Izpildes termiņš", _day(m.deadline, m.deadline_text))
    if m.funding:
        head.add_row("Finansējuma avots", m.funding)
    if m.achieved_note:
        head.add_row("Rezultatīvais rādītājs sasniegts", m.achieved_note)
    out.print(head)
    out.print(
        _indicator_table(f"{m.id}: {lv_count(len(m.indicators), 'rādītājs', 'rādītāji')}", m.indicators)
    )


def _show_indicator(ind: Any) -> None:
    out.print(_indicator_table(ind.id, [ind]))
    if ind.note:
        out.print(f"Piezīme: {ind.note}")


def _show_policy_result(pr: Any) -> None:
    out.print(f"[bold]{pr.id}. {pr.title}[/bold]")
    for pi in pr.indicators:
        _show_policy_indicator(pi)


def _show_policy_indicator(pi: Any) -> None:
    table = Table(title=f"{pi.id} {pi.text}", show_lines=True)
    table.add_column("Gads")
    table.add_column("Mērķis")
    history = pi.passport.history if pi.passport else {}
    for year, value in sorted(history.items()):
        table.add_row(str(year), f"{format_number(value)} (pase)")
    for year, target in sorted(pi.targets.items()):
        table.add_row(str(year), target.text)
    out.print(table)
    if pi.passport:
        out.print(_passport_grid(pi.passport))


def _passport_grid(passport: Any) -> Table:
    """The passport's headings as in Annex 5 (seed 001)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("Rādītāja iegūšanas metodoloģija", passport.methodology)
    grid.add_row("Datu avots", passport.data_source or "—")
    grid.add_row("Mērīšanas biežums", passport.frequency)
    return grid


def _show_plan(plan: Any) -> None:
    out.print(f"[bold]{plan.id}[/bold] {plan.title}")
    _show_directions(plan.directions)


SHOW: dict[str, Callable[[Any], None]] = {
    "plan": _show_plan,
    "direction": _show_direction,
    "task": _show_task,
    "measure": _show_measure,
    "indicator": _show_indicator,
    "policy_result": _show_policy_result,
    "policy_indicator": _show_policy_indicator,
}


# ------------------------------------------------------------------ people


@app.command()
def institutions() -> None:
    """List institutions (abbreviation, Latvian and English name)."""
    table = Table(title="Institūcijas")
    for name in ("Saīsinājums", "Nosaukums", "English", "Ziņo"):
        table.add_column(name)
    for inst in get_catalog().institutions:
        table.add_row(inst.abbr, inst.name, inst.name_en, "jā" if inst.reports else "")
    out.print(table)


def parse_duration(text: str) -> dt.timedelta:
    """``14d``, ``36h``, ``2w`` → timedelta."""
    match = re.fullmatch(r"\s*([0-9]{1,4})\s*([dhw])\s*", text)
    if not match:
        raise typer.BadParameter("use e.g. 14d, 36h or 2w")
    n, unit = int(match[1]), match[2]
    delta = {"h": dt.timedelta(hours=n), "d": dt.timedelta(days=n), "w": dt.timedelta(weeks=n)}[unit]
    if delta <= dt.timedelta(0):
        raise typer.BadParameter("must be positive")
    return delta


@app.command()
def invite(
    institution: str = typer.Option(..., "--institution", "-i", help="e.g. VPD"),
    role: Role = typer.Option(Role.CONTACT, "--role"),
    expires: str = typer.Option("14d", "--expires", help="e.g. 14d, 36h, 2w"),
    name: str = typer.Option(None, "--name", help="display name for the new contact"),
) -> None:
    """Create a one-time invite; prints the code and the Telegram deep link."""
    settings = get_settings()
    delta = parse_duration(expires)

    async def work(repos: Repos) -> tuple[str, str]:
        inst = await repos.people.institution(institution)
        if inst is None:
            raise fail(f"Unknown institution {institution!r}; see `resobot institutions`.")
        code = await repos.people.create_invite(
            institution_id=inst.id, role=role.value, expires_in=delta, display_name=name
        )
        return code, inst.abbr

    code, abbr = with_repos(work, settings)
    username = invite_username(settings)
    expires_at = (dt.datetime.now(settings.tz) + delta).strftime("%Y-%m-%d %H:%M %Z")
    out.print(f"Invite for {abbr} ({role.value}), valid until {expires_at}")
    out.print(f"Code: {code}", highlight=False)
    out.print(f"Link: https://t.me/{username}?start={code}", highlight=False, soft_wrap=True)


FALLBACK_BOT_USERNAME = "resobot"


async def _ask_bot_username(settings: Settings) -> str:
    """getMe on the configured Bot API server (TELEGRAM_API_BASE)."""
    bot = telegram_bot(settings)
    try:
        me = await bot.get_me(request_timeout=10)
    finally:
        await bot.session.close()
    if not me.username:
        raise ValueError("getMe returned no username")
    return me.username


def invite_username(settings: Settings) -> str:
    """TELEGRAM_BOT_USERNAME; else, with a token, the bot's own username from the Bot API; else
    the fallback, with one line of warning when the Bot API could not be asked."""
    if settings.telegram_bot_username:
        return settings.telegram_bot_username
    if not settings.telegram_bot_token:
        return FALLBACK_BOT_USERNAME
    try:
        return asyncio.run(_ask_bot_username(settings))
    except Exception as exc:  # any failure: warn and fall back, the invite itself is made
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        err.print(
            f"[yellow]Warning: could not get the bot's username from {settings.telegram_api_base} "
            f"({reason}); the link uses @{FALLBACK_BOT_USERNAME}. Set TELEGRAM_BOT_USERNAME.[/yellow]",
            highlight=False,
            soft_wrap=True,
        )
        return FALLBACK_BOT_USERNAME


@contacts_app.callback()
def contacts(
    ctx: typer.Context,
    institution: str = typer.Option(None, "--institution", "-i", help="only this institution"),
) -> None:
    """List contacts (optionally of one institution)."""
    if ctx.invoked_subcommand is not None:
        return

    async def work(repos: Repos) -> list[tuple[Any, str]]:
        inst_id = None
        if institution:
            inst = await repos.people.institution(institution)
            if inst is None:
                raise fail(f"Unknown institution {institution!r}.")
            inst_id = inst.id
        abbrs = {i.id: i.abbr for i in await repos.people.institutions()}
        return [(c, abbrs[c.institution_id]) for c in await repos.people.contacts(inst_id)]

    rows = with_repos(work)
    table = Table(title="Kontaktpersonas")
    for name in ("Id", "Vārds", "Institūcija", "Loma", "Valoda", "Telegram", "Aktīvs"):
        table.add_column(name)
    for c, abbr in rows:
        table.add_row(
            str(c.id),
            c.display_name,
            abbr,
            role_label(CLI_LANGUAGE, c.role),
            c.language,
            str(c.telegram_user_id or "—"),
            "jā" if c.active else "nē" + (" (bloķējis botu)" if c.blocked else ""),
        )
    out.print(table)


@contacts_app.command("deactivate")
def contacts_deactivate(contact_id: int) -> None:
    """Deactivate a contact: no reminders, no access."""

    async def work(repos: Repos) -> str:
        contact = await repos.people.contact(contact_id)
        if contact is None:
            raise fail(f"No contact with id {contact_id}.")
        contact.active, contact.deactivated_at = False, contact.deactivated_at or utcnow()
        return contact.display_name

    out.print(f"Deactivated contact {contact_id} ({with_repos(work)}).")


# ------------------------------------------------------------------ reports


@reports_app.command("list")
def reports_list(as_json: bool = typer.Option(False, "--json", help="JSON instead of a table")) -> None:
    """Every report with its values, revision and author."""

    async def work(repos: Repos) -> list[Any]:
        return await repos.reports.views()

    views = with_repos(work)
    if as_json:
        data = [
            {
                "id": v.id,
                "measure": v.measure_code,
                "institution": v.institution,
                "year": v.year,
                "status": v.status,
                "revision": v.revision,
                "review_state": v.review_state,
                "author": v.author,
                "submitted_at": v.submitted_at.isoformat() if v.submitted_at else None,
                "values": v.answers(),
            }
            for v in views
        ]
        json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return
    table = Table(title="Atskaites", show_lines=True)
    for name in ("Nr.", "Pasākums", "Institūcija", "Gads", "Statuss", "Red.", "Autors", "Vērtības"):
        table.add_column(name)
    for v in views:
        values = "\n".join(
            f"{field_label(CLI_LANGUAGE, k)}: {answer_text(CLI_LANGUAGE, k, val, days=True)}"
            for k, val in v.answers().items()
        )
        table.add_row(
            str(v.id),
            v.measure_code,
            v.institution,
            str(v.year),
            report_status_label(CLI_LANGUAGE, v.status),
            str(v.revision),
            v.author or "—",
            values,
        )
    out.print(table)


# ------------------------------------------------------------------ the bot


async def _services(settings: Settings) -> Services:
    return await open_services(settings, get_catalog(shared=True))


def _start_console(
    settings: Settings, contact_id: int | None, institution: str, role: Role = Role.CONTACT
) -> None:
    async def main() -> None:
        await initialise(settings, get_catalog())
        services = await _services(settings)
        try:
            await run_console(services, contact_id=contact_id, institution=institution, role=role)
        finally:
            await services.db.dispose()

    try:
        asyncio.run(main())
    except ConsoleSetupError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        pass


@app.command()
def run(
    webhook: bool = typer.Option(
        False, "--webhook", help="updates arrive on a webhook (WEBHOOK_URL, WEBHOOK_SECRET), not by polling"
    ),
    listen: str = typer.Option(
        None, "--listen", help="HOST:PORT of the webhook server (default WEBHOOK_LISTEN, 0.0.0.0:8080)"
    ),
) -> None:
    """Run the bot: polls Telegram when TELEGRAM_BOT_TOKEN is set (or, with --webhook, serves a
    webhook), else the offline console."""
    settings = get_settings()
    if not settings.telegram_bot_token:
        if webhook:
            raise fail("Webhook mode needs TELEGRAM_BOT_TOKEN.")
        out.print(
            "[dim]No TELEGRAM_BOT_TOKEN: starting the offline console chat as a demo VPD contact.[/dim]"
        )
        _start_console(settings, None, "VPD")
        return

    options = RunOptions(webhook=webhook, listen=listen)
    try:
        options.check(settings)
    except (WebhookConfigError, ValueError) as exc:
        raise fail(f"Configuration error: {exc}") from None
    run_bot(settings, get_catalog(shared=True), options)


@app.command()
def console(
    as_contact: int = typer.Option(None, "--as", help="act as this contact id"),
    institution: str = typer.Option("VPD", "--institution", "-i", help="demo user of this institution"),
    role: Role = typer.Option(Role.CONTACT, "--role", help="the demo user's role (coordinator: -i TM)"),
) -> None:
    """The offline console chat: the same handlers, typed lines become updates."""
    if as_contact is not None and role is not Role.CONTACT:
        raise fail("--role is for the demo user; --as acts as an existing contact in their own role.")
    _start_console(get_settings(), as_contact, institution, role)


def main() -> None:
    """The command line, named ``resobot`` in help and errors however it was started."""
    app(prog_name="resobot")


if __name__ == "__main__":  # pragma: no cover
    main()
