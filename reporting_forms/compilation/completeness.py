"""Completeness and timeliness (DHIS2 reporting rates): expected (measure, institution) reports
per year, how many were submitted, and how many on time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from reporting_forms.catalog import Catalog, Plan
from reporting_forms.compilation.status import StatusRules, compiled_years, default_status_rules
from reporting_forms.compilation.tables import Completeness, CompletenessRow, ReportedValue, find_plan
from reporting_forms.periods import ReportingWindow, report_deadline

Submissions = dict[tuple[str, str, int], dt.datetime]  # (measure, institution, year) → submitted at


def local_day(moment: dt.datetime, tz: ZoneInfo) -> dt.date:
    return moment.astimezone(tz).date() if moment.tzinfo is not None else moment.date()


def expected_reports(
    catalog: Catalog, plan: Plan, year: int, window: ReportingWindow | None = None
) -> list[tuple[str, str]]:
    """(measure, institution) pairs due for ``year``: the measure's designated reporters, for
    measures whose deadline is not before the year starts, in years the window expects."""
    first_day = dt.date(year, 1, 1)
    window = window or ReportingWindow()
    return [
        (measure_id, inst)
        for measure_id, deadline, institutions in reporting_measures(plan)
        if deadline is None or deadline >= first_day
        for inst in institutions
        if window.expected(inst, year)
    ]


def reporting_measures(plan: Plan) -> list[tuple[str, dt.date | None, tuple[str, ...]]]:
    """(measure, deadline, designated reporters) — who completeness and timeliness count."""
    return [(m.id, m.deadline, m.reporters) for m in plan.measures()]


def build_completeness(
    catalog: Catalog,
    plan: Plan,
    submissions: Mapping[tuple[str, str, int], dt.datetime],
    years: Sequence[int],
    as_of: dt.date,
    rules: StatusRules,
    grace_days: int,
    first_submitted: Mapping[tuple[str, str, int], dt.datetime] | None,
    window: ReportingWindow | None = None,
) -> Completeness:
    tz = rules.tz
    window = window or ReportingWindow()
    started = [y for y in years if dt.date(y, 1, 1) <= as_of]
    cells: dict[tuple[str, int], list[int]] = {}  # (institution, year) → [expected, actual, on time]
    missing: dict[tuple[str, int], list[str]] = {}
    measures = reporting_measures(plan)
    firsts = first_submitted or {}
    for year in started:
        # on time: submitted before the day after the deadline begins, in the plan's time zone
        # (a naive time is taken as local: compared with the local midnight itself)
        after = dt.datetime.combine(report_deadline(year, grace_days) + dt.timedelta(days=1), dt.time())
        after_aware = after.replace(tzinfo=tz).astimezone(dt.UTC)
        first_day = dt.date(year, 1, 1)
        for measure_id, measure_deadline, institutions in measures:
            if measure_deadline is not None and measure_deadline < first_day:
                continue
            for inst in institutions:
                if not window.expected(inst, year):
                    continue
                cell = cells.get((inst, year))
                if cell is None:
                    cell = cells[(inst, year)] = [0, 0, 0]
                cell[0] += 1
                key = (measure_id, inst, year)
                submitted = submissions.get(key)
                if submitted is None:
                    missing.setdefault((inst, year), []).append(measure_id)
                    continue
                cell[1] += 1
                first = firsts.get(key, submitted)
                if first < (after_aware if first.tzinfo is not None else after):
                    cell[2] += 1

    def row(inst: str | None, year: int | None, keys: Iterable[tuple[str, int]]) -> CompletenessRow:
        keys = list(keys)
        return CompletenessRow(
            inst,
            year,
            sum(cells[k][0] for k in keys),
            sum(cells[k][1] for k in keys),
            sum(cells[k][2] for k in keys),
            # measure ids are only unambiguous for one institution and one year
            tuple(missing.get(keys[0], ())) if inst is not None and year is not None else (),
        )

    institutions = [i.abbr for i in catalog.institutions if any((i.abbr, y) in cells for y in started)]
    rows = tuple(row(i, y, [(i, y)]) for i in institutions for y in started if (i, y) in cells)
    by_institution = tuple(row(i, None, [k for k in cells if k[0] == i]) for i in institutions)
    by_year = tuple(row(None, y, [k for k in cells if k[1] == y]) for y in started)
    return Completeness(
        years=tuple(started),
        grace_days=grace_days,
        rows=rows,
        by_institution=by_institution,
        by_year=by_year,
        total=row(None, None, list(cells)),
    )


def completeness_for(completeness: Completeness, year: int | None) -> list[CompletenessRow]:
    """Per institution with reports due: its row for ``year``, or for all compiled years (None) —
    what a summary of that period shows (the text summary and the completeness chart alike)."""
    if year is None:
        return [r for r in completeness.by_institution if r.expected]
    return [r for r in completeness.rows if r.year == year and r.expected]


def compile_completeness(
    catalog: Catalog,
    plan_id: str,
    values: Iterable[ReportedValue],
    *,
    year: int | None,
    as_of: dt.date,
    status_rules: StatusRules | None = None,
    grace_days: int | None = None,
    first_submitted: Mapping[tuple[str, str, int], dt.datetime] | None = None,
    window: ReportingWindow | None = None,
) -> Completeness:
    """Completeness and timeliness per institution and year (DHIS2 reporting rates).

    Expected: (measure, institution) pairs due in a year that has started by ``as_of``;
    actual: submitted; on time: submitted by 31 December of the year + ``grace_days``.
    """
    rules = status_rules or default_status_rules()
    plan = find_plan(catalog, plan_id)
    years = compiled_years(rules, year)
    year_set = set(years)
    submissions: Submissions = {}
    for v in values:
        if v.year in year_set:
            key = (v.measure_id, v.institution, v.year)
            old = submissions.get(key)
            if old is None or v.submitted_at > old:
                submissions[key] = v.submitted_at
    grace = rules.report_grace_days if grace_days is None else grace_days
    return build_completeness(catalog, plan, submissions, years, as_of, rules, grace, first_submitted, window)
