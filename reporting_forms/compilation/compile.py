"""Compiled plan tables: what the institutions reported, set against the plan's own indicators.

Pure functions over plain data (no Telegram, no database). The caller passes the latest submitted
revision of each report as ``ReportedValue`` rows; ``compile_plan`` returns the plan's tables filled
in — per indicator row the 2027 target, the value per year, the cumulative value, % of target,
status, responsible institutions, last report date and review state, with each institution's part —
plus aggregates per task and direction, DHIS2-style completeness/timeliness and data warnings.

Status rules and validation rules are data (``status_rules.yaml``, ``validation_rules.yaml``).
Exports (``reporting_forms.exports``) turn a ``CompiledPlan`` into files.
"""

from __future__ import annotations

import datetime as dt
import gc
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from reporting_forms.catalog import (
    Catalog,
    Direction,
    Indicator,
    Measure,
    MetricKind,
    Plan,
    Task,
    YearTarget,
)
from reporting_forms.periods import ReportingWindow, report_deadline

STATUS_RULES_PATH = Path(__file__).parents[1] / "status_rules.yaml"
VALIDATION_RULES_PATH = Path(__file__).parents[1] / "validation_rules.yaml"

# Tuples, not sets: an Enum member hashes through a Python-level __hash__, while tuple membership
# compares by identity first — it matters a million times over.
NUMERIC_KINDS: tuple[MetricKind, ...] = tuple(k for k in MetricKind if k.is_numeric)
_TRAILING_NUMBER = re.compile(r"(\d+(?:\.\d+)*)$")


class Status(StrEnum):
    """Status of an indicator row (labels: ``reports.status_<value>``)."""

    DONE = "done"
    IN_PROGRESS = "in_progress"
    RISK = "risk"
    NOT_STARTED = "not_started"
    NOT_REPORTED = "not_reported"
    NO_DATA = "no_data"  # a year before the bot's first reporting year: nobody was asked for it


class ReviewState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    RETURNED = "returned"


# ---------------------------------------------------------------- input data


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


@dataclass(frozen=True, slots=True)
class PolicyActual:
    """An actual value of a policy-result indicator, entered by a TM coordinator."""

    indicator_id: str
    year: int
    value: float | None
    source: str | None
    entered_by: str | None
    entered_at: dt.datetime


# ---------------------------------------------------------------- rules as data


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Model):
    """Conditions of a status rule; every condition given must hold (see status_rules.yaml)."""

    reported: bool | None = None
    kinds: tuple[MetricKind, ...] | None = None
    target_reached: bool | None = None
    reported_status: tuple[Status, ...] | None = None
    risk_flag: bool | None = None
    behind_pace_more_than: float | None = Field(default=None, ge=0, le=1)
    overdue: bool | None = None
    nothing_achieved: bool | None = None


class StatusRule(_Model):
    status: Status
    when: Condition = Condition()


class Period(_Model):
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end <= self.start:
            raise ValueError("period end must be after its start")
        return self

    @property
    def years(self) -> tuple[int, ...]:
        return tuple(range(self.start.year, self.end.year + 1))


class StatusRules(_Model):
    period: Period
    history_years: tuple[int, ...] = ()
    timezone: str = "Europe/Riga"
    report_grace_days: int = Field(default=0, ge=0)
    mean_percent_cap: float | None = Field(default=100, gt=0)
    latest_value_kinds: tuple[MetricKind, ...] = (MetricKind.PERCENT,)
    policy_increase_words: tuple[str, ...] = ()
    rules: tuple[StatusRule, ...]

    @model_validator(mode="after")
    def _has_fallback(self) -> StatusRules:
        if not self.rules or self.rules[-1].when != Condition():
            raise ValueError("the last status rule must have an empty `when` (the fallback)")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


RuleScope = Literal["report", "row"]
"""What a validation rule looks at: ``report`` — one institution's answers (its own report), as at
submit time; ``row`` — the indicator row's totals across all institutions."""


