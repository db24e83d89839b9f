"""Compilation jobs: database → compiled tables → files and a short text, for the CLI, the
coordinators' chat commands and the scheduled monthly/annual summaries.

Most of this module is pure (scopes, summaries, overdue lists, input parsing, the schedule);
the async edges read through ``storage.compiled.CompiledRepo``. No aiogram here: the chat
router and the scheduler send what these functions return.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.config import PROJECT_ROOT
from bot.render import chunks
from reporting_forms import exports
from reporting_forms.catalog import Catalog, Measure, MetricKind, Plan, PolicyIndicator
from reporting_forms.compilation import (
    CompiledPlan,
    Completeness,
    CompletenessRow,
    IndicatorRow,
    PolicyActual,
    PolicyTable,
    ReportedValue,
    Status,
    ValidationWarning,
    check_rules,
    compile_plan,
    compile_policy_results,
    completeness_for,
    default_status_rules,
    find_plan,
    report_deadline,
)
from reporting_forms.exports._common import review_label, status_label, warning_text
from reporting_forms.exports.cells import csv_writer, text_cell
from reporting_forms.exports.csv import DELIMITER, ENCODING
from reporting_forms.labels import answer_text, field_label
from reporting_forms.payloads import DocumentPayload, SummaryPayload
from reporting_forms.periods import ReportingWindow
from reporting_forms.texts import normalise_language, text
from reporting_forms.workdays import nth_working_day
from storage.compiled import SUPERSEDED, CompiledRepo, RevisionRow
from storage.jobs import JobRunRepo
from storage.outbox import KIND_DOCUMENT, KIND_SUMMARY, NewMessage, OutboxRepo, outbox_key
from storage.repositories import Repos
from storage.tables import Role

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from bot.app import Services

MAIN_PLAN = "RPP-2025-2027"
HIERARCHY_PLAN = "NH-2024"
PLAN_ALIASES = {"rpp": MAIN_PLAN, "nh": HIERARCHY_PLAN}
FORMATS = ("xlsx", "docx", "html", "csv", "png")
COMPILED_DIR = PROJECT_ROOT / "var" / "compiled"
RIGA = ZoneInfo("Europe/Riga")


def plain(lang: str, name: str, /, **params: Any) -> str:
    """A message as plain text (file cells, CLI lines): rendered, then unescaped."""
    return html.unescape(text(lang, name, **params))


class InputError(ValueError):
    """Input a coordinator typed (or passed to the CLI) is not acceptable; ``code`` names the
    message macro ``coordinator.input_<code>``."""

    def __init__(self, code: str, /, **params: Any) -> None:
        self.code = code
        self.params = params
        super().__init__(code, params)

    def message(self, lang: str) -> str:
        return text(lang, f"coordinator.input_{self.code}", **self.params)


# ---------------------------------------------------------------- formats and plans


def parse_formats(raw: str) -> tuple[str, ...]:
    """``"xlsx, docx"`` → ("xlsx", "docx"), in the order given, without repeats."""
    found: list[str] = []
    for part in (p.strip().casefold().lstrip(".") for p in raw.split(",")):
        if not part:
            continue
        if part not in FORMATS:
            raise InputError("unknown_format", value=part, known=", ".join(FORMATS))
        if part not in found:
            found.append(part)
    if not found:
        raise InputError("unknown_format", value=raw.strip(), known=", ".join(FORMATS))
    return tuple(found)


def resolve_plan(catalog: Catalog, raw: str | None) -> str:
    """A plan id from its id or short alias (``RPP``, ``NH``), case-insensitive."""
    if not raw:
        return MAIN_PLAN
    wanted = PLAN_ALIASES.get(raw.strip().casefold(), raw.strip())
    for plan in catalog.plans:
        if plan.id.casefold() == wanted.casefold():
            return plan.id
    raise InputError("unknown_plan", value=raw.strip(), known=", ".join(p.id for p in catalog.plans))


def plan_years() -> tuple[int, ...]:
    return default_status_rules().period.years


def check_year(year: int | None) -> int | None:
    years = plan_years()
    if year is not None and year not in years:
        raise InputError("year_outside_plan", year=year, first=years[0], last=years[-1])
    return year


# ---------------------------------------------------------------- scope


@dataclass(frozen=True)
class Scope:
    """What part of a plan a summary covers: an institution's measures, a direction, a task."""

    institution: str | None = None
    direction: str | None = None
    task: str | None = None

    @property
    def everything(self) -> bool:
        return self.institution is None and self.direction is None and self.task is None

    def label(self) -> str:
        return " · ".join(x for x in (self.institution, self.direction, self.task) if x)


