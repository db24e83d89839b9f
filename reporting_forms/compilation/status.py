"""Status rules: how a compiled indicator row gets its status, as data (``status_rules.yaml``).

The rule table, the plan period it judges in, the facts of one row it looks at (``RowFacts``),
the decision (``CompiledRules``, the first rule whose conditions all hold), the linear pace, and
how several institutions' milestone statuses and review states combine into one.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from reporting_forms.calendar import DEFAULT_TIMEZONE, default_calendar
from reporting_forms.catalog import MetricKind, PlanPeriod

STATUS_RULES_PATH = Path(__file__).parents[1] / "status_rules.yaml"

# Tuples, not sets: an Enum member hashes through a Python-level __hash__, while tuple membership
# compares by identity first — it matters a million times over.
NUMERIC_KINDS: tuple[MetricKind, ...] = tuple(k for k in MetricKind if k.is_numeric)


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


REVIEW_ORDER: tuple[ReviewState, ...] = (ReviewState.RETURNED, ReviewState.PENDING, ReviewState.ACCEPTED)
"""Which review state of a row's parts the row takes: returned over pending over accepted."""
REVIEW_RANK: Mapping[str, int] = {str(s): len(REVIEW_ORDER) - i for i, s in enumerate(REVIEW_ORDER)}
"""``REVIEW_ORDER`` as ranks (an unknown state ranks 0)."""


class RulesModel(BaseModel):
    """Rules as data: a YAML file validated strictly (unknown keys refused), immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(RulesModel):
    """Conditions of a status rule; every condition given must hold (see status_rules.yaml)."""

    reported: bool | None = None
    kinds: tuple[MetricKind, ...] | None = None
    target_reached: bool | None = None
    reported_status: tuple[Status, ...] | None = None
    risk_flag: bool | None = None
    behind_pace_more_than: float | None = Field(default=None, ge=0, le=1)
    overdue: bool | None = None
    nothing_achieved: bool | None = None


class StatusRule(RulesModel):
    status: Status
    when: Condition = Condition()


Period = PlanPeriod  # the status rules' period is the plan's (calendar.py): one model of a span of days


def _plan_period() -> Period:
    return default_calendar().period


def _history_years() -> tuple[int, ...]:
    return default_calendar().history_years


class StatusRules(RulesModel):
    """The rule file; its period, history years and time zone come from the plan calendar and
    the TIMEZONE setting (``with_timezone``), not from the file."""

    period: Period = Field(default_factory=_plan_period)
    history_years: tuple[int, ...] = Field(default_factory=_history_years)
    timezone: str = DEFAULT_TIMEZONE
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

    def with_timezone(self, timezone: str) -> StatusRules:
        """These rules judging report dates in ``timezone`` (the TIMEZONE setting)."""
        return self if timezone == self.timezone else self.model_copy(update={"timezone": timezone})

    def accumulates(self, kind: MetricKind) -> bool:
        """Whether a row of this kind adds up over the years (its cumulative value is the sum of
        its yearly values): the numeric kinds that are not levels (``latest_value_kinds``). The
        one answer for the compilation and the chat's "reported earlier (total …)"."""
        return kind.is_numeric and kind not in self.latest_value_kinds


def load_rules(model: type[RulesModel], path: Path) -> Any:
    """A rules YAML file (status or validation rules) as ``model``."""
    return model.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def load_status_rules(path: Path | None = None) -> StatusRules:
    return load_rules(StatusRules, path or STATUS_RULES_PATH)


@cache
def default_status_rules() -> StatusRules:
    return load_status_rules()


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


def stronger_review(current: str | None, state: str | None) -> str | None:
    """The review state of parts in ``current`` and ``state``: the higher ``REVIEW_RANK`` (the
    first seen among equals). The one rule; the compilation's hot path calls it only where a part's
    state differs from the one so far."""
    if current is None or REVIEW_RANK.get(state, 0) > REVIEW_RANK.get(current, 0):
        return state
    return current


def combine_review_states(states: Iterable[str | None]) -> str | None:
    """A row is returned if any part is, pending if any part waits, accepted when all are."""
    combined: str | None = None
    for state in states:
        if state and state != combined:
            combined = stronger_review(combined, state)
    return combined
