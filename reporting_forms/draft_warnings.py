"""The validation rules on a contact's draft, worded for the report card: warnings only, they
never block a report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reporting_forms.catalog import Catalog, Measure
from reporting_forms.compilation import ValidationWarning, check_rules, default_status_rules
from reporting_forms.texts import coded_plain


def warning_message(lang: str, warning: ValidationWarning) -> str:
    """One validation warning as plain text (macro ``reports.warning_<code>``)."""
    return coded_plain(lang, "reports.warning_", warning.code, warning.params)


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
    ``CompileInputsRepo.row_values_besides``) per indicator and year — earlier years make the
    cumulative value before the draft, other institutions' values of ``year`` add to the draft's.
    Warnings only: they never block a report."""
    rules = default_status_rules()
    numeric: dict[str, float | None] = {}
    row: dict[str, float | None] = {}
    before: dict[str, float] = {}
    for indicator in measure.indicators:
        if not indicator.kind.is_numeric:
            continue
        value = _as_number(answers.get(indicator.id))
        past = others.get(indicator.id, {})
        if rules.accumulates(indicator.kind):  # a level's latest value counts, it does not add up
            earlier = (_as_number(v) for y, v in past.items() if y < year)
            before[indicator.id] = sum(v for v in earlier if v is not None)
        if value is not None:
            numeric[indicator.id] = value
            row[indicator.id] = value + (_as_number(past.get(year)) or 0.0)
    warnings = check_rules(catalog, measure, numeric, before, row_answers=row)
    return [warning_message(lang, w) for w in warnings]
