"""Summaries of a compiled plan: the scope of a ``/summary`` request, compiling the plan (or
the part in scope) from what the database holds, the files, the short text summary (top risks,
completeness lines, review counts) and the overdue reports. Pure: the database reads are
``services.compilation.load_inputs``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reporting_forms import exports
from reporting_forms.calendar import DEFAULT_TIMEZONE
from reporting_forms.catalog import Catalog, Plan
from reporting_forms.compilation import (
    CompiledPlan,
    Completeness,
    CompletenessRow,
    IndicatorRow,
    PolicyActual,
    PolicyTable,
    ReportedValue,
    Status,
    compile_plan,
    compile_policy_results,
    completeness_for,
    default_status_rules,
    find_plan,
)
from reporting_forms.exports.common import status_label, warning_text
from reporting_forms.inputs import FORMATS, InputError, check_year, plan_years, resolve_plan
from reporting_forms.periods import ReportingWindow, report_deadline
from reporting_forms.texts import normalise_language, shorten, text

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
        if re.fullmatch(r"[0-9]{4}", word):
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
    return SummaryRequest(plan_id or catalog.main_plan.id, year, Scope(**scope))


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


def compile_inputs(
    catalog: Catalog,
    inputs: CompileInputs,
    *,
    plan_id: str,
    year: int | None,
    as_of: dt.date,
    scope: Scope = Scope(),
    timezone: str = DEFAULT_TIMEZONE,
) -> Compiled:
    """Compile a plan (or the part of it in ``scope``) from database inputs. An institution's
    scope sees only that institution's values, never another's. Report dates are judged in
    ``timezone`` (the TIMEZONE setting)."""
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
        status_rules=default_status_rules().with_timezone(timezone),
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
                "text": shorten(row.indicator.text, 80),
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
