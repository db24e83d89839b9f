"""Policy results: the plan's policy-result indicators, yearly targets against the actuals a TM
coordinator entered, with the passport's history years beside."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from reporting_forms.catalog import Catalog, MetricKind, YearTarget
from reporting_forms.compilation.status import StatusRules, default_status_rules
from reporting_forms.compilation.tables import find_plan


@dataclass(frozen=True, slots=True)
class PolicyActual:
    """An actual value of a policy-result indicator, entered by a TM coordinator."""

    indicator_id: str
    year: int
    value: float | None
    source: str | None
    entered_by: str | None
    entered_at: dt.datetime


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
