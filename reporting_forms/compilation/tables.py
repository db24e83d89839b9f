"""The compiled plan's table model: reported values in, indicator rows with each institution's
share, measure/task/direction blocks with their summaries, completeness rows and the plan out.

Built by ``compile.py``; read by the exports and the chat summaries (read-only after).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reporting_forms.calendar import DEFAULT_TIMEZONE
from reporting_forms.catalog import Catalog, Direction, Indicator, Measure, MetricKind, Plan, Task
from reporting_forms.compilation.checks import CompiledWarning
from reporting_forms.compilation.status import Status, combine_statuses
from reporting_forms.periods import ReportingWindow


@dataclass(frozen=True, slots=True)
class ReportedValue:
    """One indicator answer of the latest submitted revision of a (measure, institution, year) report.

    ``status`` is the milestone status the institution chose (done | in_progress | not_started | risk).
    """

    report_id: int | str
    measure_id: str
    indicator_id: str
    institution: str
    year: int
    value: float | None
    status: str | None
    text: str | None
    revision: int
    submitted_at: dt.datetime
    review_state: str
    risk_flag: bool = False
    date: dt.date | None = None  # a milestone's date (done on / expected by)
    comment: str | None = None  # the report's free comment (the same on every row of the report)


@dataclass(slots=True)
class InstitutionShare:
    """One institution's part of an indicator row (built by the compilation; read-only after)."""

    institution: str
    values: Mapping[int, float | None]
    cumulative: float | None
    share: float | None  # of the row's cumulative value, 0..1 (added-up kinds only)
    percent: float | None  # of the row's 2027 target
    status: str | None  # the latest milestone status it reported
    statuses: Mapping[int, str]
    texts: Mapping[int, str]
    last_submitted: dt.datetime | None
    review_state: str | None
    risk_flag: bool  # its latest report (year ≤ the compiled year) flagged a risk
    reports: Mapping[int, ReportedValue]  # per year: the value as reported (revision, review, …)
    low: float | None = None  # the smallest value it reported (compiled years)
    high: float | None = None  # the largest

    @property
    def submitted(self) -> dict[int, dt.datetime]:
        """Per year: when its report was submitted."""
        return {year: v.submitted_at for year, v in self.reports.items()}

    @property
    def last_year(self) -> int | None:
        """The latest compiled year it reported on the row."""
        return max(self.reports) if self.reports else None


@dataclass(slots=True)
class IndicatorRow:
    """One "Rezultatīvā rādītāja vērtība 2027.gadā" row, filled with what was reported, with each
    reporting institution's part (``institutions``)."""

    indicator: Indicator
    deadline: dt.date
    values: Mapping[int, float | None]  # per year, all institutions together
    cumulative: float | None
    percent: float | None  # cumulative / 2027 target × 100
    expected_share: float | None  # linear pace at the evaluation day (rows with a target)
    status: Status
    reported_status: str | None  # institutions' combined milestone status (latest year)
    last_submitted: dt.datetime | None
    review_state: str | None
    risk_flag: bool  # an institution's latest report (year ≤ the compiled year) flagged a risk
    institutions: tuple[InstitutionShare, ...] = ()  # in the measure's order: responsible first
    reported: bool = False  # someone reported on the row for the compiled period (the year, or ever)
    level: bool = False  # a level (percent): no shares, the latest value counts
    _statuses: dict[int, str | None] | None = field(default=None, repr=False, compare=False)

    @property
    def reports(self) -> dict[str, Mapping[int, ReportedValue]]:
        """institution → year → the value as reported (the highest revision, compiled years only)."""
        return {share.institution: share.reports for share in self.institutions}

    @property
    def id(self) -> str:
        return self.indicator.id

    @property
    def kind(self) -> MetricKind:
        return self.indicator.kind

    @property
    def target(self) -> float | None:
        return self.indicator.target

    @property
    def years(self) -> tuple[int, ...]:
        return tuple(self.values)

    @property
    def statuses(self) -> dict[int, str | None]:
        """The institutions' combined milestone status per year (years with a status only)."""
        if self._statuses is None:
            found: dict[int, list[str]] = {}
            for share in self.institutions:
                for year, status in share.statuses.items():
                    found.setdefault(year, []).append(status)
            self._statuses = (
                {y: combine_statuses(found[y]) for y in self.years if y in found} if found else {}
            )
        return self._statuses

    def texts(self, year: int | None = None) -> list[tuple[str, int, str]]:
        """(institution, year, text) of the reported free texts, optionally of one year."""
        return [
            (share.institution, y, t)
            for share in self.institutions
            if share.texts
            for y, t in sorted(share.texts.items())
            if year is None or y == year
        ]


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts of indicator rows by status and THE progress figure of a block (task, direction,
    plan): the mean % of target over the numeric rows with a target and a reported value
    (``numeric_rows`` of the ``targeted_rows``; each row capped as status_rules.yaml says), with
    the mean % due by the evaluation day over the same rows. Tables, charts and chat summaries
    all show these two numbers; none computes its own."""

    rows: int
    counts: Mapping[Status, int]
    numeric_rows: int  # rows in the mean: a numeric target and a reported value
    percent_total: float
    targeted_rows: int = 0  # rows with a numeric target, reported or not
    expected_total: float = 0.0  # sum of the % due (linear pace) over the rows in the mean

    @property
    def mean_percent(self) -> float | None:
        return self.percent_total / self.numeric_rows if self.numeric_rows else None

    @property
    def mean_expected(self) -> float | None:
        """The mean % of target due by the evaluation day, over the rows of ``mean_percent``."""
        return self.expected_total / self.numeric_rows if self.numeric_rows else None


@dataclass(frozen=True, slots=True)
class MeasureRow:
    measure: Measure
    number: str  # Nr.p.k. within the task
    rows: tuple[IndicatorRow, ...]
    last_submitted: dt.datetime | None
    review_state: str | None
    warnings: tuple[CompiledWarning, ...]
    comments: Mapping[str, Mapping[int, str]] = field(default_factory=dict)  # institution → year → comment

    def latest_comment(self, institution: str) -> tuple[int, str] | None:
        """(year, comment) of the institution's latest report on the measure with a comment."""
        found = self.comments.get(institution)
        if not found:
            return None
        year = max(found)
        return year, found[year]


