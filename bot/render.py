"""Turns form steps and stored values into message text via templates/ (no Telegram calls)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from reporting_forms import labels
from reporting_forms.answers import InvalidAnswer, MilestoneStatus
from reporting_forms.catalog import Measure
from reporting_forms.compilation import default_status_rules
from reporting_forms.exports.common import review_label
from reporting_forms.forms import (
    Ask,
    FieldKind,
    FormField,
    Summary,
    form_for,
    load_answer,
)
from reporting_forms.texts import format_day, format_number, plain, shorten, text
from storage.repositories import IMPORT_FIELD
from storage.reviews import REVIEW_FIELD


def button(lang: str, name: str, /, **params: Any) -> str:
    """Button labels are plain text, not HTML: render, then undo the escaping."""
    return plain(lang, name, **params)


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
        if default_status_rules().accumulates(indicator.kind) and by_year:
            cumulative = float(sum(float(v) for y, v in by_year.items() if y < year))
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
    label = shorten(indicator.text, width)
    if field.depends_on is not None:
        return button(lang, "report.label_with_date", label=label)
    return label


def format_stored(lang: str, measure: Measure, year: int, key: str, stored: Any) -> str | None:
    """A stored answer (a revision's snapshot or change) of form field ``key`` as the user reads
    it; a key the form no longer has keeps its stored value."""
    if stored is None:
        return None
    field = next((f for f in form_for(measure).fields if f.key == key), None)
    return _stored_value(field, stored, year, lang) if field is not None else str(stored)


def change_rows(
    lang: str, measure: Measure | None, year: int, changes: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """A revision's old → new changes as the summary card shows them: field labels, formatted
    values, in form order. Keys the form no longer has keep their stored key and value."""
    fields = {f.key: f for f in form_for(measure).fields} if measure is not None else {}
    order = {key: i for i, key in enumerate(fields)}

    def shown(field: FormField | None, stored: Any) -> str | None:
        if stored is None:
            return None
        return _stored_value(field, stored, year, lang) if field is not None else str(stored)

    rows = []
    for change in sorted(changes, key=lambda c: order.get(str(c.get("field")), len(order))):
        if change.get("field") == REVIEW_FIELD:  # a coordinator's decision on this revision
            rows.append(
                {
                    "field": text(lang, "report.history_review", by=change.get("by_name") or "—"),
                    "old": review_label(lang, change.get("old")) or None,
                    "new": review_label(lang, change.get("new")) or None,
                    "comment": change.get("comment"),
                }
            )
            continue
        if change.get("field") == IMPORT_FIELD:  # the revision came from a spreadsheet import
            rows.append(
                {
                    "field": text(lang, "report.history_import", by=change.get("by_name") or "—"),
                    "old": None,
                    "new": str(change.get("new") or "—"),
                }
            )
            continue
        field = fields.get(str(change.get("field")))
        rows.append(
            {
                "field": field_label(lang, measure, field)
                if field and measure
                else labels.field_label(lang, str(change.get("field"))),
                "old": shown(field, change.get("old")),
                "new": shown(field, change.get("new")),
                "comment": None,
            }
        )
    return rows


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


_FIELD_PARAMS = ("key", "depends_on")  # answer keys an error names: shown as words (1.1.1.1 datums)


def error_text(lang: str, code: str, params: Mapping[str, Any]) -> str:
    shown = {
        name: labels.field_label(lang, value) if name in _FIELD_PARAMS and isinstance(value, str) else value
        for name, value in params.items()
    }
    return text(lang, f"answers.error_{code}", **shown)
