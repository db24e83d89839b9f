"""PNG charts (matplotlib, Agg canvas — no pyplot, no global state): progress per task, and
completeness/timeliness per institution.

The progress chart has a row for every task of the plan. On the left, the task's indicator rows
by status (all kinds: milestones, texts and numbers). On the right, the task's compiled figure
(``Summary.mean_percent``, the one the tables and the chat summary show: the mean % of target of
the rows with a numeric target and a reported value) against the mean % due by the evaluation
day over the same rows (``Summary.mean_expected``) — each row's due share runs linearly from the
plan start to that row's own deadline (1.5.3 ends in 2025, most rows in 2027); tasks without a
numeric target, or without a reported value yet, say so. ``progress_series`` is the data.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from reporting_forms.compilation import (
    CompiledPlan,
    Completeness,
    TaskBlock,
    completeness_for,
    pace_tolerance,
)
from reporting_forms.exports.common import (
    STATUS_FILLS,
    STATUS_FONTS,
    STATUS_ORDER,
    label,
    label_cached,
    language,
    percent_text,
    period_text,
    status_label,
    write_bytes,
)
from reporting_forms.texts import format_number

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GREEN, _AMBER, _RED, _GREY = "#63BE7B", "#F6C143", "#E06666", "#7F7F7F"
_BLUE, _ORANGE, _INK = "#4472C4", "#ED7D31", "#404040"
_DPI = 110


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class TaskProgress:
    """What the progress chart shows of one task — read from the compiled task's ``Summary``,
    the same figures as the tables and the chat summary (the chart computes none of its own)."""

    number: str
    rows: int
    counts: dict[str, int]  # rows per status
    percent: float | None  # Summary.mean_percent: mean % of target of the rows with a reported value
    expected: float | None  # Summary.mean_expected: mean % due by the evaluation day, the same rows
    targeted: int = 0  # rows with a numeric target, reported or not

    @property
    def numeric(self) -> bool:
        return self.percent is not None


def task_progress(task: TaskBlock) -> TaskProgress:
    """A task's figures as its compiled summary has them."""
    summary = task.summary
    return TaskProgress(
        number=task.number,
        rows=summary.rows,
        counts={str(s): summary.counts[s] for s in STATUS_ORDER},
        percent=summary.mean_percent,
        expected=summary.mean_expected,
        targeted=summary.targeted_rows,
    )


def progress_series(compiled: CompiledPlan) -> list[TaskProgress]:
    """The progress chart's data, top to bottom: one entry per task of the plan."""
    return [task_progress(t) for _, t in compiled.tasks()]


def pace_colour(percent: float, expected: float) -> str:
    """On pace: green; behind within the status rules' tolerance: amber; further behind: red."""
    if percent >= expected:
        return _GREEN
    return _AMBER if percent >= (1.0 - pace_tolerance()) * expected else _RED


def progress_figure(compiled: CompiledPlan, lang: str = "lv") -> Figure:
    """Every task: its rows by status (left) and, for numeric targets, % of target against the
    % due by now (right)."""
    lang = language(lang)
    tasks = progress_series(compiled)
    fig = Figure(figsize=(10, max(3.2, 0.3 * len(tasks) + 2.0)), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True, width_ratios=(1, 1.25))
    ys = list(range(len(tasks)))[::-1]  # the first task on top
    status_handles = _status_panel(left, tasks, ys, lang)
    pace_handles = _target_panel(right, tasks, ys, lang)
    left.set_yticks(ys, [t.number for t in tasks])
    left.set_ylim(-0.7, len(tasks) - 0.3)
    fig.suptitle(label_cached(lang, "chart_progress_title", period=period_text(lang, compiled)), fontsize=11)
    fig.legend(handles=status_handles, loc="outside lower left", ncol=5, fontsize=7, frameon=False)
    fig.legend(handles=pace_handles, loc="outside lower right", ncol=2, fontsize=7, frameon=False)
    return fig


def progress_chart(compiled: CompiledPlan, *, lang: str = "lv", path: Path | str | None = None) -> bytes:
    """The progress figure as PNG bytes (also written to ``path`` when given)."""
    return write_bytes(_png(progress_figure(compiled, lang)), path)


def _status_panel(ax: Axes, tasks: Sequence[TaskProgress], ys: Sequence[int], lang: str) -> list[Any]:
    """Stacked bars: the share of a task's rows in each status, with the row count."""
    starts = [0.0] * len(tasks)
    handles = []
    for status in STATUS_ORDER:
        shares = [100.0 * t.counts[status] / t.rows if t.rows else 0.0 for t in tasks]
        handles.append(
            ax.barh(
                ys,
                shares,
                left=starts,
                color="#" + STATUS_FILLS[status],
                edgecolor="#" + STATUS_FONTS[status],
                linewidth=0.4,
                label=status_label(lang, status),
            )
        )
        starts = [s + w for s, w in zip(starts, shares, strict=True)]
    for y, task in zip(ys, tasks, strict=True):
        ax.text(101, y, format_number(task.rows, lang), va="center", fontsize=7, color=_GREY)
    ax.set_xlim(0, 108)
    ax.set_xlabel(label(lang, "chart_status_axis"), fontsize=8)
    ax.tick_params(axis="both", labelsize=8)
    return handles