@dataclass(frozen=True)
class SummaryRequest:
    plan_id: str
    year: int | None
    scope: Scope


def _plan_holding(catalog: Catalog, item_id: str) -> tuple[str, str] | None:
    """(plan id, "direction" | "task") of a direction or task id."""
    for plan in catalog.plans:
        for direction in plan.directions:
            if direction.id.casefold() == item_id.casefold():
                return plan.id, "direction"
            for task in direction.tasks:
                if task.id.casefold() == item_id.casefold():
                    return plan.id, "task"
    return None


def parse_summary_args(catalog: Catalog, raw: str | None) -> SummaryRequest:
    """``/summary [year] [institution | direction | task | plan]`` in any order, e.g.
    ``2026 VPD``, ``1.2``, ``NH``; a direction or task picks its own plan."""
    plan_id: str | None = None
    year: int | None = None
    scope: dict[str, str] = {}
    institutions = {i.abbr.casefold(): i.abbr for i in catalog.institutions}
    for token in (raw or "").split():
        word = token.rstrip(".") or token
        if re.fullmatch(r"\d{4}", word):
            year = check_year(int(word))
            continue
        if word.casefold() in institutions:
            scope["institution"] = institutions[word.casefold()]
            continue
        holder = _plan_holding(catalog, word)
        if holder is not None:
            plan_id, kind = holder
            scope[kind] = next(
                item.id
                for plan in catalog.plans
                if plan.id == plan_id
                for d in plan.directions
                for item in (d, *d.tasks)
                if item.id.casefold() == word.casefold()
            )
            continue
        try:
            plan_id = resolve_plan(catalog, word)
        except InputError:
            raise InputError("unknown_scope", value=token[:40]) from None
    if "task" in scope and "direction" in scope:
        scope.pop("direction")  # a task is inside its direction; the narrower one wins
    return SummaryRequest(plan_id or MAIN_PLAN, year, Scope(**scope))


def scoped_plan(plan: Plan, scope: Scope) -> Plan:
    """The plan with only the directions, tasks and measures in scope (numbers stay the plan's)."""
    if scope.everything:
        return plan
    directions = []
    for direction in plan.directions:
        if scope.direction is not None and direction.id != scope.direction:
            continue
        tasks = []
        for task in direction.tasks:
            if scope.task is not None and task.id != scope.task:
                continue
            measures = tuple(
                m for m in task.measures if scope.institution is None or scope.institution in m.institutions
            )
            if measures:
                tasks.append(task.model_copy(update={"measures": measures}))
        if tasks:
            directions.append(direction.model_copy(update={"tasks": tuple(tasks)}))
    return plan.model_copy(update={"directions": tuple(directions)})


def _institution_completeness(completeness: Completeness, institution: str) -> Completeness:
    rows = tuple(r for r in completeness.rows if r.institution == institution)
    mine = tuple(r for r in completeness.by_institution if r.institution == institution)
    by_year = tuple(replace(r, institution=None, missing=()) for r in rows)
    total = mine[0] if mine else CompletenessRow(None, None, 0, 0, 0)
    return replace(
        completeness, rows=rows, by_institution=mine, by_year=by_year, total=replace(total, institution=None)
    )


# ---------------------------------------------------------------- compiling from the database


