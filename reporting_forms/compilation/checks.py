"""Validation checks: plausibility rules as data (``validation_rules.yaml``), one implementation each.

A rule is bound to a measure's indicator rows once (``_Check``) and judged by one function per
rule type: ``_pair_warning``, ``_cumulative_warnings``, ``_range_warnings`` (``_run_checks``).
``check_rules`` runs them on a draft's answers; ``measure_warnings`` on a compiled measure's rows,
where the shortcuts that skip rows and shares that cannot warn ask the same comparisons
(``_exceeds``, ``_out_of_range``) the rule functions decide with.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import Field

from reporting_forms.catalog import Catalog, Indicator, Measure, MetricKind
from reporting_forms.compilation.status import RulesModel, load_rules

VALIDATION_RULES_PATH = Path(__file__).parents[1] / "validation_rules.yaml"


RuleScope = Literal["report", "row"]
"""What a validation rule looks at: ``report`` — one institution's answers (its own report), as at
submit time; ``row`` — the indicator row's totals across all institutions."""


class PairRule(RulesModel):
    """Sum of ``left`` rows must not exceed the sum of ``right`` rows (e.g. trained ≤ participants).

    Only rows that count the same people are compared: rows whose ``same`` attributes (e.g. the
    catalog's ``unit``) are equal; rows without the attribute are compared with each other."""

    type: Literal["not_greater_than"]
    code: str
    left: MetricKind
    right: MetricKind
    same: tuple[Literal["unit"], ...] = ()
    scope: RuleScope = "report"


class CumulativeRule(RulesModel):
    """Cumulative value must not exceed ``multiple`` × the 2027 target."""

    type: Literal["cumulative_multiple_of_target"]
    code: str
    multiple: float = Field(default=3.0, gt=0)
    kinds: tuple[MetricKind, ...]
    scope: RuleScope = "row"


class RangeRule(RulesModel):
    """An answer must lie within [min, max]."""

    type: Literal["range"]
    code: str
    kinds: tuple[MetricKind, ...]
    min: float | None = None
    max: float | None = None
    scope: RuleScope = "report"


ValidationRule = Annotated[PairRule | CumulativeRule | RangeRule, Field(discriminator="type")]


class ValidationRules(RulesModel):
    rules: tuple[ValidationRule, ...]


def load_validation_rules(path: Path | None = None) -> ValidationRules:
    return load_rules(ValidationRules, path or VALIDATION_RULES_PATH)


@cache
def default_validation_rules() -> ValidationRules:
    return load_validation_rules()


@dataclass(frozen=True, slots=True)
class ValidationWarning:
    """A plausibility warning; ``code`` names its message macro ``reports.warning_<code>``."""

    code: str
    params: Mapping[str, Any]
    indicator_ids: tuple[str, ...]


Warning = ValidationWarning  # the name the brief uses; the builtin is not needed here


@dataclass(frozen=True, slots=True)
class CompiledWarning:
    measure_id: str
    year: int
    warning: ValidationWarning
    institution: str | None = None  # whose report; None: a check of the row's totals


class CheckedShare(Protocol):
    """What the checks read of an institution's share of a compiled row (``InstitutionShare``)."""

    @property
    def institution(self) -> str: ...
    @property
    def values(self) -> Mapping[int, float | None]: ...
    @property
    def low(self) -> float | None: ...
    @property
    def high(self) -> float | None: ...


class CheckedRow(Protocol):
    """What the checks read of a compiled indicator row (``IndicatorRow``)."""

    @property
    def indicator(self) -> Indicator: ...
    @property
    def values(self) -> Mapping[int, float | None]: ...
    @property
    def level(self) -> bool: ...
    @property
    def institutions(self) -> Sequence[CheckedShare]: ...


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


# ---------------------------------------------------------------- the rules' comparisons
# Each rule decides with one of these; the shortcuts of ``measure_warnings`` ask the same ones.


def _exceeds(value: float, limit: float) -> bool:
    """Pair rule: the left sum above the right sum. Cumulative rule: the running total above
    ``multiple`` × target."""
    return value > limit