class PairRule(_Model):
    """Sum of ``left`` rows must not exceed the sum of ``right`` rows (e.g. trained ≤ participants).

    Only rows that count the same people are compared: rows whose ``same`` attributes (e.g. the
    catalog's ``unit``) are equal; rows without the attribute are compared with each other."""

    type: Literal["not_greater_than"]
    code: str
    left: MetricKind
    right: MetricKind
    same: tuple[Literal["unit"], ...] = ()
    scope: RuleScope = "report"


class CumulativeRule(_Model):
    """Cumulative value must not exceed ``multiple`` × the 2027 target."""

    type: Literal["cumulative_multiple_of_target"]
    code: str
    multiple: float = Field(default=3.0, gt=0)
    kinds: tuple[MetricKind, ...]
    scope: RuleScope = "row"


class RangeRule(_Model):
    """An answer must lie within [min, max]."""

    type: Literal["range"]
    code: str
    kinds: tuple[MetricKind, ...]
    min: float | None = None
    max: float | None = None
    scope: RuleScope = "report"


ValidationRule = Annotated[PairRule | CumulativeRule | RangeRule, Field(discriminator="type")]


class ValidationRules(_Model):
    rules: tuple[ValidationRule, ...]


def _load_yaml(model: type[_Model], path: Path) -> Any:
    return model.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def load_status_rules(path: Path | None = None) -> StatusRules:
    return _load_yaml(StatusRules, path or STATUS_RULES_PATH)


def load_validation_rules(path: Path | None = None) -> ValidationRules:
    return _load_yaml(ValidationRules, path or VALIDATION_RULES_PATH)


@cache
def default_status_rules() -> StatusRules:
    return load_status_rules()


@cache
def default_validation_rules() -> ValidationRules:
    return load_validation_rules()


# ---------------------------------------------------------------- status of one row


@dataclass(slots=True)
class RowFacts:
    """What the status rules look at for one indicator row."""

    kind: MetricKind
    reported: bool
    target_reached: bool = False
    reported_status: str | None = None
    risk_flag: bool = False
    pace_shortfall: float | None = None
    overdue: bool = False
    nothing_achieved: bool = False


Predicate = Callable[[RowFacts], bool]


def _predicates(cond: Condition) -> tuple[Predicate, ...]:
    preds: list[Predicate] = []
    if cond.reported is not None:
        reported = cond.reported
        preds.append(lambda f: f.reported is reported)
    if cond.kinds is not None:
        kinds = tuple(cond.kinds)
        preds.append(lambda f: f.kind in kinds)
    if cond.target_reached is not None:
        reached = cond.target_reached
        preds.append(lambda f: f.target_reached is reached)
    if cond.reported_status is not None:
        statuses = frozenset(str(s) for s in cond.reported_status)
        preds.append(lambda f: f.reported_status in statuses)
    if cond.risk_flag is not None:
        risk = cond.risk_flag
        preds.append(lambda f: f.risk_flag is risk)
    if cond.behind_pace_more_than is not None:
        limit = cond.behind_pace_more_than
        preds.append(lambda f: f.pace_shortfall is not None and f.pace_shortfall > limit)
    if cond.overdue is not None:
        overdue = cond.overdue
        preds.append(lambda f: f.overdue is overdue)
    if cond.nothing_achieved is not None:
        nothing = cond.nothing_achieved
        preds.append(lambda f: f.nothing_achieved is nothing)
    return tuple(preds)