@dataclass(frozen=True)
class CompileInputs:
    """What the compilation reads from the database for one plan."""

    values: list[ReportedValue]
    first_submitted: dict[tuple[str, str, int], dt.datetime]
    actuals: list[PolicyActual] = field(default_factory=list)
    window: ReportingWindow = field(default_factory=ReportingWindow)


@dataclass(frozen=True)
class Compiled:
    plan: CompiledPlan
    policy: PolicyTable | None
    scope: Scope = Scope()


async def load_inputs(
    session: AsyncSession, plan_id: str, *, institution: str | None = None
) -> CompileInputs:
    repo = CompiledRepo(session)
    return CompileInputs(
        values=await repo.reported_values(plan_id=plan_id, institution=institution),
        first_submitted=await repo.first_submitted(plan_id=plan_id, institution=institution),
        actuals=[] if institution else await repo.policy_actuals(plan_id=plan_id),
        window=await Repos(session).periods.window(),
    )


def compile_inputs(
    catalog: Catalog,
    inputs: CompileInputs,
    *,
    plan_id: str,
    year: int | None,
    as_of: dt.date,
    scope: Scope = Scope(),
) -> Compiled:
    """Compile a plan (or the part of it in ``scope``) from database inputs. An institution's
    scope sees only that institution's values, never another's."""
    check_year(year)
    source = find_plan(catalog, plan_id)
    plan = scoped_plan(source, scope)
    values = inputs.values
    if scope.institution is not None:
        values = [v for v in values if v.institution == scope.institution]
    compiled = compile_plan(
        catalog.model_copy(update={"plans": (plan,)}),
        plan_id,
        values,
        year=year,
        as_of=as_of,
        first_submitted=inputs.first_submitted,
        window=inputs.window,
    )
    if scope.institution is not None:
        compiled = replace(
            compiled, completeness=_institution_completeness(compiled.completeness, scope.institution)
        )
    policy = None
    if scope.everything and source.policy_results:
        policy = compile_policy_results(catalog, plan_id, inputs.actuals)
    return Compiled(compiled, policy, scope)


# ---------------------------------------------------------------- files


def file_stem(compiled: Compiled) -> str:
    plan = compiled.plan
    years = plan.plan_years
    period = str(plan.year) if plan.year is not None else f"{years[0]}-{years[-1]}"
    parts = [
        plan.plan_id,
        period,
        *(re.sub(r"[^\w.-]+", "_", p) for p in compiled.scope.label().split(" · ") if p),
    ]
    return "_".join(parts)