def _out_of_range(value: float, low: float | None, high: float | None) -> bool:
    """Range rule: an answer below ``low`` or above ``high`` (a missing bound: no limit)."""
    return (low is not None and value < low) or (high is not None and value > high)


def _pair_warning(check: _Check, answers: Mapping[str, float | None]) -> ValidationWarning | None:
    """Sum of the answered left rows above the sum of the answered right rows (both answered)."""
    get = answers.get
    if len(check.ids) == 1 and len(check.right_ids) == 1:  # the usual pair: one row against one
        (left_id,), (right_id,) = check.ids, check.right_ids
        left_value, right_value = get(left_id), get(right_id)
        if left_value is None or right_value is None or not _exceeds(left_value, right_value):
            return None
        return ValidationWarning(check.code, {"left": left_value, "right": right_value}, (left_id, right_id))
    left = [i for i in check.ids if get(i) is not None]
    right = [i for i in check.right_ids if get(i) is not None]
    if not left or not right:
        return None
    left_sum = sum(answers[i] for i in left)  # type: ignore[misc]
    right_sum = sum(answers[i] for i in right)  # type: ignore[misc]
    if not _exceeds(left_sum, right_sum):
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
        if _exceeds(total, limit):
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
        if _out_of_range(answer, low, high):
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


def measure_warnings(
    rules: ValidationRules, years: Sequence[int], measure: Measure, rows: Sequence[CheckedRow]
) -> tuple[CompiledWarning, ...]:
    """The warnings of a compiled measure's rows, per compiled year (``years``): the report-scope
    rules on each institution's own answers (as when it submitted them), then the row-scope rules
    on the rows' totals across institutions, with the earlier years' totals as the cumulative
    value before them."""
    if not any(row.institutions for row in rows):
        return ()
    report_checks, row_checks = _measure_checks(rules, measure)
    found = _report_warnings(measure, rows, report_checks) if report_checks else []
    by_id = {row.indicator.id: row for row in rows}
    row_checks = tuple(c for c in (_could_exceed(c, by_id) for c in row_checks) if c is not None)
    if row_checks:
        read = {i for check in row_checks for i in (*check.ids, *check.right_ids)}
        used = [(row.indicator.id, row.values, row.level) for row in rows if row.indicator.id in read]
        before: dict[str, float] = {}
        for year in years:
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


def _could_exceed(check: _Check, by_id: Mapping[str, CheckedRow]) -> _Check | None:
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


def _passes(row: CheckedRow, limit: float) -> bool:
    """Whether the row's cumulative value passes ``limit`` in some year (a level: its value):
    the cumulative rule's own comparison on the row's highest running total."""
    running = 0.0
    peak: float | None = None
    for value in row.values.values():  # the years in order
        if value is not None:
            running = value if row.level else running + value
            if peak is None or running > peak:
                peak = running
    return peak is not None and _exceeds(peak, limit)


def _report_warnings(
    measure: Measure, rows: Sequence[CheckedRow], checks: Sequence[_Check]
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
                if share.low is not None and share.high is not None
                if _out_of_range(share.low, low, high) or _out_of_range(share.high, low, high)
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
    by_id: Mapping[str, CheckedRow],
    check: _Check,
    rank: Mapping[str, int],
    position: int,
) -> Iterator[tuple[tuple[int, int, int, int], CompiledWarning]]:
    """A pair rule of one row against one row, institution by institution and year by year: only
    where the rule's comparison finds the left value the larger is ``_pair_warning`` asked (it
    decides and words it)."""
    (left_id,), (right_id,) = check.ids, check.right_ids
    rights = {share.institution: share.values for share in by_id[right_id].institutions}
    for share in by_id[left_id].institutions:
        inst = share.institution
        right = rights.get(inst)
        if right is None:
            continue
        for year, left_value in share.values.items():
            right_value = right.get(year)
            if left_value is not None and right_value is not None and _exceeds(left_value, right_value):
                warning = _pair_warning(check, {left_id: left_value, right_id: right_value})
                if warning is not None:
                    key = (year, 0, rank.get(inst, len(rank)), position)
                    yield key, CompiledWarning(measure_id, year, warning, inst)
