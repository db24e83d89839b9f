"""Compiled plan tables: what the institutions reported, set against the plan's own indicators.

Pure functions over plain data (no Telegram, no database). The caller passes the latest submitted
revision of each report as ``ReportedValue`` rows; ``compile_plan`` returns the plan's tables filled
in — per indicator row the 2027 target, the value per year, the cumulative value, % of target,
status, responsible institutions, last report date and review state, with each institution's part —
plus aggregates per task and direction, DHIS2-style completeness/timeliness and data warnings.

Status rules (``status.py``) and validation checks (``checks.py``) are data; the table model is
``tables.py``. Exports (``reporting_forms.exports``) turn a ``CompiledPlan`` into files.
"""

from __future__ import annotations

import datetime as dt
import gc
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from reporting_forms.catalog import Catalog, Direction, Indicator, Measure, MetricKind, Task
from reporting_forms.compilation.checks import ValidationRules, default_validation_rules, measure_warnings
from reporting_forms.compilation.completeness import Submissions, build_completeness
from reporting_forms.compilation.status import (
    NUMERIC_KINDS,
    CompiledRules,
    Status,
    StatusRules,
    combine_review_states,
    combine_statuses,
    compile_status_rules,
    compiled_years,
    default_status_rules,
    evaluation_day,
    expected_share,
    pace_shortfall,
    stronger_review,
)
from reporting_forms.compilation.tables import (
    CompiledPlan,
    DirectionBlock,
    IndicatorRow,
    InstitutionShare,
    MeasureRow,
    ReportedValue,
    TaskBlock,
    find_plan,
    in_measure_order,
    merge_summaries,
    summarise,
)
from reporting_forms.periods import ReportingWindow

_TRAILING_NUMBER = re.compile(r"(\d+(?:\.\d+)*)$")


@dataclass(slots=True)
class _Context:
    year: int | None  # the compiled year; None: the whole plan period
    years: tuple[int, ...]
    year_set: frozenset[int]
    on: dt.date
    start: dt.date
    end: dt.date
    latest_kinds: tuple[MetricKind, ...]
    rules: CompiledRules
    percent_cap: float | None
    validation: ValidationRules
    window: ReportingWindow = field(default_factory=ReportingWindow)
    shares: dict[dt.date, float] = field(default_factory=dict)
    submissions: Submissions = field(default_factory=dict)

    def share(self, deadline: dt.date) -> float:
        found = self.shares.get(deadline)
        if found is None:
            found = self.shares[deadline] = expected_share(self.on, deadline, self.start)
        return found


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Building ~10^5 rows over ~10^6 input values, the cyclic collector would scan the inputs
    again and again (up to half the time). The rows form no reference cycles, so the collector
    is paused meanwhile. Afterwards the objects made meanwhile go straight to the oldest
    generation (``gc.freeze()`` + ``gc.unfreeze()`` moves every tracked object there, without a
    scan): left young, the ~10^6 of them would be scanned by a young pass and again by a middle
    one, whoever allocates next paying — the result is long-lived, not cyclic garbage."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if was_enabled:
            gc.enable()


Reports = dict[str, dict[int, ReportedValue]]  # institution → year → the value as reported


def group_reports(values: Iterable[ReportedValue], year_set: frozenset[int]) -> dict[str, Reports]:
    """The single pass over all values: indicator id → institution → year → the highest revision
    passed in (compiled years only)."""
    groups: dict[str, Reports] = {}
    get = groups.get
    for v in values:
        year = v.year
        if year not in year_set:
            continue
        by_inst = get(v.indicator_id)
        if by_inst is None:
            groups[v.indicator_id] = {v.institution: {year: v}}
            continue
        by_year = by_inst.get(v.institution)
        if by_year is None:
            by_inst[v.institution] = {year: v}
            continue
        old = by_year.get(year)
        if old is None or v.revision > old.revision:
            by_year[year] = v
    return groups