@dataclass(slots=True)
class CompiledRules:
    """The status rule table as predicate tuples, and the decisions taken so far.

    A decision depends on a row's facts only through the kind, the booleans, the reported status
    and which of the table's pace thresholds the shortfall exceeds: the ~10^5 rows of a
    compilation fall into a few dozen such keys, so each key is decided once."""

    table: tuple[tuple[Status, tuple[Predicate, ...]], ...]
    thresholds: tuple[float, ...]  # every behind_pace_more_than of the table, ascending
    decisions: dict[tuple[Any, ...], Status] = field(default_factory=dict)

    def decide(
        self,
        kind: MetricKind,
        reported: bool,
        target_reached: bool,
        reported_status: str | None,
        risk_flag: bool,
        pace_shortfall: float | None,
        overdue: bool,
        nothing_achieved: bool,
    ) -> Status:
        """The status of a row with these facts (``RowFacts`` field by field)."""
        pace = None if pace_shortfall is None else bisect_left(self.thresholds, pace_shortfall)
        key = (kind, reported, target_reached, reported_status, risk_flag, pace, overdue, nothing_achieved)
        found = self.decisions.get(key)
        if found is None:
            facts = RowFacts(
                kind,
                reported,
                target_reached,
                reported_status,
                risk_flag,
                pace_shortfall,
                overdue,
                nothing_achieved,
            )
            found = self.decisions[key] = _first_rule(self.table, facts)
        return found


def compile_status_rules(rules: StatusRules) -> CompiledRules:
    """Turn the rule table into predicate tuples once per compilation (the hot path)."""
    thresholds = sorted(
        {r.when.behind_pace_more_than for r in rules.rules if r.when.behind_pace_more_than is not None}
    )
    return CompiledRules(
        tuple((rule.status, _predicates(rule.when)) for rule in rules.rules), tuple(thresholds)
    )


def _first_rule(table: tuple[tuple[Status, tuple[Predicate, ...]], ...], facts: RowFacts) -> Status:
    for status, preds in table:
        for pred in preds:
            if not pred(facts):
                break
        else:
            return status
    return Status.IN_PROGRESS  # unreachable: the validated table ends with a fallback


def decide_status(compiled: CompiledRules, facts: RowFacts) -> Status:
    return compiled.decide(
        facts.kind,
        facts.reported,
        facts.target_reached,
        facts.reported_status,
        facts.risk_flag,
        facts.pace_shortfall,
        facts.overdue,
        facts.nothing_achieved,
    )


def row_status(facts: RowFacts, rules: StatusRules | None = None) -> Status:
    """Status of one row under the given (default: status_rules.yaml) rules."""
    return decide_status(compile_status_rules(rules or default_status_rules()), facts)


def expected_share(on: dt.date, deadline: dt.date, start: dt.date) -> float:
    """Linear pace: the share of the target due by ``on`` = elapsed fraction of start → deadline."""
    if deadline <= start:
        return 1.0
    elapsed = (on - start).days / (deadline - start).days
    return 0.0 if elapsed < 0 else 1.0 if elapsed > 1 else elapsed


def pace_shortfall(cumulative: float | None, target: float | None, share: float) -> float | None:
    """How far below the linear pace, as a share of the expected value (0.3 = 30 % behind)."""
    if target is None or target <= 0 or share <= 0:
        return None
    return 1.0 - ((cumulative or 0.0) / target) / share


def pace_tolerance(rules: StatusRules | None = None) -> float:
    """How far behind the linear pace a row may be before it is at risk (the first pace rule)."""
    for rule in (rules or default_status_rules()).rules:
        if rule.when.behind_pace_more_than is not None:
            return rule.when.behind_pace_more_than
    return 1.0


def combine_statuses(statuses: Iterable[str | None]) -> str | None:
    """Several institutions' milestone statuses → one: any risk is a risk; done only when all are done."""
    first: str | None = None
    mixed = False
    for status in statuses:
        if not status:
            continue
        if status == "risk":
            return "risk"
        if first is None:
            first = status
        elif status != first:
            mixed = True
    return "in_progress" if mixed else first


def _review_of(states: set[str]) -> str | None:
    """combine_review_states for a set (the hot path)."""
    if len(states) == 1:
        return next(iter(states))
    if "returned" in states:
        return "returned"
    if "pending" in states:
        return "pending"
    return combine_review_states(states)


def combine_review_states(states: Iterable[str | None]) -> str | None:
    """A row is returned if any part is, pending if any part waits, accepted when all are."""
    found = {s for s in states if s}
    for state in (ReviewState.RETURNED, ReviewState.PENDING, ReviewState.ACCEPTED):
        if state in found:
            return str(state)
    return next(iter(found), None)