def render_files(
    compiled: Compiled, formats: Sequence[str], out_dir: Path, *, lang: str = "lv"
) -> list[Path]:
    """Write the compiled plan in each format into ``out_dir``; returns the paths written
    (``png`` writes two charts: progress per task and completeness per institution)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lang = normalise_language(lang)
    stem = file_stem(compiled)
    plan, policy = compiled.plan, compiled.policy
    completeness, year = plan.completeness, plan.year
    paths: list[Path] = []
    for fmt in formats:
        if fmt == "png":
            for name, make in (
                ("progress", lambda p: exports.progress_chart(plan, lang=lang, path=p)),
                (
                    "completeness",  # the compiled year's reports, as the text summary
                    lambda p: exports.completeness_chart(completeness, year=year, lang=lang, path=p),
                ),
            ):
                path = out_dir / f"{stem}_{name}.png"
                make(path)
                paths.append(path)
            continue
        path = out_dir / f"{stem}.{fmt}"
        if fmt == "xlsx":
            exports.export_xlsx(plan, policy=policy, lang=lang, path=path)
        elif fmt == "docx":
            exports.export_docx(plan, policy=policy, lang=lang, path=path)
        elif fmt == "html":
            exports.export_html(plan, policy=policy, lang=lang, path=path)
        elif fmt == "csv":
            exports.export_csv(plan, lang=lang, path=path)
        else:
            raise InputError("unknown_format", value=fmt, known=", ".join(FORMATS))
        paths.append(path)
    return paths


# ---------------------------------------------------------------- the text summary


def review_counts(plan: CompiledPlan) -> dict[str, int]:
    """Reports in the compiled tables per review state (each report once)."""
    states: dict[Any, str] = {}
    for *_, row in plan.rows():
        for share in row.institutions:
            for value in share.reports.values():
                states[value.report_id] = value.review_state
    counts = dict.fromkeys(("pending", "returned", "accepted"), 0)
    for state in states.values():
        counts[state] = counts.get(state, 0) + 1
    return counts


def top_risks(plan: CompiledPlan, limit: int = 5) -> tuple[list[tuple[str, IndicatorRow]], int]:
    """Rows at risk, furthest behind first: ([(measure institutions, row)], how many in all)."""
    found = [
        (", ".join(m.measure.reporters), row) for _, _, m, row in plan.rows() if row.status is Status.RISK
    ]
    found.sort(key=lambda item: (item[1].percent if item[1].percent is not None else -1.0, item[1].id))
    return found[:limit], len(found)


def _short(value: str, width: int = 80) -> str:
    return value if len(value) <= width else value[: width - 1].rstrip() + "…"


def completeness_lines(plan: CompiledPlan) -> list[CompletenessRow]:
    """Per institution: the compiled year's row, or all years for the whole period (as the
    completeness chart)."""
    return completeness_for(plan.completeness, plan.year)


def summary_message(lang: str, compiled: Compiled, *, limit: int = 5) -> str:
    """The short chat/CLI summary of a compiled plan (Telegram HTML)."""
    plan = compiled.plan
    risks, risk_total = top_risks(plan, limit)
    counts = plan.summary.counts
    return text(
        lang,
        "coordinator.summary",
        title=plan.plan.short_title,
        plan_id=plan.plan_id,
        year=plan.year,
        first=plan.plan_years[0],
        last=plan.plan_years[-1],
        as_of=plan.as_of,
        scope=compiled.scope.label(),
        rows=plan.summary.rows,
        counts=[(status_label(lang, s), counts[s]) for s in Status if counts[s]],
        mean_percent=round(plan.summary.mean_percent, 1) if plan.summary.mean_percent is not None else None,
        completeness=[
            {
                "institution": r.institution,
                "actual": r.actual,
                "expected": r.expected,
                "on_time": r.on_time,
                "percent": round(r.completeness or 0.0, 1),
            }
            for r in completeness_lines(plan)
        ],
        reviews=review_counts(plan),
        risks=[
            {
                "id": row.id,
                "text": _short(row.indicator.text),
                "percent": round(row.percent, 1) if row.percent is not None else None,
                "institutions": who,
            }
            for who, row in risks
        ],
        more_risks=max(0, risk_total - len(risks)),
        warnings=[warning_text(lang, w) for w in plan.warnings[:limit]],
        more_warnings=max(0, len(plan.warnings) - limit),
        reported_rows=plan.summary.numeric_rows,
        targeted_rows=plan.summary.targeted_rows,
    )


# ---------------------------------------------------------------- overdue reports


@dataclass(frozen=True)
class Missing:
    """An institution's reports not submitted for a year: overdue (days > 0) or still due."""

    institution: str
    year: int
    plan_id: str
    deadline: dt.date
    days_overdue: int  # negative: days left
    measures: tuple[str, ...]


def missing_reports(
    catalog: Catalog, plan_id: str, inputs: CompileInputs, *, today: dt.date
) -> list[Missing]:
    """Who has not reported what (institution, year), among the designated reporters, for the
    years the bot chases today: open for filing (or reopened) and not before its first year."""
    window = inputs.window
    years = tuple(
        sorted({y for inst in catalog.reporting_institutions() for y in window.open_years(today, inst)})
    )
    years = tuple(y for y in years if y in plan_years())
    if not years:
        return []
    compiled = compile_plan(
        catalog,
        plan_id,
        inputs.values,
        year=years[-1],
        as_of=today,
        first_submitted=inputs.first_submitted,
        window=window,
    )
    grace = compiled.completeness.grace_days
    out = []
    for row in compiled.completeness.rows:
        if row.institution is None or not row.missing:
            continue
        if row.year is not None and window.chased(row.institution, row.year, today):
            deadline = report_deadline(row.year, grace)
            days = (today - deadline).days
            out.append(Missing(row.institution, row.year, plan_id, deadline, days, row.missing))
    return out