@dataclass(frozen=True, slots=True)
class _ReportFacts:
    """What an institution's reports on a measure say for every one of its rows: a report (one
    measure, institution and year) has one submission time, review state and risk flag."""

    years: Any  # the years it reported (dict keys, compared with a share's years)
    last_submitted: dt.datetime | None
    review_state: str | None
    risk_flag: bool  # of its latest year's report


def _report_facts(by_year: Mapping[int, ReportedValue]) -> _ReportFacts:
    last: dt.datetime | None = None
    review: str | None = None
    for v in by_year.values():
        if last is None or v.submitted_at > last:
            last = v.submitted_at
        state = v.review_state
        if state != review:  # the first state, or the stronger one (the review rule)
            review = state if review is None else stronger_review(review, state)
    latest = by_year[max(by_year)] if by_year else None
    return _ReportFacts(by_year.keys(), last, review, latest.risk_flag if latest is not None else False)


@dataclass(slots=True)
class _MeasureReports:
    """An institution's reports on one measure, as its rows come: per institution the facts of
    its reports (from its first row; a row with other years gets its own) and every (year, value
    of the report) seen, for completeness."""

    facts: dict[str, _ReportFacts] = field(default_factory=dict)
    reports: dict[str, Mapping[int, ReportedValue]] = field(default_factory=dict)

    def facts_for(self, inst: str, by_year: Mapping[int, ReportedValue]) -> _ReportFacts:
        known = self.facts.get(inst)
        if known is not None and by_year.keys() == known.years:
            return known
        own = _report_facts(by_year)
        if known is None:
            self.facts[inst] = own
            self.reports[inst] = by_year  # a row's own mapping: copied before anything is added
        else:
            self.reports[inst] = {**self.reports[inst], **by_year}
        return own


_NOTHING: Mapping[int, Any] = MappingProxyType({})  # the statuses/texts of a share without any


def _share(
    inst: str,
    by_year: dict[int, ReportedValue],
    years: Sequence[int],
    target: float | None,
    level: bool,
    sums: dict[int, float | None],
    counts: dict[int, int],
    facts: _ReportFacts,
) -> InstitutionShare:
    """One institution's part, in one pass over its years; adds its values to the row's ``sums``
    (and, for levels, ``counts``). ``share`` is filled in by the caller, who knows the row total.

    The hot path of the compilation (one call per institution and row): no temporary sets, the
    statuses/texts mappings are made only for rows that have them, and the submission time,
    review and risk are the institution's reports' (``facts``, shared by the measure's rows)."""
    values: dict[int, float | None] = {}
    statuses: Any = _NOTHING
    texts: Any = _NOTHING
    get = by_year.get
    total = 0.0
    last_value: float | None = None
    status: str | None = None
    low = high = 0.0
    for year in years:
        v = get(year)
        if v is None:
            continue
        value = values[year] = v.value
        if value is not None:
            total += value
            if last_value is None:
                low = high = value
            elif value < low:
                low = value
            elif value > high:
                high = value
            last_value = value
            old = sums[year]
            sums[year] = value if old is None else old + value
            if level:
                counts[year] = counts.get(year, 0) + 1
            continue  # an answer is a number, or else a milestone status and/or a text
        if v.status:
            if statuses is _NOTHING:
                statuses = {}
            status = statuses[year] = v.status
        if v.text:
            if texts is _NOTHING:
                texts = {}
            texts[year] = v.text
    cumulative = None if last_value is None else last_value if level else total
    return InstitutionShare(
        inst,
        values,
        cumulative,
        None,
        cumulative / target * 100.0 if target and cumulative is not None else None,
        status,
        statuses,
        texts,
        facts.last_submitted,
        facts.review_state,
        facts.risk_flag,
        by_year,
        None if last_value is None else low,
        None if last_value is None else high,
    )