@dataclass(frozen=True, slots=True)
class ProgressNote:
    """What an institution's reports say about progress on one indicator row ("Informācija par
    izpildi"): the latest milestone status it reported on the row and its date, and (where asked)
    the latest comment of its reports on the measure. Worded by the exports (``progress_text``)."""

    institution: str
    status: str | None = None
    date: dt.date | None = None
    status_year: int | None = None
    comment: str | None = None
    comment_year: int | None = None

    @property
    def year(self) -> int | None:
        """The latest year the note draws on."""
        years = [y for y in (self.status_year, self.comment_year) if y is not None]
        return max(years) if years else None

    def __bool__(self) -> bool:
        return bool(self.status or self.comment)


def share_progress(
    share: InstitutionShare | None, institution: str, comment: tuple[int, str] | None = None
) -> ProgressNote:
    """An institution's note on a row: its latest reported milestone status with the date, and
    ``comment`` (year, text) when given (an empty note when there is neither)."""
    status = date = status_year = None
    if share is not None:
        for year in sorted(share.reports, reverse=True):
            v = share.reports[year]
            if v.status:
                status, date, status_year = v.status, v.date, year
                break
    return ProgressNote(
        institution,
        status,
        date,
        status_year,
        comment[1] if comment else None,
        comment[0] if comment else None,
    )


def row_progress(measure: MeasureRow, row: IndicatorRow, *, with_comments: bool) -> tuple[ProgressNote, ...]:
    """Per institution that reported on the row (or, ``with_comments``, commented on the
    measure): its note — the one computation behind the exports' progress column."""
    names = [share.institution for share in row.institutions]
    if with_comments:
        commented = in_measure_order(measure.comments, measure.measure.institutions)
        names += [i for i in commented if i not in names]
    shares = {share.institution: share for share in row.institutions}
    notes = (
        share_progress(shares.get(inst), inst, measure.latest_comment(inst) if with_comments else None)
        for inst in names
    )
    return tuple(note for note in notes if note)


def report_progress(report: ReportedValue, comment: str | None) -> ProgressNote:
    """The note of one report (one institution and year) on a row: its status, date and comment."""
    year = report.year
    return ProgressNote(
        report.institution,
        report.status,
        report.date if report.status else None,
        year if report.status else None,
        comment,
        year if comment else None,
    )


@dataclass(frozen=True, slots=True)
class TaskBlock:
    task: Task
    number: str
    measures: tuple[MeasureRow, ...]
    summary: Summary


@dataclass(frozen=True, slots=True)
class DirectionBlock:
    direction: Direction
    number: str
    tasks: tuple[TaskBlock, ...]
    summary: Summary

    @property
    def is_section(self) -> bool:
        """Sections (informal-hierarchy plan) hold one task with the section's own id."""
        return len(self.tasks) == 1 and self.tasks[0].task.id == self.direction.id