# ---------------------------------------------------------------- audit export of revisions

REVISION_COLUMNS = (
    "report",
    "measure",
    "institution",
    "year",
    "revision",
    "author",
    "submitted",
    "field",
    "value",
    "review",
)


def _review_text(lang: str, state: str) -> str:
    return plain(lang, "coordinator.review_superseded") if state == SUPERSEDED else review_label(lang, state)


def _local(moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def _cells(row: RevisionRow, lang: str, tz: ZoneInfo) -> list[Any]:
    value = row.value if isinstance(row.value, int | float | str) or row.value is None else str(row.value)
    return [
        row.report_id,
        row.measure,
        row.institution,
        row.year,
        row.revision,
        row.author or "",
        _local(row.submitted_at, tz),
        field_label(lang, row.field),
        answer_text(lang, row.field, value),
        _review_text(lang, row.review_state),
    ]


def revision_header(lang: str) -> list[str]:
    return [plain(lang, f"coordinator.rev_col_{name}") for name in REVISION_COLUMNS]


def revisions_xlsx(rows: Iterable[RevisionRow], *, lang: str = "lv", tz: ZoneInfo = RIGA) -> bytes:
    """Every revision × answer as one sheet (frozen header, filters, local times)."""
    # Imported here, where the file is made, not at start-up: openpyxl is a heavy optional
    # library the idle bot must not hold in memory (issue 12, item 6) — not a hidden cycle break.
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    lang = normalise_language(lang)
    wb = Workbook()
    ws = wb.active
    ws.title = plain(lang, "coordinator.rev_sheet")[:31]
    ws.append(revision_header(lang))
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for row in rows:
        ws.append(_cells(row, lang, tz))
        for cell in ws[ws.max_row]:
            text_cell(cell)  # a comment "=HYPERLINK(...)" stays text
        ws.cell(ws.max_row, 7).number_format = "DD.MM.YYYY HH:MM"
    for letter, width in zip("ABCDEFGHIJ", (9, 10, 12, 7, 10, 22, 17, 14, 40, 22), strict=True):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def revisions_csv(rows: Iterable[RevisionRow], *, lang: str = "lv", tz: ZoneInfo = RIGA) -> bytes:
    """The same table as CSV (the exports' CSV conventions: comma, UTF-8 with BOM, ISO times)."""
    lang = normalise_language(lang)
    buffer = io.StringIO()
    writer = csv_writer(buffer, delimiter=DELIMITER, lineterminator="\r\n")  # user text stays text
    writer.writerow(revision_header(lang))
    for row in rows:
        cells = _cells(row, lang, tz)
        cells[6] = cells[6].isoformat(sep=" ", timespec="minutes")
        writer.writerow(["" if c is None else c for c in cells])
    return buffer.getvalue().encode(ENCODING)


# ---------------------------------------------------------------- warnings on the contact's card


def warning_message(lang: str, warning: ValidationWarning) -> str:
    """One validation warning as plain text (macro ``reports.warning_<code>``)."""
    try:
        return plain(lang, f"reports.warning_{warning.code}", **dict(warning.params))
    except (KeyError, TypeError):
        return plain(lang, "reports.warning_generic", code=warning.code)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def draft_warnings(
    lang: str,
    catalog: Catalog,
    measure: Measure,
    year: int,
    answers: Mapping[str, Any],
    others: Mapping[str, Mapping[int, Any]],
) -> list[str]:
    """The validation rules on a draft's numeric answers, as the compilation runs them.
    Report-scope rules see the draft alone. Row-scope rules see the whole indicator row:
    ``others`` holds the row's other submitted values (all institutions, not this report:
    ``CompiledRepo.row_values_besides``) per indicator and year — earlier years make the
    cumulative value before the draft, other institutions' values of ``year`` add to the draft's.
    Warnings only: they never block a report."""
    levels = default_status_rules().latest_value_kinds
    numeric: dict[str, float | None] = {}
    row: dict[str, float | None] = {}
    before: dict[str, float] = {}
    for indicator in measure.indicators:
        if not indicator.kind.is_numeric:
            continue
        value = _as_number(answers.get(indicator.id))
        past = others.get(indicator.id, {})
        if indicator.kind not in levels:  # a level's latest value counts, it does not add up
            earlier = (_as_number(v) for y, v in past.items() if y < year)
            before[indicator.id] = sum(v for v in earlier if v is not None)
        if value is not None:
            numeric[indicator.id] = value
            row[indicator.id] = value + (_as_number(past.get(year)) or 0.0)
    warnings = check_rules(catalog, measure, numeric, before, row_answers=row)
    return [warning_message(lang, w) for w in warnings]


# ---------------------------------------------------------------- policy-result actuals

ACTUAL_YEARS = (2022, 2027)
_NUMBER = re.compile(
    r"(?P<minus>[-\u2212\u2013]?)\s*(?P<int>\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+)(?:[.,](?P<frac>\d+))?"
)
MAX_ACTUAL_DECIMALS = 4


def policy_indicators(catalog: Catalog) -> list[tuple[str, PolicyIndicator]]:
    """(plan id, indicator) of every policy-result indicator, in plan order."""
    return [
        (plan.id, ind)
        for plan in catalog.plans
        for result in plan.policy_results
        for ind in result.indicators
    ]


def find_policy_indicator(catalog: Catalog, raw: str) -> tuple[str, PolicyIndicator]:
    wanted = raw.strip().casefold()
    for plan_id, indicator in policy_indicators(catalog):
        if indicator.id.casefold() == wanted:
            return plan_id, indicator
    known = ", ".join(i.id for _, i in policy_indicators(catalog))
    raise InputError("unknown_indicator", value=raw.strip()[:40], known=known)


def parse_actual_year(raw: str | int) -> int:
    value = str(raw).strip().rstrip(".")
    first, last = ACTUAL_YEARS
    if not value.isdigit() or not first <= int(value) <= last:
        raise InputError("bad_year", value=str(raw).strip()[:20], first=first, last=last)
    return int(value)


def parse_actual_value(raw: str, kind: MetricKind = MetricKind.COUNT) -> float:
    """A non-negative number, decimals with a comma or a dot, thousands grouped by spaces,
    an optional % sign; a percent is at most 100."""
    s = raw.strip().removesuffix("%").strip()
    match = _NUMBER.fullmatch(s)
    if match is None:
        raise InputError("not_a_number", value=raw.strip()[:40])
    frac = match["frac"] or ""
    if len(frac) > MAX_ACTUAL_DECIMALS:
        raise InputError("too_many_decimals", max_decimals=MAX_ACTUAL_DECIMALS)
    value = float(f"{re.sub(r'[^0-9]', '', match['int'])}.{frac or '0'}")
    if match["minus"] and value:
        raise InputError("negative")
    if kind is MetricKind.PERCENT and value > 100:
        raise InputError("percent_above_100")
    return value


def parse_source(raw: str) -> str:
    value = " ".join(raw.split())
    if not value:
        raise InputError("empty_source")
    if len(value) > 200:
        raise InputError("source_too_long", max_length=200)
    return value


def policy_card(lang: str, table: PolicyTable, indicator_id: str) -> str:
    """One policy indicator: history 2022–2024 (the passport's, or a value entered over it, with
    its source) beside the targets and actuals."""
    row = next(r for r in table.rows if r.indicator_id == indicator_id)
    return text(
        lang,
        "coordinator.policy_card",
        indicator_id=row.indicator_id,
        text=row.text,
        unit=row.unit,
        history=[
            {
                "year": y,
                "value": row.history_value(y),
                "entered": y in row.entered,
                "source": row.entered[y].source if y in row.entered else None,
                "passport": passport,
            }
            for y, passport in row.history.items()
        ],
        years=[
            {
                "year": cell.year,
                "target": cell.target.text if cell.target else None,
                "actual": cell.value,
                "source": cell.actual.source if cell.actual else None,
                "met": cell.met,
            }
            for cell in row.years
        ],
    )


# ---------------------------------------------------------------- the schedule

COMPILE_AT = dt.time(8, 0)
ANNUAL_ON = (1, 15)  # month, day


@dataclass(frozen=True, order=True)
class CompileRun:
    """A scheduled compilation: when (aware), which kind, which year it compiles."""

    at: dt.datetime
    kind: str  # "monthly" | "annual"
    year: int


def monthly_run(year: int, month: int, tz: ZoneInfo = RIGA) -> CompileRun:
    """First working day of the month at 08:00; it compiles the year of the month just ended."""
    day = nth_working_day(year, month, 1)
    return CompileRun(dt.datetime.combine(day, COMPILE_AT, tz), "monthly", year if month > 1 else year - 1)


def annual_run(year: int, tz: ZoneInfo = RIGA) -> CompileRun:
    """15 January at 08:00: the previous year's annual summary."""
    day = dt.date(year, *ANNUAL_ON)
    return CompileRun(dt.datetime.combine(day, COMPILE_AT, tz), "annual", year - 1)


def compile_runs(start: dt.date, end: dt.date, tz: ZoneInfo = RIGA) -> list[CompileRun]:
    """Every run on a day in [start, end] that compiles a year of the plan period, in time order."""
    years = plan_years()
    runs: list[CompileRun] = []
    for year in range(start.year, end.year + 1):
        runs.extend(monthly_run(year, month, tz) for month in range(1, 13))
        runs.append(annual_run(year, tz))
    return sorted(r for r in runs if start <= r.at.date() <= end and r.year in years)


def next_compile_run(now: dt.datetime, tz: ZoneInfo = RIGA) -> CompileRun | None:
    """The first run at or after ``now`` (aware); None after the plan period's last run."""
    local = now.astimezone(tz)
    later = compile_runs(local.date(), dt.date(plan_years()[-1] + 1, 12, 31), tz)
    return next((r for r in later if r.at >= now), None)


# ---------------------------------------------------------------- the scheduled job

JOB_FORMATS: dict[str, tuple[str, ...]] = {"monthly": ("xlsx", "png"), "annual": ("xlsx", "docx", "png")}


async def _coordinators(session: AsyncSession) -> list[Any]:
    contacts = await Repos(session).people.contacts(active_only=True)
    return [
        c
        for c in contacts
        if c.role in (Role.COORDINATOR, Role.ADMIN) and c.telegram_user_id is not None and not c.blocked
    ]


def _job_files(
    catalog: Catalog,
    inputs: Mapping[str, CompileInputs],
    formats: Sequence[str],
    year: int,
    as_of: dt.date,
    out: Path,
    lang: str,
) -> tuple[str, list[Path]]:
    """Blocking: compile each plan, write the files, return (summary text, paths)."""
    texts, paths = [], []
    for plan_id, plan_inputs in inputs.items():
        compiled = compile_inputs(catalog, plan_inputs, plan_id=plan_id, year=year, as_of=as_of)
        texts.append(summary_message(lang, compiled))
        paths.extend(render_files(compiled, formats if plan_id == MAIN_PLAN else ("xlsx",), out, lang=lang))
    return "\n\n".join(texts), paths


async def compile_for_coordinators(
    services: Services,
    *,
    year: int,
    kind: str,
    now: dt.datetime | None = None,
    out_root: Path | None = None,
) -> list[tuple[int, int, str, list[Path]]]:
    """Compile both plans for ``year`` and render the files into var/compiled/<timestamp>/<lang>/;
    returns (contact id, chat id, text, files) for every active coordinator and admin.
    Sending (through the outbox) is the caller's business."""
    if kind not in JOB_FORMATS:
        raise ValueError(f"kind must be one of {sorted(JOB_FORMATS)}, not {kind!r}")
    check_year(year)
    tz = services.settings.tz
    now = (now or dt.datetime.now(tz)).astimezone(tz)
    async with services.db.current() as session:
        recipients = await _coordinators(session)
        inputs = {plan.id: await load_inputs(session, plan.id) for plan in services.catalog.plans}
    if not recipients:
        return []
    ordered = {MAIN_PLAN: inputs.pop(MAIN_PLAN), **inputs} if MAIN_PLAN in inputs else inputs
    folder = (out_root or COMPILED_DIR) / now.strftime("%Y%m%dT%H%M%S")
    rendered: dict[str, tuple[str, list[Path]]] = {}
    for lang in sorted({normalise_language(c.language) for c in recipients}):
        body, paths = await asyncio.to_thread(
            _job_files, services.catalog, ordered, JOB_FORMATS[kind], year, now.date(), folder / lang, lang
        )
        intro = text(lang, "coordinator.job_intro", kind=kind, year=year)
        rendered[lang] = (f"{intro}\n\n{body}", paths)
    return [(c.id, c.telegram_user_id, *rendered[normalise_language(c.language)]) for c in recipients]


# ---------------------------------------------------------------- scheduled runs → the outbox


def compile_job_name(kind: str) -> str:
    return f"compile.{kind}"


def delivery_messages(
    job: str,
    day: dt.date,
    send_at: dt.datetime,
    deliveries: Sequence[tuple[int, int, str, list[Path]]],
) -> list[NewMessage]:
    """Outbox rows for a compilation: per coordinator, the summary text (in parts that fit a
    message), then each file as a document. Keys are (recipient, job, day, part): a run that is
    repeated after a crash adds nothing."""
    out: list[NewMessage] = []
    for contact_id, chat_id, body, files in deliveries:
        parts = chunks(body)
        for i, part in enumerate(parts, start=1):
            key = outbox_key([contact_id, job, day.isoformat(), f"text:{i}"])
            summary = SummaryPayload(part, i, len(parts))
            out.append(NewMessage(key, contact_id, chat_id, KIND_SUMMARY, summary, send_at))
        for path in files:
            key = outbox_key([contact_id, job, day.isoformat(), f"file:{path.name}"])
            document = DocumentPayload(str(path), path.name)
            out.append(NewMessage(key, contact_id, chat_id, KIND_DOCUMENT, document, send_at))
    return out


async def enqueue_compilation(services: Services, run: CompileRun, *, now: dt.datetime | None = None) -> int:
    """Do one scheduled run once: compile, render the files, queue them for every coordinator
    and record the run — the rows and the record in one transaction. Returns rows added
    (0 when the run was already done)."""
    job, day = compile_job_name(run.kind), run.at.date()
    async with services.db.session() as s:
        if await JobRunRepo(s).done(job, day):
            return 0
    now = now or dt.datetime.now(services.settings.tz)
    deliveries = await compile_for_coordinators(
        services, year=run.year, kind=run.kind, now=now, out_root=services.settings.compiled_dir
    )
    messages = delivery_messages(job, day, now, deliveries)
    async with services.db.session() as s:
        added = await OutboxRepo(s).add_many(messages)
        await JobRunRepo(s).mark(job, day, f"{run.year}: {len(deliveries)} recipient(s), {added} row(s)")
    return added


def due_compile_runs(now: dt.datetime, lookback_days: int, tz: ZoneInfo = RIGA) -> list[CompileRun]:
    """Runs whose time has come within the last ``lookback_days`` days (a run missed while the
    bot was down is done late rather than never), oldest first."""
    local = now.astimezone(tz)
    start = local.date() - dt.timedelta(days=lookback_days)
    return [r for r in compile_runs(start, local.date(), tz) if r.at <= local]