def _compile_indicator(
    ctx: _Context,
    ind: Indicator,
    deadline: dt.date,
    order: tuple[str, ...],
    by_inst: Reports | None,
    reports: _MeasureReports,
    everyone: frozenset[str] = frozenset(),
) -> IndicatorRow:
    """One row from its institutions' reports: per-year values, cumulative, shares, status.
    ``everyone``: the measure's institutions — when exactly they reported, ``order`` is theirs."""
    kind = ind.kind
    level = kind in ctx.latest_kinds
    target = ind.target
    years = ctx.years
    sums: dict[int, float | None] = dict.fromkeys(years)
    counts: dict[int, int] = {}
    # one pass over the institutions: each one's share, and what the row needs of them
    parts: list[InstitutionShare] = []
    reported = risk = False
    year = ctx.year
    last: dt.datetime | None = None
    review: str | None = None
    statuses: list[str] = []
    total: float | None = None
    if by_inst:
        known = reports.facts
        for inst in order if by_inst.keys() == everyone else in_measure_order(by_inst, order):
            by_year = by_inst[inst]
            facts = known.get(inst)
            if facts is None or by_year.keys() != facts.years:
                facts = reports.facts_for(inst, by_year)
            share = _share(inst, by_year, years, target, level, sums, counts, facts)
            parts.append(share)
            if share.cumulative is not None:
                total = share.cumulative if total is None else total + share.cumulative
            if facts.risk_flag:
                risk = True
            if year is None or year in by_year:
                reported = True
            if share.status is not None:
                statuses.append(share.status)
            moment = facts.last_submitted
            if moment is not None and (last is None or moment > last):
                last = moment
            state = facts.review_state
            if state != review:  # the first state, or the stronger one (the review rule)
                review = state if review is None else stronger_review(review, state)
    shares = tuple(parts)
    if level:  # the yearly value is the mean over institutions; the latest year's value counts
        for y, n in counts.items():
            if n > 1:
                sums[y] = sums[y] / n  # type: ignore[operator]
        cumulative = next((sums[y] for y in reversed(years) if sums[y] is not None), None)
    else:  # the values add up: the row's total is the sum of the institutions' totals
        cumulative = total
        if cumulative:
            for share in shares:
                if share.cumulative is not None:
                    share.share = share.cumulative / cumulative
    combined = combine_statuses(statuses) if statuses else None
    numeric = kind in NUMERIC_KINDS
    share_due = ctx.share(deadline) if numeric and target else None
    status = ctx.rules.decide(
        kind,
        reported,
        bool(numeric and target and cumulative is not None and cumulative >= target),
        combined,
        risk,
        pace_shortfall(cumulative, target, share_due) if share_due is not None else None,
        ctx.on > deadline,
        bool(numeric and not cumulative),
    )
    return IndicatorRow(
        ind,
        deadline,
        sums,
        cumulative,
        cumulative / target * 100.0 if target and cumulative is not None else None,
        share_due,
        status,
        combined,
        last,
        review,
        risk,
        shares,
        reported,
        level,
        None if statuses else {},  # no institution gave a status: none per year either
    )


def _number(item_id: str, position: int) -> str:
    """Numbers as the plan prints them: direction "1", task "1.1" (from "1.1" or "NH.1")."""
    found = _TRAILING_NUMBER.search(item_id)
    return found.group(1) if found else str(position)


def _measure_number(measure_id: str, position: int) -> str:
    """Nr.p.k. of a measure within its task: the last part of its id ("1.1.10" → "10")."""
    last = measure_id.rsplit(".", 1)[-1]
    return last if last.isdigit() else str(position)