# ---------------------------------------------------------------- validation warnings


@dataclass(frozen=True, slots=True)
class ValidationWarning:
    """A plausibility warning; ``code`` names its message macro ``reports.warning_<code>``."""

    code: str
    params: Mapping[str, Any]
    indicator_ids: tuple[str, ...]


Warning = ValidationWarning  # the name the brief uses; the builtin is not needed here


_PAIR, _CUMULATIVE, _RANGE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class _Check:
    """A validation rule bound to one measure's indicator rows."""

    type: int  # _PAIR | _CUMULATIVE | _RANGE
    code: str
    ids: tuple[str, ...]  # left rows (pair), rows with a target (cumulative), rows (range)
    row: bool = False  # scope "row": the row's totals; else one institution's answers
    limits: tuple[float, ...] = ()  # cumulative: multiple × target, per id
    targets: tuple[float, ...] = ()
    right_ids: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    multiple: float = 0.0


def _same_groups(
    indicators: Sequence[Indicator], same: Sequence[str]
) -> dict[tuple[Any, ...], list[Indicator]]:
    """Indicator rows grouped by the attributes a pair rule compares on (one group without any)."""
    groups: dict[tuple[Any, ...], list[Indicator]] = {}
    for ind in indicators:
        groups.setdefault(tuple(getattr(ind, name) for name in same), []).append(ind)
    return groups


def _applicable_checks(rules: ValidationRules, measure: Measure) -> tuple[_Check, ...]:
    checks: list[_Check] = []
    indicators = measure.indicators
    for rule in rules.rules:
        row = rule.scope == "row"
        if isinstance(rule, PairRule):
            for group in _same_groups(indicators, rule.same).values():
                left = tuple(i.id for i in group if i.kind is rule.left)
                right = tuple(i.id for i in group if i.kind is rule.right)
                if left and right:
                    checks.append(_Check(_PAIR, rule.code, left, row, right_ids=right))
            continue
        kinds = tuple(rule.kinds)
        if isinstance(rule, CumulativeRule):
            rows = [(i.id, i.target) for i in indicators if i.kind in kinds and i.target]
            if rows:
                checks.append(
                    _Check(
                        _CUMULATIVE,
                        rule.code,
                        tuple(i for i, _ in rows),
                        row,
                        limits=tuple(rule.multiple * t for _, t in rows if t),
                        targets=tuple(t for _, t in rows if t),
                        multiple=rule.multiple,
                    )
                )
        else:
            ids = tuple(i.id for i in indicators if i.kind in kinds)
            if ids:
                checks.append(_Check(_RANGE, rule.code, ids, row, low=rule.min, high=rule.max))
    return tuple(checks)


MeasureChecks = tuple[tuple[_Check, ...], tuple[_Check, ...]]
_BOUND: dict[tuple[int, int], tuple[ValidationRules, Measure, MeasureChecks]] = {}
_BOUND_MAX = 100_000


def _measure_checks(rules: ValidationRules, measure: Measure) -> MeasureChecks:
    """(report-scope checks, row-scope checks) of a measure, bound once per rules and measure.

    Remembered by identity (both are immutable; the entry keeps them alive, so an id is not
    reused while it is remembered): the same catalog compiles again and again."""
    key = (id(rules), id(measure))
    found = _BOUND.get(key)
    if found is not None and found[0] is rules and found[1] is measure:
        return found[2]
    checks = _applicable_checks(rules, measure)
    bound = tuple(c for c in checks if not c.row), tuple(c for c in checks if c.row)
    if len(_BOUND) >= _BOUND_MAX:
        _BOUND.clear()
    _BOUND[key] = (rules, measure, bound)
    return bound


