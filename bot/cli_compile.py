"""``resobot compile`` (the plan's indicator tables from the database, as files) and
``resobot indicator set|list`` (policy-result actuals that come from outside the bot)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from bot import cli_common as cli
from reporting_forms.compilation import PolicyRow, Status, compile_policy_results
from reporting_forms.exports.common import status_label
from reporting_forms.inputs import FORMATS, InputError, parse_formats, resolve_plan
from reporting_forms.policy_values import (
    find_policy_indicator,
    parse_actual_value,
    parse_actual_year,
    parse_source,
)
from reporting_forms.summaries import (
    Compiled,
    CompileInputs,
    compile_inputs,
    completeness_lines,
    render_files,
    review_counts,
    top_risks,
)
from reporting_forms.texts import LANGUAGES, format_number
from services.compilation import load_inputs

indicator_app = typer.Typer(help="Policy-result indicator actuals (PR1–PR3)", no_args_is_help=True)


def _input_error(exc: InputError) -> typer.Exit:
    return cli.fail(exc.plain_message("en"), 2)


def _as_of(value: str | None, tz: Any) -> dt.date:
    if value is None:
        return dt.datetime.now(tz).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise cli.fail(f"--as-of: use YYYY-MM-DD, not {value!r}.", 2) from None


def print_summary(compiled: Compiled, lang: str) -> None:
    """A short rich summary: rows by status, completeness per institution, reviews, risks."""
    out = cli.out
    plan = compiled.plan
    years = plan.plan_years
    period = str(plan.year) if plan.year is not None else f"{years[0]}–{years[-1]}"
    title = f"[bold]{plan.plan_id}[/bold] {plan.plan.short_title}"
    out.print(f"{title} · {period} · as of {plan.as_of.isoformat()}")
    statuses = Table(title="Indicator rows", show_edge=False)
    statuses.add_column("Status")
    statuses.add_column("Rows", justify="right")
    for status in Status:
        statuses.add_row(status_label(lang, status), str(plan.summary.counts[status]))
    statuses.add_row("[bold]Σ[/bold]", f"[bold]{plan.summary.rows}[/bold]")
    out.print(statuses)
    mean = plan.summary.mean_percent
    if mean is not None:
        out.print(
            f"Mean % of target (numeric rows with a reported value: {plan.summary.numeric_rows} of "
            f"{plan.summary.targeted_rows}): {format_number(round(mean, 1), 'en')} %"
        )
    lines = completeness_lines(plan)
    if lines:
        table = Table(title="Reports by institution", show_edge=False)
        for name in ("Institution", "Expected", "Submitted", "On time", "Completeness"):
            table.add_column(name, justify="left" if name == "Institution" else "right")
        for row in lines:
            table.add_row(
                row.institution or "",
                str(row.expected),
                str(row.actual),
                str(row.on_time),
                f"{format_number(round(row.completeness or 0.0, 1), 'en')} %",
            )
        out.print(table)
    reviews = review_counts(plan)
    _, risks = top_risks(plan)
    out.print(
        f"Reviews: pending {reviews['pending']}, returned {reviews['returned']}, accepted "
        f"{reviews['accepted']} · rows at risk: {risks} · data warnings: {len(plan.warnings)}",
        highlight=False,
    )


STATUS_TABLE = ("xlsx",)  # what the other plans get in a default run, as in the scheduled job


def plan_runs(catalog: Any, plan: str | None, wanted: tuple[str, ...]) -> list[tuple[str, tuple[str, ...]]]:
    """(plan id, formats) to compile: the plan asked for in the formats asked for; by default
    the main plan so, then every other plan (the informal-hierarchy plan) as its status table."""
    if plan is not None:
        return [(resolve_plan(catalog, plan), wanted)]
    main, *others = catalog.plans_main_first()
    return [(main.id, wanted), *((p.id, STATUS_TABLE) for p in others)]


def compile_command(
    year: int = typer.Option(None, "--year", help="a year of the plan; default: the whole plan period"),
    formats: str = typer.Option(",".join(FORMATS), "--format", help=f"comma-separated: {', '.join(FORMATS)}"),
    out_dir: Path = typer.Option(Path("compiled"), "--out", help="folder for the files (created)"),
    plan: str = typer.Option(
        None,
        "--plan",
        help="a plan id or its alias (RPP, NH); default: every plan — the main plan in --format, "
        "the others as their XLSX status tables",
    ),
    lang: str = typer.Option("lv", "--lang", help="lv or en"),
    as_of: str = typer.Option(None, "--as-of", help="statuses as of this day, YYYY-MM-DD (default today)"),
) -> None:
    """Compile the reports into the plans' indicator tables and write the files."""
    if lang not in LANGUAGES:
        raise cli.fail(f"--lang must be one of {', '.join(LANGUAGES)}, not {lang!r}.", 2)
    settings = cli.get_settings()
    catalog = cli.get_effective_catalog(settings)  # with an admin's reporters (plan reporters)
    try:
        runs = plan_runs(catalog, plan, parse_formats(formats))
        day = _as_of(as_of, settings.tz)

        async def work(repos: Any) -> dict[str, CompileInputs]:
            return {plan_id: await load_inputs(repos.session, plan_id) for plan_id, _ in runs}

        inputs = cli.with_repos(work, settings)
        compiled = [
            (
                compile_inputs(
                    catalog,
                    inputs[plan_id],
                    plan_id=plan_id,
                    year=year,
                    as_of=day,
                    timezone=settings.timezone,
                ),
                wanted,
            )
            for plan_id, wanted in runs
        ]
    except InputError as exc:
        raise _input_error(exc) from None
    paths = []
    for one, wanted in compiled:
        paths.extend(render_files(one, wanted, out_dir, lang=lang))
        print_summary(one, lang)
    cli.out.print("Files:")
    for path in paths:
        cli.out.print(f"  {path}", highlight=False, soft_wrap=True)