def _compile_measure(
    ctx: _Context, measure: Measure, position: int, groups: Mapping[str, Reports]
) -> MeasureRow:
    order = measure.institutions
    measure_deadline = measure.deadline or ctx.end
    reports = _MeasureReports()
    everyone = frozenset(order)
    rows = tuple(
        _compile_indicator(
            ctx, ind, ind.deadline or measure_deadline, order, groups.get(ind.id), reports, everyone
        )
        for ind in measure.indicators
    )
    if ctx.year is not None and ctx.window.no_data(measure.reporters, ctx.year):
        for row in rows:  # nobody was asked for this year: "nav datu", not "nav ziņots"
            if row.status is Status.NOT_REPORTED:
                row.status = Status.NO_DATA
    mid = measure.id
    submissions = ctx.submissions
    comments: dict[str, dict[int, str]] = {}
    for inst, by_year in reports.reports.items():
        for year, v in by_year.items():
            submissions[(mid, inst, year)] = v.submitted_at  # one report: one submission time
            if v.comment:
                comments.setdefault(inst, {})[year] = v.comment
    last = max((r.last_submitted for r in rows if r.last_submitted is not None), default=None)
    reviews = {r.review_state for r in rows if r.review_state}
    return MeasureRow(
        measure=measure,
        number=_measure_number(measure.id, position),
        rows=rows,
        last_submitted=last,
        review_state=combine_review_states(reviews),
        warnings=measure_warnings(ctx.validation, ctx.years, measure, rows),
        comments=comments,
    )


def _compile_task(ctx: _Context, task: Task, position: int, groups: Mapping[str, Reports]) -> TaskBlock:
    measures = tuple(_compile_measure(ctx, m, i, groups) for i, m in enumerate(task.measures, start=1))
    summary = summarise((row for m in measures for row in m.rows), ctx.percent_cap)
    return TaskBlock(task, _number(task.id, position), measures, summary)


def _compile_direction(
    ctx: _Context, direction: Direction, position: int, groups: Mapping[str, Reports]
) -> DirectionBlock:
    tasks = tuple(_compile_task(ctx, t, i, groups) for i, t in enumerate(direction.tasks, start=1))
    summary = merge_summaries(t.summary for t in tasks)
    return DirectionBlock(direction, _number(direction.id, position), tasks, summary)


def compile_plan(
    catalog: Catalog,
    plan_id: str,
    values: Iterable[ReportedValue],
    *,
    year: int | None,
    as_of: dt.date,
    status_rules: StatusRules | None = None,
    validation_rules: ValidationRules | None = None,
    grace_days: int | None = None,
    first_submitted: Mapping[tuple[str, str, int], dt.datetime] | None = None,
    window: ReportingWindow | None = None,
) -> CompiledPlan:
    """Fill the plan's indicator tables with the reported values for ``year`` (None: 2025–2027).

    ``values``: the latest submitted revision per (measure, institution, year). ``first_submitted``
    optionally gives the first submission time per (measure, institution, year) for timeliness
    (otherwise the submission time of the revision passed in is used). ``window``: which
    (institution, year) reports are expected (default: every plan year from the first).
    """
    rules = status_rules or default_status_rules()
    plan = find_plan(catalog, plan_id)
    years = compiled_years(rules, year)
    window = window or ReportingWindow()
    ctx = _Context(
        year=year,
        years=years,
        year_set=frozenset(years),
        on=evaluation_day(rules, year, as_of),
        start=rules.period.start,
        end=rules.period.end,
        latest_kinds=tuple(rules.latest_value_kinds),
        rules=compile_status_rules(rules),
        percent_cap=rules.mean_percent_cap,
        validation=validation_rules or default_validation_rules(),
        window=window,
    )
    with _gc_paused():
        groups = group_reports(values, ctx.year_set)
        directions = tuple(
            _compile_direction(ctx, d, i, groups) for i, d in enumerate(plan.directions, start=1)
        )
        completeness = build_completeness(
            catalog,
            plan,
            ctx.submissions,
            years,
            as_of,
            rules,
            rules.report_grace_days if grace_days is None else grace_days,
            first_submitted,
            window,
        )
        return CompiledPlan(
            plan=plan,
            year=year,
            years=years,
            plan_years=rules.period.years,
            as_of=as_of,
            evaluated_on=ctx.on,
            directions=directions,
            summary=merge_summaries(d.summary for d in directions),
            completeness=completeness,
            warnings=tuple(w for d in directions for t in d.tasks for m in t.measures for w in m.warnings),
            timezone=rules.timezone,
            institution_names={i.abbr: i.name for i in catalog.institutions},
            reporting_institutions=catalog.reporting_institutions(),
            window=window,
            percent_cap=rules.mean_percent_cap,
        )