def _pair_warning(check: _Check, answers: Mapping[str, float | None]) -> ValidationWarning | None:
    """Sum of the answered left rows above the sum of the answered right rows (both answered)."""
    get = answers.get
    if len(check.ids) == 1 and len(check.right_ids) == 1:  # the usual pair: one row against one
        (left_id,), (right_id,) = check.ids, check.right_ids
        left_value, right_value = get(left_id), get(right_id)
        if left_value is None or right_value is None or left_value <= right_value:
            return None
        return ValidationWarning(check.code, {"left": left_value, "right": right_value}, (left_id, right_id))
    left = [i for i in check.ids if get(i) is not None]
    right = [i for i in check.right_ids if get(i) is not None]
    if not left or not right:
        return None
    left_sum = sum(answers[i] for i in left)  # type: ignore[misc]
    right_sum = sum(answers[i] for i in right)  # type: ignore[misc]
    if left_sum <= right_sum:
        return None
    return ValidationWarning(check.code, {"left": left_sum, "right": right_sum}, (*left, *right))


def _cumulative_warnings(
    check: _Check, answers: Mapping[str, float | None], cumulative_before: Mapping[str, float]
) -> list[ValidationWarning]:
    found = []
    for ind_id, limit, target in zip(check.ids, check.limits, check.targets, strict=True):
        answer = answers.get(ind_id)
        if answer is None:
            continue
        total = cumulative_before.get(ind_id, 0.0) + answer
        if total > limit:
            params = {"cumulative": total, "target": target, "multiple": check.multiple}
            found.append(ValidationWarning(check.code, params, (ind_id,)))
    return found


def _range_warnings(check: _Check, answers: Mapping[str, float | None]) -> list[ValidationWarning]:
    low, high = check.low, check.high
    found = []
    for ind_id in check.ids:
        answer = answers.get(ind_id)
        if answer is None:
            continue
        if (low is not None and answer < low) or (high is not None and answer > high):
            found.append(ValidationWarning(check.code, {"value": answer, "min": low, "max": high}, (ind_id,)))
    return found


def _run_checks(
    checks: Sequence[_Check],
    answers: Mapping[str, float | None],
    cumulative_before: Mapping[str, float],
) -> list[ValidationWarning]:
    warnings: list[ValidationWarning] = []
    for check in checks:
        if check.type == _PAIR:
            found = _pair_warning(check, answers)
            if found is not None:
                warnings.append(found)
        elif check.type == _CUMULATIVE:
            warnings.extend(_cumulative_warnings(check, answers, cumulative_before))
        else:
            warnings.extend(_range_warnings(check, answers))
    return warnings


def check_rules(
    catalog: Catalog,
    measure: Measure | str,
    answers_by_indicator: Mapping[str, float | None],
    cumulative_before: Mapping[str, float],
    *,
    row_answers: Mapping[str, float | None] | None = None,
    rules: ValidationRules | None = None,
) -> list[ValidationWarning]:
    """Cross-field plausibility checks of one institution's answers to a measure. Warns, never blocks.

    Rules of scope ``report`` look at ``answers_by_indicator`` alone. Rules of scope ``row`` look
    at the whole indicator row: ``row_answers`` (the year's value of the row with these answers in
    it, all institutions; default: the answers themselves) on top of ``cumulative_before`` — per
    indicator id, the row's value accumulated before that year (all institutions, earlier years).
    """
    found = catalog.measure(measure) if isinstance(measure, str) else measure
    report_checks, row_checks = _measure_checks(rules or default_validation_rules(), found)
    return [
        *_run_checks(report_checks, answers_by_indicator, {}),
        *_run_checks(
            row_checks, answers_by_indicator if row_answers is None else row_answers, cumulative_before
        ),
    ]


# ---------------------------------------------------------------- compiled tables


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
class CompiledWarning:
    measure_id: str
    year: int
    warning: ValidationWarning
    institution: str | None = None  # whose report; None: a check of the row's totals


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
        names += [i for i in _in_order(measure.comments, measure.measure.institutions) if i not in names]
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
    timezone: str = "Europe/Riga"
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


# ---------------------------------------------------------------- compiling


Submissions = dict[tuple[str, str, int], dt.datetime]  # (measure, institution, year) → submitted at


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


