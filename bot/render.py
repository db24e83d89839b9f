"""Turns form steps and stored values into message text via templates/ (no Telegram calls)."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from reporting_forms.answers import InvalidAnswer, MilestoneStatus
from reporting_forms.catalog import Measure
from reporting_forms.forms import (
    Ask,
    FieldKind,
    FormField,
    Summary,
    load_answer,
)
from reporting_forms.texts import format_day, format_number, text


def button(lang: str, name: str, /, **params: Any) -> str:
    """Button labels are plain text, not HTML: render, then undo the escaping."""
    return html.unescape(text(lang, name, **params))


def format_value(field: FormField, value: Any, lang: str) -> str | None:
    """A typed answer as the user should read it (Latvian number and date formats)."""
    if value is None:
        return None
    if field.kind is FieldKind.COUNT:
        return format_number(int(value), lang)
    if field.kind is FieldKind.PERCENT:
        return f"{format_number(Decimal(value), lang)} %"
    if field.kind is FieldKind.MILESTONE_STATUS:
        return button(lang, f"answers.status_{MilestoneStatus(value).value}")
    if field.kind is FieldKind.DATE:
        return format_day(
            value if isinstance(value, dt.date) else dt.date.fromisoformat(value), lang, "short"
        )
    return str(value)


def _stored_value(field: FormField, stored: Any, year: int | None, lang: str) -> str | None:
    try:
        return format_value(field, load_answer(field, stored, year), lang)
    except InvalidAnswer:
        return str(stored)


def question_text(
    lang: str, measure: Measure, year: int, ask: Ask, earlier: Mapping[str, Mapping[int, Any]]
) -> str:
    field = ask.field
    indicator = next((i for i in measure.indicators if i.id == field.indicator_id), None)
    past: list[tuple[int, str | None]] = []
    cumulative: float | None = None
    if indicator is not None and field.depends_on is None:
        by_year = earlier.get(indicator.id, {})
        past = [(y, _stored_value(field, v, y, lang)) for y, v in sorted(by_year.items()) if y < year]
        if indicator.kind.is_integer and by_year:
            cumulative = float(sum(int(v) for y, v in by_year.items() if y < year))
    show_indicator = indicator is not None
    return text(
        lang,
        "report.question",
        position=ask.position,
        total=ask.total,
        measure_id=measure.id,
        year=year,
        kind=field.kind.value,
        metric_kind=field.metric_kind.value if field.metric_kind else None,
        indicator_text=indicator.text if show_indicator else None,
        target=indicator.target if show_indicator and field.depends_on is None else None,
        unit=indicator.unit if indicator else None,
        deadline=indicator.deadline if show_indicator and field.depends_on is None else None,
        earlier=past,
        cumulative=cumulative if past else None,
        current=format_value(field, ask.current_value, lang),
        optional=field.optional,
    )


def field_label(lang: str, measure: Measure, field: FormField, width: int = 90) -> str:
    if field.indicator_id is None:
        return button(lang, "report.label_comment")
    indicator = next(i for i in measure.indicators if i.id == field.indicator_id)
    label = indicator.text if len(indicator.text) <= width else indicator.text[: width - 1].rstrip() + "…"
    if field.depends_on is not None:
        label = f"{label} — {button(lang, 'report.label_date')}"
    return label


def summary_text(lang: str, measure: Measure, year: int, summary: Summary, warnings: list[str]) -> str:
    rows = [
        {
            "number": i,
            "label": field_label(lang, measure, row.field),
            "value": format_value(row.field, row.value, lang),
        }
        for i, row in enumerate(summary.rows, start=1)
    ]
    return text(
        lang,
        "report.summary",
        measure_id=measure.id,
        measure_name=measure.name,
        year=year,
        rows=rows,
        warnings=warnings,
    )


def error_text(lang: str, code: str, params: Mapping[str, Any]) -> str:
    return text(lang, f"answers.error_{code}", **params)
