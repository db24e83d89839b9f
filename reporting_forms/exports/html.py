"""HTML: one self-contained page (templates/reports/plan.html.j2) with the same tables as the DOCX
and the charts embedded as base64 PNG data: URIs."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from reporting_forms.compilation import CompiledPlan, Completeness, PolicyTable
from reporting_forms.exports import charts as chart_module
from reporting_forms.exports.common import (
    PLAN_COLUMNS,
    STATUS_FILLS,
    STATUS_FONTS,
    STATUS_ORDER,
    completeness_header,
    completeness_lines,
    direction_heading,
    label,
    label_with,
    language,
    number_text,
    percent_text,
    period_text,
    plan_header,
    policy_header,
    policy_text_cells,
    subtitle,
    summary_blocks,
    summary_header,
    task_heading,
    task_lines,
    warning_text,
    write_bytes,
)
from reporting_forms.texts import render

TEMPLATE = "reports/plan.html.j2"


def _summary(compiled: CompiledPlan, lang: str) -> dict[str, Any]:
    rows = [
        {
            "level": level,
            "cells": [
                title,
                number_text(lang, s.rows),
                *(number_text(lang, s.counts[st]) for st in STATUS_ORDER),
                percent_text(lang, s.mean_percent),
            ],
        }
        for level, title, s in summary_blocks(compiled, lang)
    ]
    status_columns = {i: str(st) for i, st in enumerate(STATUS_ORDER, start=2)}
    return {"header": summary_header(lang), "rows": rows, "status_columns": status_columns}


def _directions(compiled: CompiledPlan, lang: str) -> list[dict[str, Any]]:
    years = compiled.plan_years
    current = compiled.years[-1] if compiled.years else None
    out = []
    for block in compiled.directions:
        tasks = []
        for task in block.tasks:
            lines = [
                {
                    "cells": line.text_cells(
                        lang, years, compiled.timezone, current, compiled.no_data_years(line.measure.measure)
                    ),
                    "status": str(line.status or (line.share.status if line.share else "") or ""),
                    "share": line.share is not None,
                    "numeric": line.numeric,
                }
                for line in task_lines(task)
            ]
            heading = None if block.is_section else task_heading(lang, task)
            tasks.append({"id": task.task.id, "heading": heading, "lines": lines})
        out.append({"heading": direction_heading(lang, block), "tasks": tasks})
    return out


def _charts(compiled: CompiledPlan, completeness: Completeness, lang: str) -> list[dict[str, str]]:
    period = period_text(lang, compiled)
    pngs = [
        (
            label_with(lang, "chart_progress_title", period=period),
            chart_module.progress_chart(compiled, lang=lang),
        ),
        (
            label_with(lang, "chart_completeness_title", period=period),
            chart_module.completeness_chart(completeness, year=compiled.year, lang=lang),
        ),
    ]
    return [{"alt": alt, "data": base64.b64encode(png).decode("ascii")} for alt, png in pngs]


def export_html(
    compiled: CompiledPlan,
    *,
    completeness: Completeness | None = None,
    policy: PolicyTable | None = None,
    lang: str = "lv",
    charts: bool = True,
    path: Path | str | None = None,
) -> bytes:
    """The compiled plan as one HTML page (UTF-8 bytes; also written to ``path`` when given)."""
    lang = language(lang)
    completeness = completeness or compiled.completeness
    years = compiled.plan_years
    header = plan_header(lang, years)
    page = render(
        TEMPLATE,
        lang=lang,
        title=compiled.plan.title,
        subtitle=subtitle(lang, compiled),
        labels={
            name: label(lang, name)
            for name in (
                "summary_title",
                "charts_title",
                "completeness_title",
                "policy_title",
                "warnings_title",
                "no_warnings",
            )
        },
        status_colours={str(s): {"fill": STATUS_FILLS[s], "font": STATUS_FONTS[s]} for s in STATUS_ORDER},
        summary=_summary(compiled, lang),
        charts=_charts(compiled, completeness, lang) if charts else [],
        completeness={
            "note": label_with(lang, "completeness_note", grace=completeness.grace_days),
            "header": completeness_header(lang),
            "lines": [
                {"cells": line.text_cells(lang), "total": line.total}
                for line in completeness_lines(completeness, lang)
            ],
        },
        header=header,
        status_column=len(header) - 4,
        number_columns=set(range(PLAN_COLUMNS, PLAN_COLUMNS + len(years) + 2)),
        directions=_directions(compiled, lang),
        policy=(
            {"header": policy_header(lang, policy), "rows": [policy_text_cells(lang, r) for r in policy.rows]}
            if policy is not None and policy.rows
            else None
        ),
        warnings=[warning_text(lang, w) for w in compiled.warnings],
    )
    return write_bytes(page.encode("utf-8"), path)


__all__ = ["export_html"]