@dataclass(frozen=True, slots=True)
class CompletenessRow:
    """DHIS2 reporting rates: expected (measure, institution) reports, submitted, submitted on time."""

    institution: str | None  # None: all institutions
    year: int | None  # None: all years
    expected: int
    actual: int
    on_time: int
    missing: tuple[str, ...] = ()  # measure ids expected but not submitted (per institution and year)

    @property
    def completeness(self) -> float | None:
        return 100.0 * self.actual / self.expected if self.expected else None

    @property
    def timeliness(self) -> float | None:
        return 100.0 * self.on_time / self.expected if self.expected else None


@dataclass(frozen=True, slots=True)
class Completeness:
    years: tuple[int, ...]
    grace_days: int
    rows: tuple[CompletenessRow, ...]  # per institution and year
    by_institution: tuple[CompletenessRow, ...]  # per institution, all years
    by_year: tuple[CompletenessRow, ...]  # all institutions, per year
    total: CompletenessRow


@dataclass(frozen=True, slots=True)
class CompiledPlan:
    plan: Plan
    year: int | None  # None: the whole plan period
    years: tuple[int, ...]  # years compiled (≤ year)
    plan_years: tuple[int, ...]  # all years of the plan period (table columns)
    as_of: dt.date
    evaluated_on: dt.date  # day the pace and deadlines are judged at
    directions: tuple[DirectionBlock, ...]
    summary: Summary
    completeness: Completeness
    warnings: tuple[CompiledWarning, ...]
    timezone: str = DEFAULT_TIMEZONE
    institution_names: Mapping[str, str] = field(default_factory=dict)
    reporting_institutions: frozenset[str] = frozenset()  # Institution.reports is True
    window: ReportingWindow = field(default_factory=ReportingWindow)  # which years are expected
    percent_cap: float | None = 100.0  # a row's % in a mean is capped at this (status_rules.yaml)

    @property
    def plan_id(self) -> str:
        return self.plan.id

    def tasks(self) -> Iterator[tuple[DirectionBlock, TaskBlock]]:
        for direction in self.directions:
            for task in direction.tasks:
                yield direction, task

    def no_data(self, measure: Measure, year: int) -> bool:
        """A year none of the measure's reporters was asked for: "nav datu" in its cells."""
        return self.window.no_data(measure.reporters, year)

    def no_data_years(self, measure: Measure) -> frozenset[int]:
        """The plan years shown as "nav datu" for the measure (where nothing was reported)."""
        return frozenset(y for y in self.plan_years if self.no_data(measure, y))

    def rows(self) -> Iterator[tuple[DirectionBlock, TaskBlock, MeasureRow, IndicatorRow]]:
        for direction in self.directions:
            for task in direction.tasks:
                for measure in task.measures:
                    for row in measure.rows:
                        yield direction, task, measure, row

    def row(self, indicator_id: str) -> IndicatorRow:
        for *_, row in self.rows():
            if row.id == indicator_id:
                return row
        raise KeyError(indicator_id)


def find_plan(catalog: Catalog, plan_id: str) -> Plan:
    for plan in catalog.plans:
        if plan.id == plan_id:
            return plan
    raise KeyError(f"no plan {plan_id!r} in the catalog")


def in_measure_order(found: Mapping[str, Any], order: Sequence[str]) -> list[str]:
    """Institutions in the measure's order (responsible first), others after it alphabetically."""
    if len(found) == 1:
        return list(found)
    names = [i for i in order if i in found]
    if len(names) < len(found):
        names.extend(sorted(i for i in found if i not in order))
    return names


def summarise(rows: Iterable[IndicatorRow], cap: float | None = 100.0) -> Summary:
    counts = dict.fromkeys(Status, 0)
    total = numeric = targeted = 0
    percent_total = expected_total = 0.0
    for row in rows:
        total += 1
        counts[row.status] += 1
        if row.expected_share is not None:
            targeted += 1
        if row.percent is not None:
            numeric += 1
            percent_total += row.percent if cap is None else min(row.percent, cap)
            expected_total += 100.0 * (row.expected_share or 0.0)
    return Summary(total, counts, numeric, percent_total, targeted, expected_total)


def merge_summaries(parts: Iterable[Summary]) -> Summary:
    counts = dict.fromkeys(Status, 0)
    total = numeric = targeted = 0
    percent_total = expected_total = 0.0
    for part in parts:
        total += part.rows
        numeric += part.numeric_rows
        targeted += part.targeted_rows
        percent_total += part.percent_total
        expected_total += part.expected_total
        for status, n in part.counts.items():
            counts[status] += n
    return Summary(total, counts, numeric, percent_total, targeted, expected_total)