def find_plan(catalog: Catalog, plan_id: str) -> Plan:
    for plan in catalog.plans:
        if plan.id == plan_id:
            return plan
    raise KeyError(f"no plan {plan_id!r} in the catalog")


def compiled_years(rules: StatusRules, year: int | None) -> tuple[int, ...]:
    years = rules.period.years
    if year is None:
        return years
    if year not in years:
        raise ValueError(f"year {year} is outside the plan period {years[0]}–{years[-1]}")
    return tuple(y for y in years if y <= year)


def evaluation_day(rules: StatusRules, year: int | None, as_of: dt.date) -> dt.date:
    """Pace and deadlines are judged at as_of, but never after the end of the compiled year."""
    last = dt.date(year, 12, 31) if year is not None else rules.period.end
    return min(as_of, last)


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


_REVIEW_RANK = {"returned": 3, "pending": 2, "accepted": 1}  # combine_review_states, as ranks


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
        if state != review and (review is None or _REVIEW_RANK.get(state, 0) > _REVIEW_RANK.get(review, 0)):
            review = state  # returned > pending > accepted, as combine_review_states
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


def _in_order(found: Mapping[str, Any], order: Sequence[str]) -> list[str]:
    """Institutions in the measure's order (responsible first), others after it alphabetically."""
    if len(found) == 1:
        return list(found)
    names = [i for i in order if i in found]
    if len(names) < len(found):
        names.extend(sorted(i for i in found if i not in order))
    return names


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
        for inst in order if by_inst.keys() == everyone else _in_order(by_inst, order):
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
            if state != review and (
                review is None or _REVIEW_RANK.get(state, 0) > _REVIEW_RANK.get(review, 0)
            ):
                review = state
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


def _measure_warnings(
    ctx: _Context, measure: Measure, rows: Sequence[IndicatorRow]
) -> tuple[CompiledWarning, ...]:
    """Per compiled year: the report-scope rules on each institution's own answers (as when it
    submitted them), then the row-scope rules on the rows' totals across institutions, with the
    earlier years' totals as the cumulative value before them."""
    if not any(row.institutions for row in rows):
        return ()
    report_checks, row_checks = _measure_checks(ctx.validation, measure)
    found = _report_warnings(measure, rows, report_checks) if report_checks else []
    by_id = {row.indicator.id: row for row in rows}
    row_checks = tuple(c for c in (_could_exceed(c, by_id) for c in row_checks) if c is not None)
    if row_checks:
        read = {i for check in row_checks for i in (*check.ids, *check.right_ids)}
        used = [(row.indicator.id, row.values, row.level) for row in rows if row.indicator.id in read]
        before: dict[str, float] = {}
        for year in ctx.years:
            answers = {ind_id: values[year] for ind_id, values, _ in used if values[year] is not None}
            if not answers:
                continue
            found.extend(
                ((year, 1, 0, 0), CompiledWarning(measure.id, year, w))
                for w in _run_checks(row_checks, answers, before)
            )
            for ind_id, values, level in used:
                value = values[year]
                if value is not None and not level:
                    before[ind_id] = before.get(ind_id, 0.0) + value
    found.sort(key=lambda item: item[0])  # year; each institution's, then the row's; rule order
    return tuple(w for _, w in found)


def _could_exceed(check: _Check, by_id: Mapping[str, IndicatorRow]) -> _Check | None:
    """A cumulative check narrowed to the rows whose running total passes their limit in some
    year (other checks as they are; None: no row does) — the year-by-year run then only words
    the warnings of those rows."""
    if check.type != _CUMULATIVE:
        return check
    keep = [
        i
        for i, (ind_id, limit) in enumerate(zip(check.ids, check.limits, strict=True))
        if (row := by_id.get(ind_id)) is not None and _passes(row, limit)
    ]
    if len(keep) == len(check.ids):
        return check
    if not keep:
        return None
    return replace(
        check,
        ids=tuple(check.ids[i] for i in keep),
        limits=tuple(check.limits[i] for i in keep),
        targets=tuple(check.targets[i] for i in keep),
    )


