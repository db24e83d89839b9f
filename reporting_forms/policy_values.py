"""Policy-result actuals a coordinator enters (``/indicator``, ``resobot indicator set``):
finding the indicator, parsing the year, the value and its source, and the indicator's card."""

from __future__ import annotations

from reporting_forms.answers import is_ascii_number, split_number
from reporting_forms.calendar import default_calendar
from reporting_forms.catalog import Catalog, MetricKind, PolicyIndicator
from reporting_forms.compilation import PolicyTable
from reporting_forms.inputs import InputError
from reporting_forms.texts import text

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


def actual_years() -> tuple[int, int]:
    """(first, last) year a policy-result actual may be entered for: the guidelines' period."""
    years = default_calendar().guideline_years
    return years[0], years[-1]


def parse_actual_year(raw: str | int) -> int:
    value = str(raw).strip().rstrip(".")
    first, last = actual_years()
    if not is_ascii_number(value) or not first <= int(value) <= last:
        raise InputError("bad_year", value=str(raw).strip()[:20], first=first, last=last)
    return int(value)


def parse_actual_value(raw: str, kind: MetricKind = MetricKind.COUNT) -> float:
    """A non-negative number, decimals with a comma or a dot, thousands grouped by spaces,
    an optional % sign; a percent is at most 100."""
    number = split_number(raw.strip().removesuffix("%"))
    if number is None:
        raise InputError("not_a_number", value=raw.strip()[:40])
    if len(number.fraction) > MAX_ACTUAL_DECIMALS:
        raise InputError("too_many_decimals", max_decimals=MAX_ACTUAL_DECIMALS)
    value = float(f"{number.whole}.{number.fraction or '0'}")
    if number.negative and value:
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
    """One policy indicator: the history years (the passport's, or a value entered over it, with
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