@indicator_app.command("set")
def indicator_set(
    indicator: str = typer.Argument(..., help="e.g. PR1.RR2"),
    year: str = typer.Argument(..., help="a year of the policy guidelines' period"),
    value: str = typer.Argument(..., help="a number; decimals with a comma or a dot"),
    source: str = typer.Option(None, "--source", help='where the value comes from, e.g. "VID"'),
) -> None:
    """Enter (or replace) the actual value of a policy-result indicator for a year."""
    settings = cli.get_settings()
    catalog = cli.get_effective_catalog(settings)  # with an admin's reporters (plan reporters)
    try:
        _, found = find_policy_indicator(catalog, indicator)
        the_year = parse_actual_year(year)
        number = parse_actual_value(value, found.kind)
        text_source = parse_source(source) if source is not None else None
    except InputError as exc:
        raise _input_error(exc) from None

    async def work(repos: Any) -> None:
        try:
            await repos.inputs.set_policy_actual(
                found.id, the_year, number, source=text_source, contact_id=None
            )
        except KeyError:
            raise cli.fail(f"{found.id} is not in the database; run `resobot init` first.") from None

    cli.with_repos(work, settings)
    shown = format_number(number, "en")
    cli.out.print(f"{found.id} {the_year} = {shown}" + (f" (source: {text_source})" if text_source else ""))


def _history_cell(row: PolicyRow, year: int) -> str:
    """The passport's value, or the one entered over it with its source and the passport's."""
    value = row.history_value(year)
    shown = format_number(value, "en") if value is not None else "—"
    actual = row.entered.get(year)
    if actual is None:
        return shown
    passport = row.history.get(year)
    source = f"{actual.source}; " if actual.source else ""
    return f"{shown} ({source}passport {format_number(passport, 'en') if passport is not None else '—'})"


@indicator_app.command("list")
def indicator_list(plan: str = typer.Option(None, "--plan", help="default: the main plan")) -> None:
    """Policy-result indicators: passport history, yearly targets and the actuals entered."""
    settings = cli.get_settings()
    catalog = cli.get_effective_catalog(settings)  # with an admin's reporters (plan reporters)
    try:
        plan_id = resolve_plan(catalog, plan)
    except InputError as exc:
        raise _input_error(exc) from None

    async def work(repos: Any) -> Any:
        return await repos.inputs.policy_actuals(plan_id=plan_id)

    policy = compile_policy_results(catalog, plan_id, cli.with_repos(work, settings))
    table = Table(title=f"{plan_id}: policy results", show_lines=True)
    table.add_column("Id", no_wrap=True)
    for y in policy.history_years:
        table.add_column(f"{y} (passport or entered)", justify="right")
    for y in policy.years:
        table.add_column(f"{y} target / actual", justify="right")
    for row in policy.rows:
        cells = [_history_cell(row, y) for y in policy.history_years]
        for cell in row.years:
            target = cell.target.text if cell.target else "—"
            actual = format_number(cell.value, "en") if cell.value is not None else "—"
            source = f" ({cell.actual.source})" if cell.actual and cell.actual.source else ""
            cells.append(f"{target} / {actual}{source}")
        table.add_row(row.indicator_id, *cells)
    cli.out.print(table)