def _passes(row: IndicatorRow, limit: float) -> bool:
    """Whether the row's cumulative value passes ``limit`` in some year (a level: its value)."""
    running = 0.0
    for value in row.values.values():  # the years in order
        if value is not None:
            running = value if row.level else running + value
            if running > limit:
                return True
    return False


def _report_warnings(
    measure: Measure, rows: Sequence[IndicatorRow], checks: Sequence[_Check]
) -> list[tuple[tuple[int, int, int, int], CompiledWarning]]:
    """The report-scope rules on each institution's answers of each year, keyed for the order
    (year, 0, institution's place in the measure, rule position).

    Each rule sees exactly the answers it reads, per institution and year. A range rule first
    compares each share's smallest and largest value with its bounds, so only shares with an
    answer out of range are looked at year by year (the common case: two comparisons a share)."""
    by_id = {row.indicator.id: row for row in rows}
    rank = {inst: i for i, inst in enumerate(measure.institutions)}
    found: list[tuple[tuple[int, int, int, int], CompiledWarning]] = []
    for position, check in enumerate(checks):
        if check.type == _PAIR and len(check.ids) == 1 and len(check.right_ids) == 1:
            found.extend(_one_pair_warnings(measure.id, by_id, check, rank, position))
            continue
        shares = [
            (ind_id, share)
            for ind_id in (*check.ids, *check.right_ids)
            for share in by_id[ind_id].institutions
        ]
        if check.type == _RANGE:
            low, high = check.low, check.high
            shares = [
                (ind_id, share)
                for ind_id, share in shares
                if share.low is not None
                and ((low is not None and share.low < low) or (high is not None and share.high > high))  # type: ignore[operator]
            ]
        answers: dict[tuple[int, str], dict[str, float]] = {}
        for ind_id, share in shares:
            inst = share.institution
            for year, value in share.values.items():
                if value is not None:
                    given = answers.get((year, inst))
                    if given is None:
                        answers[(year, inst)] = {ind_id: value}
                    else:
                        given[ind_id] = value
        for (year, inst), given in answers.items():
            if check.type == _PAIR:
                pair = _pair_warning(check, given)
                warnings = [] if pair is None else [pair]
            else:
                warnings = _run_checks((check,), given, {})
            for w in warnings:
                found.append(
                    (
                        (year, 0, rank.get(inst, len(rank)), position),
                        CompiledWarning(measure.id, year, w, inst),
                    )
                )
    return found


def _one_pair_warnings(
    measure_id: str,
    by_id: Mapping[str, IndicatorRow],
    check: _Check,
    rank: Mapping[str, int],
    position: int,
) -> Iterator[tuple[tuple[int, int, int, int], CompiledWarning]]:
    """A pair rule of one row against one row, institution by institution and year by year: only
    where the left value is the larger is ``_pair_warning`` asked (it decides and words it)."""
    (left_id,), (right_id,) = check.ids, check.right_ids
    rights = {share.institution: share.values for share in by_id[right_id].institutions}
    for share in by_id[left_id].institutions:
        inst = share.institution
        right = rights.get(inst)
        if right is None:
            continue
        for year, left_value in share.values.items():
            right_value = right.get(year)
            if left_value is not None and right_value is not None and left_value > right_value:
                warning = _pair_warning(check, {left_id: left_value, right_id: right_value})
                if warning is not None:
                    key = (year, 0, rank.get(inst, len(rank)), position)
                    yield key, CompiledWarning(measure_id, year, warning, inst)


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
        warnings=_measure_warnings(ctx, measure, rows),
        comments=comments,
    )


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
        completeness = _completeness(
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


# ---------------------------------------------------------------- completeness and timeliness


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
        for measure_id, deadline, institutions in _reporting_measures(plan)
        if deadline is None or deadline >= first_day
        for inst in institutions
        if window.expected(inst, year)
    ]


def _reporting_measures(plan: Plan) -> list[tuple[str, dt.date | None, tuple[str, ...]]]:
    """(measure, deadline, designated reporters) — who completeness and timeliness count."""
    return [(m.id, m.deadline, m.reporters) for m in plan.measures()]