def _target_panel(ax: Axes, tasks: Sequence[TaskProgress], ys: Sequence[int], lang: str) -> list[Any]:
    """% of target per task against the % due by now; tasks without a numeric target say so."""
    numeric = [(y, t) for y, t in zip(ys, tasks, strict=True) if t.numeric]
    ax.barh(
        [y for y, _ in numeric],
        [t.percent or 0.0 for _, t in numeric],
        color=[pace_colour(t.percent or 0.0, t.expected or 0.0) for _, t in numeric],
        edgecolor=_INK,
        linewidth=0.5,
        height=0.7,
    )
    for y, task in numeric:
        percent, expected = task.percent or 0.0, task.expected or 0.0
        ax.vlines(expected, y - 0.42, y + 0.42, colors=_BLUE, linewidth=1.8)
        ax.text(
            min(max(percent, expected), 100.0) + 1.5,
            y,
            percent_text(lang, percent),
            va="center",
            fontsize=7,
        )
    for y, task in zip(ys, tasks, strict=True):
        if not task.numeric:
            note = label(lang, "chart_no_value" if task.targeted else "chart_no_target")
            ax.text(1.5, y, note, va="center", fontsize=7, color=_GREY, style="italic")
    ax.axvline(100, color=_INK, linewidth=1.0)
    ax.set_xlim(0, 112)
    ax.set_xlabel(label(lang, "chart_progress_axis"), fontsize=8)
    ax.tick_params(axis="y", left=False)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    return [
        Patch(facecolor=_GREEN, edgecolor=_INK, label=label(lang, "chart_on_pace")),
        Patch(facecolor=_AMBER, edgecolor=_INK, label=label(lang, "chart_behind")),
        Patch(facecolor=_RED, edgecolor=_INK, label=label(lang, "chart_far_behind")),
        Line2D([], [], color=_BLUE, linewidth=1.8, label=label(lang, "chart_pace")),
        Line2D([], [], color=_INK, linewidth=1.0, label=label(lang, "chart_target")),
    ]


def completeness_figure(completeness: Completeness, year: int | None = None, lang: str = "lv") -> Figure:
    """Grouped bars per institution: completeness and timeliness, % — of ``year``'s reports, or
    of all compiled years (None): the same rows as the text summary."""
    lang = language(lang)
    rows = completeness_for(completeness, year)
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.add_subplot()
    xs = list(range(len(rows)))
    width = 0.38
    ax.bar(
        [x - width / 2 for x in xs],
        [r.completeness or 0.0 for r in rows],
        width,
        color=_BLUE,
        label=label(lang, "col_completeness"),
    )
    ax.bar(
        [x + width / 2 for x in xs],
        [r.timeliness or 0.0 for r in rows],
        width,
        color=_ORANGE,
        label=label(lang, "col_timeliness"),
    )
    for x, row in zip(xs, rows, strict=True):
        ax.text(x, 101, f"{row.actual}/{row.expected}", ha="center", fontsize=7, color=_GREY)
    ax.set_xticks(xs, [r.institution or "" for r in rows])
    ax.set_ylim(0, 108)
    ax.set_ylabel(label(lang, "chart_percent_axis"))
    years = (year,) if year is not None else completeness.years
    if len(years) == 1:
        period = label_cached(lang, "period_year", year=years[0])
    else:
        period = label_cached(lang, "period_all", first=years[0], last=years[-1]) if years else ""
    ax.set_title(label_cached(lang, "chart_completeness_title", period=period), fontsize=11)
    fig.legend(loc="outside lower center", ncol=3, fontsize=8, frameon=False, handles=[
        *ax.get_legend_handles_labels()[0],
        Patch(facecolor="none", edgecolor="none", label=label(lang, "chart_reports_note")),
    ])  # fmt: skip
    ax.grid(axis="y", alpha=0.3)
    return fig


def completeness_chart(
    completeness: Completeness,
    *,
    year: int | None = None,
    lang: str = "lv",
    path: Path | str | None = None,
) -> bytes:
    """The completeness figure as PNG bytes (also written to ``path`` when given)."""
    return write_bytes(_png(completeness_figure(completeness, year, lang)), path)


__all__ = [
    "PNG_SIGNATURE",
    "TaskProgress",
    "completeness_chart",
    "pace_colour",
    "progress_chart",
    "progress_series",
    "task_progress",
]
