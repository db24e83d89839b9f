"""PNG charts (matplotlib, Agg canvas — no pyplot, no global state): progress per task against the
target, and completeness/timeliness per institution."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reporting_forms.compilation import CompiledPlan, Completeness, expected_share, pace_tolerance
from reporting_forms.exports._common import label, language, write_bytes
from reporting_forms.texts import format_number

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GREEN, _AMBER, _RED, _GREY = "#63BE7B", "#F6C143", "#E06666", "#BFBFBF"
_BLUE, _ORANGE = "#4472C4", "#ED7D31"
_DPI = 110


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def linear_pace(compiled: CompiledPlan) -> float:
    """% of a 2027 target due at the evaluation day on a linear pace over the plan period."""
    start = dt.date(compiled.plan_years[0], 1, 1)
    end = dt.date(compiled.plan_years[-1], 12, 31)
    return 100.0 * expected_share(compiled.evaluated_on, end, start)


def progress_chart(compiled: CompiledPlan, *, lang: str = "lv", path: Path | str | None = None) -> bytes:
    """Horizontal bars: mean % of target per task (numeric rows), with the target and linear pace."""
    lang = language(lang)
    tasks = [(t.number, t.summary.mean_percent) for _, t in compiled.tasks()]
    tasks = [(number, mean) for number, mean in tasks if mean is not None]
    pace = linear_pace(compiled)
    fig = Figure(figsize=(8, max(2.5, 0.32 * len(tasks) + 1.4)))
    ax = fig.add_subplot()
    names = [number for number, _ in tasks][::-1]
    means = [mean for _, mean in tasks][::-1]
    # on pace: green; behind, but within the status rules' tolerance: amber; further behind: red
    slack = 1.0 - pace_tolerance()
    colours = [_GREEN if m >= pace else _AMBER if m >= slack * pace else _RED for m in means]
    ax.barh(names, means, color=colours, edgecolor="#404040", linewidth=0.5)
    for y, mean in enumerate(means):
        ax.text(mean + 1, y, format_number(round(mean), lang), va="center", fontsize=8)
    ax.axvline(100, color="#404040", linewidth=1.2, label=label(lang, "chart_target"))
    ax.axvline(pace, color=_BLUE, linewidth=1.2, linestyle="--", label=label(lang, "chart_pace"))
    ax.set_xlim(0, max([112.0, *(m + 12 for m in means)]))
    ax.set_xlabel(label(lang, "chart_progress_axis"))
    ax.set_title(label(lang, "chart_progress_title"), fontsize=11)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    ax.grid(axis="x", alpha=0.3)
    return write_bytes(_png(fig), path)


def completeness_chart(
    completeness: Completeness, *, lang: str = "lv", path: Path | str | None = None
) -> bytes:
    """Grouped bars per institution: completeness and timeliness, % (all compiled years)."""
    lang = language(lang)
    rows = [r for r in completeness.by_institution if r.expected]
    fig = Figure(figsize=(8, 3.6))
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
    ax.set_xticks(xs, [r.institution or "" for r in rows])
    ax.set_ylim(0, 105)
    ax.set_ylabel(label(lang, "chart_percent_axis"))
    ax.set_title(label(lang, "chart_completeness_title"), fontsize=11)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return write_bytes(_png(fig), path)


__all__ = ["PNG_SIGNATURE", "completeness_chart", "linear_pace", "progress_chart"]