def _completeness(
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
    measures = _reporting_measures(plan)
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
    return _completeness(catalog, plan, submissions, years, as_of, rules, grace, first_submitted, window)


# ---------------------------------------------------------------- policy results


@dataclass(frozen=True, slots=True)
class PolicyYear:
    year: int
    target: YearTarget | None
    actual: PolicyActual | None
    met: bool | None  # None: nothing to compare

    @property
    def value(self) -> float | None:
        return self.actual.value if self.actual is not None else None


@dataclass(frozen=True, slots=True)
class PolicyRow:
    result_id: str
    result_title: str
    indicator_id: str
    text: str
    kind: MetricKind
    unit: str | None
    history: Mapping[int, float | None]  # passport values 2022–2024
    years: tuple[PolicyYear, ...]
    data_source: str | None
    entered: Mapping[int, PolicyActual] = field(default_factory=dict)  # actuals entered for 2022–2024

    def history_value(self, year: int) -> float | None:
        """A history year's value: the one entered (``resobot indicator set``) over the passport's."""
        actual = self.entered.get(year)
        return actual.value if actual is not None else self.history.get(year)


@dataclass(frozen=True, slots=True)
class PolicyTable:
    plan_id: str
    history_years: tuple[int, ...]
    years: tuple[int, ...]
    rows: tuple[PolicyRow, ...]


def policy_target_met(
    target: YearTarget | None, actual: float | None, previous: float | None, increase_words: Sequence[str]
) -> bool | None:
    """Numeric target: actual ≥ target. "Pieaug" (grows): actual above the year before."""
    if target is None or actual is None:
        return None
    if target.value is not None:
        return actual >= target.value
    words = target.text.casefold()
    if any(word in words for word in increase_words):
        return None if previous is None else actual > previous
    return None


def compile_policy_results(
    catalog: Catalog,
    plan_id: str,
    actuals: Iterable[PolicyActual],
    *,
    status_rules: StatusRules | None = None,
) -> PolicyTable:
    """Yearly targets vs actuals of the plan's policy-result indicators, history beside: the
    passport's 2022–2024 values, or a value entered for such a year over it. "Pieaug" targets
    compare with the year before: the latest history value (entered or passport), then the
    actuals year by year."""
    rules = status_rules or default_status_rules()
    plan = find_plan(catalog, plan_id)
    latest: dict[tuple[str, int], PolicyActual] = {}
    for actual in actuals:
        key = (actual.indicator_id, actual.year)
        old = latest.get(key)
        if old is None or actual.entered_at >= old.entered_at:
            latest[key] = actual
    words = tuple(w.casefold() for w in rules.policy_increase_words)
    years = rules.period.years
    rows: list[PolicyRow] = []
    for result in plan.policy_results:
        for ind in result.indicators:
            passport = ind.passport
            known = passport.history if passport else {}
            history = {y: known.get(y) for y in rules.history_years}
            entered = {
                y: found
                for y in rules.history_years
                if (found := latest.get((ind.id, y))) is not None and found.value is not None
            }
            effective = [entered[y].value if y in entered else history[y] for y in rules.history_years]
            previous = next((v for v in reversed(effective) if v is not None), None)
            cells: list[PolicyYear] = []
            for year in years:
                actual = latest.get((ind.id, year))
                value = actual.value if actual is not None else None
                target = ind.targets.get(year)
                cells.append(
                    PolicyYear(year, target, actual, policy_target_met(target, value, previous, words))
                )
                if value is not None:
                    previous = value
            rows.append(
                PolicyRow(
                    result_id=result.id,
                    result_title=result.title,
                    indicator_id=ind.id,
                    text=ind.text,
                    kind=ind.kind,
                    unit=ind.unit,
                    history=history,
                    years=tuple(cells),
                    data_source=passport.data_source if passport else None,
                    entered=entered,
                )
            )
    return PolicyTable(plan.id, rules.history_years, years, tuple(rows))
